"""The "Continual learning" section: what each memory keeps of task A after learning task B,
with no remedy and with each remedy (the ``continual`` task's runs: ``memzoo.tasks.continual``).

One row per memory x remedy x learning rate, means ± std over seeds:

- **A before**: A's test accuracy at the end of its own phase. Retention means something only
  when A was learned before B and B after A; otherwise the task stores retention as None with
  ``continual_undefined`` saying why, and the row shows that reason;
- **retention**: A's accuracy after B (``accuracy_a_after``; the definitions are the task's);
- **plasticity**: B's accuracy after B (``accuracy_b``);
- **mean**: the average of retention and plasticity (``continual_score``);
- **retention, A's outputs only**: A scored among its own output ids (``retention_own_outputs``),
  where the task stores it — what A's facts keep apart from competing with B's answers.

The section is left out when the store holds no finished continual run.
"""

from __future__ import annotations

from collections import defaultdict

from memzoo.report.data import ReportData, caption, html_table, number, train_setting
from memzoo.report.plots import seed_summary
from memzoo.report.variants import layer_label
from memzoo.results.record import RunRecord
from memzoo.results.store import RESULT_STATUSES

REMEDY_NAMES = {"none": "no remedy", "replay": "replay", "ewc": "EWC"}  # also the row order
COLUMNS = (
    ("accuracy_a_before", "A before"),
    ("retention", "retention (A after B)"),
    ("plasticity", "plasticity (B)"),
    ("continual_score", "mean"),
    ("retention_own_outputs", "retention, A's outputs only"),
)


def _setting(run: RunRecord) -> tuple[str, str, float | None]:
    task = run.config.get("task", {}) if isinstance(run.config, dict) else {}
    return layer_label(run.layers), str(task.get("remedy", "none")), train_setting(run, "lr")


def continual_learning(data: ReportData) -> str | None:
    """The table (see the module); None without finished ``continual`` runs."""
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    for run in data.runs:
        if run.task == "continual" and run.status in RESULT_STATUSES and isinstance(run.metrics, dict):
            groups[_setting(run)].append(run)
    if not groups:
        return None
    rows = []
    rank = {remedy: i for i, remedy in enumerate(REMEDY_NAMES)}
    order = sorted(groups, key=lambda s: (s[0], rank.get(s[1], len(rank)), s[1], s[2] or 0.0))
    for memory, remedy, lr in order:
        runs = groups[(memory, remedy, lr)]
        reasons = sorted(
            {str(r.metrics["continual_undefined"]) for r in runs if r.metrics.get("continual_undefined")}
        )
        name = REMEDY_NAMES.get(remedy, remedy) + "".join(f" (undefined: {reason})" for reason in reasons)
        rows.append(
            [
                memory,
                name,
                "–" if lr is None else f"{lr:g}",
                *(seed_summary([number(r.metrics.get(key)) for r in runs]) for key, _ in COLUMNS),
            ]
        )
    text = (
        "Task A, then task B, in the same weights. Retention: A's accuracy after B; plasticity: "
        "B's accuracy; mean: their average. A before: A's accuracy at the end of its own phase; "
        "where a phase was not learned, retention is undefined and the row says why. Means ± std "
        "over seeds."
    )
    return caption(text) + html_table(["memory", "remedy", "lr", *(label for _, label in COLUMNS)], rows)
