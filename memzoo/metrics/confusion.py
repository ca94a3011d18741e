"""Classification results beyond the averages: predictions, a confusion matrix, a baseline.

Shape legend: N examples, K classes.

``confusion_matrix(...)[i, j]`` counts examples of true class ``i`` predicted as class ``j``:
the diagonal holds the correct ones, a row sums to the class's support.

>>> m = confusion_matrix(torch.tensor([0, 1, 1, 1]), torch.tensor([0, 0, 1, 1]), 2)
>>> m.tolist()
[[1, 1], [0, 2]]
>>> print(format_confusion(m, ["neg", "pos"]))
true \\ predicted  neg  pos
neg                 1    1
pos                 0    2
"""

from __future__ import annotations

import torch

from memzoo.errors import ConfigError


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``LongTensor [K, K]`` of counts: rows are true classes, columns predicted classes.

    ``predictions`` and ``targets`` are ``[N]`` class ids in ``[0, K)``.
    """
    predictions, targets = predictions.reshape(-1).cpu().long(), targets.reshape(-1).cpu().long()
    if predictions.shape != targets.shape:
        raise ConfigError(
            f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ in size"
        )
    for name, ids in (("predictions", predictions), ("targets", targets)):
        if ids.numel() and (ids.min() < 0 or ids.max() >= num_classes):
            raise ConfigError(
                f"{name} must lie in [0, {num_classes}), got [{int(ids.min())}, {int(ids.max())}]"
            )
    flat = torch.bincount(targets * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.view(num_classes, num_classes)


def format_confusion(matrix: torch.Tensor, class_names: list[str]) -> str:
    """The matrix as an aligned text table with class names on both axes."""
    corner = "true \\ predicted"
    width = max([len(str(int(v))) for v in matrix.flatten()] + [len(n) for n in class_names])
    first = max(len(corner), *(len(n) for n in class_names))
    lines = [corner.ljust(first) + "".join(f"  {n:>{width}}" for n in class_names)]
    for name, row in zip(class_names, matrix.tolist()):
        lines.append(name.ljust(first) + "".join(f"  {v:>{width}}" for v in row))
    return "\n".join(line.rstrip() for line in lines)


@torch.no_grad()
def predict_classes(model, inputs: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``[N]`` arg-max classes of a ``classify``-head model on ``inputs [N, T]`` (eval mode)."""
    model.eval()
    device = next(model.parameters()).device
    out = [
        model(inputs[i : i + batch_size].to(device))[0].argmax(-1).cpu()
        for i in range(0, len(inputs), batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def accuracy_and_f1(predictions: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Accuracy and macro F1 of class ids ``predictions`` against ``targets`` ``[N]``, as the
    run's own metrics (``memzoo.metrics.classification``): F1 averages the classes that occur
    among the targets or the predictions."""
    predictions, targets = predictions.reshape(-1).long(), targets.reshape(-1).long()
    num_classes = int(max(predictions.max(), targets.max())) + 1 if len(targets) else 1
    matrix = confusion_matrix(predictions, targets, num_classes).double()
    tp, predicted, actual = matrix.diag(), matrix.sum(0), matrix.sum(1)
    present = (actual > 0) | (predicted > 0)
    precision, recall = tp / predicted.clamp_min(1), tp / actual.clamp_min(1)
    f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
    return {
        "accuracy": float(tp.sum() / matrix.sum().clamp_min(1)),
        "f1": float(f1[present].mean()) if bool(present.any()) else 0.0,
    }


def majority_baseline(train_targets: torch.Tensor, test_targets: torch.Tensor) -> dict:
    """Accuracy and macro F1 of always predicting the most frequent training class."""
    majority = int(torch.bincount(train_targets.reshape(-1)).argmax())
    predictions = torch.full_like(test_targets, majority)
    return {"class": majority, **accuracy_and_f1(predictions, test_targets)}
