"""The single-needle task: layout, targets recoverable from the inputs, determinism by seed,
slices, the length sweep and parameter errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memzoo import tasks
from memzoo.errors import ConfigError
from memzoo.tasks.needle import QUERY

IGNORE = -100
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def needle_params(draw):
    value_len = draw(st.integers(1, 4))
    return dict(
        value_len=value_len,
        seq_len=draw(st.integers(2 * value_len + 3, 80)),
        num_keys=draw(st.integers(1, 9)),
        num_values=draw(st.integers(2, 9)),
        haystack_vocab_size=draw(st.integers(1, 9)),
    )


@SETTINGS
@given(params=needle_params(), seed=st.integers(0, 999))
def test_needle_layout_and_targets(params, seed):
    task = tasks.build("needle", **params)
    t, vl, nk, nv = params["seq_len"], params["value_len"], params["num_keys"], params["num_values"]
    keys, values = range(2, 2 + nk), range(2 + nk, 2 + nk + nv)
    haystack = range(2 + nk + nv, task.input_vocab_size)
    data = task.generate(5, seed)
    assert data.inputs.shape == data.targets.shape == (5, t)
    for row, (inputs, targets) in enumerate(zip(data.inputs.tolist(), data.targets.tolist())):
        query = t - vl - 2
        assert inputs[query] == QUERY and inputs[query + 1] in keys
        key, value = inputs[query + 1], inputs[query + 2 :]
        assert len(value) == vl and all(x in values for x in value)
        # The needle: the only key token before the query, followed by the value.
        before = inputs[:query]
        assert [x for x in before if x in keys] == [key]
        depth = before.index(key)
        assert before[depth + 1 : depth + 1 + vl] == value
        assert all(x in haystack for i, x in enumerate(before) if not depth <= i <= depth + vl)
        # The value is scored token by token after the query key, nothing else.
        scored = [i for i in range(t) if targets[i] != IGNORE]
        assert scored == list(range(query + 1, t - 1))
        assert [targets[i] for i in scored] == value == [inputs[i + 1] for i in scored]
        assert max(targets) < task.output_vocab_size
        slots = query - vl
        assert data.slices["depth"][row] == depth * 10 // slots
        assert data.slices["distance"][row] == query + 1 - (depth + vl)


def test_needle_is_deterministic_by_seed_and_covers_every_depth():
    task = tasks.build("needle", seq_len=200, value_len=2)
    a, b, c = task.generate(300, seed=4), task.generate(300, seed=4), task.generate(300, seed=5)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert all(torch.equal(a.slices[k], b.slices[k]) for k in a.slices)
    assert not torch.equal(a.inputs, c.inputs)
    assert sorted(set(a.slices["depth"].tolist())) == list(range(10))
    assert int((a.targets != IGNORE).sum()) == 300 * 2


def test_needle_length_sweep():
    task = tasks.build("needle", seq_len=32, segment_len=8, test_lengths=[64, 128])
    sweep = task.evaluation_sweep()["seq_len"]
    assert sorted(sweep) == [64, 128]
    assert sweep[128].seq_len == 128 and sweep[128].segment_len == 8 and sweep[128].test_lengths == ()
    assert tasks.build("needle").evaluation_sweep() == {}


@pytest.mark.parametrize(
    "params, words",
    [
        (dict(seq_len=6, value_len=2), ["seq_len", "value_len", "7"]),
        (dict(seq_len=32, test_lengths=[4]), ["test_lengths"]),
        (dict(num_values=1), ["num_values"]),
        (dict(haystack=3), ["haystack"]),
    ],
)
def test_needle_bad_parameters_name_them(params, words):
    with pytest.raises(ConfigError) as err:
        tasks.build("needle", **params)
    assert all(word in str(err.value) for word in words)
