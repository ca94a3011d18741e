"""Named benchmark suites: functions returning the run configs of a sweep, one module a
suite (``quick``, ``smoke``, ``longterm``, ``longterm_frontier``, ``frontier`` and
``frontier_cpu``, ``apps``, ``real``).

To add one: a module here with a function under ``@register_suite("name")`` returning
configs, imported below so that it registers.

>>> "quick" in suite_names()
True
"""

from __future__ import annotations

from memzoo.sweep.suites import apps, frontier, longterm, longterm_frontier, quick, real, smoke  # noqa: F401
from memzoo.sweep.suites.common import SWEEP_LRS, TaskRun, short_term_layers, sweep
from memzoo.sweep.suites.registry import register_suite, suite_configs, suite_names

__all__ = [
    "SWEEP_LRS",
    "TaskRun",
    "register_suite",
    "short_term_layers",
    "suite_configs",
    "suite_names",
    "sweep",
]
