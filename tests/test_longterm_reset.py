"""The reset ablation (``reset_long_term_memory=True``) on every long-term layer and every path.

The ablation is what the benchmarks compare a long-term memory with: read in segments by a
``SegmentRunner``, every long-term layer starts each segment from a fresh state, so nothing
it holds crosses a segment boundary, while the short-term layers below it carry their state
as usual. :func:`leaking_paths` checks that fact on each way the runner reads an input —
``forward`` over the whole input, ``streamed`` (one call per segment, the state handed on),
``scored_outputs`` (the evaluation path) and ``loss_backward`` (the training path: the loss
and every gradient) — against a reference built from the specification alone: each segment
run by the model from a fresh long-term state and the carried short-term one. Segments of 6
tokens cut the layers' own units (RMT segments of 5, neural-memory chunks of 4, a kNN
window of 4 with tokens reaching the store inside a segment), so an unfinished chunk or
segment must not cross either; segments of 1 token read the layers token by token (their
step path).

Each check is shown able to fail: a model whose flag is ignored leaks on every path, a runner
that carries the state on one path leaks on exactly that path, a reset that restarts a
layer's memory but carries its buffers (the unfinished chunk or segment, the local window)
leaks, and a reset that restarts the short-term layers too fails as well.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from memzoo.layers.base import state_tensors
from memzoo.models import SegmentRunner, SequenceModel

VOCAB, D, T = 12, 16, 18
LONG_OPTIONS = {
    "persistent": {"num_slots": 4, "window": 4},
    "memory_tokens": {"segment_len": 5, "num_memory": 3},
    "knn": {"local_window": 4, "capacity": 6, "top_k": 3},
    "neural_memory": {"chunk_size": 4},
}
LONG = sorted(LONG_OPTIONS)
PATHS = ("forward", "streamed", "scored_outputs", "loss_backward")
SEGMENTS = {6: "segments cutting the layers' own units", 1: "token by token"}


def ablation_model(layer: str, reset: bool = True) -> SequenceModel:
    """A 3-token sliding window under ``layer``, the way the benchmarks stack them."""
    torch.manual_seed(0)
    options = {"sliding_window": {"window": 3}, layer: LONG_OPTIONS[layer]}
    model = SequenceModel(
        layers=["sliding_window", layer],
        d_model=D,
        vocab_size=VOCAB,
        layer_options=options,
        reset_long_term_memory=reset,
    )
    return model.eval()


def tokens(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``[2, T]`` and targets ``[2, T]`` (every position scored)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (2, T), generator=gen), torch.randint(0, VOCAB, (2, T), generator=gen)


def reference_logits(model: SequenceModel, x: torch.Tensor, segment_len: int) -> torch.Tensor:
    """The ablation as specified: each segment read by the model from a fresh state of every
    long-term layer and the carried state of every short-term one (``[B, T, V]``, with a graph)."""
    state, outs = None, []
    for a in range(0, x.shape[1], segment_len):
        if state is not None:
            state = [None if block.layer.kind == "long" else s for block, s in zip(model.blocks, state)]
        out, state = model(x[:, a : a + segment_len], state)
        outs.append(out)
    return torch.cat(outs, dim=1)


def _gradients(model: SequenceModel) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def leaking_paths(model, x, targets, segment_len, runner_cls=SegmentRunner, tol=1e-5) -> list[str]:
    """The paths (of :data:`PATHS`) on which a runner of ``runner_cls`` over ``model`` reads
    ``x`` differently from :func:`reference_logits`: outputs for ``forward``, ``streamed``
    and ``scored_outputs``; the loss and every parameter's gradient for ``loss_backward``
    (one truncated-backpropagation window: full backpropagation, as the reference). Empty:
    nothing crosses a segment boundary that the specification does not carry."""
    segments = range(0, x.shape[1], segment_len)
    model.zero_grad()
    expected = reference_logits(model, x, segment_len)
    F.cross_entropy(expected.flatten(0, 1), targets.flatten()).backward()
    expected_grads, expected = _gradients(model), expected.detach()
    runner = runner_cls(model, segment_len, tbptt_segments=len(segments))
    with torch.no_grad():
        got = {"forward": runner(x)[0]}
        state, streamed = None, []
        for a in segments:
            out, state = runner(x[:, a : a + segment_len], state)
            streamed.append(out)
        got["streamed"] = torch.cat(streamed, dim=1)
        got["scored_outputs"], kept = runner.scored_outputs(x, targets)
    assert torch.equal(kept, targets)
    leaks = [path for path, y in got.items() if not torch.allclose(y, expected, rtol=tol, atol=tol)]
    model.zero_grad()
    loss = runner.loss_backward(x, targets)
    grads = _gradients(model)
    same_loss = torch.allclose(loss, F.cross_entropy(expected.flatten(0, 1), targets.flatten()), atol=tol)
    same_grads = grads.keys() == expected_grads.keys() and all(
        torch.allclose(grads[n], g, rtol=1e-4, atol=1e-6) for n, g in expected_grads.items()
    )
    if not (same_loss and same_grads):
        leaks.append("loss_backward")
    return leaks


@pytest.mark.parametrize("segment_len", sorted(SEGMENTS))
@pytest.mark.parametrize("layer", LONG)
def test_reset_ablation_carries_nothing_across_a_segment_on_any_path(layer, segment_len):
    """Every long-term layer, read by every path of the runner, in segments that cut its own
    chunks or segments and token by token: the ablation's outputs, loss and gradients are
    those of each segment read from a fresh long-term state."""
    x, targets = tokens()
    assert leaking_paths(ablation_model(layer), x, targets, segment_len) == []


@pytest.mark.parametrize("segment_len", sorted(SEGMENTS))
@pytest.mark.parametrize("layer", LONG)
def test_reset_check_fails_when_the_flag_is_ignored(layer, segment_len):
    """Without the reset every layer carries something that changes the next segment's
    outputs (persistent: its window cache; memory_tokens: its memory and unfinished segment;
    knn: its store and window; neural_memory: its weights, momentum and unfinished chunk),
    and the check sees it on every path: it is not vacuous for any layer."""
    x, targets = tokens()
    assert leaking_paths(ablation_model(layer, reset=False), x, targets, segment_len) == list(PATHS)


def runner_carrying_on(path: str) -> type[SegmentRunner]:
    """A runner whose reset is skipped on one path: ``forward`` (hence ``streamed`` too),
    ``streamed`` (only the state a caller hands in is kept: the reset applies between the
    segments the runner cuts itself), ``scored_outputs`` or ``loss_backward``."""

    def carrying(method, first_only=False):
        def broken(self, *args, **kwargs):
            calls = []

            def carried(state):
                calls.append(state)
                keep = len(calls) == 1 if first_only else True
                return state if keep else SegmentRunner._carried(self, state)

            self._carried = carried
            try:
                return method(self, *args, **kwargs)
            finally:
                del self._carried

        return broken

    if path == "streamed":
        method = carrying(SegmentRunner.forward, first_only=True)
        return type("KeepsTheStateHandedIn", (SegmentRunner,), {"forward": method, "__call__": method})
    if path == "forward":
        method = carrying(SegmentRunner.forward)
        return type("CarriesInForward", (SegmentRunner,), {"forward": method, "__call__": method})
    return type(f"CarriesIn_{path}", (SegmentRunner,), {path: carrying(getattr(SegmentRunner, path))})


@pytest.mark.parametrize("path", PATHS)
def test_reset_check_fails_for_a_runner_that_carries_the_state_on_one_path(path):
    """Each path is checked on its own: a runner that skips the reset on one path is caught
    there and only there (``forward`` also serves the streamed reading), for every layer."""
    x, targets = tokens()
    expected = ["forward", "streamed"] if path == "forward" else [path]
    for layer in LONG:
        leaks = leaking_paths(ablation_model(layer), x, targets, 6, runner_carrying_on(path))
        assert leaks == expected, (layer, leaks)


# The part of each layer's state that is a buffer of recent tokens rather than its memory.
BUFFERS = {
    "memory_tokens": ("seg_k", "seg_v", "pos"),  # the unfinished segment
    "knn": ("window_k", "window_v", "seen"),  # the local window (the store restarts empty)
    "neural_memory": ("conv", "pending_k", "pending_v", "pending_z", "count"),  # the unfinished chunk
}


class ResetsOnlyTheMemory(SegmentRunner):
    """A partial reset: a long-term layer's memory restarts, its buffers carry over."""

    def _carried(self, state):
        if state is None:
            return state
        out = []
        for block, s in zip(self.model.blocks, state):
            name = block.layer.layer_name
            if name in BUFFERS:
                fresh = block.layer.init_state(state_tensors(s)[0].shape[0])
                s = fresh._replace(**{field: getattr(s, field) for field in BUFFERS[name]})
            out.append(s)
        return out


@pytest.mark.parametrize("layer", sorted(BUFFERS))
def test_reset_check_fails_for_a_reset_that_keeps_the_layers_buffers(layer):
    """Restarting the memory (RMT memory tokens, the kNN store, the neural memory's weights)
    while the unfinished segment, the local window or the unfinished chunk crosses the
    boundary is caught on every path (persistent's state is its window alone: for it a
    partial reset is no reset, the flag-ignored case above)."""
    x, targets = tokens()
    assert leaking_paths(ablation_model(layer), x, targets, 6, ResetsOnlyTheMemory) == list(PATHS)


class ResetsEveryLayer(SegmentRunner):
    """An over-eager reset: the short-term layers restart at every segment too."""

    def _carried(self, state):
        return None if state is None else [None] * len(state)


def test_reset_check_fails_for_a_reset_of_the_short_term_layers_too():
    """The ablation switches off the long-term memory only: the sliding window below it still
    reads across the boundary, and a runner that restarts it as well is caught."""
    x, targets = tokens()
    for layer in LONG:
        assert leaking_paths(ablation_model(layer), x, targets, 6, ResetsEveryLayer) == list(PATHS), layer
