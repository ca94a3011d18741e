"""SegmentRunner: segment-by-segment == whole (outputs, loss, gradients), truncation,
bounded memory (bytes the autograd graph holds, carried-state bytes), segmented training
and evaluation in the trainer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from contract import max_rel_err
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memzoo.errors import ConfigError
from memzoo.layers.base import detach_state, state_nbytes_per_sequence
from memzoo.models import SegmentRunner, SequenceModel
from memzoo.tasks import build as build_task
from memzoo.train import build_config, evaluate, fit
from memzoo.train.objectives import training_loss

VOCAB, D = 12, 16
# Hybrids covering every kind of carried state: recurrent, window, RMT, kNN store, neural memory.
STACKS = [
    ["lstm", "sliding_window"],
    ["memory_tokens", "neural_memory"],
    ["knn", "persistent"],
]
OPTIONS = {
    "sliding_window": {"window": 5},
    "memory_tokens": {"segment_len": 6, "num_memory": 2, "xl_cache": True},
    "neural_memory": {"chunk_size": 4},
    "knn": {"local_window": 4, "capacity": 8, "top_k": 2},
    "persistent": {"num_slots": 2},
}


def make_model(layers, head="lm", seed=0, vocab=VOCAB):
    torch.manual_seed(seed)
    options = {name: OPTIONS[name] for name in layers if name in OPTIONS}
    num_outputs = None if head == "lm" else 3
    return SequenceModel(
        layers=layers, d_model=D, vocab_size=vocab, head=head, num_outputs=num_outputs, layer_options=options
    )


def batch(b, t, seed, frac_scored=0.4):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, VOCAB, (b, t), generator=gen)
    y = torch.randint(0, VOCAB, (b, t), generator=gen)
    y[torch.rand(b, t, generator=gen) > frac_scored] = -100
    return x, y


def grads(model):
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


@pytest.mark.parametrize("layers", STACKS, ids="+".join)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t=st.integers(1, 30), segment=st.integers(1, 12), seed=st.integers(0, 99))
def test_outputs_and_scored_outputs_equal_the_whole_model(layers, t, segment, seed):
    model = make_model(layers).eval()
    x, y = batch(2, t, seed)
    runner = SegmentRunner(model, segment)
    with torch.no_grad():
        whole, _ = model(x)
        pieces, _ = runner(x)
        logits, kept = runner.scored_outputs(x, y)
    assert max_rel_err(pieces, whole) <= 1e-4
    assert kept.shape == logits.shape[:2] and logits.shape[1] == int((y != -100).sum(1).max())
    assert torch.equal(kept[kept != -100], y[y != -100])  # row by row, in order
    assert max_rel_err(logits[kept != -100], whole[y != -100]) <= 1e-4


@pytest.mark.parametrize("layers", STACKS, ids="+".join)
def test_full_window_gradients_equal_full_backprop(layers):
    model = make_model(layers).train()
    x, y = batch(3, 23, seed=1)
    model.zero_grad()
    loss = training_loss(model, x, y)
    loss.backward()
    reference = grads(model)
    model.zero_grad()
    runner_loss = SegmentRunner(model, 5, tbptt_segments=5).loss_backward(x, y)  # 5 x 5 >= 23
    assert runner_loss.item() == pytest.approx(loss.item(), rel=1e-5)
    for g, ref in zip(grads(model), reference):
        assert max_rel_err(g, ref) <= 1e-4


def test_truncation_cuts_gradients_at_window_borders():
    """tbptt_segments=2 equals a hand-written loop that detaches every 2 segments, and
    differs from full backpropagation (the truncation is real)."""
    model = make_model(["lstm", "memory_tokens"]).train()
    x, y = batch(2, 24, seed=2, frac_scored=0.6)
    total = int((y != -100).sum())
    model.zero_grad()
    state = None
    for a in range(0, 24, 8):  # windows of 2 segments of 4 tokens
        loss = 0.0
        for s in (a, a + 4):
            hidden, state = model.hidden(x[:, s : s + 4], state)
            mask = y[:, s : s + 4] != -100
            loss = loss + F.cross_entropy(model.head(hidden[mask]), y[:, s : s + 4][mask], reduction="sum")
        (loss / total).backward()
        state = detach_state(state)
    manual = grads(model)
    model.zero_grad()
    SegmentRunner(model, 4, tbptt_segments=2).loss_backward(x, y)
    truncated = grads(model)
    model.zero_grad()
    training_loss(model, x, y).backward()
    full = grads(model)
    assert all(max_rel_err(g, m) <= 1e-4 for g, m in zip(truncated, manual))
    assert any(max_rel_err(g, f) > 1e-3 for g, f in zip(truncated, full))


@pytest.mark.parametrize("head", ["classify", "regress"])
def test_final_position_heads(head):
    model = make_model(["gru", "sliding_window"], head=head).train()
    x, _ = batch(4, 17, seed=3)
    y = torch.tensor([0, 2, 1, 2]) if head == "classify" else torch.randn(4, 3)
    runner = SegmentRunner(model, 4, tbptt_segments=5)
    with torch.no_grad():
        out, _ = runner(x)
        assert max_rel_err(out, model(x)[0]) <= 1e-4
    model.zero_grad()
    loss = training_loss(model, x, y)
    loss.backward()
    reference = grads(model)
    model.zero_grad()
    assert runner.loss_backward(x, y).item() == pytest.approx(loss.item(), rel=1e-5)
    assert all(max_rel_err(g, r) <= 1e-4 for g, r in zip(grads(model), reference))


# ---- bounded memory ------------------------------------------------------------------------


class SavedBytes:
    """Bytes of the tensors the autograd graph holds for backward, now and at most: each
    saved tensor is wrapped; the wrapper is freed with the graph (after backward)."""

    def __init__(self):
        self.live = self.peak = self.total = 0
        meter = self

        class Saved:
            def __init__(self, tensor):
                # Detached: holding the tensor itself would tie a saved output to its own
                # graph node in a cycle that is never freed.
                self.tensor, self.nbytes = tensor.detach(), tensor.numel() * tensor.element_size()
                meter.live += self.nbytes
                meter.total += self.nbytes
                meter.peak = max(meter.peak, meter.live)

            def __del__(self):
                meter.live -= self.nbytes

        self.hooks = torch.autograd.graph.saved_tensors_hooks(Saved, lambda saved: saved.tensor)

    def __enter__(self):
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self.hooks.__exit__(*exc)


def peak_graph_bytes(model, length, tbptt_segments, segment=8):
    x, y = batch(4, length, seed=5, frac_scored=1.0)
    y[:, ::2] = -100  # the same number of scored positions in every segment
    model.zero_grad()
    with SavedBytes() as meter:
        SegmentRunner(model, segment, tbptt_segments).loss_backward(x, y)
    assert meter.live == 0  # every window's graph was freed by its backward
    return meter.peak


@pytest.mark.parametrize(
    "layers", [["memory_tokens", "neural_memory"], ["lstm", "sliding_window"]], ids="+".join
)
def test_peak_memory_does_not_grow_with_input_length(layers):
    model = make_model(layers).train()
    short, long = peak_graph_bytes(model, 64, 1), peak_graph_bytes(model, 512, 1)
    assert long == short  # one segment's graph at a time, whatever the input length
    # Full backpropagation keeps every segment's graph: the meter would see it grow.
    assert peak_graph_bytes(model, 512, 64) > 4 * peak_graph_bytes(model, 64, 8)
    # And the carried state stays the same size too.
    with torch.no_grad():
        _, s_short = SegmentRunner(model, 8)(batch(2, 64, 0)[0])
        _, s_long = SegmentRunner(model, 8)(batch(2, 512, 0)[0])
    assert state_nbytes_per_sequence(s_long) == state_nbytes_per_sequence(s_short)


def test_unscored_windows_build_no_graph():
    """Only the last segment is scored: the segments before it save nothing for backward,
    however many there are."""
    model = make_model(["lstm", "memory_tokens"]).train()

    def total_saved(length):
        x, y = batch(2, length, seed=6, frac_scored=1.0)
        y[:, : length - 8] = -100
        with SavedBytes() as meter:
            SegmentRunner(model, 8).loss_backward(x, y)
        return meter.total

    assert 0 < total_saved(16) == total_saved(64)


def test_bad_arguments():
    model = make_model(["gru"])
    for kwargs in ({"segment_len": 0}, {"segment_len": 4, "tbptt_segments": 0}):
        with pytest.raises(ConfigError, match=next(iter(kwargs)) if len(kwargs) == 1 else "tbptt"):
            SegmentRunner(model, **kwargs)
    with pytest.raises(ConfigError, match="SequenceModel"):
        SegmentRunner(torch.nn.Linear(2, 2), 4)
    with pytest.raises(ConfigError, match="targets"):
        SegmentRunner(model, 4).loss_backward(
            torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 7, dtype=torch.long)
        )


# ---- the trainer -----------------------------------------------------------------------------

TINY = [
    "task.name=mqar",
    "task.vocab_size=32",
    "task.seq_len=24",
    "task.num_kv_pairs=2",
    "model.layers=[gru,sliding_window]",
    "model.d_model=16",
    "train.num_train=64",
    "train.num_test=32",
    "train.epochs=1",
    "train.batch_size=32",
    "train.checkpoint=false",
]


def test_trainer_segmented_with_full_windows_matches_whole_training():
    whole = fit(build_config(overrides=TINY))
    seg = fit(build_config(overrides=[*TINY, "train.segment_len=5", "train.tbptt_segments=5"]))
    assert seg.record.curve[0]["train_loss"] == pytest.approx(whole.record.curve[0]["train_loss"], rel=1e-4)
    for p, q in zip(seg.model.parameters(), whole.model.parameters()):
        assert max_rel_err(p.detach(), q.detach()) <= 1e-3
    truncated = fit(build_config(overrides=[*TINY, "train.segment_len=5"]))
    assert truncated.record.curve[0]["train_loss"] != seg.record.curve[0]["train_loss"]


def test_segmented_evaluation_equals_whole_evaluation():
    model = make_model(["gru", "sliding_window"], vocab=32).eval()
    task = build_task("mqar", vocab_size=32, seq_len=24, num_kv_pairs=2)
    data = task.generate(40, seed=0)
    cpu = torch.device("cpu")
    whole = evaluate(model, data, "lm", 32, cpu, batch_size=16)
    seg = evaluate(model, data, "lm", 32, cpu, batch_size=16, segment_len=7)
    assert seg.keys() == whole.keys()
    for key in ("accuracy", "example_accuracy", "scored", "slices"):
        assert seg[key] == whole[key]


def test_task_segment_len_is_used_and_tbptt_needs_segments():
    cfg = build_config(overrides=["train.tbptt_segments=2", "task.name=cross_segment_recall"])
    assert cfg.train.segment_len is None  # the task's own segment_len (64) will be used
    with pytest.raises(ConfigError, match="tbptt_segments.*segment_len"):
        build_config(overrides=["train.tbptt_segments=2"])  # mqar has no segments
    with pytest.raises(ConfigError, match="segment_len"):
        build_config(overrides=["train.segment_len=0"])


def test_reset_long_term_memory_ablation_starts_long_layers_afresh_each_segment():
    """The ablation: a long-term layer carries nothing across a segment boundary, while the
    short-term layers still do."""
    torch.manual_seed(0)
    model = SequenceModel(
        layers=["sliding_window", "neural_memory"], d_model=16, vocab_size=12, reset_long_term_memory=True
    ).eval()
    x = torch.randint(0, 12, (2, 12))
    with torch.no_grad():
        out, _ = SegmentRunner(model, 6)(x)
        first, state = model(x[:, :6])
        second, _ = model(x[:, 6:], [state[0], None])  # the window's state carried, memory fresh
        carried, _ = model(x[:, 6:], state)
    assert torch.allclose(out[:, :6], first, atol=1e-6) and torch.allclose(out[:, 6:], second, atol=1e-6)
    assert not torch.allclose(out[:, 6:], carried, atol=1e-4)  # without the ablation it differs
