"""Autoregressive generation for a language model: the prompt in parallel form, then one
token at a time in the recurrent form.

Shape legend: B batch, P prompt tokens, N new tokens, V the lm head's outputs (<= vocabulary).

:func:`generate` = :func:`prefill` (the whole prompt in one call: SDPA, chunked scans, cuDNN)
then :func:`decode` (each new token fed back with the carried state: a KV-cache append for
attention, an O(1) state update for the recurrent and fast-weight layers). Because every
layer meets the whole == token-by-token contract, greedy generation equals re-running the
full model on the growing sequence and taking the arg-max each time, only cheaper.

Works for any :class:`~memzoo.models.SequenceModel` with ``head="lm"`` and token inputs
(duck-typed: anything with ``head_kind == "lm"``, an ``nn.Embedding`` ``embed``, a linear
``head`` and ``model(ids, state) -> (logits [B, T, V], state)``).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from memzoo.errors import ConfigError
from memzoo.layers._kv_cache import reserve_kv

_ID_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def check_generation(model, prompt, max_new_tokens, temperature, top_k, greedy, generator) -> None:
    """Raise a :class:`~memzoo.errors.ConfigError` (a ``ValueError``) naming the bad argument."""
    embed = getattr(model, "embed", None)
    if getattr(model, "head_kind", None) != "lm" or not isinstance(embed, nn.Embedding):
        raise ConfigError(
            "generate needs a language model: head='lm' with token inputs (vocab_size); "
            f"this model has head={getattr(model, 'head_kind', None)!r}"
            + ("" if isinstance(embed, nn.Embedding) else " and real-valued inputs (input_dim)")
        )
    if model.head.out_features > embed.num_embeddings:
        raise ConfigError(
            f"generate feeds sampled outputs back as inputs, but the head has {model.head.out_features} "
            f"outputs and the vocabulary only {embed.num_embeddings} tokens"
        )
    if not isinstance(prompt, torch.Tensor) or prompt.dim() != 2 or prompt.dtype not in _ID_DTYPES:
        shape = list(prompt.shape) if isinstance(prompt, torch.Tensor) else type(prompt).__name__
        raise ConfigError(f"prompt must be integer token ids of shape [batch, length], got {shape}")
    if prompt.shape[0] < 1 or prompt.shape[1] < 1:
        raise ConfigError(
            f"prompt needs at least one sequence of at least one token, got {list(prompt.shape)}"
        )
    low, high = int(prompt.min()), int(prompt.max())
    if low < 0 or high >= embed.num_embeddings:
        raise ConfigError(f"prompt ids must lie in [0, {embed.num_embeddings}), got ids in [{low}, {high}]")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ConfigError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, numbers.Real)
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise ConfigError(f"temperature must be a finite number > 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ConfigError(f"top_k must be None or an integer >= 1, got {top_k!r}")
    if not isinstance(greedy, bool):
        raise ConfigError(f"greedy must be true or false, got {greedy!r}")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise ConfigError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if generator.device.type != prompt.device.type:
            raise ConfigError(
                f"generator is on {generator.device}, the prompt on {prompt.device}: use one device"
            )


def next_token(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Token ids ``[B]`` (int64) chosen from the logits ``[B, V]`` of the last position.

    ``greedy``: the arg-max (``temperature``/``top_k`` play no part). Otherwise a sample from
    ``softmax(logits / temperature)`` restricted to the ``top_k`` largest logits (all V when
    None; ``top_k > V`` means all V), drawn with ``generator`` (the global RNG when None).
    """
    logits = logits.float()  # sampling in fp32 whatever the model's dtype
    if greedy:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        # keep exactly the k largest (scatter, not a threshold: ties cannot let more through)
        values, index = logits.topk(top_k, dim=-1)  # [B, k]
        logits = torch.full_like(logits, float("-inf")).scatter(-1, index, values)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def prefill(model, prompt: torch.Tensor):
    """Run the prompt ``[B, P]`` whole; returns ``(logits [B, V] of its last position, state)``."""
    logits, state = model(prompt)  # [B, P, V]
    return logits[:, -1], state


@torch.no_grad()
def decode(
    model,
    logits: torch.Tensor,
    state,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``max_new_tokens`` ids ``[B, N]`` continuing from ``logits [B, V]`` and ``state``.

    Each chosen token is fed back one at a time (the recurrent form). The model is not run
    after the last token: its logits would never be used. ``state`` itself is left as it is
    (layers never mutate a state a caller holds), so decoding twice from one prefill is fine.
    """
    tokens = []
    for i in range(max_new_tokens):
        token = next_token(logits, temperature=temperature, top_k=top_k, greedy=greedy, generator=generator)
        tokens.append(token)
        if i + 1 < max_new_tokens:
            step, state = model(token[:, None], state)  # [B, 1, V]
            logits = step[:, -1]
    if not tokens:
        return logits.new_zeros((logits.shape[0], 0), dtype=torch.long)
    return torch.stack(tokens, dim=1)


def generate(
    model,
    prompt: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The prompt ``[B, P]`` followed by ``max_new_tokens`` generated ids: ``[B, P + N]`` int64.

    Args:
        model: a language model (``head="lm"``, token inputs; see the module docstring).
        prompt: ``[B, P]`` integer ids in ``[0, vocab_size)``, P >= 1 (the first new token is
            predicted from the prompt's last position).
        max_new_tokens: N >= 0.
        temperature: > 0; divides the logits before sampling (< 1 sharper, > 1 flatter).
        top_k: sample among the k most likely tokens only (None: all).
        greedy: take the arg-max instead of sampling (``top_k=1`` gives the same).
        generator: a ``torch.Generator`` on the prompt's device, for reproducible samples.

    Runs without gradients and in the model's current train/eval mode (``generate`` never
    changes the module; call ``model.eval()`` first if it has dropout). Bad arguments raise
    :class:`~memzoo.errors.ConfigError`, a ``ValueError``.
    """
    check_generation(model, prompt, max_new_tokens, temperature, top_k, greedy, generator)
    prompt = prompt.long()
    if max_new_tokens == 0:
        return prompt.clone()
    with reserve_kv(max_new_tokens):  # the prompt's KV caches get room for every new token
        logits, state = prefill(model, prompt)
        new = decode(
            model,
            logits,
            state,
            max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            greedy=greedy,
            generator=generator,
        )
    return torch.cat((prompt, new), dim=1)
