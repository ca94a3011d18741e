"""Resumable runs: the state saved after every epoch (``memzoo.train.run_kinds.resume_run``
goes on from it).

After each epoch the trainer writes ``<out_dir>/<run_id>/last/`` (beside the *best*
checkpoint in ``<out_dir>/<run_id>/``, which stays as it was)::

    last/model.safetensors   the weights after that epoch
    last/config.json         run config and sizes (as for the best checkpoint)
    last/train_state.pt      optimiser, scheduler, torch RNG and data-order generator states,
                             epoch, step count, elapsed seconds, best metric, curve so far

``train_state.pt`` holds tensors and plain containers only and is read with
``torch.load(weights_only=True)``: loading never executes pickled code. The folder is written
in a fresh ``last.tmp-<random>/`` and then swapped in, so a crash while saving leaves the
previous epoch's folder (``last/``, or ``last.old/`` during the swap) whole.

Restoring every piece of state makes a resumed CPU run reach the same weights, losses and
metrics as a run that was never interrupted.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from memzoo.errors import MemzooError, first_line
from memzoo.files import fresh_folder, os_errors_named, remove_tree, write_file_with
from memzoo.train.checkpoint import CONFIG, read_checkpoint, save_checkpoint

LAST = "last"
TRAIN_STATE = "train_state.pt"
FORMAT = 1


@dataclass
class ResumePoint:
    """Where a run stood at the end of an epoch (besides the model and optimiser state)."""

    epoch: int = 0
    step: int = 0
    elapsed: float = 0.0  # seconds of training so far (the wall-time budget counts them)
    started_at: float | None = None
    best_value: float | None = None
    best_metrics: dict[str, Any] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False  # the run stopped on its own (target reached, budget spent, out of time)
    best_epoch: int | None = None  # the epoch whose weights are the selected checkpoint
    truncated: bool = False  # stopped by train.max_seconds
    states: dict[str, Any] = field(default_factory=dict)  # optimiser, scheduler, RNGs
    source: str = ""  # the folder it was read from (named in errors)

    def restore(self, model, optimizer, scheduler, order_gen: torch.Generator, weights) -> None:
        """Put the model, optimiser, scheduler and both random generators back in this state.

        Weights or states that do not fit the model built from the config (a tampered or
        foreign checkpoint) are a ``MemzooError`` naming the folder."""
        part = "model.safetensors"
        try:
            model.load_state_dict(weights)
            part = TRAIN_STATE
            optimizer.load_state_dict(self.states["optimizer"])
            scheduler.load_state_dict(self.states["scheduler"])
            order_gen.set_state(self.states["order_rng"])
            torch.set_rng_state(self.states["torch_rng"])
            if self.states.get("cuda_rng") and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(self.states["cuda_rng"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
            reason = first_line(err, 200)
            raise MemzooError(
                f"{self.source or 'checkpoint'}/{part} does not fit the model of its config ({reason}); "
                "cannot resume"
            ) from None


def _plain(value: Any) -> Any:
    """``value`` as JSON types (metrics may hold numpy/torch scalars): safe for weights_only."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def save_resume_point(
    run_dir: Path, model, meta: dict, point: ResumePoint, optimizer, scheduler, order_gen: torch.Generator
) -> Path:
    """Write ``run_dir/last/`` (weights, meta, train state) for ``point``; return that folder."""
    run_dir = Path(run_dir)
    last, old = run_dir / LAST, run_dir / (LAST + ".old")
    for stale in run_dir.glob(LAST + ".tmp*"):  # left by a save that crashed
        remove_tree(stale)
    tmp = fresh_folder(run_dir, LAST + ".tmp-")
    save_checkpoint(tmp, model, meta)
    state = {
        "format": FORMAT,
        "epoch": point.epoch,
        "step": point.step,
        "elapsed": point.elapsed,
        "started_at": point.started_at,
        "best_value": point.best_value,
        "best_metrics": _plain(point.best_metrics),
        "curve": _plain(point.curve),
        "done": point.done,
        "best_epoch": point.best_epoch,
        "truncated": point.truncated,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "order_rng": order_gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    write_file_with(tmp / TRAIN_STATE, lambda fresh: torch.save(state, fresh))
    with os_errors_named(run_dir, "swap the resume state in"):
        if last.is_symlink() or last.exists():
            remove_tree(old)
            last.replace(old)  # renames a link itself, never its target
        tmp.replace(last)
        remove_tree(old)
    return last


def load_resume_point(path: str | Path) -> tuple[ResumePoint, dict[str, torch.Tensor]]:
    """The resume point and weights saved in ``path`` (a run folder or its ``last/``)."""
    folder = last_folder(Path(path))
    weights, meta = read_checkpoint(folder)
    state = _read_train_state(folder / TRAIN_STATE)
    if state.get("format") != FORMAT or state.get("epoch") != meta.get("epoch"):
        raise MemzooError(
            f"{str(folder)!r}: train state and weights disagree (epoch "
            f"{state.get('epoch')} vs {meta.get('epoch')}); cannot resume"
        )
    keys = ("optimizer", "scheduler", "order_rng", "torch_rng", "cuda_rng")
    _check_state(state, folder / TRAIN_STATE)
    point = ResumePoint(
        epoch=state["epoch"],
        step=state["step"],
        elapsed=state["elapsed"],
        started_at=state["started_at"],
        best_value=state["best_value"],
        best_metrics=state["best_metrics"],
        curve=state["curve"],
        done=state["done"],
        best_epoch=state.get("best_epoch"),
        truncated=bool(state.get("truncated", False)),
        states={k: state[k] for k in keys},
        source=str(folder),
    )
    return point, weights


def _read_train_state(path: Path) -> dict[str, Any]:
    """``train_state.pt`` read safely (``weights_only``): damage is one line naming the file.

    The reason given is the file's, never torch's advice to load it unsafely."""
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols; we refuse below
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError (zip), EOFError, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "weights_only" in str(err) or "Unsupported" in reason or "GLOBAL" in reason:
            reason = "holds something other than tensors and plain containers"
        raise MemzooError(
            f"{path}: not a readable memzoo train state ({reason[:200]}); cannot resume"
        ) from None
    if not isinstance(state, dict):
        raise MemzooError(f"{path}: not a memzoo train state (a {type(state).__name__}); cannot resume")
    return state


_STATE_TYPES = {
    "epoch": int,
    "step": int,
    "elapsed": (int, float),
    "best_metrics": dict,
    "curve": list,
    "done": bool,
    "optimizer": dict,
    "scheduler": dict,
    "order_rng": torch.Tensor,
    "torch_rng": torch.Tensor,
    "cuda_rng": list,
}


def _check_state(state: dict[str, Any], path: Path) -> None:
    for key, kind in _STATE_TYPES.items():
        if not isinstance(state.get(key), kind):
            raise MemzooError(
                f"{path}: train state field {key!r} is missing or malformed "
                f"({type(state.get(key)).__name__}); cannot resume"
            )
    if state["epoch"] < 0 or state["step"] < 0:
        raise MemzooError(f"{path}: train state has a negative epoch or step; cannot resume")


def last_folder(path: Path) -> Path:
    """The folder holding a resumable state: ``path`` itself, its ``last/`` or ``last.old/``."""
    for candidate in (path, path / LAST, path / (LAST + ".old")):
        if (candidate / TRAIN_STATE).is_file() and (candidate / CONFIG).is_file():
            return candidate
    raise MemzooError(
        f"{str(path)!r} holds no resumable checkpoint ({LAST}/{TRAIN_STATE}); "
        "runs save one after each epoch unless train.checkpoint=false"
    )
