"""``memzoo.load(path)``: a trained model back from its checkpoint directory."""

from __future__ import annotations

from pathlib import Path

from memzoo.models import SequenceModel
from memzoo.train.checkpoint import read_checkpoint
from memzoo.train.config import validate_config


def load(path: str | Path) -> SequenceModel:
    """Rebuild the model saved in checkpoint directory ``path`` and load its weights (eval mode).

    A multitask run's checkpoint gives a ``memzoo.models.multi_head.MultiHeadModel``.

    The run config and metrics are attached as ``model.checkpoint_meta``.
    """
    weights, meta = read_checkpoint(path)
    if meta.get("kind") == "multitask":  # a shared trunk with a head per task
        from memzoo.train.multitask import load_multitask

        return load_multitask(weights, meta)
    cfg = validate_config(meta["config"])
    model = SequenceModel(
        layers=cfg.model.layers,
        d_model=cfg.model.d_model,
        vocab_size=meta.get("input_vocab_size"),
        input_dim=meta.get("input_dim"),
        head=meta["head"],
        num_outputs=meta["output_vocab_size"],
        layer_options=cfg.model.layer_options,
        mlp_ratio=cfg.model.mlp_ratio,
    )
    model.load_state_dict(weights)
    model.checkpoint_meta = meta
    return model.eval()
