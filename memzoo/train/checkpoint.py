"""Checkpoints: model weights in safetensors plus the run config as JSON.

Loading never executes pickled code: safetensors holds tensors only, and the config is JSON.
Layout of a checkpoint directory::

    model.safetensors   the weights
    config.json         the RunConfig (and the data/model sizes needed to rebuild the model)
    train_state.pt      optional: optimiser/scheduler/RNG state for resuming (weights_only load)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from memzoo.errors import MemzooError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def save_checkpoint(directory: str | Path, model: torch.nn.Module, meta: dict[str, Any]) -> Path:
    """Write weights and ``meta`` (JSON: config, sizes, metrics) atomically enough for a
    crash between the two files to leave the previous pair loadable."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp_weights = directory / (WEIGHTS + ".tmp")
    save_file(state, str(tmp_weights))
    tmp_config = directory / (CONFIG + ".tmp")
    tmp_config.write_text(json.dumps(meta, indent=2, default=str))
    tmp_weights.replace(directory / WEIGHTS)
    tmp_config.replace(directory / CONFIG)
    return directory


def read_checkpoint(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights and the meta dict of a checkpoint directory (or of its model file)."""
    directory = Path(directory)
    if directory.is_file():
        directory = directory.parent
    weights, config = directory / WEIGHTS, directory / CONFIG
    if not weights.is_file() or not config.is_file():
        raise MemzooError(f"{str(directory)!r} is not a memzoo checkpoint (needs {WEIGHTS} and {CONFIG})")
    return read_weights(weights), read_meta(config)


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a ``MemzooError`` naming the file if it is damaged."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise MemzooError(f"{path}: not a readable safetensors file ({_first_line(err)})") from None


def read_meta(path: Path) -> dict[str, Any]:
    """A checkpoint's ``config.json`` as a dict; a ``MemzooError`` naming the file if it is
    not UTF-8 JSON holding an object."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MemzooError(f"{path}: not a readable JSON checkpoint config ({_first_line(err)})") from None
    if not isinstance(meta, dict):
        raise MemzooError(f"{path}: a checkpoint config must be a JSON object, got {type(meta).__name__}")
    return meta


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
