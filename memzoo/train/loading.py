"""``memzoo.load(path)``: a trained model back from its checkpoint directory.

Loading needs only the checkpoint folder: the model is rebuilt from the config's ``model``
section and the sizes in ``config.json`` (the task is not rebuilt, so a training file that is
gone or moved does not matter), and what prediction needs besides the weights (a tokenizer,
class names) lies beside them, written by the task's ``save_artifacts``.
"""

from __future__ import annotations

from pathlib import Path

from memzoo.errors import MemzooError
from memzoo.models import SequenceModel
from memzoo.train.checkpoint import code_consent, read_checkpoint
from memzoo.train.config import ModelConfig, validate_as
from memzoo.train.recipes.multitask import load_multitask
from memzoo.train.recipes.single_task import model_from_section


def load(path: str | Path, *, trust_code: bool = False) -> SequenceModel:
    """Rebuild the model saved in checkpoint directory ``path`` and load its weights (eval mode).

    A layer the checkpoint names by import path (``"package.module:Class"``) is imported only
    with ``trust_code=True``: importing runs that module's code, so it needs the caller's
    consent, as Hugging Face's ``trust_remote_code``. Without it such a checkpoint is refused
    with a ``MemzooError`` that says so (unless this process imported the module already).

    An RMT run's checkpoint (``model.rmt``) gives a
    ``memzoo.models.recurrent_memory.RecurrentMemoryModel``; a multitask run's checkpoint a
    ``memzoo.models.multi_head.MultiHeadModel``; a translation checkpoint is loaded with
    ``memzoo.train.seq2seq_loading.load_translator``. The run config and metrics are attached
    as ``model.checkpoint_meta``.
    """
    weights, meta = read_checkpoint(path)
    kind = meta.get("kind")
    if kind == "seq2seq":
        raise MemzooError(
            f"{path}: a translation checkpoint; load it with memzoo.train.seq2seq_loading.load_translator"
        )
    with code_consent(path, trust_code):
        try:
            if kind == "multitask":  # a shared trunk with a head per task
                return load_multitask(weights, meta)
            m = validate_as(ModelConfig, meta["config"]["model"])
            model = model_from_section(
                m,
                vocab_size=meta.get("input_vocab_size"),
                input_dim=meta.get("input_dim"),
                head=meta["head"],
                num_outputs=meta["output_vocab_size"],
                rmt_segment_len=_rmt_segment_len(m, weights),
            )
            model.load_state_dict(weights)
        except (KeyError, TypeError, RuntimeError) as err:
            raise MemzooError(
                f"{path}: config.json and model.safetensors do not describe one model ({err})"
            ) from None
    model.checkpoint_meta = meta
    return model.eval()


def _rmt_segment_len(m: ModelConfig, weights) -> int | None:
    """An RMT checkpoint's segment length: ``model.rmt.segment_len``, or when the run took it
    from the task (not rebuilt here) the rows of its position table, ``2M + L``."""
    if m.rmt is None:
        return None
    if m.rmt.segment_len is not None:
        return m.rmt.segment_len
    return int(weights["positions"].shape[0]) - 2 * m.rmt.num_memory
