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
from memzoo.models.generate import decode, prefill
from memzoo.models.sequence_model import SequenceModel


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def _timed_generation(model, prompt: torch.Tensor, new_tokens: int, device: torch.device):
    """Seconds of (prefill, decode) for one greedy generation of ``new_tokens``."""
    _sync(device)
    start = time.perf_counter()
    logits, state = prefill(model, prompt)
    _sync(device)
    middle = time.perf_counter()
    decode(model, logits, state, new_tokens, greedy=True)
    _sync(device)
    return middle - start, time.perf_counter() - middle


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
    for name, value in (
        ("prompt_len", prompt_len),
        ("new_tokens", new_tokens),
        ("batch_size", batch_size),
        ("repeats", repeats),
        ("vocab_size", vocab_size),
    ):
        _positive(name, value)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ConfigError(f"warmup must be an integer >= 0, got {warmup!r}")
    device = torch.device(device)
    layer_options = layer_options or {}
    generator = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, vocab_size, (batch_size, prompt_len), generator=generator).to(device)
    models = {}
    for name in layers:
        torch.manual_seed(seed)
        options = {name: layer_options[name]} if name in layer_options else None
        model = SequenceModel(layers=[name], d_model=d_model, vocab_size=vocab_size, layer_options=options)
        models[name] = model.to(device).eval()
    for model in models.values():
        for _ in range(warmup):
            _timed_generation(model, prompt[:, : min(prompt_len, 16)], 2, device)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():  # alternate layers within each round
            times[name].append(_timed_generation(model, prompt, new_tokens, device))
    rows = []
    for name, model in models.items():
        prefill_s = statistics.median(t[0] for t in times[name])
        decode_s = statistics.median(t[1] for t in times[name])
        rows.append(
            {
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
        )
    return rows
