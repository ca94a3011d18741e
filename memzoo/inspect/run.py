"""Inspect a model, a checkpoint or a stored run: every curve and layer view in one dict.

An *inspection* is JSON-able::

    {"layout": {...}, "seq_len": T, "state_bytes": bytes one sequence holds after T tokens,
     "samples": probes per point, "seed": probe seed,
     "curves": {"forgetting" | "interference" | "capacity" | "overwrite": {curve}},
     "layers": {"gates": {...}, "attention": {...}, "no_view": [...]}}

(see :mod:`memzoo.inspect.curves` and :mod:`memzoo.inspect.gates`). A stored run keeps its
inspection in its metrics under ``"inspection"``, computed from the selected checkpoint on
probes drawn with their own seed (never the training, validation or test data).
"""

from __future__ import annotations

from pathlib import Path

import torch

from memzoo import tasks
from memzoo.errors import MemzooError
from memzoo.inspect.curves import CURVES, recall_curve
from memzoo.inspect.gates import inspect_layers
from memzoo.inspect.probes import RecallLayout, capacity_probe, layout_for_task
from memzoo.models import SegmentRunner
from memzoo.results.store import ResultsStore
from memzoo.train.loading import load
from memzoo.train.run_ids import run_folder

INSPECTION = "inspection"  # the metrics key a stored run keeps its inspection under
PROBE_SEED = 7_000_003  # probes never share a generator seed with a run's data


def inspect_model(
    model,
    layout: RecallLayout,
    *,
    samples: int = 128,
    seed: int = PROBE_SEED,
    device=None,
    segment_len: int | None = None,
    curves: tuple[str, ...] = tuple(CURVES),
) -> dict:
    """The inspection of ``model`` (a SequenceModel, or any module ``[B, T] -> (logits, state)``)
    on probes of ``layout``: ``samples`` probe sequences per curve point.

    With ``segment_len`` the curves read each probe segment by segment (memory carried), as
    a run trained with ``train.segment_len`` is evaluated; the layer views read it whole."""
    unknown = sorted(set(curves) - set(CURVES))
    if unknown:
        raise MemzooError(f"inspect: unknown curve(s) {unknown}; choose from {', '.join(CURVES)}")
    reader = SegmentRunner(model, segment_len) if segment_len else model
    out = {
        "layout": layout.to_dict(),
        "seq_len": layout.seq_len,
        "samples": samples,
        "seed": seed,
        "curves": {
            name: recall_curve(reader, layout, name, samples=samples, seed=seed + i, device=device)
            for i, name in enumerate(curves)
            if name != "overwrite" or layout.num_pairs >= 2
        },
    }
    if hasattr(model, "state_size"):
        out["state_bytes"] = int(model.state_size(layout.seq_len))
    # the trained layout (K pairs, each queried once) is what the layer views read
    (at_k,) = capacity_probe(
        layout, min(samples, 64), torch.Generator().manual_seed(seed - 1), [layout.num_pairs]
    )
    out["layers"] = inspect_layers(model, at_k, device)
    return out


def inspect_checkpoint(path: str | Path, *, trust_code: bool = False, **options) -> dict:
    """The inspection of the model saved in checkpoint folder ``path``, probed in the layout
    of the task it was trained on (its config's ``task``)."""
    model = load(path, trust_code=trust_code)
    config = model.checkpoint_meta["config"]
    task = tasks.build(config["task"]["name"], **{k: v for k, v in config["task"].items() if k != "name"})
    segment_len = config.get("train", {}).get("segment_len")
    return inspect_model(model, layout_for_task(task), segment_len=segment_len, **options)


def inspect_stored_run(store: ResultsStore, run_id: str, *, trust_code: bool = False, **options) -> dict:
    """Inspect stored run ``run_id`` from its checkpoint (``<train.out_dir>/<run_id>``) and
    keep the inspection in its metrics (replacing an earlier one); returns it."""
    record = store.get(run_id)
    if record.status != "completed":
        raise MemzooError(
            f"inspect: run {run_id} is {record.status}; only a completed run has a selected model"
        )
    folder = run_folder(record.config.get("train", {}).get("out_dir", "results/runs"), run_id)
    if not (folder / "config.json").is_file():
        raise MemzooError(
            f"inspect: run {run_id} has no checkpoint at {folder} (trained with train.checkpoint=false, "
            "or the folder moved); pass --checkpoint DIR"
        )
    inspection = inspect_checkpoint(folder, trust_code=trust_code, **options)
    store.set_metric(run_id, INSPECTION, inspection)
    return inspection
