"""A training progress bar (rich) with loss and accuracy; silent when disabled."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class EpochProgress:
    """One bar over all training steps, showing the running loss and the last accuracy."""

    def __init__(self, total_steps: int, *, enabled: bool, label: str = "train"):
        self.enabled = enabled
        self.total = total_steps
        self.loss = float("nan")
        self.metric: float | None = None
        if enabled:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]}"),
                TimeElapsedColumn(),
                transient=False,
            )
            self.task_id = None
        self.label = label

    def __enter__(self) -> EpochProgress:
        if self.enabled:
            self.progress.start()
            self.task_id = self.progress.add_task(self.label, total=self.total, loss=self.loss, acc="-")
        return self

    def advance(self, loss: float) -> None:
        if self.enabled:
            self.loss = 0.9 * self.loss + 0.1 * loss if self.loss == self.loss else loss
            self.progress.update(self.task_id, advance=1, loss=self.loss)

    def epoch_done(self, epoch: int, metric: float | None) -> None:
        if self.enabled and metric is not None:
            self.progress.update(self.task_id, acc=f"{metric:.4f} (epoch {epoch})")

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.stop()
