"""Speech recognition with memory over audio frames, on speech made on this machine.

Spoken words are synthesised with eSpeak NG (``pip install 'memzoo[speech]'``; nothing is
downloaded) by 77 training voices; validation and test use 6 and 8 other voices. Two tasks:

- ``speech_words``: one word (ten digits, six commands) per utterance, ``classify`` head,
  two blocks of each layer, trained with ``memzoo.train``; scored by accuracy on the held-out voices next to dynamic
  time warping nearest neighbour on the same log-mel frames (``dtw_accuracy``).
- ``speech_digits``: 3-7 digits spoken in a row (one block of each layer, two of attention),
  CTC over the frames, word error rate on the
  held-out voices, next to the same model with attention cut to a 4-frame sliding window.
  ``memzoo.train`` has no ``ctc`` head yet, so this example trains it with a short loop.

The first run synthesises and caches the audio features (seconds); later runs read them.
Run: ``python examples/speech.py`` (both tasks, lstm and attention; a few minutes on a CPU),
``python examples/speech.py --task words --layers gru deltanet``, or on your own recordings
``python examples/speech.py --task words --path my_words/`` (a folder of WAV files with a
``transcript.txt`` of ``<file.wav> <word>`` lines; see ``memzoo.data.audio_files``).
"""

from __future__ import annotations

import argparse
import time

import torch

import memzoo
from memzoo import tasks
from memzoo.metrics.speech import evaluate_ctc
from memzoo.models import SequenceModel
from memzoo.models.ctc import ctc_loss
from memzoo.tasks.speech_digits import SLIDING_WINDOW_ABLATION


def words(layers: list[str], epochs: int, path: str | None, seed: int) -> None:
    params = {"path": path} if path else {"repeats": 2, "held_out_repeats": 2}
    task = tasks.build("speech_words", **params)
    print(f"speech_words: {layers}, {epochs} epochs")
    for layer in layers:
        config = {
            "task": {"name": "speech_words", **params},
            "model": {"layers": [layer] * 2, "d_model": 64, "mlp_ratio": 2},
            "train": {
                "epochs": epochs,
                "num_train": len(task.corpus("train")),
                "num_test": len(task.corpus("test")),
                "batch_size": 32,
                "lr": 3e-3,
                "checkpoint": False,
                "seed": seed,
            },
        }
        start = time.time()
        result = memzoo.fit(config, progress=False)
        m = result.metrics
        worst = min(m["slices"].items(), key=lambda kv: kv[1]) if m.get("slices") else None
        print(
            f"  {layer:<16} accuracy {m['accuracy']:.3f}   DTW nearest neighbour {m.get('dtw_accuracy', float('nan')):.3f}"
            f"   ({time.time() - start:.0f} s)"
        )
        if worst and worst[0].startswith("voice="):
            print(f"    weakest voice: {task.voice_names[int(worst[0].split('=')[1])]} ({worst[1]:.2f})")


def train_ctc(task, layers, layer_options, epochs: int, seed: int) -> tuple[SequenceModel, dict]:
    """A short CTC training loop (AdamW, one-cycle learning rate) until memzoo.train has a ctc head."""
    train, test = task.split(len(task.corpus("train")), len(task.corpus("test")), seed)
    torch.manual_seed(seed)
    model = SequenceModel(
        layers=layers,
        d_model=64,
        input_dim=task.input_dim,
        head="lm",  # per-frame logits: what a ctc head reads
        num_outputs=task.output_vocab_size,
        layer_options=layer_options,
        mlp_ratio=2,
    )
    batch = 32
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, 3e-3, total_steps=epochs * (len(train) // batch)
    )
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        permutation = torch.randperm(len(train), generator=order)
        for start in range(0, len(train) - batch + 1, batch):
            rows = permutation[start : start + batch]
            logits, _ = model(train.inputs[rows])
            loss = ctc_loss(logits, train.targets[rows], task.blank)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
    return model, evaluate_ctc(model, test, task.blank)


def digits(layers: list[str], epochs: int, path: str | None, seed: int) -> None:
    task = tasks.build("speech_digits", **({"path": path} if path else {}))
    print(f"speech_digits: {layers} and the sliding-window ablation, {epochs} epochs")
    runs = [(layer, [layer] * (2 if "attention" in layer else 1), {}) for layer in layers]
    ablation = SLIDING_WINDOW_ABLATION
    runs.append(("sliding_window(4)", ablation["layers"] * 2, ablation["layer_options"]))
    for label, stack, options in runs:
        start = time.time()
        _, metrics = train_ctc(task, stack, options, epochs, seed)
        print(
            f"  {label:<18} WER {metrics['wer']:.3f}   strings exactly right {metrics['sentence_accuracy']:.3f}"
            f"   ({time.time() - start:.0f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["words", "digits", "both"], default="both")
    parser.add_argument("--layers", nargs="+", default=["lstm", "attention"], help="memory layers to compare")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--path", help="a folder of WAV files + transcript.txt instead of synthesis")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.task in ("words", "both"):
        words(args.layers, args.epochs, args.path, args.seed)
    if args.task in ("digits", "both"):
        digits(args.layers, args.epochs, args.path, args.seed)


if __name__ == "__main__":
    main()
