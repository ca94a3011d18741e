"""SequenceModel.generate: prompt in parallel form, then the recurrent form token by token."""

from __future__ import annotations

import pytest
import torch
from layer_cases import kwargs_for

import memzoo
from memzoo.models import SequenceModel
from memzoo.models.generate import next_token

VOCAB = 11


def make_model(layers, **kw):
    torch.manual_seed(0)
    options = {name: kwargs_for(name) for name in set(layers) if kwargs_for(name)}
    kw.setdefault("vocab_size", VOCAB)
    model = SequenceModel(layers=layers, d_model=16, layer_options=options, **kw).eval()
    if model.head_kind == "lm" and kw["vocab_size"]:
        # An untrained model's next token mostly echoes the current one through the
        # residual stream; a small embedding lets the memory (the history) decide it, so a
        # decode that lost its state could not pass the greedy tests by luck.
        with torch.no_grad():
            model.embed.weight.mul_(0.05)
    return model


def greedy_by_rerunning(model, prompt, n):
    """The reference: the full model on the growing sequence, arg-max of the last position."""
    seq = prompt
    with torch.no_grad():
        for _ in range(n):
            logits, _ = model(seq)
            seq = torch.cat((seq, logits[:, -1].argmax(-1, keepdim=True)), dim=1)
    return seq


def sampled_by_rerunning(model, prompt, n, seed, **sampling):
    """The reference for sampling: the full model re-run, the same generator draws."""
    seq, gen = prompt, torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _ in range(n):
            logits, _ = model(seq)
            seq = torch.cat((seq, next_token(logits[:, -1], generator=gen, **sampling)[:, None]), dim=1)
    return seq


def prompt_ids(batch=2, length=5, seed=0):
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", memzoo.layers.names())
def test_greedy_equals_rerunning_the_full_model(name):
    model = make_model([name])
    prompt = prompt_ids()
    out = model.generate(prompt, 9, greedy=True)
    assert out.shape == (2, 14) and out.dtype == torch.long
    assert torch.equal(out[:, :5], prompt)
    assert torch.equal(out, greedy_by_rerunning(model, prompt, 9))


@pytest.mark.parametrize("name", memzoo.layers.names())
def test_sampling_equals_sampling_from_rerunning_the_full_model(name):
    # Sampling an untrained model visits many tokens, so every step's distribution (and so
    # the carried state) must be right, not only its arg-max: one generator, the same draws.
    model = make_model([name])
    prompt = prompt_ids(batch=3, length=4)
    out = model.generate(prompt, 16, temperature=1.5, generator=torch.Generator().manual_seed(9))
    assert torch.equal(out, sampled_by_rerunning(model, prompt, 16, seed=9, temperature=1.5))


def test_greedy_hybrid_stack_with_a_one_token_prompt():
    model = make_model(["attention", "lstm", "deltanet"])
    prompt = prompt_ids(batch=3, length=1)
    assert torch.equal(model.generate(prompt, 12, greedy=True), greedy_by_rerunning(model, prompt, 12))


@pytest.mark.parametrize("name", ["attention", "gru"])
def test_top_k_one_equals_greedy(name):
    model = make_model([name])
    prompt = prompt_ids(batch=3)
    sampled = model.generate(prompt, 10, temperature=0.7, top_k=1, generator=torch.Generator().manual_seed(5))
    assert torch.equal(sampled, model.generate(prompt, 10, greedy=True))


def test_seeded_generator_gives_reproducible_samples():
    model = make_model(["attention"])
    prompt = prompt_ids(batch=2, length=3)
    runs = [
        model.generate(prompt, 30, top_k=5, generator=torch.Generator().manual_seed(s)) for s in (7, 7, 8)
    ]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])  # a near-uniform untrained model: 60 draws differ
    assert int(runs[0].min()) >= 0 and int(runs[0].max()) < VOCAB


def test_next_token_top_k_temperature_and_greedy():
    logits = torch.tensor([[0.0, 3.0, 2.9, -1.0, 1.0]]).expand(2000, -1)
    gen = torch.Generator().manual_seed(0)
    draws = next_token(logits, top_k=2, generator=gen)
    assert set(draws.tolist()) == {1, 2}  # only the two largest logits, both drawn
    assert torch.equal(next_token(logits, greedy=True), torch.ones(2000, dtype=torch.long))
    cold = next_token(logits, temperature=1e-3, generator=gen)
    assert float((cold == 1).float().mean()) > 0.99  # exp(0.1 / 1e-3): practically the arg-max
    hot = next_token(logits, temperature=100.0, generator=gen)
    assert len(set(hot.tolist())) == 5  # flat: every token appears


def test_zero_new_tokens_returns_the_prompt_and_the_module_is_unchanged():
    model = make_model(["attention"]).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prompt = prompt_ids()
    assert torch.equal(model.generate(prompt, 0), prompt)
    model.generate(prompt, 4, generator=torch.Generator().manual_seed(0))
    assert model.training  # generate does not switch modes
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"max_new_tokens": -1}, "max_new_tokens"),
        ({"max_new_tokens": 2.0}, "max_new_tokens"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"greedy": "yes"}, "greedy"),
        ({"generator": 3}, "generator"),
        ({"prompt": torch.zeros(2, 3)}, "integer token ids"),
        ({"prompt": torch.zeros(3, dtype=torch.long)}, "integer token ids"),
        ({"prompt": torch.zeros(2, 0, dtype=torch.long)}, "at least one"),
        ({"prompt": torch.full((1, 2), VOCAB)}, r"\[0, 11\)"),
    ],
)
def test_bad_arguments_are_clear_value_errors(kwargs, match):
    model = make_model(["gru"])
    args = {"prompt": prompt_ids(), "max_new_tokens": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        model.generate(**args)


@pytest.mark.parametrize(
    "kw",
    [
        {"head": "classify", "num_outputs": 3},
        {"vocab_size": None, "input_dim": 4, "num_outputs": 4},
        {"num_outputs": VOCAB + 1},  # could sample a token that is no input
    ],
)
def test_a_model_that_is_not_a_token_language_model_is_refused(kw):
    model = make_model(["gru"], **kw)
    with pytest.raises(ValueError, match="generate"):
        model.generate(prompt_ids(), 3)
