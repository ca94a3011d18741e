"""Translation quality: corpus BLEU and chrF through ``sacrebleu`` (the ``apps`` extra).

Scores are on a 0-100 scale, computed over the whole corpus (not averaged per sentence), with
sacrebleu's default settings: BLEU with its ``13a`` tokenisation, chrF with character 6-grams
and beta 2 (recall weighted twice as much as precision).

>>> chrf(["the cat sat"], ["the cat sat"])
100.0
"""

from __future__ import annotations

from memzoo.errors import ConfigError, MemzooError


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError:
        raise MemzooError("BLEU/chrF need sacrebleu: pip install 'memzoo[apps]'") from None
    return sacrebleu


def _check(hypotheses: list[str], references: list[str]) -> None:
    if len(hypotheses) != len(references):
        raise ConfigError(f"{len(hypotheses)} hypotheses but {len(references)} references")


def chrf(hypotheses: list[str], references: list[str]) -> float:
    """Corpus chrF (0-100) of ``hypotheses`` against one reference each."""
    _check(hypotheses, references)
    return float(_sacrebleu().corpus_chrf(hypotheses, [references]).score)


def bleu(hypotheses: list[str], references: list[str]) -> float:
    """Corpus BLEU (0-100) of ``hypotheses`` against one reference each."""
    _check(hypotheses, references)
    return float(_sacrebleu().corpus_bleu(hypotheses, [references]).score)


def translation_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """``chrf``, ``bleu`` and ``exact_match`` (share of hypotheses equal to their reference)."""
    _check(hypotheses, references)
    exact = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references))
    return {
        "chrf": chrf(hypotheses, references),
        "bleu": bleu(hypotheses, references),
        "exact_match": exact / max(len(references), 1),
    }
