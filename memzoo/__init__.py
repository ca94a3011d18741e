"""memzoo: the memory of a neural sequence model as the first-class object.

>>> import memzoo
>>> "lstm" in memzoo.layers.names()
True
"""

from memzoo import layers, models, tasks
from memzoo.errors import ConfigError, MemzooError
from memzoo.train import RunConfig, RunResult, fit, load

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "fit",
    "MemzooError",
    "RunConfig",
    "RunResult",
    "layers",
    "load",
    "models",
    "tasks",
    "train",
    "__version__",
]
