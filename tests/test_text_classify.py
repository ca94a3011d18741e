"""text_classify: the generated corpus is separable and deterministic, a user's file is split
once and honestly (tokenizer fitted on training rows only), attention_lstm learns the corpus
to >= 0.95 accuracy, the tokenizer saved beside the weights gives the same predictions."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import memzoo
from memzoo import tasks
from memzoo.errors import ConfigError, MemzooError
from memzoo.metrics.confusion import confusion_matrix, format_confusion, majority_baseline, predict_classes
from memzoo.tasks import _text_corpus as corpus
from memzoo.tasks.text_classify import load_artifacts, predict_labels


def test_generated_corpus_is_separable_and_deterministic():
    texts, labels = corpus.generate_corpus(400, 3, torch.Generator().manual_seed(5))
    again, labels2 = corpus.generate_corpus(400, 3, torch.Generator().manual_seed(5))
    assert texts == again and torch.equal(labels, labels2)
    names = corpus.class_names(3)
    for text, label in zip(texts, labels.tolist()):
        words = text.split()
        assert corpus.MIN_WORDS <= len(words) <= corpus.MAX_WORDS
        counts = [sum(w in corpus.CLASS_CUES[n] for w in words) for n in names]
        assert counts[label] >= 2 and all(c < counts[label] for i, c in enumerate(counts) if i != label)
    assert set(labels.tolist()) == {0, 1, 2}


def test_task_inputs_are_left_padded_and_deterministic():
    task = tasks.build("text_classify", seq_len=16, num_classes=4)
    a, b, c = task.generate(30, seed=1), task.generate(30, seed=1), task.generate(30, seed=2)
    assert torch.equal(a.inputs, b.inputs) and not torch.equal(a.inputs, c.inputs)
    assert a.inputs.shape == (30, 16) and a.targets.shape == (30,)
    assert (a.inputs[:, -1] != 0).all(), "the final position holds a real token (left padding)"
    assert task.output_vocab_size == 4 and task.class_names[3] == "scary"


def _write_reviews(path, n, seed):
    texts, labels = corpus.generate_corpus(n, 2, torch.Generator().manual_seed(seed))
    names = corpus.class_names(2)
    lines = ["id,text,label"] + [
        f"{i},{t},{names[y]}" for i, (t, y) in enumerate(zip(texts, labels.tolist()))
    ]
    path.write_text("\n".join(lines) + "\n")
    return texts


def test_file_split_is_fixed_disjoint_and_tokenizer_sees_training_rows_only(tmp_path):
    path = tmp_path / "reviews.csv"
    texts = _write_reviews(path, 50, seed=3)
    task = tasks.build("text_classify", path=str(path), tokenizer="word", seq_len=16, test_fraction=0.2)
    train, test = task.split(num_train=80, num_test=100, seed=0)
    _, test_other_seed = task.split(num_train=10, num_test=100, seed=1)
    assert len(train) == 80 and len(test) == 10  # 50 rows: 10 held out; training rows cycled
    assert torch.equal(test.inputs, test_other_seed.inputs), "the held-out rows do not depend on the seed"
    decode = task.text_tokenizer.decode
    train_texts = {decode(r) for r in train.inputs.tolist()}
    test_texts = {decode(r) for r in test.inputs.tolist() if 1 not in r}
    assert len(train_texts) == 40 and not (train_texts & test_texts)
    held_out_only = {w for t in texts for w in t.split()} - {w for t in train_texts for w in t.split()}
    assert all(task.text_tokenizer.encode(w) == [1] for w in held_out_only)  # unknown to the tokenizer
    assert task.class_names == ["negative", "positive"]


def test_bad_parameters_are_named(tmp_path):
    with pytest.raises(ConfigError, match="path: .*does not exist"):
        tasks.build("text_classify", path=str(tmp_path / "nope.csv"))
    path = tmp_path / "r.csv"
    _write_reviews(path, 10, seed=0)
    with pytest.raises(ConfigError, match="num_classes applies to the generated corpus only"):
        tasks.build("text_classify", path=str(path), num_classes=3)
    with pytest.raises(ConfigError, match="tokenizer"):
        tasks.build("text_classify", tokenizer="sentencepiece")
    with pytest.raises(MemzooError, match="no column 'body'"):
        tasks.build("text_classify", path=str(path), text_column="body").split(10, 10, 0)


@pytest.mark.slow
def test_attention_lstm_classifies_the_generated_corpus(tmp_path):
    cfg = {
        "task": {"name": "text_classify", "seq_len": 12},
        "model": {"layers": ["attention_lstm"], "d_model": 32, "mlp_ratio": 2},
        "train": {
            "epochs": 6,
            "batch_size": 32,
            "lr": 3e-3,
            "num_train": 2000,
            "num_test": 500,
            "target_accuracy": 0.99,
            "out_dir": str(tmp_path),
        },
    }
    result = memzoo.fit(cfg, progress=False)
    assert result.metrics["accuracy"] >= 0.95 and result.metrics["f1"] >= 0.95

    task = tasks.build("text_classify", seq_len=12)
    train, test = task.split(2000, 500, seed=0)
    predictions = predict_classes(result.model, test.inputs)
    matrix = confusion_matrix(predictions, test.targets, 2)
    assert int(matrix.sum()) == 500 and int(matrix.trace()) >= 475
    assert "positive" in format_confusion(matrix, task.class_names)
    assert majority_baseline(train.targets, test.targets)["accuracy"] < 0.6

    # the vocabulary saved beside the weights classifies raw text the same way after loading
    task.save_artifacts(result.checkpoint_dir)
    tokenizer, classes, seq_len = load_artifacts(result.checkpoint_dir)
    model = memzoo.load(result.checkpoint_dir)
    texts = ["i loved this brilliant and charming film", "a dull plot and awful tedious acting"]
    assert predict_labels(model, tokenizer, classes, seq_len, texts) == ["positive", "negative"]
    assert task.predict(model, texts) == ["positive", "negative"]


@pytest.mark.slow
def test_a_user_file_trains_through_memzoo_train(tmp_path):
    path = tmp_path / "reviews.csv"
    _write_reviews(path, 600, seed=9)
    cfg = {
        "task": {
            "name": "text_classify",
            "path": str(path),
            "seq_len": 16,
            "tokenizer": "bpe",
            "vocab_size": 400,
        },
        "model": {"layers": ["lstm"], "d_model": 32, "mlp_ratio": 0},
        "train": {
            "epochs": 4,
            "batch_size": 32,
            "lr": 5e-3,
            "num_train": 480,
            "num_test": 120,
            "checkpoint": False,
            "target_accuracy": 0.95,
        },
    }
    result = memzoo.fit(cfg, progress=False)
    assert result.metrics["scored"] == 120  # every held-out row (20% of 600) is scored
    assert result.metrics["accuracy"] >= 0.85  # majority class: about 0.5


@settings(max_examples=40, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=30))
def test_confusion_matrix_counts_every_pair(pairs):
    predictions = torch.tensor([p for p, _ in pairs], dtype=torch.long)
    targets = torch.tensor([t for _, t in pairs], dtype=torch.long)
    matrix = confusion_matrix(predictions, targets, 4)
    for i in range(4):
        for j in range(4):
            assert matrix[i, j] == sum(1 for p, t in pairs if t == i and p == j)


def test_confusion_matrix_rejects_out_of_range_ids():
    with pytest.raises(ConfigError, match=r"predictions must lie in \[0, 2\)"):
        confusion_matrix(torch.tensor([2]), torch.tensor([0]), 2)


def test_a_model_trained_on_a_deleted_file_loads_and_predicts_anywhere(tmp_path):
    """What prediction needs (tokenizer, class names, length) travels with the checkpoint:
    the training file is not read again when the model is loaded."""
    path = tmp_path / "reviews.csv"
    _write_reviews(path, 300, seed=4)
    cfg = {
        "task": {"name": "text_classify", "path": str(path), "seq_len": 16, "tokenizer": "word"},
        "model": {"layers": ["gru"], "d_model": 32, "mlp_ratio": 0},
        "train": {
            "epochs": 3,
            "num_train": 240,
            "num_validation": 30,
            "num_test": 60,
            "out_dir": str(tmp_path),
        },
    }
    result = memzoo.fit(cfg, progress=False)
    path.unlink()  # the training file is gone, as on another machine
    model = memzoo.load(result.checkpoint_dir)
    tokenizer, classes, seq_len = load_artifacts(result.checkpoint_dir)
    texts = ["a great wonderful film", "a dull awful film"]
    expected = predict_labels(result.model, tokenizer, classes, seq_len, texts)  # the selected weights
    assert predict_labels(model, tokenizer, classes, seq_len, texts) == expected
    assert set(expected) <= set(classes)
