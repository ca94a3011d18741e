"""Translation: the toy grammar, Seq2Seq (step decoding == teacher forcing, padding masked),
greedy and beam search (beam 1 == greedy, exhaustive beam == brute force), training to
chrF >= 90 on the grammar, the saved checkpoint, the config and the CLI."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

import memzoo
from memzoo import tasks
from memzoo.cli.main import app
from memzoo.errors import ConfigError
from memzoo.metrics.text import chrf
from memzoo.models import Seq2Seq
from memzoo.models.seq2seq import reverse_tokens
from memzoo.models.seq2seq_decode import beam_search, greedy_decode
from memzoo.tasks._toy_grammar import OBJECT, SUBJECT, ToyGrammar
from memzoo.train import fit
from memzoo.train.run_kinds import translation_config_from_run
from memzoo.train.seq2seq_config import build_translation_config
from memzoo.train.seq2seq_loading import load_translator

TINY = ["model.d_model=32", "train.num_train=2000", "train.num_test=200", "train.epochs=12"]


# ---- the grammar and the task ---------------------------------------------------------------


def test_grammar_reorders_marks_case_and_agrees():
    grammar = ToyGrammar(0)
    sources, targets = grammar.pairs(300, torch.Generator().manual_seed(4))
    verb_forms = {s: t for s, t in zip(grammar.source["verb"], grammar.target["verb"])}
    for source, target in zip(sources, targets):
        words, out = source.split(), target.split()
        assert out.count(SUBJECT) == 1 and out.count(OBJECT) == 1 and out.index(SUBJECT) < out.index(OBJECT)
        verb = next(w for w in words if w.rstrip("s") in verb_forms)
        singular_subject = verb.endswith("s")
        assert out[-1] == verb_forms[verb.rstrip("s")] + ("ta" if singular_subject else "ri")
    assert ToyGrammar(0).pairs(5, torch.Generator().manual_seed(1)) == grammar.pairs(
        5, torch.Generator().manual_seed(1)
    )
    assert ToyGrammar(1).target != grammar.target


def test_translate_task_tensors_and_split():
    task = tasks.build("translate", seq_len=12)
    split = task.translation_split(num_train=50, num_validation=10, num_test=20, seed=0)
    assert split.train.inputs.shape == (50, 12) and split.test.data.targets.shape == (20, 12)
    for row, reference in zip(split.test.data.targets.tolist(), split.test.references):
        ids = [i for i in row if i != -100]
        assert ids[-1] == 3 and task.target_tokenizer.decode(ids) == reference  # ... then <eos>
    with pytest.raises(ConfigError, match="memzoo translate"):
        task.split(10, 10, seed=0)  # the sequence-model trainer is pointed at the right command
    with pytest.raises(ConfigError, match="seq_len=4 is too short for 5 of 5"):
        tasks.build("translate", seq_len=4).generate(5, seed=0)


def test_user_pairs_file_is_split_and_long_pairs_dropped(tmp_path):
    path = tmp_path / "pairs.tsv"
    lines = [f"s{i} a b\tt{i} x y z\tCC-BY" for i in range(30)] + ["one two three four five six seven\tshort"]
    path.write_text("\n".join(lines) + "\n")
    task = tasks.build("translate", path=str(path), tokenizer="word", seq_len=5, test_fraction=0.2)
    split = task.translation_split(num_train=40, num_validation=100, num_test=100, seed=0)
    assert len(split.train) == 40 and len(split.test.data) + task.dropped_pairs["test"] == 6  # 20% of 31
    assert task.dropped_pairs["train"] + task.dropped_pairs["test"] == 1
    assert not set(split.test.sources) & {
        task.source_tokenizer.decode(r) for r in split.train.inputs.tolist()
    }
    assert all(len(s.split()) == 3 for s in split.test.sources)  # the 7-word source never fits in 5


# ---- the model ---------------------------------------------------------------------------


def test_reverse_tokens_reverses_real_tokens_only():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    lengths = torch.tensor([3, 2])
    assert reverse_tokens(x, lengths).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]
    assert torch.equal(reverse_tokens(reverse_tokens(x, lengths), lengths), x)


def _model(score="dot", enc=("lstm",), dec=("lstm",), seed=0, vocab=(20, 15)):
    torch.manual_seed(seed)
    return Seq2Seq(
        src_vocab_size=vocab[0],
        tgt_vocab_size=vocab[1],
        d_model=16,
        encoder_layers=list(enc),
        decoder_layers=list(dec),
        num_heads=2,
        score=score,
    ).eval()


def _batch():
    gen = torch.Generator().manual_seed(0)
    src = torch.randint(4, 20, (3, 7), generator=gen)
    src[0, 5:] = 0
    tgt = torch.randint(4, 15, (3, 6), generator=gen)
    tgt[:, -1] = 3
    return src, tgt


@pytest.mark.parametrize("score", ["dot", "additive"])
@pytest.mark.parametrize("layers", [("lstm",), ("attention", "gru")])
def test_step_decoding_equals_teacher_forcing_and_padding_is_masked(score, layers):
    model = _model(score, enc=layers, dec=layers)
    src, tgt = _batch()
    with torch.no_grad():
        memory = model.encode(src)
        tgt_in = model.decoder_inputs(tgt)
        whole, _ = model.decode(tgt_in, memory)
        state, steps = None, []
        for t in range(tgt_in.shape[1]):
            out, state = model.decode(tgt_in[:, t : t + 1], memory, state)
            steps.append(out)
        assert torch.allclose(torch.cat(steps, 1), whole, atol=1e-5)
        padded = torch.cat((src, torch.zeros(3, 4, dtype=torch.long)), dim=1)  # more padding
        assert torch.allclose(model(padded, tgt), model(src, tgt), atol=1e-5)
        weights = model.decoder[0].cross.weights(torch.randn(3, 2, 16), memory.kv[0])
        assert float(weights[0, :, :, 5:].abs().max()) == 0.0  # nothing on padded source
        assert torch.allclose(weights.sum(-1), torch.ones(3, 2, 2))


@pytest.mark.parametrize("score", ["dot", "additive"])
def test_beam_one_equals_greedy(score):
    src, _ = _batch()
    for seed in range(3):
        model = _model(score, seed=seed)
        assert beam_search(model, src, beam_size=1, max_len=12) == greedy_decode(model, src, max_len=12)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_exhaustive_beam_finds_the_brute_force_best(length_penalty):
    """With a beam as wide as every hypothesis, beam search must return the best sequence by
    length-normalised log-probability among all of them (scored by teacher forcing)."""
    model = _model(vocab=(20, 6), seed=3)  # 6 target tokens: pad, unk, bos, eos and 2 words
    src, _ = _batch()
    max_len, vocab = 3, 6
    got = beam_search(model, src, beam_size=vocab**max_len, max_len=max_len, length_penalty=length_penalty)
    for row in range(src.shape[0]):
        best, best_score = None, float("-inf")
        for length in range(1, max_len + 1):
            for seq in itertools.product(range(vocab), repeat=length):
                if 3 in seq[:-1] or (length < max_len and seq[-1] != 3):
                    continue  # <eos> ends a hypothesis; shorter ones must end with it
                tgt = torch.tensor([seq])
                with torch.no_grad():
                    logp = F.log_softmax(model(src[row : row + 1], tgt)[0], -1)
                total = float(logp[torch.arange(length), tgt[0]].sum())
                if total / length**length_penalty > best_score:
                    best, best_score = list(seq), total / length**length_penalty
        expected = best[: best.index(3)] if 3 in best else best
        assert got[row] == [i for i in expected if i != 0]


# ---- training ----------------------------------------------------------------------------


@pytest.mark.slow
def test_translation_reaches_chrf_90_and_the_checkpoint_translates(tmp_path):
    cfg = build_translation_config({}, TINY + ["train.target_chrf=95", f"train.out_dir={tmp_path}"])
    result = fit(cfg, progress=False)
    metrics = result.metrics
    assert metrics["chrf"] >= 90, metrics
    assert metrics["chrf"] > metrics["gloss_chrf"] + 30 and metrics["identity_chrf"] < 15
    assert metrics["bleu"] > 50 and result.record.status == "completed"

    task = result.task
    split = task.translation_split(2000, 300, 200, seed=0)
    translator = load_translator(result.checkpoint_dir)
    greedy = translator.translate(split.test.sources)
    assert chrf(greedy, split.test.references) == pytest.approx(metrics["chrf"])
    assert translator.translate(split.test.sources[:40], beam_size=1) == greedy[:40]
    beam = translator.translate(split.test.sources, beam_size=4)
    assert chrf(beam, split.test.references) >= 90


@pytest.mark.slow
def test_additive_score_trains_too():
    cfg = build_translation_config(
        {},
        [
            "model.d_model=32",
            "model.score=additive",
            "train.num_train=2000",
            "train.num_test=100",
            "train.epochs=12",
            "train.target_chrf=80",
            "train.checkpoint=false",
        ],
    )
    result = fit(cfg, progress=False)
    curve = result.record.curve
    assert curve[-1]["train_loss"] < 0.5 * curve[0]["train_loss"]
    assert result.metrics["validation"]["chrf"] >= 80  # the target stops the run on validation
    assert result.metrics["chrf"] >= 75 > result.metrics["gloss_chrf"] + 20  # test: scored once


# ---- config and CLI ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.scor=dot", r"model\.scor: Extra inputs"),
        ("model.score=cosine", r"model\.score"),
        ("task.name=mqar", "needs task 'translate'"),
        ("task.seq_len=1", r"seq_len"),
        ("model.encoder_layers=[lstmm]", "unknown layer 'lstmm'"),
        ("train.target_chrf=120", r"train\.target_chrf"),
    ],
)
def test_bad_config_is_named(override, message):
    with pytest.raises(ConfigError, match=message):
        build_translation_config({}, [override])


def test_run_config_maps_to_a_translation_config():
    from memzoo.train.config import build_config

    run = build_config(
        {},
        [
            "task.name=translate",
            "model.layers=[gru]",
            "model.d_model=32",
            "train.target_accuracy=0.9",
            "train.epochs=3",
        ],
    )
    cfg = translation_config_from_run(run)
    assert cfg.model.encoder_layers == cfg.model.decoder_layers == ["gru"]
    assert cfg.train.target_chrf == pytest.approx(90) and cfg.train.epochs == 3


def test_a_translate_run_config_gives_a_run_result(tmp_path):
    """What ``memzoo.fit`` returns for a ``RunConfig`` whose task is ``translate``."""
    from memzoo.train import RunResult
    from memzoo.train.config import build_config

    run = build_config(
        {},
        [
            "task.name=translate",
            "model.layers=[gru]",
            "model.d_model=16",
            "train.epochs=1",
            "train.num_train=64",
            "train.num_test=16",
            f"train.out_dir={tmp_path}",
        ],
    )
    result = memzoo.fit(run, progress=False)
    assert isinstance(result, RunResult) and result.record.task == "translate"
    assert result.record.layers == ["gru", "gru"] and 0 <= result.metrics["chrf"] <= 100
    assert (result.checkpoint_dir / "source_tokenizer.json").is_file()


def test_cli_translate_runs_and_reports(tmp_path):
    args = [
        "translate",
        "--no-store",
        "--json",
        "model.d_model=16",
        "train.num_train=64",
        "train.num_test=16",
        "train.epochs=1",
        f"train.out_dir={tmp_path}",
    ]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output.strip().splitlines()[-1])
    assert summary["status"] == "completed" and 0 <= summary["metrics"]["chrf"] <= 100
    assert {"identity_chrf", "gloss_chrf", "bleu"} <= set(summary["metrics"])
    assert (tmp_path / summary["run_id"] / "target_tokenizer.json").is_file()
    bad = CliRunner().invoke(app, ["translate", "--no-store", "model.scor=dot"])
    assert bad.exit_code != 0
