"""The ``real`` suite: memories on real sequences. Each real task x six memories x two seeds:
recurrent (``lstm``), full attention (``attention``, O(T) state), a 64-token ``sliding_window``,
the fast-weight ``deltanet`` and ``mlstm``, and a long-term memory, ``neural_memory`` (Titans),
on a 64-token sliding-window block (the ``longterm`` suite's way of giving a long-term layer a
local block). Every other model is two blocks of its layer, d_model 64.

The tasks (data shipped in the package or the ``real`` extra; nothing is downloaded):

- ``text_lm``: bytes of CPython's pydoc topics, 256-byte windows; bits per byte against byte
  n-gram and unigram baselines, and the long-context curve (0-4,096 bytes of context);
- ``needle_text``: a 3-digit pass key in 128 bytes of pydoc text (needle depth uniform),
  then the length x depth grid at 128-1,024 bytes: where each memory loses the needle;
- ``series_classify``: GunPoint (150 steps, 2 classes) and PigCVP averaged over runs of 8 steps
  (250 steps, 52 classes, 2 training series a class), against ROCKET and 1-NN DTW;
- ``chorales``: Bach chorales as 88-key quarter-note frames (64 a window), next-frame NLL
  against repeating the previous frame; every validation and test frame is scored.

Validation data come from training data (held-out documents, series, chorales), never test.
Run it with ``memzoo bench --suite real --workers 2`` (one torch thread per worker), then
``memzoo report``.
"""

from __future__ import annotations

from memzoo.sweep.suites.common import TaskRun, sweep
from memzoo.sweep.suites.registry import register_suite
from memzoo.train.config import RunConfig, validate_config

D_MODEL = 64
SEEDS = (0, 1)
WINDOW = 64  # tokens (sliding_window's default, stated): the local block of every windowed model
MODELS: dict[str, dict] = {
    "lstm": {"layers": ["lstm", "lstm"]},
    "attention": {"layers": ["attention", "attention"]},
    "sliding_window": {
        "layers": ["sliding_window", "sliding_window"],
        "layer_options": {"sliding_window": {"window": WINDOW}},
    },
    "deltanet": {"layers": ["deltanet", "deltanet"]},
    "mlstm": {"layers": ["mlstm", "mlstm"]},
    "neural_memory": {
        "layers": ["sliding_window", "neural_memory"],
        "layer_options": {"sliding_window": {"window": WINDOW}, "neural_memory": {"chunk_size": 16}},
    },
}
COMMON = {"checkpoint": False, "target_accuracy": 1.0, "batch_size": 32}

TEXT = TaskRun(
    # C = 192 is the longest context full attention is scored at (C + 64-byte span <= 256)
    task={"name": "text_lm", "corpus": "pydoc", "seq_len": 256, "context_lengths": [0, 64, 192, 1024, 4096]},
    # 4 validations of 64 tiles; num_test above the 275 test tiles: every test byte is scored
    train={
        **COMMON,
        "max_steps": 300,
        "num_train": 2_400,
        "num_validation": 64,
        "num_test": 1_000,
        "lr": 1e-2,
    },
)
NEEDLE = TaskRun(
    task={"name": "needle_text", "corpus": "pydoc", "seq_len": 128, "grid_examples": 32},
    train={
        **COMMON,
        "max_steps": 800,
        "num_train": 6_400,
        "num_validation": 128,
        "num_test": 128,
        "lr": 3e-3,
    },
)
GUNPOINT = TaskRun(
    task={"name": "series_classify", "dataset": "GunPoint"},
    train={
        **COMMON,
        "max_steps": 300,
        "num_train": 1_920,
        "num_validation": 100,
        "num_test": 1_000,
        "lr": 3e-3,
    },
)
PIGCVP = TaskRun(
    task={"name": "series_classify", "dataset": "PigCVP", "downsample": 8},
    train={
        **COMMON,
        "max_steps": 150,
        "num_train": 1_200,
        "num_validation": 100,
        "num_test": 1_000,
        "lr": 3e-3,
    },
)
CHORALES = TaskRun(
    task={"name": "chorales", "seq_len": 64, "frame": "quarter", "cache_dir": "results/cache"},
    train={
        **COMMON,
        "max_steps": 240,
        "num_train": 1_280,  # 40 steps an epoch: six validations pick the epoch before overfitting
        "num_validation": 10_000,
        "num_test": 10_000,
        "lr": 3e-3,
    },
)
TASKS = (TEXT, NEEDLE, GUNPOINT, PIGCVP, CHORALES)  # the slowest first: workers end together


def model_config(name: str) -> dict:
    """The ``model`` section of memory ``name`` (see :data:`MODELS`)."""
    return {"d_model": D_MODEL, **MODELS[name]}


def task_configs(setting: TaskRun) -> list[RunConfig]:
    """Every memory of :data:`MODELS` on ``setting``, each at the setting's one learning rate
    and both seeds."""
    base = [
        validate_config({"task": setting.task, "model": model_config(name), "train": setting.train})
        for name in MODELS
    ]
    return sweep(base, lrs=(setting.train["lr"],), seeds=SEEDS)


@register_suite("real")
def real() -> list[RunConfig]:
    """Each real task x six memories x two seeds (see the module): 60 runs, budgets in
    optimiser steps, batch 32, one learning rate per task.

    **Learning rates**, from a probe of the fast layers at seed 0 (one rate per task: a
    3-rate sweep would triple the suite's ~3,000 CPU seconds, see below):

    - text_lm, 300 steps: attention 2.825 bpb at lr 3e-3, 2.519 at 1e-2; lstm 2.179 at 1e-2
      (2.889 at 3e-3 after 200 steps): 1e-2.
    - needle_text, 600 steps, attention: answer-byte accuracy 0.526 at 3e-3, 0.286 at 1e-2: 3e-3.
    - GunPoint, 300 steps: lstm 0.753 at 3e-3, 0.700 at 1e-2; attention 0.927, 0.860: 3e-3.
      PigCVP takes the same rate (not probed).
    - chorales, 400 steps: lstm 8.79 nats at 3e-3, 8.95 at 1e-2; attention 9.16, 9.22: 3e-3.
      Validation picked epoch 1 or 2 of 4 (the 10,648 training frames are seen ~80 times in
      400 steps), hence 240 steps with a validation every 40.

    **Time.** CPU seconds of one run (seed 0, the whole run: data, training, evaluation,
    baselines), one torch thread, measured on this project's 2-core machine while other jobs
    kept it at a load of 2.5-7 (wall seconds were 1-3x these and mean little):

    - text_lm (300 steps): lstm 43, attention 60, sliding_window 64, mlstm 75, deltanet 106,
      neural_memory 106 (the two slow ones at lr 3e-3);
    - needle_text (800 steps): deltanet 74, mlstm 100, neural_memory 117; lstm 51 and attention
      52 at 600 steps (~66 at 800);
    - GunPoint (300 steps, or until validation is perfect): lstm 30, attention 32, deltanet 17
      (stopped early), neural_memory 38;
    - PigCVP (150 steps): lstm 26, attention 34, deltanet 51, neural_memory 50;
    - chorales (240 steps): lstm 12, neural_memory 21; the first chorales run of a process
      parses the corpus (~25 s more) unless ``results/cache`` already holds it.

    In all about 3,000 CPU seconds (the layers not listed estimated from per-step timings):
    an estimated ~26 minutes with ``--workers 2`` on two idle cores. With ``--workers 1`` a run gets two
    torch threads, which these small models barely use (on the loaded machine a 2-thread text_lm
    lstm run spent over 250 CPU seconds spinning where one thread needed 43)."""
    return [cfg for setting in TASKS for cfg in task_configs(setting)]
