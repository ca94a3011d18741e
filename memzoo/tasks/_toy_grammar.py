"""A small deterministic grammar between two made-up languages, for the translation task.

The source language is SVO with English-like morphology; the target language is SOV with
adjectives after their noun, case particles and agreement marks::

    source:  [ADJ] NOUN(+s if plural) VERB(+s if the subject is singular) [ADJ] NOUN(+s) [ADV]
    target:  NOUN'(+vi) [ADJ'(+n)] ha  NOUN'(+vi) [ADJ'(+n)] wo  [ADV'] VERB'(+ta | +ri)

- a plural noun takes ``-vi``; an adjective agrees with its noun (``-n`` when plural);
- ``ha`` marks the subject, ``wo`` the object;
- the verb comes last and agrees with the subject (``-ta`` singular, ``-ri`` plural).

Word stems are pronounceable syllable pairs drawn from ``grammar_seed``: source stems from the
letters ``bdgklmnprst``, target stems from ``cfhjqvwxz`` (so copying the source scores
little chrF). Each source stem has one target stem (a word-by-word lexicon).

>>> g = ToyGrammar(0)
>>> source, target = g.sentence(adj_s=1, noun_s=0, plural_s=True, verb=2, adj_o=0, noun_o=5,
...                               plural_o=False, adverb=3)
>>> source  # adjective, plural subject, plural-agreeing verb, object, adverb
'pupo topas kemi geku bori'
>>> target  # subject -vi, adjective -n, ha, object, wo, adverb, verb -ri (plural subject)
'xuxevi hycyn ha xaxu wo xoco wiziri'
"""

from __future__ import annotations

import torch

SOURCE_LETTERS = ("bdgklmnprst", "aeiou")  # consonants, vowels
TARGET_LETTERS = ("cfhjqvwxz", "aeiouy")
SIZES = {"noun": 12, "verb": 8, "adjective": 8, "adverb": 4}
SUBJECT, OBJECT = "ha", "wo"
PROBABILITY = 0.5  # of a plural noun, of an adjective on a noun, of an adverb


def _stems(count: int, letters: tuple[str, str], taken: set[str], generator: torch.Generator) -> list[str]:
    """``count`` distinct consonant-vowel-consonant-vowel stems not in ``taken``."""
    consonants, vowels = letters
    stems: list[str] = []
    while len(stems) < count:
        c = torch.randint(0, len(consonants), (2,), generator=generator).tolist()
        v = torch.randint(0, len(vowels), (2,), generator=generator).tolist()
        stem = consonants[c[0]] + vowels[v[0]] + consonants[c[1]] + vowels[v[1]]
        if stem not in taken:
            taken.add(stem)
            stems.append(stem)
    return stems


class ToyGrammar:
    """The lexicon of ``grammar_seed`` and the sentence pairs it generates."""

    def __init__(self, grammar_seed: int = 0):
        generator = torch.Generator().manual_seed(grammar_seed)
        source_taken: set[str] = set()
        target_taken: set[str] = {SUBJECT, OBJECT}
        self.source = {c: _stems(n, SOURCE_LETTERS, source_taken, generator) for c, n in SIZES.items()}
        self.target = {c: _stems(n, TARGET_LETTERS, target_taken, generator) for c, n in SIZES.items()}

    # ---- word forms --------------------------------------------------------------------
    def _noun(self, side: str, i: int, plural: bool) -> str:
        stem = getattr(self, side)["noun"][i]
        return stem + (("s" if side == "source" else "vi") if plural else "")

    def _np_target(self, noun: int, plural: bool, adjective: int) -> list[str]:
        words = [self._noun("target", noun, plural)]
        if adjective:
            words.append(self.target["adjective"][adjective - 1] + ("n" if plural else ""))
        return words

    def sentence(self, *, adj_s, noun_s, plural_s, verb, adj_o, noun_o, plural_o, adverb) -> tuple[str, str]:
        """One (source, target) pair. Adjective and adverb indices are 1-based; 0 = none."""
        src: list[str] = []
        if adj_s:
            src.append(self.source["adjective"][adj_s - 1])
        src += [self._noun("source", noun_s, plural_s), self.source["verb"][verb] + ("" if plural_s else "s")]
        if adj_o:
            src.append(self.source["adjective"][adj_o - 1])
        src.append(self._noun("source", noun_o, plural_o))
        if adverb:
            src.append(self.source["adverb"][adverb - 1])
        tgt = self._np_target(noun_s, plural_s, adj_s) + [SUBJECT]
        tgt += self._np_target(noun_o, plural_o, adj_o) + [OBJECT]
        if adverb:
            tgt.append(self.target["adverb"][adverb - 1])
        tgt.append(self.target["verb"][verb] + ("ri" if plural_s else "ta"))
        return " ".join(src), " ".join(tgt)

    def pairs(self, num_examples: int, generator: torch.Generator) -> tuple[list[str], list[str]]:
        """``num_examples`` random sentence pairs (every choice drawn from ``generator``)."""
        n = num_examples

        def optional(count: int) -> list[int]:  # 0 (absent) with probability PROBABILITY, else 1..count
            present = torch.rand(n, generator=generator) >= PROBABILITY
            which = torch.randint(1, count + 1, (n,), generator=generator)
            return (which * present).tolist()

        nouns = torch.randint(0, SIZES["noun"], (n, 2), generator=generator).tolist()
        plural = (torch.rand(n, 2, generator=generator) < PROBABILITY).tolist()
        verbs = torch.randint(0, SIZES["verb"], (n,), generator=generator).tolist()
        adj_s, adj_o = optional(SIZES["adjective"]), optional(SIZES["adjective"])
        adverbs = optional(SIZES["adverb"])
        sources, targets = [], []
        for i in range(n):
            s, t = self.sentence(
                adj_s=adj_s[i],
                noun_s=nouns[i][0],
                plural_s=plural[i][0],
                verb=verbs[i],
                adj_o=adj_o[i],
                noun_o=nouns[i][1],
                plural_o=plural[i][1],
                adverb=adverbs[i],
            )
            sources.append(s)
            targets.append(t)
        return sources, targets

    # ---- vocabularies and the word-by-word baseline ---------------------------------------
    def source_words(self) -> list[str]:
        """Every source word form."""
        s = self.source
        return (
            s["noun"]
            + [w + "s" for w in s["noun"]]
            + s["verb"]
            + [w + "s" for w in s["verb"]]
            + s["adjective"]
            + s["adverb"]
        )

    def target_words(self) -> list[str]:
        """Every target word form, particles included."""
        t = self.target
        return (
            t["noun"]
            + [w + "vi" for w in t["noun"]]
            + t["adjective"]
            + [w + "n" for w in t["adjective"]]
            + [w + a for w in t["verb"] for a in ("ta", "ri")]
            + t["adverb"]
            + [SUBJECT, OBJECT]
        )

    def gloss(self, source: str) -> str:
        """Word-by-word translation: each source word's own target form, in source order,
        without particles or agreement that needs context (the baseline a lexicon gives)."""
        table: dict[str, str] = {}
        for category in SIZES:
            for s, t in zip(self.source[category], self.target[category]):
                table[s] = t
        for s, t in zip(self.source["noun"], self.target["noun"]):
            table[s + "s"] = t + "vi"
        for s, t in zip(self.source["verb"], self.target["verb"]):
            table[s + "s"] = t + "ta"  # the -s form: singular subject
            table[s] = t + "ri"
        return " ".join(table.get(word, word) for word in source.split())
