"""Synthetic tasks: each generator's invariants (scored targets recoverable from the inputs
exactly as the task claims, nothing else scored), determinism, parameter errors, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from memzoo import tasks
from memzoo.cli.main import app
from memzoo.errors import ConfigError
from memzoo.tasks._sampling import sample_distinct, sample_weighted_distinct

IGNORE = -100
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Small settings for every task, used by the registry-wide tests.
SMALL = {
    "mqar": dict(vocab_size=128, seq_len=64, num_kv_pairs=8),
    "copy": dict(vocab_size=16, seq_len=48, copy_len=12),
    "selective_copy": dict(vocab_size=16, seq_len=48, num_tokens_to_copy=8),
    "noisy_recall": dict(vocab_size=64, seq_len=64, num_kv_pairs=6, noise_vocab_size=8),
    "fuzzy_recall": dict(vocab_size=64, seq_len=96, num_kv_pairs=6),
    "induction": dict(vocab_size=32, seq_len=48),
}

# Generated memory tasks (the registry-wide tests below); tasks on fixed data sets override
# Task.split and have their own tests.
SYNTHETIC = [name for name in tasks.names() if tasks.get(name).split is tasks.Task.split]


def small(name):
    return tasks.build(name, **SMALL.get(name, {}))


def rows(data):
    """Per example: (inputs list, targets list)."""
    return zip(data.inputs.tolist(), data.targets.tolist())


# ---- registry-wide: shapes, vocabularies, determinism --------------------------------------


@pytest.mark.parametrize("name", SYNTHETIC)
def test_shapes_vocab_and_slices(name):
    task = small(name)
    data = task.generate(num_examples=5, seed=3)
    assert data.inputs.shape == data.targets.shape == (5, task.seq_len)
    assert data.inputs.dtype == data.targets.dtype == torch.long
    assert 0 <= int(data.inputs.min()) and int(data.inputs.max()) < task.input_vocab_size
    scored = data.targets[data.targets != IGNORE]
    assert scored.numel() > 0 and int(scored.min()) >= 0
    assert int(scored.max()) < task.output_vocab_size <= task.input_vocab_size
    assert set((data.targets == IGNORE).unique().tolist()) <= {True, False}
    assert data.slices, "every example carries slice labels"
    for labels in data.slices.values():
        assert labels.shape == (5,) and labels.dtype == torch.long
    assert task.head == "lm" and tasks.get(name).name == name


@pytest.mark.parametrize("name", SYNTHETIC)
def test_same_seed_same_data_other_seed_other_data(name):
    task = small(name)
    rng_before = torch.get_rng_state()
    a, b, c = task.generate(4, seed=11), task.generate(4, seed=11), task.generate(4, seed=12)
    assert torch.equal(torch.get_rng_state(), rng_before), "must not use the global RNG"
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert all(torch.equal(a.slices[key], b.slices[key]) for key in a.slices)
    assert not torch.equal(a.inputs, c.inputs)
    # A prefix of a bigger batch is not promised, but zero examples must work.
    assert task.generate(0, seed=1).inputs.shape == (0, task.seq_len)


# ---- mqar -------------------------------------------------------------------------------------


@st.composite
def mqar_params(draw):
    k = draw(st.integers(1, 8))
    t = draw(st.integers(4 * k, 4 * k + 40))
    v = draw(st.integers(t + 1, t + 60))
    a = draw(st.sampled_from([0.01, 0.1, 0.5, 1.0, 2.0, 500.0]))
    return dict(vocab_size=v, seq_len=t, num_kv_pairs=k, power_a=a)


@SETTINGS
@given(params=mqar_params(), n=st.integers(1, 6), seed=st.integers(0, 2**31))
def test_mqar_invariants(params, n, seed):
    task = tasks.build("mqar", **params)
    v, k, t = params["vocab_size"], params["num_kv_pairs"], params["seq_len"]
    data = task.generate(n, seed)
    assert data.slices["num_kv_pairs"].tolist() == [k] * n
    for inputs, targets in rows(data):
        keys, values = inputs[0 : 2 * k : 2], inputs[1 : 2 * k : 2]
        assert all(1 <= key < v // 2 for key in keys) and len(set(keys)) == k
        assert all(v // 2 <= value < v for value in values) and len(set(values)) == k
        assert all(1 <= tok < v for tok in inputs)
        scored = [pos for pos in range(t) if targets[pos] != IGNORE]
        assert len(scored) == k
        for pos in scored:
            assert pos >= 2 * k and (pos - 2 * k) % 2 == 0
            key = inputs[pos]
            assert key in keys, "a scored query's key appeared in the pairs region"
            assert targets[pos] == values[keys.index(key)], "with exactly the labelled value"
        assert sorted(inputs[pos] for pos in scored) == sorted(keys), "each key queried once"


def test_mqar_power_law_puts_queries_early():
    def mean_slot(power_a):
        task = tasks.build("mqar", vocab_size=256, seq_len=200, num_kv_pairs=4, power_a=power_a)
        data = task.generate(2000, seed=0)
        pos = (data.targets != IGNORE).nonzero()[:, 1].double()
        return float(((pos - 8) / 2).mean())  # query slot within the region (96 slots)

    assert abs(mean_slot(1.0) - 47.5) < 2.0  # a = 1: uniform slots
    assert mean_slot(0.01) < 30.0  # the default a = 0.01 favours short gaps


def test_weighted_sampler_matches_weights_and_distinct_sampler_is_uniform():
    gen = torch.Generator().manual_seed(0)
    draws = sample_weighted_distinct(torch.tensor([1.0, 2.0, 3.0, 4.0]).log(), 40000, 1, gen)
    freq = torch.bincount(draws[:, 0], minlength=4).double() / 40000
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64), atol=0.01)
    subset = sample_distinct(40000, 3, 10, 15, gen)
    assert bool((subset.sort(dim=1).values.diff(dim=1) > 0).all())
    for column in range(3):  # each position uniform over the pool: the order is shuffled too
        freq = torch.bincount(subset[:, column] - 10, minlength=5).double() / 40000
        assert torch.allclose(freq, torch.full((5,), 0.2, dtype=torch.float64), atol=0.01)


# ---- copy and selective_copy ------------------------------------------------------------------


@SETTINGS
@given(
    length=st.integers(1, 12),
    extra=st.integers(0, 20),
    v=st.integers(3, 20),
    seed=st.integers(0, 999),
)
def test_copy_invariants(length, extra, v, seed):
    t = 2 * length + extra
    data = tasks.build("copy", vocab_size=v, seq_len=t, copy_len=length).generate(4, seed)
    assert data.slices["copy_len"].tolist() == [length] * 4
    for inputs, targets in rows(data):
        span = inputs[:length]
        assert all(2 <= tok < v for tok in span)
        assert inputs[length : t - length] == [0] * (t - 2 * length)  # blanks
        assert inputs[t - length] == 1  # the delimiter
        assert inputs[t - length + 1 :] == span[:-1]  # reproduction read back (teacher forcing)
        assert targets[t - length :] == span  # the delimiter predicts x1, each xi predicts xi+1
        assert targets[: t - length] == [IGNORE] * (t - length)


@SETTINGS
@given(k=st.integers(1, 10), extra=st.integers(0, 30), v=st.integers(3, 20), seed=st.integers(0, 999))
def test_selective_copy_invariants(k, extra, v, seed):
    t = 2 * k + extra
    task = tasks.build("selective_copy", vocab_size=v, seq_len=t, num_tokens_to_copy=k)
    data = task.generate(4, seed)
    assert data.slices["num_tokens_to_copy"].tolist() == [k] * 4
    for (inputs, targets), lag in zip(rows(data), data.slices["lag"].tolist()):
        region = inputs[: t - k]
        content_pos = [pos for pos, tok in enumerate(region) if tok != 0]
        content = [region[pos] for pos in content_pos]
        assert len(content) == k and all(2 <= tok < v for tok in content)
        assert inputs[t - k] == 1 and inputs[t - k + 1 :] == content[:-1]
        assert targets[t - k :] == content and targets[: t - k] == [IGNORE] * (t - k)
        assert lag == (t - k) - content_pos[0]


# ---- induction --------------------------------------------------------------------------------


@SETTINGS
@given(t=st.integers(3, 60), v=st.integers(3, 40), seed=st.integers(0, 999))
def test_induction_invariants(t, v, seed):
    data = tasks.build("induction", vocab_size=v, seq_len=t).generate(6, seed)
    for (inputs, targets), distance in zip(rows(data), data.slices["distance"].tolist()):
        assert all(1 <= tok < v for tok in inputs)
        trigger = inputs[-1]
        earlier = [pos for pos in range(t - 1) if inputs[pos] == trigger]
        assert len(earlier) == 1 and earlier[0] <= t - 3  # A occurs once before, then B
        first = earlier[0]
        assert targets[-1] == inputs[first + 1] != trigger
        assert targets[:-1] == [IGNORE] * (t - 1)
        assert distance == t - 1 - first


# ---- noisy_recall and fuzzy_recall --------------------------------------------------------------


@st.composite
def noisy_params(draw):
    k = draw(st.integers(1, 6))
    frac = draw(st.sampled_from([0.0, 0.1, 0.3, 0.5]))
    t = draw(st.integers(int((4 * k + 2) / (1 - frac)) + 2, 90))
    v = draw(st.integers(2 * k + 2, 40))
    return dict(
        vocab_size=v, seq_len=t, num_kv_pairs=k, frac_noise=frac, noise_vocab_size=draw(st.integers(1, 5))
    )


@SETTINGS
@given(params=noisy_params(), seed=st.integers(0, 999))
def test_noisy_recall_invariants(params, seed):
    task = tasks.build("noisy_recall", **params)
    v, k, t = params["vocab_size"], params["num_kv_pairs"], params["seq_len"]
    assert task.input_vocab_size == v + params["noise_vocab_size"] and task.output_vocab_size == v
    data = task.generate(5, seed)
    expected_noise = round(params["frac_noise"] * (t + 1))
    for (inputs, targets), num_noise in zip(rows(data), data.slices["num_noise_tokens"].tolist()):
        noise = [pos for pos, tok in enumerate(inputs) if tok >= v]
        assert num_noise == len(noise) and abs(len(noise) - expected_noise) <= 1
        stored, expected, pairs = {}, [IGNORE] * t, 0
        for pos, tok in enumerate(inputs):
            if not 1 <= tok < v // 2:
                continue  # noise, or a value (checked with its key)
            if pos + 1 < t:
                assert v // 2 <= inputs[pos + 1] < v, "a key's value follows it directly"
            if pairs < k:  # the K writes come first, keys distinct
                assert tok not in stored
                stored[tok] = inputs[pos + 1]
            else:
                assert tok in stored, "every query's key was written before"
                expected[pos] = stored[tok]
                if pos + 1 < t:
                    assert inputs[pos + 1] == stored[tok]
            pairs += 1
        assert len(stored) == k and targets == expected


@st.composite
def fuzzy_params(draw):
    k = draw(st.integers(1, 5))
    a, b = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    t = draw(st.integers(2 * k * (a + b), 2 * k * (a + b) + 30))
    v = draw(st.integers(4 * k + 2, 4 * k + 30))
    return dict(vocab_size=v, seq_len=t, num_kv_pairs=k, max_key_len=a, max_value_len=b)


def parse_runs(inputs, v):
    """Maximal runs of key tokens / value tokens: [(is_key, start, tokens)]."""
    runs = []
    for pos, tok in enumerate(inputs):
        is_key = tok < v // 2
        if runs and runs[-1][0] == is_key:
            runs[-1][2].append(tok)
        else:
            runs.append((is_key, pos, [tok]))
    return runs


@SETTINGS
@given(params=fuzzy_params(), seed=st.integers(0, 999))
def test_fuzzy_recall_invariants(params, seed):
    task = tasks.build("fuzzy_recall", **params)
    v, k, t = params["vocab_size"], params["num_kv_pairs"], params["seq_len"]
    a, b = params["max_key_len"], params["max_value_len"]
    data = task.generate(5, seed)
    for (inputs, targets), num_queries in zip(rows(data), data.slices["num_queries"].tolist()):
        assert all(1 <= tok < v for tok in inputs)
        runs = parse_runs(inputs, v)
        assert runs[0][0], "the stream starts with a key"
        pairs = [(runs[i], runs[i + 1] if i + 1 < len(runs) else None) for i in range(0, len(runs), 2)]
        stored = {}
        for key_run, value_run in pairs[:k]:  # the writes
            key, value = tuple(key_run[2]), tuple(value_run[2])
            assert 1 <= len(key) <= a and 1 <= len(value) <= b
            stored[key] = value
        assert len(stored) == k
        for x in stored:  # prefix-free: no key is another's beginning
            assert not any(y != x and y[: len(x)] == x for y in stored)
        expected, queries = [IGNORE] * t, 0
        for key_run, value_run in pairs[k:]:
            key = tuple(key_run[2])
            if key not in stored:  # only the last run may be a cut-off key
                assert value_run is None and any(x[: len(key)] == key for x in stored)
                continue
            value, last_key_pos = stored[key], key_run[1] + len(key) - 1
            got = value_run[2] if value_run else []
            assert tuple(got) == value[: len(got)], "a query's value is the stored one"
            assert value_run is None or len(got) == len(value) or last_key_pos + len(got) == t - 1
            for j, pos in enumerate(range(last_key_pos, last_key_pos + len(value))):
                if pos < t:
                    expected[pos] = value[j]
            queries += 1
        assert targets == expected and num_queries == queries


# ---- parameter errors, registry, CLI ---------------------------------------------------------


@pytest.mark.parametrize(
    "name, params, words",
    [
        ("mqar", dict(num_kv_pairs=100), ["num_kv_pairs", "seq_len"]),
        ("mqar", dict(vocab_size=200), ["vocab_size", "seq_len"]),
        ("mqar", dict(power_a=0), ["power_a"]),
        ("mqar", dict(num_kv_pairs="many"), ["num_kv_pairs"]),
        ("mqar", dict(num_kv_pair=4), ["num_kv_pair", "num_kv_pairs"]),
        ("copy", dict(seq_len=10, copy_len=6), ["copy_len", "seq_len"]),
        ("selective_copy", dict(seq_len=10, num_tokens_to_copy=6), ["num_tokens_to_copy"]),
        ("selective_copy", dict(vocab_size=2), ["vocab_size"]),
        ("noisy_recall", dict(frac_noise=0.9), ["frac_noise", "num_kv_pairs"]),
        ("noisy_recall", dict(frac_noise=1.0), ["frac_noise"]),
        ("noisy_recall", dict(vocab_size=10), ["vocab_size", "num_kv_pairs"]),
        ("fuzzy_recall", dict(vocab_size=20), ["vocab_size", "num_kv_pairs"]),
        ("fuzzy_recall", dict(seq_len=64), ["seq_len", "max_key_len"]),
        ("induction", dict(seq_len=2), ["seq_len"]),
    ],
)
def test_bad_parameters_raise_one_line_config_error_naming_them(name, params, words):
    with pytest.raises(ConfigError) as err:
        tasks.build(name, **params)
    message = str(err.value)
    assert "\n" not in message and name in message
    for word in words:
        assert word in message


def test_unknown_task_lists_registered_names_and_bad_generate_args():
    with pytest.raises(ConfigError, match="mqar"):
        tasks.build("mqr")
    task = tasks.build("mqar")
    with pytest.raises(ConfigError, match="num_examples"):
        task.generate(-1, seed=0)
    with pytest.raises((AttributeError, TypeError, ValueError)):
        task.seq_len = 8  # frozen: a task is an immutable description


def test_describe_lists_parameters_with_defaults():
    info = tasks.describe("mqar")
    params = info["parameters"]
    assert info["name"] == "mqar" and info["description"] and info["head"] == "lm"
    assert params["vocab_size"]["default"] == 8192 and params["seq_len"]["default"] == 256
    assert params["num_kv_pairs"]["default"] == 16 and params["power_a"]["default"] == 0.01
    assert set(tasks.names()) >= {
        "mqar",
        "copy",
        "selective_copy",
        "noisy_recall",
        "fuzzy_recall",
        "induction",
    }


def test_cli_tasks_table_and_json():
    runner = CliRunner()
    result = runner.invoke(app, ["tasks"])
    assert result.exit_code == 0, result.output
    assert "mqar" in result.output and "num_kv_pairs=16" in result.output
    result = runner.invoke(app, ["tasks", "--json"])
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.output.strip().splitlines()]
    assert [entry["name"] for entry in entries] == tasks.names()
    assert entries[tasks.names().index("mqar")]["parameters"]["power_a"]["default"] == 0.01
