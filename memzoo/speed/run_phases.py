"""``memzoo profile --whole-run``: where the wall time of a *whole* run goes.

``memzoo profile`` looks inside the training steps; a suite's wall time also goes to building
the data, validating after every epoch, scoring the test set and its evaluation sweeps (every
distance of a long-context task), writing checkpoints and starting up. This module runs the
run ``memzoo train`` would run from the same config, under :mod:`cProfile`, and splits its wall
time into those phases by the cumulative time of the functions that do each one:

- **data**: the recipe's ``prepare`` (generating or loading train/validation/test data);
- **training steps**: :func:`memzoo.train.run_loop.train_batch` (batch, forward, backward,
  optimiser step);
- **validation**: the recipe's ``validate`` (once per epoch, selection included);
- **test**: the recipe's ``test`` (the test set once, baselines, evaluation sweeps, the
  task's own metrics);
- **checkpoints**: ``save_checkpoint`` and ``save_resume_point``;
- **other**: the rest (model building, optimiser set-up, bookkeeping, the profiler's own cost).

Nothing is stored: no results database, no experiment tracker, and checkpoints (when the
config writes them) go to a temporary folder that is removed afterwards, so their cost is
measured without leaving files.
cProfile slows Python-level calls (not torch's kernels), so the shares are of a slightly
slower run; the run's metrics are those of the unprofiled run (the same steps, the same seeds).
"""

from __future__ import annotations

import cProfile
import pstats
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from memzoo.train import fit
from memzoo.train.config import RunConfig, validate_config

#: phase -> (function names, path fragment of their module) whose cumulative time it is
PHASE_FUNCTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "data": (("prepare",), "memzoo/train/recipe"),
    "training steps": (("train_batch",), "memzoo/train/run_loop"),
    "validation": (("validate",), "memzoo/train/recipe"),
    "test": (("test",), "memzoo/train/recipe"),
}
_CHECKPOINT_FUNCTIONS = ("save_checkpoint", "save_resume_point")


@dataclass
class RunPhases:
    """``seconds``: phase -> wall seconds (``other`` last); ``total``: the whole run's wall
    seconds; ``steps``, ``status`` and ``metrics``: what the run did."""

    seconds: dict[str, float]
    total: float
    steps: int | None
    status: str
    metrics: dict[str, Any]

    def table(self) -> str:
        """One line a phase: seconds and share of the total."""
        lines = [f"{'phase':<16} {'seconds':>9} {'share':>7}"]
        for phase, seconds in self.seconds.items():
            lines.append(f"{phase:<16} {seconds:9.2f} {100 * seconds / max(self.total, 1e-12):6.1f}%")
        lines.append(f"{'total':<16} {self.total:9.2f} {100.0:6.1f}%")
        return "\n".join(lines)


def _matching(stats: dict, names: tuple[str, ...], fragment: str) -> list[tuple]:
    return [key for key in stats if key[2] in names and fragment in key[0].replace("\\", "/")]


def phase_seconds(stats: dict) -> dict[str, float]:
    """Seconds of each phase from :class:`pstats.Stats` ``stats`` (its ``.stats`` dict).

    A recipe method that overrides another and calls it is counted once (the largest
    cumulative time of the phase's functions); a checkpoint written inside a resume point is
    counted once (``save_checkpoint``'s calls from ``save_resume_point`` are left out)."""
    out = {}
    for phase, (names, fragment) in PHASE_FUNCTIONS.items():
        out[phase] = max((stats[key][3] for key in _matching(stats, names, fragment)), default=0.0)
    checkpoints = 0.0
    for key in _matching(stats, _CHECKPOINT_FUNCTIONS, "memzoo/train/"):
        callers = stats[key][4]
        if key[2] == "save_resume_point":
            checkpoints += stats[key][3]
        else:  # save_checkpoint: only the calls from outside a resume point
            checkpoints += sum(c[3] for caller, c in callers.items() if caller[2] != "save_resume_point")
    out["checkpoints"] = checkpoints
    return out


def profile_run(config: RunConfig | dict) -> RunPhases:
    """Run ``config`` whole under cProfile (nothing stored; see the module) and split its
    wall time into phases."""
    cfg = validate_config(config)
    with tempfile.TemporaryDirectory(prefix="memzoo-profile-") as scratch:
        data = cfg.model_dump(mode="json")
        data["train"] = {**data["train"], "out_dir": scratch, "trackers": []}  # nothing logged
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        try:
            result = fit(data, progress=False)
        finally:
            profiler.disable()
        total = time.perf_counter() - start
    seconds = phase_seconds(pstats.Stats(profiler).stats)
    seconds["other"] = max(0.0, total - sum(seconds.values()))
    record = result.record
    return RunPhases(seconds, total, record.metrics.get("steps"), record.status, record.metrics)
