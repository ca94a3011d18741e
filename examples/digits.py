"""Read 8×8 handwritten digits one pixel at a time and name them (a minute or two on a CPU).

scikit-learn's 1,797 digits become 64-step sequences; 359 images are held out. Each memory
layer must carry what it saw in the first rows to the last pixel. Baselines: the majority
class (what a model without memory of the image can do) and a logistic regression that sees
all 64 pixels at once (no memory needed).

Run: ``python examples/digits.py`` or ``python examples/digits.py --layers gru lstm``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import memzoo
from memzoo.tasks.digits import load_digit_images

# Per layer: blocks, width, epochs, learning rate — each reaches >= 0.9 within ~25-50 s of
# one CPU core (a single attention block does not: it needs two to combine pixels).
SETTINGS = {
    "attention": (2, 64, 12, 3e-3),
    "gru": (1, 64, 20, 1e-2),
    "lstm": (1, 96, 30, 5e-3),
}
DEFAULT = (1, 64, 20, 3e-3)


def baselines(seed: int) -> dict[str, float]:
    """Majority class and whole-image logistic regression on the same split."""
    from sklearn.linear_model import LogisticRegression

    pixels, labels = load_digit_images()
    task = memzoo.tasks.build("digits")
    pool, held_out = task.split_rows(torch.Generator().manual_seed(seed))
    majority = np.bincount(labels[pool]).argmax()
    classifier = LogisticRegression(max_iter=2000).fit(pixels[pool] / 16, labels[pool])
    return {
        "majority class": float((labels[held_out] == majority).mean()),
        "logistic regression (whole image)": float(classifier.score(pixels[held_out] / 16, labels[held_out])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", nargs="+", default=list(SETTINGS), help="memory layers to compare")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"{'reader':<36} {'accuracy':>8} {'macro F1':>8} {'params':>8} {'seconds':>8}")
    for name, accuracy in baselines(args.seed).items():
        print(f"{name:<36} {accuracy:>8.3f} {'':>8} {'':>8} {'':>8}")
    for layer in args.layers:
        depth, width, epochs, lr = SETTINGS.get(layer, DEFAULT)
        config = {
            "task": {"name": "digits"},
            "model": {"layers": [layer] * depth, "d_model": width},
            "train": {
                "epochs": epochs,
                "num_train": 1438,
                "num_test": 359,
                "batch_size": 64,
                "lr": lr,
                "checkpoint": False,
                "target_accuracy": 1.0,
                "seed": args.seed,
            },
        }
        start = time.perf_counter()
        result = memzoo.fit(config)
        final = result.record.curve[-1]  # the trained model on the held-out images
        label = f"{layer} x{depth}, pixel by pixel"
        print(
            f"{label:<36} {final['accuracy']:>8.3f} {final['f1']:>8.3f} {result.model.num_params():>8,} "
            f"{time.perf_counter() - start:>8.1f}"
        )


if __name__ == "__main__":
    main()
