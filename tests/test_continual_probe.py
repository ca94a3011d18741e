"""The continual probe: two tasks each learnable after the other, its metrics (undefined rather
than zero when a phase is not learned), and the remedies against their published definitions."""

from __future__ import annotations

import pytest
import torch

from memzoo import tasks
from memzoo.errors import ConfigError
from memzoo.models import SequenceModel
from memzoo.tasks.base import IGNORE_INDEX, TaskData
from memzoo.train import fit
from memzoo.train.config import build_config
from memzoo.train.objectives import training_loss
from memzoo.train.recipes.continual import continual_metrics
from memzoo.train.recipes.continual_remedies import EWC, Replay, fisher_diagonal, replay_count

# The default probe (two sets of 64 facts, B in its own ids) on a small GRU: about 3 s a run.
PROBE = {
    "model": {"layers": ["gru"], "d_model": 64},
    "train": {"num_train": 512, "num_validation": 128, "num_test": 256, "epochs": 6, "checkpoint": False},
}
# Too small to learn anything: for the bit-for-bit comparisons and the undefined retention.
TINY = {
    "model": {"layers": ["gru"], "d_model": 16},
    "train": {"num_train": 64, "num_validation": 32, "num_test": 32, "epochs": 2, "checkpoint": False},
}


def run(base: dict, **task) -> object:
    return fit({**base, "task": {"name": "continual", **task}}, progress=False)


def test_each_task_is_learned_after_the_other_and_the_metrics_follow_their_definitions():
    result = run(PROBE, b_alone=True)
    m = result.metrics
    assert m["accuracy_a_before"] >= 0.95 and m["accuracy_b"] >= 0.95  # A before B; B after A
    before, after, b = m["accuracy_a_before"], m["accuracy_a_after"], m["accuracy_b"]
    assert m["plasticity"] == b and m["accuracy"] == pytest.approx((after + b) / 2)  # GEM's ACC
    assert m["retention"] == pytest.approx(after / before) and m["forgetting"] == pytest.approx(
        before - after
    )
    assert m["continual_score"] == pytest.approx((m["retention"] + b) / 2)
    assert m["intransigence"] == pytest.approx(m["accuracy_b_alone"] - b)  # Chaudhry et al. 2018
    assert m["accuracy_a_after_own_outputs"] >= after and "continual_undefined" not in m
    assert m["steps_a"] > 0 and m["steps_b"] > 0 and m["steps_b_alone"] > 0
    # ... and the other way round: B's facts first, then A's.
    swapped = run(PROBE, task_a=tasks.continual.DEFAULT_B, task_b=tasks.continual.DEFAULT_A).metrics
    assert swapped["accuracy_a_before"] >= 0.95 and swapped["accuracy_b"] >= 0.95


def test_retention_is_undefined_with_its_reason_when_a_phase_is_not_learned():
    scores = {"accuracy_a_before": 0.9, "accuracy_a_after": 0.0, "accuracy_b": 0.26}
    m = continual_metrics(scores, threshold=0.5)
    assert m["retention"] is None and m["forgetting"] is None and m["continual_score"] is None
    assert "task B was not learned" in m["continual_undefined"] and m["plasticity"] == 0.26
    m = continual_metrics({**scores, "accuracy_a_before": 0.2, "accuracy_b": 1.0}, threshold=0.5)
    assert m["retention"] is None and "task A was not learned" in m["continual_undefined"]
    m = continual_metrics({**scores, "accuracy_b": 1.0}, threshold=0.5)
    assert m["retention"] == 0.0 and m["forgetting"] == 0.9 and "continual_undefined" not in m
    # A run that learns nothing stores None (no number the report could average), not 0.
    stored = run(TINY).metrics
    assert stored["retention"] is None and stored["continual_undefined"].startswith("task A was not learned")


def test_b_in_its_own_token_ids_shares_no_id_with_a():
    joint = tasks.build("continual")
    a, b = joint.phases
    data_a, data_b = a.generate(50, 0), b.generate(50, 0)
    assert int(data_a.inputs.max()) < a.input_vocab_size <= int(data_b.inputs.min())
    scored_b = data_b.targets[data_b.targets != IGNORE_INDEX]
    assert int(scored_b.min()) >= a.input_vocab_size and joint.output_vocab_size == b.output_vocab_size
    inner = b.inner.generate(50, 0)  # the same examples, moved up by A's vocabulary
    assert torch.equal(data_b.inputs, inner.inputs + a.input_vocab_size)
    assert b.training_set_metrics(data_b) == b.inner.training_set_metrics(inner)
    shared = tasks.build("continual", b_tokens="shared")  # both keep their ids: one vocabulary
    shared_a, shared_b = shared.phases
    assert shared_a == a and shared_b == b.inner and shared.input_vocab_size == a.input_vocab_size


def test_a_remedy_and_its_parameters_are_checked_in_one_line_naming_the_field():
    with pytest.raises(ConfigError) as err:
        build_config(overrides=["task.name=continual", "task.remedy=lwf"])
    message = str(err.value)
    assert "\n" not in message and "remedy" in message
    assert all(word in message for word in ("'none'", "'replay'", "'ewc'"))
    with pytest.raises(ConfigError, match="ewc_lambda applies to remedy 'ewc'"):
        build_config(overrides=["task.name=continual", "task.remedy=replay", "task.ewc_lambda=5"])
    with pytest.raises(ConfigError, match="replay_fraction"):
        build_config(overrides=["task.name=continual", "task.remedy=replay", "task.replay_fraction=1"])


def test_ewc_penalty_is_the_hand_computation():
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.bias.fill_(0.5)
    anchor = {"weight": torch.tensor([[0.0, 1.0]]), "bias": torch.tensor([1.5])}
    fisher = {"weight": torch.tensor([[2.0, 3.0]]), "bias": torch.tensor([4.0])}
    # (λ/2) Σ F (θ - θ*)² = 10/2 * (2*1 + 3*1 + 4*1) = 45
    penalty = EWC(fisher, anchor, lam=10.0).penalty(model)
    assert penalty.item() == pytest.approx(45.0)
    penalty.backward()  # its gradient: λ F (θ - θ*)
    assert torch.allclose(model.weight.grad, torch.tensor([[20.0, 30.0]]))
    assert EWC(fisher, anchor, lam=0.0).penalty(model).item() == 0.0


def test_fisher_is_the_mean_squared_gradient_of_each_example():
    torch.manual_seed(0)
    model = SequenceModel(layers=["gru"], d_model=8, vocab_size=12, head="lm")
    data = tasks.build("memorization", num_facts=6, num_values=5, seq_len=4).generate(5, seed=0)

    def step(batch):
        loss = training_loss(model, *batch)
        loss.backward()
        return loss

    fisher = fisher_diagonal(model, step, data.inputs, data.targets)
    params = dict(model.named_parameters())
    expected = {name: torch.zeros_like(p) for name, p in params.items()}
    for n in range(5):
        grads = torch.autograd.grad(
            training_loss(model, data.inputs[n : n + 1], data.targets[n : n + 1]),
            list(params.values()),
            allow_unused=True,
        )
        for name, g in zip(params, grads):
            expected[name] += 0 if g is None else g.pow(2) / 5
    for name in params:
        assert (fisher[name] >= 0).all() and torch.allclose(fisher[name], expected[name], atol=1e-7)
    assert all(p.grad is None for p in model.parameters())  # nothing left for the next step
    assert fisher["embed.weight"][0].abs().sum() == 0  # token 0 is never read: no importance


def test_replay_batches_hold_the_stated_fraction_of_a_examples_from_the_buffer():
    train_a = TaskData(torch.arange(1, 41).reshape(10, 4), torch.full((10, 4), 7))
    replay = Replay(train_a, size=6, fraction=0.25, seed=0)
    assert len(replay.inputs) == 6 and len({tuple(r) for r in replay.inputs.tolist()}) == 6
    buffer = {tuple(r) for r in replay.inputs.tolist()}
    b_batches = [
        (torch.full((12, 6), 99), torch.full((12, 6), 98)),
        (torch.full((5, 6), 99), torch.full((5, 6), 98)),
    ]
    for (b_in, _), (inputs, targets) in zip(b_batches, replay.mix(b_batches)):
        k = replay_count(len(b_in), 0.25)
        assert len(inputs) == len(b_in) + k and k / len(inputs) == pytest.approx(0.25, abs=0.5 / len(inputs))
        assert torch.equal(inputs[: len(b_in)], b_in)  # B's rows first, unchanged
        a_rows = inputs[len(b_in) :]
        assert all(tuple(r[:4]) in buffer for r in a_rows.tolist())  # from the buffer, padded to 6
        assert (a_rows[:, 4:] == 0).all() and (targets[len(b_in) :, 4:] == IGNORE_INDEX).all()
    assert replay_count(32, 0.5) == 32  # half and half: Chaudhry et al. 2019's ER
    same = list(Replay(train_a, size=6, fraction=0.0, seed=0).mix(b_batches))
    assert all(x is b[0] and y is b[1] for (x, y), b in zip(same, b_batches))


def test_no_remedy_equals_ewc_with_lambda_0_and_replay_with_fraction_0_bit_for_bit():
    plain = run(TINY)
    for remedy in ({"remedy": "ewc", "ewc_lambda": 0.0}, {"remedy": "replay", "replay_fraction": 0.0}):
        other = run(TINY, **remedy)
        weights, reference = other.model.state_dict(), plain.model.state_dict()
        assert all(torch.equal(weights[k], reference[k]) for k in reference), remedy
        assert [p["train_loss"] for p in other.record.curve] == [p["train_loss"] for p in plain.record.curve]
    # A remedy that does something changes the weights.
    replayed = run(TINY, remedy="replay").model.state_dict()
    assert not all(torch.equal(replayed[k], v) for k, v in plain.model.state_dict().items())


def test_the_longterm_suite_runs_every_continual_layer_with_each_remedy_and_two_seeds():
    from memzoo.sweep.suites.longterm import LONG_TERM_LAYERS, SEEDS, continual_configs

    configs = continual_configs()
    cells = {(c.model.layers[1], c.task.build().remedy, c.train.seed) for c in configs}
    assert cells == {(x, r, s) for x in LONG_TERM_LAYERS for r in ("none", "replay", "ewc") for s in SEEDS}
    joint = configs[0].task.build()
    a, b = joint.phases
    assert joint.b_tokens == "own" and a.name == b.name == "memorization" and a.map_seed != b.inner.map_seed
