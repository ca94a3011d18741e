"""Speech recognition that must actually work, on held-out voices: a small recurrent and a
small attention model beat dynamic-time-warping nearest neighbour on isolated words, and reach
a stated word error rate on connected digits with CTC.

The data are synthesised here by eSpeak NG (77 training voices; 8 test voices that share no
voice variant with them) and cached in a temporary folder; models train with a plain AdamW
loop over ``SequenceModel`` (``memzoo.train`` has no ``ctc`` head yet). Figures in comments
were measured on a 2-core CPU shared with other work, one torch thread.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import memzoo
from memzoo import tasks
from memzoo.data import audio_synth
from memzoo.metrics.speech import evaluate_ctc
from memzoo.models import SequenceModel
from memzoo.models.ctc import ctc_loss

pytest.importorskip("librosa", reason="speech needs the speech extra: pip install 'memzoo[speech]'")
if not audio_synth.available():
    pytest.skip("eSpeak NG is not installed (pip install 'memzoo[speech]')", allow_module_level=True)


def fit(
    task, train, layers: list[str], epochs: int, d_model: int = 64, batch_size: int = 32, lr: float = 3e-3
) -> SequenceModel:
    """AdamW with a one-cycle learning rate over ``train``; cross-entropy (classify) or CTC."""
    torch.manual_seed(0)
    ctc = task.head == "ctc"
    model = SequenceModel(
        layers=layers,
        d_model=d_model,
        input_dim=task.input_dim,
        head="lm" if ctc else task.head,  # a ctc head reads the lm head's per-frame logits
        num_outputs=task.output_vocab_size,
        mlp_ratio=2,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * (len(train) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.2)
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        permutation = torch.randperm(len(train), generator=order)
        for start in range(0, len(train) - batch_size + 1, batch_size):
            rows = permutation[start : start + batch_size]
            outputs, _ = model(train.inputs[rows])
            if ctc:
                loss = ctc_loss(outputs, train.targets[rows], task.blank)
            else:
                loss = F.cross_entropy(outputs, train.targets[rows])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
    return model.eval()


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    """The default task: 2,464 training utterances (16 words x 77 voices x 2), 256 test (x 8
    held-out voices x 2)."""
    task = tasks.build("speech_words", cache_dir=str(tmp_path_factory.mktemp("speech")))
    train, test = task.split(num_train=2464, num_test=1000, seed=0)
    return task, train, test, task.baseline_metrics(train, test)["dtw_accuracy"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "layers, d_model, epochs",
    [
        (["lstm", "lstm"], 64, 12),  # measured: 0.938 vs DTW 0.895 (14 s)
        (["attention", "attention"], 96, 10),  # measured: 0.930 vs DTW 0.895 (28 s)
    ],
)
def test_models_beat_dtw_on_held_out_voices(words, layers, d_model, epochs):
    task, train, test, dtw_accuracy = words
    assert len(test) == 256 and 0.6 < dtw_accuracy < 0.95
    model = fit(task, train, layers, epochs, d_model=d_model)
    with torch.no_grad():
        accuracy = float((model(test.inputs)[0].argmax(-1) == test.targets).float().mean())
    print(f"{layers} accuracy {accuracy:.3f}, DTW {dtw_accuracy:.3f}")
    assert accuracy >= dtw_accuracy + 0.01, (layers, accuracy, dtw_accuracy)  # 3+ more utterances right


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """600 training strings of 3-7 digits (77 voices), 100 test strings (8 held-out voices)."""
    task = tasks.build(
        "speech_digits",
        num_train_utterances=600,
        held_out_utterances=100,
        cache_dir=str(tmp_path_factory.mktemp("speech")),
    )
    train, test = task.split(num_train=600, num_test=100, seed=0)
    return task, train, test


@pytest.mark.slow
@pytest.mark.parametrize(
    "layers, epochs, batch_size, max_wer",
    [
        (["lstm"], 20, 16, 0.25),  # measured: WER 0.120 (12 s)
        (["attention", "attention"], 12, 16, 0.35),  # measured: WER 0.191 (19 s)
    ],
)
def test_ctc_models_transcribe_digit_strings_of_held_out_voices(digits, layers, epochs, batch_size, max_wer):
    task, train, test = digits
    model = fit(task, train, layers, epochs, batch_size=batch_size)
    metrics = evaluate_ctc(model, test, task.blank)
    print(f"{layers} WER {metrics['wer']:.3f}")
    assert metrics["wer"] <= max_wer, (layers, metrics["wer"])
    assert metrics["sentence_accuracy"] > 0.2
    assert set(metrics["slices"]) >= {f"num_digits={n}" for n in range(3, 8)}


@pytest.mark.slow
def test_digit_strings_train_through_memzoo_fit_with_the_ctc_head(digits, tmp_path):
    """The ctc head through the one run lifecycle: CTC loss, validation voices select the
    checkpoint by WER, the held-out voices are scored once."""
    task, _, _ = digits
    config = {
        "task": {
            "name": "speech_digits",
            "num_train_utterances": 600,
            "held_out_utterances": 100,
            "cache_dir": task.cache_dir,
        },
        "model": {"layers": ["lstm"], "d_model": 64, "mlp_ratio": 2},
        "train": {
            "epochs": 20,
            "batch_size": 16,
            "num_train": 600,
            "num_validation": 100,
            "num_test": 100,
            "lr": 3e-3,
            "weight_decay": 0.0,
            "checkpoint": False,
        },
    }
    result = memzoo.fit(config)
    metrics = result.metrics
    print(f"lstm via fit: WER {metrics['wer']:.3f}, validation WER {metrics['validation']['wer']:.3f}")
    assert result.status == "completed" and metrics["wer"] <= 0.3
    assert metrics["validation"]["wer"] <= 0.3 and 0 <= metrics["sentence_accuracy"] <= 1
