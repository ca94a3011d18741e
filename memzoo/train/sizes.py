"""Sizes bounded before anything is allocated: a run that cannot fit in this machine's memory
is refused in one line naming the fields that make it large, instead of an allocation
traceback minutes (or terabytes) later.

The estimate is deliberately a lower bound (weights with their gradient and two Adam moments,
the data set as int64 ids, what a task builds from its own parameters (``Task.own_data_bytes``:
generated users, a fact map, synthesised audio), the test set at the longest evaluated length,
one batch's activations and logits), so a refused run could never have run here; runs near
the limit are left to the allocator.
"""

from __future__ import annotations

import os
from pathlib import Path

from memzoo.errors import ConfigError

_GIB = 2**30


def machine_memory() -> int | None:
    """Bytes of physical memory (``/proc/meminfo`` MemTotal, else ``os.sysconf``); None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def estimate_bytes(cfg) -> dict[str, tuple[int, list[str]]]:
    """Lower-bound bytes of a ``RunConfig``'s run by part: ``{part: (bytes, fields)}``."""
    task = cfg.task.build()
    seq_len = _size(task, "seq_len")
    input_dim = _size(task, "input_dim")
    vocab_in = 0 if input_dim else _size(task, "input_vocab_size")
    vocab_out = _size(task, "output_vocab_size")
    m, t = cfg.model, cfg.train
    layers = getattr(m, "layers", None) or [*m.encoder_layers, *m.decoder_layers]  # a Seq2Seq has two stacks
    depth, d = len(layers), m.d_model
    vocab_field = "task.vocab_size" if "vocab_size" in cfg.task.params() else "the task's vocabulary"
    params = (vocab_in + vocab_out + input_dim) * d + depth * (4 + 2 * m.mlp_ratio) * d * d
    examples = t.num_train + t.num_validation + t.num_test
    own_bytes, own_fields = task.own_data_bytes()
    longest = _longest_evaluated(task, seq_len)
    return {
        "task data": (own_bytes, own_fields),
        "evaluation": (
            16 * t.num_test * longest * max(1, input_dim),
            ["train.num_test", f"longest evaluated seq_len={longest}"],
        ),
        "parameters": (16 * params, ["model.d_model", vocab_field, "model.layers", "model.mlp_ratio"]),
        "data": (
            16 * examples * seq_len * max(1, input_dim),
            ["train.num_train", "train.num_validation", "train.num_test", "task.seq_len"],
        ),
        "activations": (
            4 * min(t.batch_size, t.num_train) * seq_len * (4 * depth * d + vocab_out),
            ["train.batch_size", "task.seq_len", "model.d_model", vocab_field],
        ),
    }


def _longest_evaluated(task, seq_len: int) -> int:
    """The longest ``seq_len`` the task is tested at (its evaluation sweep included)."""
    swept = [
        _size(variant, "seq_len") for sweep in task.evaluation_sweep().values() for variant in sweep.values()
    ]
    return max([seq_len, *swept])


def _size(task, name: str) -> int:
    """A size the task knows before its data is loaded (0 when it does not, e.g. a vocabulary
    built from a file)."""
    try:
        value = getattr(task, name, 0)
    except Exception:  # a size that needs the data: not part of this lower bound
        return 0
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def check_memory(cfg, available: int | None = None) -> None:
    """Raise ``ConfigError`` when ``cfg`` (a ``RunConfig`` or ``TranslationConfig``) needs more
    memory than this machine has."""
    available = machine_memory() if available is None else available
    if not available:
        return
    parts = estimate_bytes(cfg)
    total = sum(size for size, _ in parts.values())
    if total <= available:
        return
    part, (_, fields) = max(parts.items(), key=lambda item: item[1][0])
    values = _field_values(cfg, fields)
    raise ConfigError(
        f"this run needs at least {total / _GIB:.3g} GiB (its {part}: {values}) but the machine "
        f"has {available / _GIB:.3g} GiB; lower these sizes"
    )


def _field_values(cfg, fields: list[str]) -> str:
    data = cfg.model_dump(mode="json")
    task = cfg.task.build()
    shown = []
    for name in fields:
        if "=" in name:  # already "what=value"
            shown.append(name)
            continue
        section, _, key = name.partition(".")
        value = _size(task, key) if section == "task" else data.get(section, {}).get(key) if key else None
        if value is not None:
            shown.append(f"{name}={len(value) if isinstance(value, list) else value}")
    return ", ".join(shown)
