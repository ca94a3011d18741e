"""A memzoo run's checkpoint folder -> a Hugging Face model folder (config + safetensors).

:func:`save_hf` rebuilds the run's language model from its checkpoint (``model.safetensors``
and ``config.json``, see :mod:`memzoo.train.checkpoint`) as a
:class:`~memzoo.integrations.hf_model.MemzooForCausalLM` and writes it with ``transformers``'
``save_pretrained``. The folder it writes::

    config.json              MemzooConfig (model_type "memzoo")
    generation_config.json
    model.safetensors        the same tensors, under "model." (the wrapped SequenceModel)
    memzoo_export.json       where it came from: run id, epoch, validation metrics, task
    memzoo_tokenizer.json    the run's tokenizer, when its checkpoint folder has one

Reload it with ``AutoModelForCausalLM.from_pretrained(folder)`` after ``import memzoo``, or
with :func:`memzoo.integrations.lm_eval_model.MemzooLM` for lm-eval.

Refused with a one-line :class:`~memzoo.errors.MemzooError`: a run whose head is not ``lm``
(a classifier, a regressor), real-valued inputs, a multitask or translation run, a layer named
by import path (the export runs no remote code), and a destination that is a symbolic link or
a non-empty folder other than a previous export (which is replaced as a whole).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from memzoo.errors import MemzooError
from memzoo.files import check_writable_folder, fresh_folder, refuse_links, remove_tree, write_file
from memzoo.integrations.hf_config import MemzooConfig, check_registered_layers
from memzoo.integrations.hf_model import MemzooForCausalLM
from memzoo.train.checkpoint import read_checkpoint

EXPORT_MARKER = "memzoo_export.json"
EXPORT_FORMAT = "memzoo.hf_export.v1"
TOKENIZER_IN_CHECKPOINT = "tokenizer.json"  # what a text task's save_artifacts writes
TOKENIZER_IN_EXPORT = "memzoo_tokenizer.json"  # not "tokenizer.json": AutoTokenizer would misread it
EXPORT_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    EXPORT_MARKER,
    TOKENIZER_IN_EXPORT,
}


def config_from_meta(meta: dict[str, Any], source: str) -> MemzooConfig:
    """The :class:`MemzooConfig` of a checkpoint's ``config.json`` (``meta``); a
    ``MemzooError`` naming ``source`` for anything but a single-task token language model."""
    kind = meta.get("kind")
    if kind in ("multitask", "seq2seq"):
        raise MemzooError(f"{source}: a {kind} checkpoint; only a language model (head 'lm') is exportable")
    head = meta.get("head")
    if head != "lm":
        raise MemzooError(
            f"{source}: the run's head is {head!r}; only a language model (head 'lm') is exportable "
            "as a transformers causal LM"
        )
    if meta.get("input_dim"):
        raise MemzooError(
            f"{source}: the model reads real-valued inputs; only token-id models are exportable"
        )
    try:
        section = dict(meta["config"]["model"])
        task = meta["config"].get("task", {})
        vocab, outputs = meta["input_vocab_size"], meta["output_vocab_size"]
    except (KeyError, TypeError, AttributeError):
        raise MemzooError(f"{source}: config.json lacks the model section or sizes of a memzoo run") from None
    check_registered_layers(section.get("layers"), source)  # before anything could import a path
    length = task.get("seq_len") if isinstance(task, dict) else None
    return MemzooConfig(
        **section,
        vocab_size=vocab,
        num_outputs=outputs,
        train_length=length if isinstance(length, int) and not isinstance(length, bool) else None,
    )


def hf_model_from_checkpoint(checkpoint_dir: str | Path) -> tuple[MemzooForCausalLM, dict[str, Any]]:
    """``(model in eval mode, the checkpoint's meta)`` for a memzoo run's checkpoint folder."""
    weights, meta = read_checkpoint(checkpoint_dir)
    config = config_from_meta(meta, str(checkpoint_dir))
    model = MemzooForCausalLM(config)
    try:
        model.model.load_state_dict(weights)
    except RuntimeError as err:
        raise MemzooError(
            f"{checkpoint_dir}: config.json and model.safetensors do not describe one model ({err})"
        ) from None
    return model.eval(), meta


def check_export_destination(out_dir: str | Path) -> Path:
    """``out_dir`` once it may receive an export: missing, empty, or a previous export (no
    link at it or inside it); its parent folder is created and proven writable."""
    out = Path(out_dir)
    refuse_links(out, "export folder")
    if out.exists():
        if not out.is_dir():
            raise MemzooError(f"export folder {str(out)!r} is a file; give a folder to write")
        names = {p.name for p in out.iterdir()}
        if names and (EXPORT_MARKER not in names or not names <= EXPORT_FILES):
            raise MemzooError(
                f"export folder {str(out)!r} is not empty and not a previous memzoo export; "
                "give a new or empty folder"
            )
    check_writable_folder(out.absolute().parent, "export folder's parent")
    return out


def save_hf(checkpoint_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the language model of memzoo checkpoint folder ``checkpoint_dir`` as a Hugging
    Face folder ``out_dir`` (see the module docstring); returns ``out_dir``.

    The folder is written whole into a fresh folder beside ``out_dir`` and renamed into place;
    a previous export there is replaced only once the new one is complete."""
    out = check_export_destination(out_dir)
    model, meta = hf_model_from_checkpoint(checkpoint_dir)
    source = Path(checkpoint_dir)
    source = source.parent if source.is_file() else source
    fresh = fresh_folder(out.absolute().parent, f".{out.name[:64]}.tmp-")
    try:
        model.save_pretrained(str(fresh))
        provenance = {
            "format": EXPORT_FORMAT,
            "source": str(source),
            "run_id": meta.get("run_id"),
            "epoch": meta.get("epoch"),
            "validation_metrics": meta.get("metrics"),
            "task": meta.get("config", {}).get("task"),
        }
        write_file(fresh / EXPORT_MARKER, json.dumps(provenance, indent=2, default=str))
        tokenizer = source / TOKENIZER_IN_CHECKPOINT
        if tokenizer.is_file() and not tokenizer.is_symlink():
            write_file(fresh / TOKENIZER_IN_EXPORT, tokenizer.read_bytes())
        _swap_into_place(fresh, out)
    finally:
        remove_tree(fresh)
    return out


def _swap_into_place(fresh: Path, out: Path) -> None:
    """Rename ``fresh`` to ``out``; a previous export at ``out`` is moved aside first and
    removed once the new one is in place."""
    old = None
    if out.exists():
        old = fresh.parent / f"{fresh.name}.old"
        os.replace(out, old)
    os.replace(fresh, out)
    if old is not None:
        remove_tree(old)
