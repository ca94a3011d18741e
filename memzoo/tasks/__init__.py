"""Synthetic memory tasks: each generates (inputs, targets, slices) deterministically from a seed.

Every module in this package that defines tasks registers them on import; the package imports
all of them, so adding a file is enough to add a task family.

>>> from memzoo import tasks
>>> task = tasks.build("mqar", vocab_size=64, seq_len=32, num_kv_pairs=4)
>>> data = task.generate(num_examples=3, seed=0)
>>> tuple(data.inputs.shape), int((data.targets != -100).sum())
((3, 32), 12)
"""

import importlib
import pkgutil

from memzoo.tasks.base import IGNORE_INDEX, Task, TaskData
from memzoo.tasks.registry import build, describe, get, names, register_task

_NOT_TASKS = {"base", "registry"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _NOT_TASKS and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "IGNORE_INDEX",
    "Task",
    "TaskData",
    "build",
    "describe",
    "get",
    "names",
    "register_task",
]
