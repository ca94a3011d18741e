"""Where a run executes: device choice and the code revision it ran."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import torch

from memzoo.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available; use 'cpu' or 'auto'")
    return torch.device(name)


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    """Short git revision of the memzoo source tree, or None outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
