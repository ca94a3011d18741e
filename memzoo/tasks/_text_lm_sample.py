"""A generated sample of ``text_lm``: what a trained byte model writes after a real prompt.

Shape legend: P prompt bytes, N new bytes.

The prompt is fixed by the test documents alone, so every model of a corpus continues the same
text: the first test document (name order) of at least ``2 P`` bytes, read from the first line
start at or after its middle (its middle itself when no line starts there), ``P`` bytes. The
continuation is **greedy** (arg-max at every byte): deterministic, so a stored sample is what
the model itself finds most likely, and rerunning a run gives the same text. Small models
often loop under greedy decoding; that is part of what the sample shows.

The model reads the prompt whole and then one byte at a time with its state carried
(:func:`memzoo.models.generate.generate`), which equals re-reading the growing text for every
memory layer (the whole == token-by-token contract). ``P + N`` never exceeds the training
window (the caller clips it), so full attention is never asked for a position it never saw.
"""

from __future__ import annotations

from typing import Any

import torch

from memzoo.errors import ConfigError
from memzoo.models.generate import generate


def sample_prompt(documents: list[torch.Tensor], prompt_bytes: int) -> torch.Tensor | None:
    """``LongTensor [P]``: the prompt taken from ``documents`` (byte tensors, name order; see
    the module), or None when no document holds ``2 P`` bytes."""
    for doc in documents:
        if len(doc) < 2 * prompt_bytes:
            continue
        middle = len(doc) // 2  # >= prompt_bytes >= 1
        # a line starts at p when the byte before p is a newline: search from middle - 1
        newlines = (doc[middle - 1 : len(doc) - prompt_bytes - 1] == ord("\n")).nonzero()
        start = middle + int(newlines[0]) if len(newlines) else middle
        return doc[start : start + prompt_bytes]
    return None


def as_text(ids: torch.Tensor) -> str:
    """The bytes ``ids`` decoded as UTF-8; a byte sequence that is not UTF-8 becomes U+FFFD."""
    return bytes(int(i) for i in ids.tolist()).decode("utf-8", errors="replace")


def sample_metrics(
    model: torch.nn.Module, documents: list[torch.Tensor], prompt_bytes: int, new_bytes: int
) -> dict[str, Any]:
    """``{"sample_prompt": str, "sample_text": str}``: the prompt and the model's greedy
    continuation of ``new_bytes`` bytes; ``{"sample_reason": str}`` instead when there is no
    prompt (no document long enough) or the model cannot generate (e.g. not token-in/lm-out).
    Nothing when ``new_bytes`` is 0. Runs in eval mode; the model's training mode is restored."""
    if new_bytes == 0 or prompt_bytes == 0:
        return {}
    prompt = sample_prompt(documents, prompt_bytes)
    if prompt is None:
        return {"sample_reason": f"no test document holds {2 * prompt_bytes} bytes"}
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        ids = generate(model, prompt[None].to(device), new_bytes, greedy=True)  # [1, P + N]
    except ConfigError as err:
        return {"sample_reason": f"cannot generate: {err}"}
    finally:
        model.train(was_training)
    return {"sample_prompt": as_text(prompt), "sample_text": as_text(ids[0, prompt_bytes:].cpu())}
