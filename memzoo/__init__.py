"""memzoo: the memory of a neural sequence model as the first-class object."""

from memzoo import layers
from memzoo.errors import ConfigError, MemzooError

__version__ = "0.1.0"

__all__ = ["ConfigError", "MemzooError", "layers", "__version__"]
