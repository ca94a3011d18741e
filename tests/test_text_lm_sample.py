"""``text_lm``'s stored sample: a fixed prompt from the test documents, the model's greedy
continuation (equal to re-reading the growing text and taking the arg-max), clipped to the
training window, a reason where a model cannot generate; and the run's ``train.segment_len``
reaches the task's own evaluation."""

from __future__ import annotations

import torch

import memzoo
import memzoo.tasks.text_lm as text_lm_module
from memzoo import tasks
from memzoo.models import SequenceModel
from memzoo.tasks._text_lm_sample import as_text, sample_metrics, sample_prompt


def doc(text: str) -> torch.Tensor:
    return torch.tensor(list(text.encode("utf-8")))


def test_the_prompt_is_the_first_long_document_read_from_a_line_start_after_its_middle():
    short = doc("too short")
    long = doc("aaaaaaaaaa\nbbbbbbbbbb\ncccccccccc\ndddddddddd\n")  # 44 bytes, middle 22
    assert as_text(sample_prompt([short, long], 8)) == "cccccccc"
    no_newline = doc("x" * 20 + "y" * 20)
    assert as_text(sample_prompt([no_newline], 10)) == "y" * 10  # the middle itself
    assert sample_prompt([short], 8) is None


def greedy_by_rereading(model, prompt: torch.Tensor, new: int) -> torch.Tensor:
    """The reference: run the full model on the growing text, take the arg-max each time."""
    ids = prompt[None]
    with torch.no_grad():
        for _ in range(new):
            logits, _ = model(ids)
            ids = torch.cat((ids, logits[:, -1].argmax(-1, keepdim=True)), dim=1)
    return ids[0, len(prompt) :]


def test_the_sample_is_the_models_greedy_continuation_of_the_prompt():
    torch.manual_seed(0)
    model = SequenceModel(layers=["attention", "deltanet"], d_model=16, vocab_size=256).eval()
    documents = [doc("line one\nline two\nline three\nline four\nline five\n")]
    metrics = sample_metrics(model, documents, 8, 12)
    prompt = sample_prompt(documents, 8)
    assert metrics["sample_prompt"] == as_text(prompt)
    assert metrics["sample_text"] == as_text(greedy_by_rereading(model, prompt, 12))
    assert sample_metrics(model.train(), documents, 8, 12) == metrics and model.training  # mode kept
    assert sample_metrics(model, documents, 8, 0) == {}
    assert "no test document holds 400 bytes" in sample_metrics(model, documents, 200, 4)["sample_reason"]


def test_a_model_that_cannot_generate_gets_a_reason_not_a_crash():
    model = SequenceModel(layers=["lstm"], d_model=8, vocab_size=256, head="classify", num_outputs=3)
    metrics = sample_metrics(model, [doc("abc\n" * 10)], 4, 4)
    assert list(metrics) == ["sample_reason"] and "language model" in metrics["sample_reason"]


def test_prompt_and_continuation_fit_in_one_training_window():
    assert tasks.build("text_lm", seq_len=256).sample_sizes() == (64, 128)
    assert tasks.build("text_lm", seq_len=16).sample_sizes() == (8, 8)
    assert tasks.build("text_lm", seq_len=100, sample_bytes=0).sample_sizes() == (50, 0)


def test_the_runs_segment_len_reaches_the_tasks_evaluation(tmp_path, monkeypatch):
    seen = []
    real_bits = text_lm_module.bits_per_byte

    def spy(model, inputs, targets, segment_len=None):
        seen.append(segment_len)
        return real_bits(model, inputs, targets, segment_len)

    monkeypatch.setattr(text_lm_module, "bits_per_byte", spy)
    config = {
        "task": {"name": "text_lm", "seq_len": 32, "context_lengths": [0, 16], "context_span": 8},
        "model": {"layers": ["lstm"], "d_model": 8},
        "train": {
            "max_steps": 2,
            "num_train": 8,
            "num_validation": 4,
            "num_test": 4,
            "batch_size": 4,
            "segment_len": 8,
            "checkpoint": False,
            "device": "cpu",
            "out_dir": str(tmp_path),
        },
    }
    metrics = memzoo.fit(config).metrics
    assert seen == [8]
    assert isinstance(metrics["sample_text"], str) and metrics["sample_prompt"]
