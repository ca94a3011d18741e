"""``text_lm``: byte-level language modelling of real text. Splits keep documents apart; the
baselines are proper distributions; a model trained through ``memzoo.fit`` beats the unigram
baseline; the long-context curve improves with context for attention and stays flat for a
model that sees only the current byte."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import memzoo
from memzoo import tasks
from memzoo.errors import ConfigError
from memzoo.models import SequenceModel
from memzoo.tasks._text_lm_eval import bits_per_byte, span_windows
from memzoo.tasks._text_lm_ngram import ByteNGram, unigram_bits
from memzoo.tasks.text_lm import stream_of


def test_windows_come_from_their_own_split_only_and_are_deterministic():
    task = tasks.build("text_lm", seq_len=64)
    docs = task.documents()
    assert not {d.name for d in docs["train"]} & {d.name for d in docs["test"]}
    assert not {d.name for d in docs["validation"]} & (
        {d.name for d in docs["train"]} | {d.name for d in docs["test"]}
    )
    parts = task.splits(num_train=50, num_validation=20, num_test=40, seed=0)
    streams = {part: bytes(stream_of(d).tolist()) for part, d in docs.items()}
    for part, data in (("train", parts.train), ("validation", parts.validation), ("test", parts.test)):
        for x, y in zip(data.inputs, data.targets):
            scored = y != -100
            text = bytes(x[scored].tolist())  # what the window reads where it is scored
            assert text in streams[part], part  # read from its own split's documents
    assert torch.equal(parts.train.targets[:, :-1], parts.train.inputs[:, 1:])  # next byte
    again = task.splits(num_train=50, num_validation=20, num_test=40, seed=0)
    assert torch.equal(again.train.inputs, parts.train.inputs) and torch.equal(
        again.test.inputs, parts.test.inputs
    )
    other = task.splits(num_train=50, num_validation=20, num_test=40, seed=1)
    assert not torch.equal(other.train.inputs, parts.train.inputs)
    # The test tiles are distinct pieces of the stream: no byte is scored twice.
    every = task.tiles("test", 10_000, seed=3)
    assert int((every.targets != -100).sum()) == len(streams["test"]) - 1


def test_bad_parameters_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="corpus must be one of pydoc, python_source, files"):
        tasks.build("text_lm", corpus="wiki")
    with pytest.raises(ConfigError, match="folder is required"):
        tasks.build("text_lm", corpus="files")
    with pytest.raises(ConfigError, match="folder is used only"):
        tasks.build("text_lm", folder="/tmp")
    with pytest.raises(ConfigError, match="context_lengths"):
        tasks.build("text_lm", context_lengths=[-1])
    with pytest.raises(ConfigError, match="lower seq_len"):
        tasks.build("text_lm", seq_len=10**8).generate(1, seed=0)


def test_baselines_are_distributions_and_match_their_definitions():
    stream = np.frombuffer(b"abracadabra abracadabra", np.uint8)
    targets = torch.tensor([[ord("a"), ord("b"), -100]])
    counts = {"a": 10, "b": 4}
    expected = -np.mean([np.log2((counts[c] + 1) / (len(stream) + 256)) for c in "ab"])
    assert math.isclose(unigram_bits(stream, targets), expected, rel_tol=1e-12)
    ngram = ByteNGram(stream, order=4)
    contexts = np.tile(np.frombuffer(b"abra", np.uint8), (256, 1))  # [256, 4]
    every_byte = np.repeat(np.arange(256)[:, None], 4, axis=1)
    assert np.allclose(ngram.probabilities(contexts, every_byte).sum(0), 1.0)  # at each position
    seen = ngram.probabilities(
        np.frombuffer(b"abr", np.uint8)[None], np.array([[ord("b"), ord("r"), ord("a")]])
    )
    assert seen[0, 2] > 0.9  # "abr" is always followed by "a"


def test_segmented_scoring_equals_whole_scoring():
    torch.manual_seed(0)
    model = SequenceModel(layers=["lstm", "deltanet"], d_model=16, vocab_size=256)
    documents = [torch.randint(0, 256, (300,))]
    inputs, targets = span_windows(documents, [(0, 200)], context=150, span=40)
    whole = bits_per_byte(model, inputs, targets)
    assert math.isclose(bits_per_byte(model, inputs, targets, segment_len=32), whole, rel_tol=1e-5)
    assert int((targets != -100).sum()) == 40


def test_a_folder_of_files_is_a_corpus_and_short_documents_give_no_curve(tmp_path):
    for i in range(3):
        (tmp_path / f"note{i}.md").write_text(f"note {i}: " + "memory is the first-class object. " * 20)
    task = tasks.build("text_lm", corpus="files", folder=str(tmp_path), seq_len=16)
    assert [len(task.documents()[k]) for k in ("train", "validation", "test")] == [1, 1, 1]
    parts = task.splits(num_train=4, num_validation=100, num_test=100, seed=0)
    assert len(parts.validation) == len(parts.test) == -(-(len("note 0: ") + 34 * 20 - 1) // 16)
    model = SequenceModel(layers=["lstm"], d_model=8, vocab_size=256)
    metrics = task.model_metrics(model, parts.test)
    assert 7 < metrics["bpb"] < 9  # an untrained model: about log2(256) bits per byte
    assert metrics["context_spans"] == 0 and metrics["context_bpb_4096"] is None
    assert "no test document holds" in metrics["context_bpb_reason"]
    assert task.own_data_bytes()[0] == sum(p.stat().st_size for p in tmp_path.iterdir())


CURVE = {
    "context_lengths": [0, 16, 112, 1024],
    "context_span": 16,
    "context_spans": 64,
    "spans_per_document": 16,
}


def fit(layers, steps, tmp_path, lr=1e-2, **options):
    config = {
        "task": {"name": "text_lm", "seq_len": 128, **CURVE},
        "model": {"layers": layers, "d_model": 64, **options},
        "train": {
            "max_steps": steps,
            "num_train": 32 * steps,
            "num_validation": 32,
            "num_test": 128,
            "batch_size": 32,
            "lr": lr,
            "checkpoint": False,
            "target_accuracy": 1.0,
            "seed": 0,
            "device": "cpu",
            "out_dir": str(tmp_path),
        },
    }
    torch.manual_seed(0)
    return memzoo.fit(config)


@pytest.mark.slow
def test_attention_learns_text_and_uses_its_context(tmp_path):
    result = fit(["attention"], 300, tmp_path)
    m = result.metrics
    # Measured (pydoc, 300 steps, one core): bpb 2.68, unigram 4.74, 5-gram 1.99.
    assert m["bpb"] <= m["unigram_bpb"] - 1.0, m
    assert m["ngram_bpb"] < m["unigram_bpb"] - 2.0 and m["ngram_order"] == 5
    assert m["train_documents"] > m["test_documents"] > 0
    # The same 16-byte spans, scored with more of the text before them.
    assert m["context_spans"] >= 16, m
    assert m["context_bpb_16"] < m["context_bpb_0"] - 0.1, m
    assert m["context_bpb_112"] < m["context_bpb_0"] - 0.1, m
    assert m["context_bpb_1024"] is None and "O(T)" in m["context_bpb_reason"]  # past its trained length
    sample = m["sample_text"]  # greedy bytes after a test prompt: a trained model writes text
    assert len(sample) >= 64 and sum(ch.isprintable() or ch in "\n\t" for ch in sample) >= 0.9 * len(
        sample
    ), sample


@pytest.mark.slow
def test_a_model_that_sees_only_the_current_byte_gains_nothing_from_context(tmp_path):
    result = fit(["sliding_window"], 40, tmp_path, layer_options={"sliding_window": {"window": 1}})
    m = result.metrics
    curve = [m[f"context_bpb_{c}"] for c in CURVE["context_lengths"]]
    assert None not in curve and "context_bpb_reason" not in m  # bounded state: every context scored
    assert max(curve) - min(curve) < 1e-4, curve
    assert m["bpb"] < m["unigram_bpb"]  # it did learn (bigram statistics)
