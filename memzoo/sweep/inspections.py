"""Inspecting the runs of a suite after training (``memzoo bench --inspect``, ``memzoo inspect``).

Each completed run whose task has a recall layout (:data:`memzoo.inspect.probes.LAYOUT_TASKS`)
and whose checkpoint is on this machine is inspected from its selected weights, and the
inspection kept in its metrics; the others are listed with the reason they were skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from memzoo.errors import MemzooError
from memzoo.inspect import INSPECTION, inspect_stored_run
from memzoo.inspect.probes import LAYOUT_TASKS
from memzoo.results.record import RunRecord
from memzoo.results.store import ResultsStore


@dataclass
class InspectSummary:
    inspected: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # run id -> why


def to_inspect(records: list[RunRecord], *, again: bool = False) -> list[RunRecord]:
    """The completed runs of a recall task among ``records`` (without an inspection, unless
    ``again``)."""
    return [
        r
        for r in records
        if r.status == "completed" and r.task in LAYOUT_TASKS and (again or INSPECTION not in r.metrics)
    ]


def inspect_runs(
    store: ResultsStore, run_ids: list[str], *, progress: bool = True, trust_code: bool = False, **options
) -> InspectSummary:
    """Inspect each of ``run_ids`` and keep its inspection in the store; a run that cannot be
    inspected (not completed, no checkpoint, a task without a recall layout) is skipped with
    its reason, never an error for the others."""
    summary = InspectSummary()
    bar = Progress(
        TextColumn("[bold]inspect[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
    )
    with bar:
        task_id = bar.add_task("inspect", total=len(run_ids))
        for run_id in run_ids:
            try:
                inspect_stored_run(store, run_id, trust_code=trust_code, **options)
                summary.inspected.append(run_id)
            except MemzooError as err:
                summary.skipped[run_id] = str(err)
            bar.update(task_id, advance=1)
    return summary
