"""What each memory layer of a model chose to write, and where its answer read from.

Shape legend: N probe sequences, T ``seq_len``, H heads.

One forward pass of the model over probe sequences captures each block's layer input
(a forward pre-hook); each layer that offers a view then recomputes from that input:

- **write gates** (``layer.write_gates(x) -> {name: [N, T, H]}``, e.g. gated DeltaNet's
  ``decay`` and ``beta``, mLSTM's gates, the neural memory's step size, momentum and decay):
  averaged over heads and over the tokens of each role (key, value, filler, query);
- **attention mass** (``layer.attention_weights(x) -> [N, H, T, S]``): the probability the
  query position puts on the queried pair's key, on its value, on the other pairs, and on
  everything else, averaged over heads and queries.

A layer without a view is listed under ``"no_view"`` by name, never an error: user layers
(by import path) join simply by defining the methods.
"""

from __future__ import annotations

import math

import torch

from memzoo.inspect.probes import KEY, ROLES, VALUE, ProbeBatch


def memory_layers(model) -> list[tuple[str, torch.nn.Module]]:
    """``("<depth>:<layer name>", layer)`` for each block of a SequenceModel-like model."""
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        return []
    return [
        (f"{i}:{getattr(b.layer, 'layer_name', type(b.layer).__name__)}", b.layer)
        for i, b in enumerate(blocks)
    ]


def layer_inputs(model, inputs: torch.Tensor, device=None) -> dict[str, torch.Tensor]:
    """Each memory layer's input ``[N, T, D]`` in one forward pass of ``model`` (eval, no grad)."""
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        layer.register_forward_pre_hook(lambda _m, args, label=label: captured.__setitem__(label, args[0]))
        for label, layer in memory_layers(model)
    ]
    model.eval()
    try:
        with torch.no_grad():
            model(inputs.to(device or "cpu"))
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def role_means(values: torch.Tensor, roles: torch.Tensor) -> dict[str, float]:
    """Mean of ``values [N, T, H]`` over heads and the positions of each role present.
    NaN entries (a gate not yet applied, e.g. the neural memory's per-chunk momentum on an
    unfinished last chunk) are left out of the mean."""
    per_token = values.float().nanmean(-1).cpu()  # [N, T]
    means = {
        name: per_token[roles == i].nanmean().item() for i, name in enumerate(ROLES) if (roles == i).any()
    }
    return {name: value for name, value in means.items() if math.isfinite(value)}  # JSON holds no NaN


def attention_mass(weights: torch.Tensor, batch: ProbeBatch) -> dict[str, float]:
    """Where the first query of each probe reads: the mean mass on its pair's key position,
    its value position, the other pairs' positions, and elsewhere (``weights [N, H, T, S]``)."""
    n = torch.arange(len(batch.inputs))
    q = batch.query_pos[:, 0]  # [N]
    row = weights.float().mean(1)[n, q].cpu()  # [N, S]
    queried = batch.inputs[n, q]  # the key asked for
    is_key = (batch.roles == KEY) & (batch.inputs == queried[:, None])
    key_pos = is_key.float().argmax(1)  # its (first) key position
    value_pos = key_pos + 1
    on_key, on_value = row[n, key_pos], row[n, value_pos]
    pairs = ((batch.roles == KEY) | (batch.roles == VALUE)).float()
    on_pairs = (row * pairs).sum(1) - on_key - on_value
    total = row.sum(1)
    return {
        "matching_key": on_key.mean().item(),
        "matching_value": on_value.mean().item(),
        "other_pairs": on_pairs.mean().item(),
        "elsewhere": (total - on_key - on_value - on_pairs).mean().item(),
    }


def positions_part(weights) -> torch.Tensor:
    """The ``[N, H, T, S]`` attention over sequence positions from a layer's view (a tensor,
    or a dict whose ``"positions"`` entry is that tensor)."""
    return weights["positions"] if isinstance(weights, dict) else weights


def inspect_layers(model, batch: ProbeBatch, device=None) -> dict:
    """``{"gates": {label: {gate: {role: mean}}}, "attention": {label: {...}}, "no_view": [...]}``
    for the memory layers of ``model`` on ``batch``."""
    out: dict = {"gates": {}, "attention": {}, "no_view": []}
    inputs = layer_inputs(model, batch.inputs, device)
    with torch.no_grad():
        for label, layer in memory_layers(model):
            x = inputs[label]
            seen = False
            if callable(getattr(layer, "write_gates", None)):
                gates = layer.write_gates(x)
                out["gates"][label] = {name: role_means(v, batch.roles) for name, v in gates.items()}
                seen = True
            if callable(getattr(layer, "attention_weights", None)):
                out["attention"][label] = attention_mass(positions_part(layer.attention_weights(x)), batch)
                seen = True
            if not seen:
                out["no_view"].append(label)
    return out
