"""The sequence model meets the layer contract and trains."""

from __future__ import annotations

import pytest
import torch
from contract import assert_outputs_close, assert_states_close, run_chunked, run_steps
from hypothesis import given, settings
from hypothesis import strategies as st
from layer_cases import kwargs_for

import memzoo
from memzoo.models import SequenceModel

STACKS = [["lstm", "lstm"], ["rnn", "gru"]] + [[name, "lstm"] for name in memzoo.layers.names()]


def make_model(layers, head="lm", **kw):
    torch.manual_seed(0)
    options = {name: kwargs_for(name) for name in set(layers) if kwargs_for(name)}
    return SequenceModel(
        layers=layers, d_model=16, vocab_size=11, head=head, layer_options=options, **kw
    ).eval()


@pytest.mark.parametrize("layers", STACKS, ids=lambda s: "+".join(s))
@settings(max_examples=5, deadline=None)
@given(seq_len=st.integers(1, 30), cut=st.integers(1, 29))
def test_model_whole_equals_chunked_equals_steps(layers, seq_len, cut):
    model = make_model(layers)
    x = torch.randint(0, 11, (2, seq_len), generator=torch.Generator().manual_seed(seq_len))
    cuts = [cut] if cut < seq_len else []
    with torch.no_grad():
        y, s = model(x)
        yc, sc = run_chunked(model, x, cuts)
        ys, ss = run_steps(model, x)
    assert y.shape == (2, seq_len, 11)
    assert_outputs_close(yc, y)
    assert_outputs_close(ys, y)
    assert_states_close(sc, s)
    assert_states_close(ss, s)


@pytest.mark.parametrize("head,shape", [("classify", (3, 5)), ("regress", (3, 5))])
def test_final_position_heads(head, shape):
    model = make_model(["gru", "lstm"], head=head, num_outputs=5)
    x = torch.randint(0, 11, (3, 12))
    with torch.no_grad():
        out, _ = model(x)
        _, s = model(x[:, :7])
        out_chunked, _ = model(x[:, 7:], s)
    assert out.shape == shape
    assert_outputs_close(out_chunked, out)


def test_real_valued_inputs():
    torch.manual_seed(0)
    model = SequenceModel(layers=["lstm"], d_model=8, input_dim=3, head="regress", num_outputs=2)
    out, state = model(torch.randn(4, 10, 3))
    assert out.shape == (4, 2)
    assert model.state_size(10) == sum(4 * t[0].numel() for t in state[0])


def test_state_size_is_sum_of_layers():
    model = make_model(["lstm", "gru"])
    assert model.state_size(50) == 4 * 16 * (2 + 1)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(layers=[], d_model=8, vocab_size=5), "layers"),
        (dict(layers=["lstm"], d_model=8), "vocab_size"),
        (dict(layers=["lstm"], d_model=8, vocab_size=5, head="seq"), "head"),
        (dict(layers=["lstm"], d_model=8, vocab_size=5, layer_options={"gru": {}}), "layer_options"),
        (dict(layers=["nope"], d_model=8, vocab_size=5), "unknown layer"),
    ],
)
def test_bad_model_arguments(kwargs, field):
    with pytest.raises(memzoo.ConfigError, match=field):
        SequenceModel(**kwargs)


def test_gradient_flows_through_carried_model_state():
    model = make_model(["gru", "lstm"]).train()
    gen = torch.Generator().manual_seed(0)
    first = torch.randint(0, 5, (2, 8), generator=gen)  # tokens 0-4 only in chunk 1
    second = torch.randint(5, 11, (2, 8), generator=gen)  # tokens 5-10 only in chunk 2
    _, s = model(first)
    y, _ = model(second, s)
    y.sum().backward()
    # Chunk-1 embeddings reach the loss only through the carried state.
    assert model.embed.weight.grad[first.unique()].abs().sum() > 0


def test_init_policy_scales_mlp_outputs_by_depth_and_leaves_layers_alone():
    """One model-level policy: each block's MLP output projection is scaled by
    1/sqrt(2 * depth); the memory layers' own initialisations are untouched."""
    torch.manual_seed(0)
    model = SequenceModel(layers=["gru", "deltanet", "attention"], d_model=16, vocab_size=10)
    torch.manual_seed(0)
    reference = torch.nn.Embedding(10, 16)  # the same draws, in the same order, unscaled
    blocks = []
    for name in ["gru", "deltanet", "attention"]:
        blocks.append(memzoo.models.MemoryBlock(memzoo.layers.build(name, 16), 4))
    for block, ref in zip(model.blocks, blocks):
        for (key, value), (_, ref_value) in zip(
            block.layer.state_dict().items(), ref.layer.state_dict().items()
        ):
            assert torch.equal(value, ref_value), key  # layers keep their own init
        assert torch.allclose(block.mlp[-1].weight, ref.mlp[-1].weight * 6**-0.5)
        assert torch.equal(block.mlp[0].weight, ref.mlp[0].weight)
    assert torch.equal(model.embed.weight, reference.weight)
