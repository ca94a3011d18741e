"""Generation speed per layer: tokens/s of the decode phase after a long prompt.

Shape legend: B batch_size, P prompt_len, N new_tokens, D d_model, V vocabulary.

For each layer a one-block language model (``SequenceModel(layers=[name])``) runs a prompt
of P random tokens in parallel form (prefill), then generates N tokens greedily one at a
time (decode), through the same :func:`memzoo.models.generate.prefill` /
:func:`~memzoo.models.generate.decode` as ``SequenceModel.generate``. The decode phase is
where the memory trade-off shows: attention reads a KV cache that grows with P + N,
recurrent and fast-weight layers update a state of constant size.

Models are built first, then timed in alternation, one repeat of every layer per round, so
that load on a shared machine hits all layers alike; each row reports the median over the
repeats. Standalone: it needs nothing from the rest of the speed benchmark.
"""

from __future__ import annotations

import statistics
import time

import torch

from memzoo.errors import ConfigError
from memzoo.layers._checks import check_int
from memzoo.layers._kv_cache import reserve_kv
from memzoo.models.generate import decode, prefill
from memzoo.models.sequence_model import SequenceModel
from memzoo.speed.timing import sync


def _timed_generation(model, prompt: torch.Tensor, new_tokens: int, device: torch.device):
    """Seconds of (prefill, decode) for one greedy generation of ``new_tokens``."""
    sync(device)
    with reserve_kv(new_tokens):  # as ``generate``: the prompt's cache has room for the decode
        start = time.perf_counter()
        logits, state = prefill(model, prompt)
        sync(device)
        middle = time.perf_counter()
        decode(model, logits, state, new_tokens, greedy=True)
        sync(device)
    return middle - start, time.perf_counter() - middle


def _check_sizes(
    prompt_len: int, new_tokens: int, batch_size: int, repeats: int, vocab_size: int, warmup: int
) -> None:
    """Raise ``ConfigError`` unless the sizes are integers >= 1 and ``warmup`` an integer >= 0."""
    for name, value in (
        ("prompt_len", prompt_len),
        ("new_tokens", new_tokens),
        ("batch_size", batch_size),
        ("repeats", repeats),
        ("vocab_size", vocab_size),
    ):
        check_int(None, name, value)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ConfigError(f"warmup must be an integer >= 0, got {warmup!r}")


def _one_block_models(
    layers: list[str],
    d_model: int,
    vocab_size: int,
    layer_options: dict[str, dict],
    seed: int,
    device: torch.device,
) -> dict[str, SequenceModel]:
    """Per layer name, in the order of ``layers``, a one-block ``SequenceModel`` in eval mode on
    ``device``, its weights seeded with ``seed``."""
    models = {}
    for name in layers:
        torch.manual_seed(seed)
        options = {name: layer_options[name]} if name in layer_options else None
        model = SequenceModel(layers=[name], d_model=d_model, vocab_size=vocab_size, layer_options=options)
        models[name] = model.to(device).eval()
    return models


def _warm_up(
    models: dict[str, SequenceModel], prompt: torch.Tensor, warmup: int, device: torch.device
) -> None:
    """Run ``warmup`` untimed generations of 2 new tokens after ``prompt`` on every model."""
    for model in models.values():
        for _ in range(warmup):
            _timed_generation(model, prompt, 2, device)


def _timed_rounds(
    models: dict[str, SequenceModel],
    prompt: torch.Tensor,
    new_tokens: int,
    repeats: int,
    device: torch.device,
) -> dict[str, list[tuple[float, float]]]:
    """Per layer name, the (prefill, decode) seconds of each of ``repeats`` generations.

    Each round times one generation of every model in turn, so that load on a shared machine
    hits all layers alike.
    """
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():  # alternate layers within each round
            times[name].append(_timed_generation(model, prompt, new_tokens, device))
    return times


def _generation_row(
    name: str,
    model: SequenceModel,
    times: list[tuple[float, float]],
    prompt_len: int,
    new_tokens: int,
    batch_size: int,
    repeats: int,
    device: torch.device,
) -> dict:
    """The row of one layer (see :func:`generation_rows`) from its (prefill, decode) seconds of
    every repeat: tokens/s of the median decode and prefill seconds."""
    prefill_s = statistics.median(t[0] for t in times)
    decode_s = statistics.median(t[1] for t in times)
    return {
        "layer": name,
        "mode": "generate",
        "seq_len": prompt_len,
        "tokens_per_s": batch_size * new_tokens / decode_s,
        "state_bytes": model.state_size(prompt_len + new_tokens),
        "extra": {
            "new_tokens": new_tokens,
            "batch_size": batch_size,
            "prefill_tokens_per_s": batch_size * prompt_len / prefill_s,
            "decode_seconds": decode_s,
            "prefill_seconds": prefill_s,
            "repeats": repeats,
            "device": str(device),
        },
    }


def generation_rows(
    layers: list[str],
    d_model: int,
    prompt_len: int = 1024,
    new_tokens: int = 256,
    batch_size: int = 1,
    repeats: int = 3,
    device: str | torch.device = "cpu",
    *,
    vocab_size: int = 256,
    layer_options: dict[str, dict] | None = None,
    warmup: int = 1,
    seed: int = 0,
) -> list[dict]:
    """One row per layer: decode tokens/s after a ``prompt_len`` prompt, median of ``repeats``.

    Args:
        layers: registered layer names (unknown names raise ``ConfigError``).
        d_model: D of each one-block model (MLP ratio 4, as ``SequenceModel``'s default).
        prompt_len, new_tokens, batch_size, repeats: P, N, B and the timed repeats (>= 1 each).
        device: where the models run.
        vocab_size: V of the random prompts and the lm head.
        layer_options: constructor options per layer name, e.g. ``{"sliding_window": {"window": 256}}``.
        warmup: untimed generations per layer before timing (a short prompt, 2 new tokens).
        seed: seeds the weights and the prompt.

    Returns rows ``{"layer", "mode": "generate", "seq_len": P, "tokens_per_s": B N / median
    decode seconds, "state_bytes": bytes of state one sequence holds after P + N tokens,
    "extra": {"new_tokens": N, "batch_size": B, "prefill_tokens_per_s": B P / median prefill
    seconds, "decode_seconds", "prefill_seconds", "repeats", "device"}}``.
    """
    _check_sizes(prompt_len, new_tokens, batch_size, repeats, vocab_size, warmup)
    device = torch.device(device)
    layer_options = layer_options or {}
    generator = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, vocab_size, (batch_size, prompt_len), generator=generator).to(device)
    models = _one_block_models(layers, d_model, vocab_size, layer_options, seed, device)
    _warm_up(models, prompt[:, : min(prompt_len, 16)], warmup, device)
    times = _timed_rounds(models, prompt, new_tokens, repeats, device)
    return [
        _generation_row(name, model, times[name], prompt_len, new_tokens, batch_size, repeats, device)
        for name, model in models.items()
    ]
