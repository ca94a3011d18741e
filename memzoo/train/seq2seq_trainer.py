"""Training a translation model: ``train_translation(config) -> TranslationResult``.

The loop of :mod:`memzoo.train.trainer`, for a :class:`memzoo.models.Seq2Seq`: teacher-forced
cross-entropy, AdamW (weight decay on matrices only), linear warm-up then cosine decay,
gradient clipping. After each epoch the held-out sources are decoded (greedy, or beam search
with ``train.beam_size``) and scored with chrF and BLEU against their reference texts; the
best epoch by chrF is checkpointed (weights in safetensors, both tokenizers as JSON beside
them), and training stops once chrF reaches ``train.target_chrf``.

The run is stored as a :class:`~memzoo.bench.record.RunRecord` (task ``translate``, layers =
encoder then decoder layer names); its metrics hold ``chrf``, ``bleu``, ``exact_match``,
``accuracy`` (teacher-forced token accuracy) and the baselines' chrF: ``identity_chrf``
(copying the source) and, for the toy grammar, ``gloss_chrf`` (word-by-word lexicon).
"""

from __future__ import annotations

import math
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from memzoo.bench.record import RunRecord, config_hash
from memzoo.models.seq2seq import Seq2Seq
from memzoo.models.seq2seq_decode import beam_search, greedy_decode
from memzoo.train.checkpoint import save_checkpoint
from memzoo.train.environment import git_revision, resolve_device
from memzoo.train.optim import apply_update, autocast_for, make_optimizer, warmup_cosine
from memzoo.train.progress import EpochProgress
from memzoo.train.seq2seq_config import TranslationConfig, validate_translation_config
from memzoo.train.text_metrics import chrf, translation_scores
from memzoo.train.trainer import RunResult

NUM_EXAMPLES = 5  # held-out translations kept in the metrics, to show


@dataclass
class TranslationResult(RunResult):
    """A ``RunResult`` whose model is a ``Seq2Seq``, with the task (it holds the tokenizers)."""

    task: Any = None


def build_seq2seq(config: TranslationConfig, task) -> Seq2Seq:
    """The model ``config`` describes, sized for ``task``'s two vocabularies."""
    m = config.model
    return Seq2Seq(
        src_vocab_size=task.input_vocab_size,
        tgt_vocab_size=task.output_vocab_size,
        d_model=m.d_model,
        encoder_layers=m.encoder_layers,
        decoder_layers=m.decoder_layers,
        layer_options=m.layer_options,
        num_heads=m.num_heads,
        score=m.score,
        bidirectional=m.bidirectional,
        mlp_ratio=m.mlp_ratio,
    )


def translate_ids(
    model: Seq2Seq,
    src: torch.Tensor,
    *,
    beam_size: int = 1,
    length_penalty: float = 1.0,
    max_len: int | None = None,
    batch_size: int = 256,
) -> list[list[int]]:
    """Decoded target ids for every row of ``src [N, S]``, in batches on the model's device."""
    device = next(model.parameters()).device
    out: list[list[int]] = []
    for start in range(0, len(src), batch_size):
        batch = src[start : start + batch_size].to(device)
        if beam_size == 1:
            out += greedy_decode(model, batch, max_len=max_len)
        else:
            out += beam_search(
                model, batch, beam_size=beam_size, max_len=max_len, length_penalty=length_penalty
            )
    return out


@torch.no_grad()
def evaluate_translation(
    model: Seq2Seq, task, split, *, beam_size: int = 1, length_penalty: float = 1.0, batch_size: int = 256
) -> dict[str, Any]:
    """chrF, BLEU and exact match of decoded held-out sources; teacher-forced token accuracy;
    the first few translations (``examples``: source, output, reference)."""
    model.eval()
    device = next(model.parameters()).device
    data = split.test
    correct = scored = 0
    for start in range(0, len(data), batch_size):
        src = data.inputs[start : start + batch_size].to(device)
        tgt = data.targets[start : start + batch_size].to(device)
        predictions = model(src, tgt).argmax(-1)  # [B, T]
        mask = tgt != -100
        correct += int(((predictions == tgt) & mask).sum())
        scored += int(mask.sum())
    ids = translate_ids(
        model,
        data.inputs,
        beam_size=beam_size,
        length_penalty=length_penalty,
        max_len=task.seq_len,
        batch_size=batch_size,
    )
    hypotheses = [task.target_tokenizer.decode(row) for row in ids]
    examples = [
        {"source": s, "output": h, "reference": r}
        for s, h, r in zip(split.test_sources[:NUM_EXAMPLES], hypotheses, split.test_references)
    ]
    return {
        **translation_scores(hypotheses, split.test_references),
        "accuracy": correct / max(scored, 1),
        "examples": examples,
    }


def baseline_scores(task, split) -> dict[str, float]:
    """chrF of copying each source unchanged and, for the toy grammar, of a word-by-word gloss."""
    out = {"identity_chrf": chrf(split.test_sources, split.test_references)}
    if task.grammar is not None:
        out["gloss_chrf"] = chrf([task.grammar.gloss(s) for s in split.test_sources], split.test_references)
    return out


def train_translation(
    config: TranslationConfig | dict,
    *,
    store=None,
    suite: str | None = None,
    run_id: str | None = None,
    progress: bool | None = None,
) -> TranslationResult:
    """Train the ``Seq2Seq`` that ``config`` describes on its ``translate`` task.

    Args:
        config: a ``TranslationConfig`` or a dict validated into one.
        store: a ``ResultsStore``; when given, the run and its curve are written as they go.
        suite: the benchmark suite this run belongs to (stored with it).
        run_id: defaults to a fresh random id.
        progress: show a progress bar; default: only when stderr is a terminal.
    """
    cfg = validate_translation_config(config)
    tc = cfg.train
    task = cfg.task.build()
    split = task.translation_split(tc.num_train, tc.num_test, tc.seed)  # a bad file fails before storing
    device = resolve_device(tc.device)
    config_dict = cfg.model_dump(mode="json")
    record = RunRecord(
        run_id=run_id or uuid.uuid4().hex[:12],
        config=config_dict,
        config_hash=config_hash(config_dict),
        status="running",
        task="translate",
        layers=cfg.model.encoder_layers + cfg.model.decoder_layers,
        device=str(device),
        git_rev=git_revision(),
        suite=suite,
        started_at=time.time(),
    )
    if store is not None:
        store.start_run(record)

    torch.manual_seed(tc.seed)
    model = build_seq2seq(cfg, task).to(device)
    record.params = model.num_params()
    record.state_bytes = model.memory_bytes(task.seq_len, task.seq_len)
    baselines = baseline_scores(task, split)
    num_train = len(split.train)
    optimizer = make_optimizer(model, tc.lr, tc.weight_decay)
    steps_per_epoch = math.ceil(num_train / tc.batch_size)
    scheduler = warmup_cosine(optimizer, tc.epochs * steps_per_epoch, tc.warmup_fraction)
    order_gen = torch.Generator().manual_seed(tc.seed)
    best, best_metrics = None, {}
    checkpoint_dir = Path(tc.out_dir) / record.run_id if tc.checkpoint else None
    show = progress if progress is not None else sys.stderr.isatty()
    start, step = time.perf_counter(), 0

    with EpochProgress(tc.epochs, steps_per_epoch, enabled=show, label=record.run_id) as bar:
        for epoch in range(1, tc.epochs + 1):
            model.train()
            loss_sum, batches = 0.0, 0
            for rows in torch.randperm(num_train, generator=order_gen).split(tc.batch_size):
                src, tgt = split.train.inputs[rows].to(device), split.train.targets[rows].to(device)
                with autocast_for(device):
                    loss = model.loss(src, tgt, label_smoothing=tc.label_smoothing)
                step += 1
                if not torch.isfinite(loss):
                    record.status = "diverged"
                    record.error = f"non-finite loss {loss.item()} at step {step} (epoch {epoch})"
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                apply_update(model, optimizer, scheduler, tc.grad_clip)
                loss_sum, batches = loss_sum + loss.item(), batches + 1
                bar.advance(loss.item())
            if record.status == "diverged":
                break
            metrics = evaluate_translation(
                model, task, split, beam_size=tc.beam_size, length_penalty=tc.length_penalty
            )
            point = {
                "epoch": epoch,
                "train_loss": loss_sum / max(batches, 1),
                "seconds": time.perf_counter() - start,
                **{k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            }
            record.curve.append(point)
            if store is not None:
                store.add_epoch(record.run_id, epoch, point)
            bar.epoch_done(epoch, metrics["chrf"])
            if best is None or metrics["chrf"] > best:
                best, best_metrics = metrics["chrf"], metrics
                if checkpoint_dir is not None:
                    save_checkpoint(checkpoint_dir, model, _meta(record, cfg, task, metrics, epoch))
                    task.save_artifacts(checkpoint_dir)
            if metrics["chrf"] >= tc.target_chrf:
                break
            if tc.max_seconds is not None and time.perf_counter() - start > tc.max_seconds:
                break

    record.wall_seconds = time.perf_counter() - start
    record.ended_at = time.time()
    record.metrics = {**best_metrics, **baselines, "epochs": len(record.curve)}
    if record.status == "running":
        record.status = "completed"
    if store is not None:
        store.write_record(record)
    return TranslationResult(record=record, model=model, checkpoint_dir=checkpoint_dir, task=task)


def _meta(record: RunRecord, cfg: TranslationConfig, task, metrics: dict, epoch: int) -> dict:
    return {
        "run_id": record.run_id,
        "kind": "seq2seq",
        "config": record.config,
        "src_vocab_size": task.input_vocab_size,
        "tgt_vocab_size": task.output_vocab_size,
        "seq_len": task.seq_len,
        "epoch": epoch,
        "metrics": metrics,
    }


def translation_config_from_run(cfg) -> TranslationConfig:
    """A ``TranslationConfig`` for a ``RunConfig`` whose task is ``translate`` (what
    ``memzoo train --task translate`` means): ``model.layers`` is the stack of the encoder and
    of the decoder alike; ``train.target_accuracy`` (a fraction) is the target chrF / 100."""
    m, t = cfg.model, cfg.train
    train_keys = (
        "epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "warmup_fraction",
        "grad_clip",
        "num_train",
        "num_test",
        "seed",
        "device",
        "max_seconds",
        "checkpoint",
        "out_dir",
    )
    return validate_translation_config(
        {
            "task": {"name": "translate", **cfg.task.params()},
            "model": {
                "encoder_layers": m.layers,
                "decoder_layers": m.layers,
                "d_model": m.d_model,
                "mlp_ratio": m.mlp_ratio,
                "layer_options": m.layer_options,
            },
            "train": {**{k: getattr(t, k) for k in train_keys}, "target_chrf": 100 * t.target_accuracy},
        }
    )


def train_from_run_config(cfg, *, store=None, suite=None, run_id=None, progress=None, model=None):
    """``memzoo.train`` for a ``RunConfig`` whose task is ``translate``: trains a ``Seq2Seq``
    (see :func:`translation_config_from_run`); the result is a ``RunResult``."""
    from memzoo.errors import ConfigError

    if model is not None:
        raise ConfigError("task 'translate' trains a fresh Seq2Seq; passing a model is not supported")
    return train_translation(
        translation_config_from_run(cfg), store=store, suite=suite, run_id=run_id, progress=progress
    )
