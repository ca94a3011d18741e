"""memzoo: the memory of a neural sequence model as the first-class object.

>>> import memzoo
>>> "lstm" in memzoo.layers.names()
True
"""

from memzoo import layers, models, tasks
from memzoo.errors import ConfigError, MemzooError
from memzoo.integrations import install_import_hooks
from memzoo.train import RunConfig, RunResult, fit, load

# transformers' Auto classes and lm-eval learn "memzoo" when they load (neither is imported here)
install_import_hooks()

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
