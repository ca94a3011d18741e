"""Memory layers: one interface (see ``base.py``), registered by name.

Every module in this package that defines layers registers them on import; the package
imports all of them, so adding a file is enough to add a layer family.

>>> import memzoo
>>> layer = memzoo.layers.build("lstm", d_model=8)
>>> layer.kind
'short'
"""

import importlib
import pkgutil

from memzoo.layers.base import (
    AttentionView,
    GateView,
    LayerInfo,
    MemoryLayer,
    detach_state,
    gate_names,
    has_attention_view,
    has_gate_view,
    map_state,
    state_tensors,
)
from memzoo.layers.registry import (
    accepted_kwargs,
    attention_view_layers,
    build,
    gate_view_layers,
    get,
    info,
    names,
    register,
)

_NOT_FAMILIES = {"base", "registry"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _NOT_FAMILIES and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "AttentionView",
    "GateView",
    "LayerInfo",
    "MemoryLayer",
    "accepted_kwargs",
    "attention_view_layers",
    "build",
    "detach_state",
    "gate_names",
    "gate_view_layers",
    "get",
    "has_attention_view",
    "has_gate_view",
    "info",
    "map_state",
    "names",
    "register",
    "state_tensors",
]
