"""Checkpoints: model weights in safetensors plus the run config as JSON.

Loading never executes pickled code: safetensors holds tensors only, and the config is JSON.
Layout of a checkpoint directory::

    model.safetensors   the weights
    config.json         the RunConfig (and the data/model sizes needed to rebuild the model)
    train_state.pt      optional: optimiser/scheduler/RNG state for resuming (weights_only load)
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from memzoo.errors import MemzooError, first_line
from memzoo.files import make_folder, write_file, write_file_with
from memzoo.layers.registry import imports_refused
from memzoo.parsing import load_json_text

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def save_checkpoint(directory: str | Path, model: torch.nn.Module, meta: dict[str, Any]) -> Path:
    """Write weights and ``meta`` (JSON: config, sizes, metrics) into ``directory``, each file
    atomically and never through a link (``memzoo.files.write_file``): a crash leaves each file
    whole, old or new."""
    directory = make_folder(directory, "checkpoint folder")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    write_file_with(directory / WEIGHTS, lambda fresh: save_file(state, str(fresh)))
    write_file(directory / CONFIG, json.dumps(meta, indent=2, default=str))
    return directory


def read_checkpoint(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights and the meta dict of a checkpoint directory (or of its model file)."""
    directory = Path(directory)
    if directory.is_file():
        directory = directory.parent
    weights, config = directory / WEIGHTS, directory / CONFIG
    for part in (weights, config):
        if part.is_symlink():
            raise MemzooError(
                f"{str(part)!r} is a symbolic link; memzoo reads a checkpoint only from its own files"
            )
    if not weights.is_file() or not config.is_file():
        raise MemzooError(f"{str(directory)!r} is not a memzoo checkpoint (needs {WEIGHTS} and {CONFIG})")
    return read_weights(weights), read_meta(config)


def code_consent(source: str | Path, trust_code: bool) -> AbstractContextManager:
    """The context to rebuild a model from checkpoint ``source`` in: with ``trust_code`` a layer
    named by import path (``"package.module:Class"``) is imported as usual; without it such a
    layer is refused, unless this process imported its module already (loading runs no code
    the checkpoint names without the caller's consent)."""
    if trust_code:
        return nullcontext()
    return imports_refused(f"checkpoint {str(source)!r}", "pass trust_code=True (CLI: --trust-code)")


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a ``MemzooError`` naming the file if it is damaged."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise MemzooError(f"{path}: not a readable safetensors file ({first_line(err)})") from None


def read_meta(path: Path) -> dict[str, Any]:
    """A checkpoint's ``config.json`` as a dict; a ``MemzooError`` naming the file if it is
    not UTF-8 JSON holding an object."""
    try:
        meta = load_json_text(path.read_text(encoding="utf-8"), path.name)
    except (ValueError, OSError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MemzooError(f"{path}: not a readable JSON checkpoint config ({first_line(err)})") from None
    if not isinstance(meta, dict):
        raise MemzooError(f"{path}: a checkpoint config must be a JSON object, got {type(meta).__name__}")
    return meta
