"""The model-level Recurrent Memory Transformer: whole == chunked == token by token, memory as
the only carrier between segments, bounded state, the segment runner and the trainer."""

from __future__ import annotations

import pytest
import torch
from contract import assert_outputs_close, assert_states_close, max_rel_err, run_chunked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memzoo.errors import ConfigError
from memzoo.layers.base import state_nbytes_per_sequence
from memzoo.models import SegmentRunner
from memzoo.models.recurrent_memory import RecurrentMemoryModel
from memzoo.train import build_config, fit
from memzoo.train.objectives import training_loss

VOCAB, D, L, M = 11, 16, 5, 3
STACKS = [["sliding_window", "attention"], ["lstm"]]


def make_model(layers=("sliding_window", "attention"), num_memory=M, seed=0):
    torch.manual_seed(seed)
    options = {"sliding_window": {"window": 3}} if "sliding_window" in layers else {}
    model = RecurrentMemoryModel(
        layers=list(layers),
        d_model=D,
        vocab_size=VOCAB,
        layer_options=options,
        segment_len=L,
        num_memory=num_memory,
    )
    return model.eval()


def tokens(b, t, seed=0):
    return torch.randint(0, VOCAB, (b, t), generator=torch.Generator().manual_seed(seed))


class Hidden(torch.nn.Module):
    """``model.hidden`` as a module, so the contract helpers can chunk it."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, state=None):
        return self.model.hidden(x, state)


@pytest.mark.parametrize("layers", STACKS, ids="+".join)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_whole_equals_chunked_equals_steps(layers, data):
    t = data.draw(st.integers(1, 23), label="seq_len")
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(t - 1, 1)), max_size=4), label="cuts")))
    cuts = [c for c in cuts if 0 < c < t]
    model = Hidden(make_model(layers))
    x = tokens(2, t, seed=t)
    with torch.no_grad():
        h, state = model(x)
        h_c, state_c = run_chunked(model, x, cuts)
        h_s, state_s = run_chunked(model, x, list(range(1, t)))
    assert h.shape == (2, t, D)
    assert_outputs_close(h_c, h)
    assert_outputs_close(h_s, h)
    assert_states_close(state_c, state)
    assert_states_close(state_s, state)
    assert int(state.pos[0]) == t % L


def test_memory_is_the_only_carrier_and_the_write_reads_the_whole_segment():
    x = tokens(1, 3 * L)
    x_first = x.clone()
    x_first[:, 0] = (x[:, 0] + 1) % VOCAB  # segment 1's first token differs
    x_last = x.clone()
    x_last[:, L - 1] = (x[:, L - 1] + 1) % VOCAB  # segment 1's last token differs
    with torch.no_grad():
        bare = make_model(num_memory=0)
        y, y2 = bare(x)[0], bare(x_first)[0]
        assert torch.allclose(y[:, L:], y2[:, L:], atol=1e-6), "no memory: segments are independent"
        model = make_model()
        y, y_last = model(x)[0], model(x_last)[0]
        assert torch.allclose(y[:, : L - 1], y_last[:, : L - 1], atol=1e-6)  # causal
        assert not torch.allclose(y[:, L:], y_last[:, L:]), "the write tokens see the whole segment"
        _, partial = model.hidden(x[:, : L - 1])
        assert torch.equal(partial.memory, model.init_state(1).memory), "no write before L tokens"


def test_gradients_flow_from_a_later_segment_back_through_the_memory():
    torch.manual_seed(0)
    model = RecurrentMemoryModel(
        layers=["attention"], d_model=D, input_dim=3, num_outputs=2, segment_len=L, num_memory=M
    )
    x = torch.randn(2, 2 * L, 3, requires_grad=True)
    h, _ = model.hidden(x)
    h[:, L:].sum().backward()  # a loss on segment 2 only
    assert x.grad[:, :L].abs().sum() > 0 and model.init_memory.grad.abs().sum() > 0
    bare = RecurrentMemoryModel(
        layers=["attention"], d_model=D, input_dim=3, num_outputs=2, segment_len=L, num_memory=0
    )
    x.grad = None
    h, _ = bare.hidden(x)
    h[:, L:].sum().backward()
    assert torch.equal(x.grad[:, :L], torch.zeros_like(x.grad[:, :L])), "no memory, no path back"


@pytest.mark.parametrize("layers", STACKS, ids="+".join)
def test_state_is_bounded_by_the_segment_and_state_size_is_exact(layers):
    model = make_model(layers)
    with torch.no_grad():
        for t in (1, 7, 13, 64):
            _, state = model.hidden(tokens(3, t))
            assert model.state_size(t) == state_nbytes_per_sequence(state)
    assert model.state_size(13) == model.state_size(13 + 40 * L)  # flat in the input length


@pytest.mark.parametrize("layers", STACKS, ids="+".join)
def test_segment_runner_equals_the_whole_model(layers):
    model = make_model(layers)
    x = tokens(3, 17, seed=1)
    y = torch.randint(0, VOCAB, (3, 17), generator=torch.Generator().manual_seed(2))
    y[:, ::3] = -100
    with torch.no_grad():
        whole, _ = model(x)
        pieces, _ = SegmentRunner(model, 4)(x)
    assert max_rel_err(pieces, whole) <= 1e-4
    model.train().zero_grad()
    loss = training_loss(model, x, y)
    loss.backward()
    reference = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    model.zero_grad()
    runner_loss = SegmentRunner(model, 4, tbptt_segments=5).loss_backward(x, y)  # one window
    assert runner_loss.item() == pytest.approx(loss.item(), rel=1e-5)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    assert all(max_rel_err(g, r) <= 1e-4 for g, r in zip(grads, reference))


def test_trains_with_the_trainer():
    cfg = build_config(
        overrides=[
            "task.name=cross_segment_recall",
            "task.vocab_size=16",
            "task.num_kv_pairs=2",
            "task.distance=6",
            "task.segment_len=8",
            "task.distractors=separate",
            "task.distractor_vocab_size=4",
            "model.layers=[attention]",
            "model.d_model=16",
            "train.num_train=32",
            "train.num_test=16",
            "train.epochs=1",
            "train.batch_size=16",
            "train.tbptt_segments=2",
            "train.checkpoint=false",
        ]
    )
    task = cfg.task.build()
    model = RecurrentMemoryModel(
        layers=["attention"],
        d_model=16,
        vocab_size=task.input_vocab_size,
        num_outputs=task.output_vocab_size,
        segment_len=8,
        num_memory=2,
    )
    result = fit(cfg, model=model)
    assert result.status == "completed" and result.model is model
    assert result.record.state_bytes == model.state_size(task.seq_len)


def test_bad_arguments():
    for bad in ({"segment_len": 0}, {"num_memory": -1}, {"segment_len": True}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            RecurrentMemoryModel(layers=["gru"], d_model=8, vocab_size=4, **bad)
    model = make_model()
    with pytest.raises(ConfigError, match="RecurrentMemoryState"):
        model.hidden(tokens(1, 3), [None, None])
