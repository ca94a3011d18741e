"""``memzoo speed``: throughput, decode latency, state bytes and MFU of memory layers.

For each layer and sequence length it measures (median of ``repeats`` after ``warmup``):

- ``fwd``: forward tokens/s on ``[B, T, D]`` inputs, no autograd;
- ``fwdbwd``: forward + backward tokens/s;
- ``step``: the latency of decoding one token at position ``p`` (the state holds ``p - 1``
  tokens) for each ``p`` in ``decode_positions``; tokens/s is ``B / latency``. ``attention``'s
  step is timed against a preallocated-KV-buffer decode step (``ratio_vs_reference`` =
  reference latency ÷ layer latency);
- ``train_step`` / ``train_step_compiled``: a whole training step of a small language model,
  eager, and compiled against eager (``train_step.py``; the compiled mode is not a default).

In the same run it measures a matrix-multiply peak (FLOP/s) for the model-FLOP utilisation
(FLOPs counted by ``torch.utils.flop_counter``) and each layer's reference
(``references.py``), reporting ``ratio_vs_reference`` = layer ÷ reference tokens/s, so
the ratios hold on a noisy machine. A fast-weight layer also gets rows ``"<name>/op"``: its
chunked op alone against the op's naive recurrence (``ops.py``). Timing primitives are
in ``timing.py``. This is a benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import functools
import itertools
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from memzoo import layers as layer_registry
from memzoo.errors import ConfigError
from memzoo.speed.generation import generation_rows
from memzoo.speed.ops import op_rows
from memzoo.speed.references import decode_reference_for, reference_for
from memzoo.speed.timing import (
    forward_backward,
    forward_only,
    matmul_peak_flops,
    paired_median_seconds,
    timed_row,
)
from memzoo.speed.train_step import compiled_train_step_rows, train_step_rows
from memzoo.train.sizes import machine_memory

#: every mode; ``train_step_compiled`` is left out of the default run (compiling takes minutes)
MODES = ("fwd", "fwdbwd", "step", "generate", "train_step", "train_step_compiled")
DEFAULT_MODES = ("fwd", "fwdbwd", "step", "generate", "train_step")
GENERATION_PROMPT, GENERATION_NEW_TOKENS = 1024, 256  # the generation rows: prompt + new tokens, B=1


@dataclass
class SpeedSettings:
    layers: list[str]
    seq_lens: list[int] = field(default_factory=lambda: [256, 1024, 4096])
    batch_size: int = 8
    d_model: int = 256
    decode_positions: list[int] = field(default_factory=lambda: [1, 4096])
    modes: list[str] = field(default_factory=lambda: list(DEFAULT_MODES))
    repeats: int = 5
    warmup: int = 2
    device: str = "cpu"
    layer_options: dict[str, dict] = field(default_factory=dict)


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads "
        f"(torch {torch.__version__})"
    )


def recurrent_flops(layer, batch_size: int, seq_len: int, mode: str) -> int:
    """Analytic FLOPs of a torch RNN/LSTM/GRU (the FLOP counter does not see inside them):
    per token and gate, an input and a recurrent ``D x D`` matmul; backward costs 2x forward."""
    rnn = getattr(layer, "rnn", None)
    if not isinstance(rnn, (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU)):
        return 0
    gates = {"LSTM": 4, "GRU": 3}.get(rnn.mode, 1)
    d = rnn.hidden_size
    forward = 2 * batch_size * seq_len * gates * 2 * d * d * rnn.num_layers
    return forward * (3 if mode == "fwdbwd" else 1)


def _timed_pairs(name, module, reference, settings, device, peak) -> Iterator[dict]:
    """fwd / fwdbwd rows of ``module`` for every sequence length; when a reference module is
    given it is timed in alternation with the layer (same load for both) for the ratio."""
    for seq_len in settings.seq_lens:
        x = torch.randn(settings.batch_size, seq_len, settings.d_model, device=device)
        for mode in ("fwd", "fwdbwd"):
            if mode not in settings.modes:
                continue
            run = forward_only if mode == "fwd" else forward_backward
            fns = [lambda m=module: run(m, x)]
            if reference is not None:
                fns.append(lambda m=reference: run(m, x))
            uncounted = recurrent_flops(module, settings.batch_size, seq_len, mode)
            yield timed_row(name, seq_len, mode, fns, settings, device, peak, uncounted)


def _placed(reference, device: torch.device):
    """``(label, module)`` of a reference from :mod:`memzoo.speed.references` with the module
    on ``device``, or ``(None, None)`` when the layer has none."""
    if reference is None:
        return None, None
    label, module = reference
    return label, (module.to(device) if module is not None else None)


def _reference_buffer(ref_module, batch: int, position: int, steps: int, device: torch.device):
    """The reference's KV buffer at ``position``: random keys/values for the ``position - 1``
    tokens before it, with room for ``steps`` more decode steps."""
    buffer = ref_module.allocate(batch, position + steps, device=device)
    buffer.k.normal_()
    buffer.v.normal_()
    buffer.length = position - 1
    return buffer


def _decode_start_states(layer, ref_module, settings, repeats: int, device: torch.device):
    """``(states, buffers)``: per decode position, the layer's state after a random prefix of
    ``position - 1`` tokens and, with a reference, the reference's buffer (else ``[]``)."""
    batch, d_model = settings.batch_size, settings.d_model
    states, buffers = [], []
    for position in settings.decode_positions:
        state = layer.init_state(batch, device=device)
        if position > 1:
            prefix = torch.randn(batch, position - 1, d_model, device=device)
            _, state = layer(prefix, state)
        states.append(state)
        if ref_module is not None:  # room for the prefix and every warm-up and timed step
            buffers.append(_reference_buffer(ref_module, batch, position, settings.warmup + repeats, device))
    return states, buffers


def _alternating_steps(
    layer, x: torch.Tensor, states: list, ref_module, buffers: list
) -> list[Callable[[], None]]:
    """One decode step of ``x`` per position, each followed by the reference's step at that
    position when there is one. A layer's step continues from the state its previous step at
    that position returned (a chain, as decoding does)."""
    chains = list(states)

    def step_at(i: int) -> None:
        _, chains[i] = layer(x, chains[i])

    steps = []
    for i in range(len(chains)):
        steps.append(functools.partial(step_at, i))
        if ref_module is not None:
            steps.append(functools.partial(ref_module.step, x, buffers[i]))
    return steps


def _step_row(name: str, layer, position: int, latency: float, batch: int, label) -> dict:
    """The ``step`` row of one decode position from the layer's median step latency (seconds)."""
    return {
        "layer": name,
        "seq_len": position,
        "mode": "step",
        "tokens_per_s": batch / latency,
        "state_bytes": layer.state_size(position),
        "extra": {"latency_ms": 1000 * latency, "reference": label},
    }


def _step_rows(name, layer, settings, device, options=None) -> Iterator[dict]:
    """Decode latency of one token at each position in ``decode_positions``.

    The states for every position are built first, then the steps are timed in alternation
    (like the references), so that the ratio between positions holds on a noisy machine.
    Each timed step continues from the state the previous step at that position returned, as
    decoding does (a chain, so a cache may append in place); the few extra tokens this adds
    to a position are negligible next to it.

    A layer with a decode reference (``attention``: a preallocated KV buffer, see
    ``references.py``) has the reference's step at the same position timed right after its
    own; the row's ``ratio_vs_reference`` is reference latency ÷ layer latency (> 1: memzoo
    is faster). The reference's buffer holds random keys/values for the prefix (same cost)."""
    batch, d_model = settings.batch_size, settings.d_model
    x = torch.randn(batch, 1, d_model, device=device)
    repeats = max(settings.repeats, 9)
    label, ref_module = _placed(decode_reference_for(name, d_model, options or {}), device)
    with torch.no_grad():
        states, buffers = _decode_start_states(layer, ref_module, settings, repeats, device)
        steps = _alternating_steps(layer, x, states, ref_module, buffers)
        seconds = paired_median_seconds(steps, repeats, settings.warmup, device)
    per_position = 2 if ref_module is not None else 1
    for i, position in enumerate(settings.decode_positions):
        latency = seconds[per_position * i]
        row = _step_row(name, layer, position, latency, batch, label)
        if ref_module is not None:
            ref_latency = seconds[per_position * i + 1]
            row["ratio_vs_reference"] = ref_latency / latency
            row["extra"]["reference_latency_ms"] = 1000 * ref_latency
        yield row


def _report(progress: Callable[[str], None] | None, row: dict) -> None:
    """One progress line for a measured row: tokens/s (and latency for a decode step), then the
    ratio to its reference when it has one."""
    if progress is None:
        return
    ratio, extra = row.get("ratio_vs_reference"), row["extra"]
    where = f"pos={row['seq_len']}" if row["mode"] == "step" else f"T={row['seq_len']}"
    line = f"{row['layer']} {where} {row['mode']}: {row['tokens_per_s']:,.0f} tokens/s"
    if "latency_ms" in extra:
        line += f", {extra['latency_ms']:.3f} ms"
    if ratio is not None:
        line += f", {ratio:.2f}x {extra.get('reference')}"
    progress(line)


def check_speed_memory(settings: SpeedSettings, available: int | None = None) -> None:
    """Raise ``ConfigError`` when ``settings`` cannot fit in this machine's memory: a lower bound
    of one ``d_model x d_model`` fp32 weight plus the input and output ``[B, T, D]`` of the
    longest sequence (prompt + new tokens for ``generate``, the decode positions for ``step``)."""
    available = machine_memory() if available is None else available
    if not available:
        return
    longest = max([*settings.seq_lens, *settings.decode_positions, GENERATION_PROMPT + GENERATION_NEW_TOKENS])
    weights = 4 * settings.d_model**2
    activations = 2 * 4 * settings.batch_size * longest * settings.d_model
    if weights + activations > available:
        raise ConfigError(
            f"these speed settings need at least {(weights + activations) / 2**30:.3g} GiB (--d-model "
            f"{settings.d_model}, --batch-size {settings.batch_size}, longest sequence {longest}) but the "
            f"machine has {available / 2**30:.3g} GiB; lower these sizes"
        )


def _forward_rows(name, layer, options, settings, device, peak, progress) -> list[dict]:
    """The layer's ``fwd`` / ``fwdbwd`` rows against its reference, then its op's rows
    (``"<name>/op"``) if it has one, each with ``state_bytes`` and the reference's label."""
    label, ref_module = _placed(reference_for(name, settings.d_model, options), device)
    rows = []
    measured = itertools.chain(
        _timed_pairs(name, layer, ref_module, settings, device, peak),
        op_rows(name, layer, settings, device, peak),
    )
    for row in measured:  # the layer's rows, then its op's ("<name>/op") if it has one
        row["state_bytes"] = layer.state_size(row["seq_len"])
        row["extra"].setdefault("reference", label)
        rows.append(row)
        _report(progress, row)  # one line per measurement: a T=4096 naive reference takes minutes
    return rows


def _decode_step_rows(name, layer, options, settings, device, progress) -> list[dict]:
    """The layer's ``step`` rows (:func:`_step_rows`), each with its latency relative to the
    first decode position (``extra["vs_first_position"]``)."""
    steps = list(_step_rows(name, layer, settings, device, options))
    first = steps[0]["extra"]["latency_ms"]
    for row in steps:
        row["extra"]["vs_first_position"] = row["extra"]["latency_ms"] / first
        _report(progress, row)
    return steps


def _training_rows(name, settings, device, peak, progress) -> list[dict]:
    """The rows of the whole model's training step, optimiser included, for the
    ``train_step`` and ``train_step_compiled`` modes of ``settings``."""
    rows = []
    if "train_step" in settings.modes:
        for row in train_step_rows(name, settings, device, peak):
            _report(progress, row)
            rows.append(row)
    if "train_step_compiled" in settings.modes:  # the same, compiled against eager
        for row in compiled_train_step_rows(name, settings, device, peak, progress):
            _report(progress, row)
            rows.append(row)
    return rows


def _layer_rows(name, settings, device, peak, progress) -> list[dict]:
    """Every per-layer row of ``name`` for the modes of ``settings``: forward (and op), decode
    step, then training step rows. The layer's weights are seeded with 0."""
    options = settings.layer_options.get(name, {})
    torch.manual_seed(0)
    layer = layer_registry.build(name, settings.d_model, **options).to(device)
    if progress:
        progress(name)
    rows = _forward_rows(name, layer, options, settings, device, peak, progress)
    if "step" in settings.modes:
        rows += _decode_step_rows(name, layer, options, settings, device, progress)
    rows += _training_rows(name, settings, device, peak, progress)
    return rows


def _generate_rows(settings, device, progress) -> list[dict]:
    """The ``generate`` rows of every layer: a prompt of ``GENERATION_PROMPT`` tokens in parallel
    form, then ``GENERATION_NEW_TOKENS`` generated one at a time (B=1, at most 3 repeats)."""
    if progress:
        progress(f"generation: prompt {GENERATION_PROMPT} + {GENERATION_NEW_TOKENS} new tokens")
    return generation_rows(
        settings.layers,
        settings.d_model,
        prompt_len=GENERATION_PROMPT,
        new_tokens=GENERATION_NEW_TOKENS,
        batch_size=1,
        repeats=max(1, min(settings.repeats, 3)),
        device=device,
        layer_options=settings.layer_options,
    )


def run_speed(settings: SpeedSettings, progress: Callable[[str], None] | None = None) -> list[dict]:
    """Measure every layer of ``settings`` and its reference; return the rows (see module doc)."""
    check_speed_memory(settings)
    device = torch.device(settings.device)
    machine = machine_description(device)
    peak = matmul_peak_flops(device)
    rows: list[dict] = []
    for name in settings.layers:
        rows += _layer_rows(name, settings, device, peak, progress)
    if "generate" in settings.modes:  # prompt in parallel form, then one token at a time
        rows += _generate_rows(settings, device, progress)
    for row in rows:
        row["machine"] = machine
        row["extra"]["peak_flops"] = peak
        row.setdefault("ratio_vs_reference", None)
        row.setdefault("mfu", None)
    return rows
