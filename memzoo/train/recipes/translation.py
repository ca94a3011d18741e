"""Translation: a :class:`memzoo.models.Seq2Seq` trained on the ``translate`` task.

Teacher-forced cross-entropy (optionally label-smoothed). After each epoch the validation
sources are decoded (greedy, or beam search with ``train.beam_size``) and scored with chrF;
the best epoch by validation chrF is selected (weights in safetensors, both tokenizers as JSON
beside them) and training stops once chrF reaches ``train.target_chrf``. The test pairs are
decoded once, with the selected weights.

The run's record has task ``translate`` and layers = encoder then decoder layer names; its
metrics hold ``chrf``, ``bleu``, ``exact_match``, ``accuracy`` (teacher-forced token
accuracy), a few ``examples``, and the baselines' chrF: ``identity_chrf`` (copying the
source) and, for the toy grammar, ``gloss_chrf`` (word-by-word lexicon).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from memzoo.metrics.text import chrf, translation_scores
from memzoo.models.seq2seq import Seq2Seq
from memzoo.models.targets import IGNORE_INDEX
from memzoo.tasks.translate import HeldOutTexts
from memzoo.train.optim import autocast_for
from memzoo.train.recipe import Recipe
from memzoo.train.seq2seq_config import TranslationConfig
from memzoo.train.seq2seq_config import build_seq2seq as build_from_section

NUM_EXAMPLES = 5  # held-out translations kept in the metrics, to show


def build_seq2seq(config: TranslationConfig, task) -> Seq2Seq:
    """The model ``config`` describes, sized for ``task``'s two vocabularies."""
    return build_from_section(config.model, task.input_vocab_size, task.output_vocab_size)


@torch.no_grad()
def evaluate_translation(
    model: Seq2Seq,
    task,
    held_out: HeldOutTexts,
    *,
    beam_size: int = 1,
    length_penalty: float = 1.0,
    batch_size: int = 256,
) -> dict[str, Any]:
    """chrF, BLEU and exact match of the decoded ``held_out`` sources; teacher-forced token
    accuracy; the first few translations (``examples``: source, output, reference)."""
    model.eval()
    device = next(model.parameters()).device
    data = held_out.data
    correct = scored = 0
    for start in range(0, len(data), batch_size):
        src = data.inputs[start : start + batch_size].to(device)
        tgt = data.targets[start : start + batch_size].to(device)
        predictions = model(src, tgt).argmax(-1)  # [B, T]
        mask = tgt != IGNORE_INDEX
        correct += int(((predictions == tgt) & mask).sum())
        scored += int(mask.sum())
    ids = model.translate_ids(
        data.inputs,
        beam_size=beam_size,
        length_penalty=length_penalty,
        max_len=task.seq_len,
        batch_size=batch_size,
    )
    hypotheses = [task.target_tokenizer.decode(row) for row in ids]
    examples = [
        {"source": s, "output": h, "reference": r}
        for s, h, r in zip(held_out.sources[:NUM_EXAMPLES], hypotheses, held_out.references)
    ]
    return {
        **translation_scores(hypotheses, held_out.references),
        "accuracy": correct / max(scored, 1),
        "examples": examples,
    }


def baseline_scores(task, held_out: HeldOutTexts) -> dict[str, float]:
    """chrF of copying each source unchanged and, for the toy grammar, of a word-by-word gloss."""
    out = {"identity_chrf": chrf(held_out.sources, held_out.references)}
    if task.grammar is not None:
        out["gloss_chrf"] = chrf([task.grammar.gloss(s) for s in held_out.sources], held_out.references)
    return out


class TranslationRecipe(Recipe):
    """Train the ``Seq2Seq`` a ``TranslationConfig`` describes on its ``translate`` task."""

    primary_metric, higher_is_better = "chrf", True

    def __init__(self, cfg: TranslationConfig):
        self.cfg, self.tc = cfg, cfg.train
        self.task = cfg.task.build()
        self.task_name = "translate"
        self.layers = cfg.model.encoder_layers + cfg.model.decoder_layers
        self.record_config = cfg.model_dump(mode="json")
        self.target = self.tc.target_chrf

    def prepare(self) -> None:
        tc = self.tc
        self.split = self.task.translation_split(tc.num_train, tc.num_validation, tc.num_test, tc.seed)

    def build_model(self, device: torch.device) -> Seq2Seq:
        self.device = device
        self.model = build_seq2seq(self.cfg, self.task).to(device)
        return self.model

    def state_bytes(self) -> int:
        return self.model.memory_bytes(self.task.seq_len, self.task.seq_len)

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.split.train) / self.tc.batch_size)

    def batches(self, epoch: int, generator: torch.Generator):
        train = self.split.train
        for rows in torch.randperm(len(train), generator=generator).split(self.tc.batch_size):
            yield train.inputs[rows], train.targets[rows]

    def train_step(self, batch) -> torch.Tensor:
        src, tgt = (t.to(self.device) for t in batch)
        with autocast_for(self.device):
            loss = self.model.loss(src, tgt, label_smoothing=self.tc.label_smoothing)
        if torch.isfinite(loss):  # a non-finite loss is reported by the lifecycle, not stepped
            loss.backward()
        return loss.detach()

    def _scores(self, held_out: HeldOutTexts) -> dict[str, Any]:
        return evaluate_translation(
            self.model,
            self.task,
            held_out,
            beam_size=self.tc.beam_size,
            length_penalty=self.tc.length_penalty,
        )

    def validate(self) -> dict[str, Any]:
        return self._scores(self.split.validation)

    def test(self) -> dict[str, Any]:
        return {**self._scores(self.split.test), **baseline_scores(self.task, self.split.test)}

    def checkpoint_meta(self) -> dict[str, Any]:
        return {
            "kind": "seq2seq",
            "src_vocab_size": self.task.input_vocab_size,
            "tgt_vocab_size": self.task.output_vocab_size,
            "seq_len": self.task.seq_len,
        }

    def save_artifacts(self, directory: Path) -> None:
        self.task.save_artifacts(directory)
