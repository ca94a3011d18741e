"""Layers registered by name, so configs, the CLI and reports refer to them by name.

A layer outside memzoo is named by its import path, ``"package.module:ClassName"`` (a
``MemoryLayer`` subclass): :func:`get` imports the module the first time the name is used, in
whichever process uses it, so a config naming it works in local worker processes and on Ray
workers too (the module must be importable there, e.g. installed or on ``PYTHONPATH``).

Names read from a checkpoint someone else may have written are resolved inside
:func:`imports_refused`: such a path is imported only with the caller's consent
(``memzoo.load(path, trust_code=True)``, ``memzoo train --resume FOLDER --trust-code``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from memzoo.errors import ConfigError
from memzoo.layers.base import KINDS, STATE_GROWTHS, LayerInfo, MemoryLayer

_REGISTRY: dict[str, type[MemoryLayer]] = {}
# (where the names come from, how to consent) while loading something that may not import code
_IMPORTS_REFUSED: ContextVar[tuple[str, str] | None] = ContextVar("memzoo_imports_refused", default=None)


def register(name: str):
    """Class decorator: register a ``MemoryLayer`` subclass under ``name``."""

    def decorator(cls: type[MemoryLayer]) -> type[MemoryLayer]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"layer name {name!r} is already registered")
        if cls.kind not in KINDS:
            raise ValueError(f"{cls.__name__}.kind must be one of {KINDS}")
        if cls.state_growth not in STATE_GROWTHS:
            raise ValueError(f"{cls.__name__}.state_growth must be one of {STATE_GROWTHS}")
        cls.layer_name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def names() -> list[str]:
    """Every registered layer name, sorted."""
    return sorted(_REGISTRY)


@contextmanager
def imports_refused(source: str, consent: str) -> Iterator[None]:
    """Inside this block, a layer named by import path whose module this process has not
    imported yet is refused (a ``ConfigError`` naming ``source`` and how to give ``consent``)
    instead of imported: a checkpoint or file from elsewhere runs no code it names."""
    token = _IMPORTS_REFUSED.set((source, consent))
    try:
        yield
    finally:
        _IMPORTS_REFUSED.reset(token)


def get(name: str) -> type[MemoryLayer]:
    """The class registered as ``name`` (or imported from ``"module:Class"``); a clear error
    listing the known names otherwise."""
    if name not in _REGISTRY and isinstance(name, str) and ":" in name:
        refused = _IMPORTS_REFUSED.get()
        if refused is not None:
            source, consent = refused
            raise ConfigError(
                f"{source} names layer {name[:100]!r}, code outside memzoo; it was not imported "
                f"(importing runs that module's code). If you trust {source}, {consent}"
            )
        _REGISTRY[name] = _import_layer(name)
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown layer {name!r}; registered layers: {', '.join(names())}, or a "
            "MemoryLayer subclass by import path 'package.module:ClassName'"
        ) from None


def _import_layer(path: str) -> type[MemoryLayer]:
    """The ``MemoryLayer`` subclass at ``"module:Class"``, checked like a registered one."""
    module_name, _, class_name = path.partition(":")
    if not all(part.isidentifier() for part in module_name.split(".")) or not class_name.isidentifier():
        raise ConfigError(
            f"layer {path[:100]!r} is not an import path: use 'package.module:ClassName' (Python "
            "names joined by dots, no relative import, then one class name)"
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"layer {path!r} cannot be imported: {err}") from None
    if not (isinstance(cls, type) and issubclass(cls, MemoryLayer)):
        raise ConfigError(f"layer {path!r} is not a memzoo.layers.base.MemoryLayer subclass")
    if cls.kind not in KINDS or cls.state_growth not in STATE_GROWTHS:
        raise ConfigError(f"layer {path!r}: kind must be one of {KINDS}, state_growth one of {STATE_GROWTHS}")
    if not getattr(cls, "layer_name", None):
        cls.layer_name = path
    return cls


def info(name: str) -> LayerInfo:
    """Name, kind, family, state growth and description of a registered layer."""
    cls = get(name)
    return LayerInfo(name, cls.kind, cls.family, cls.state_growth, cls.description)


def accepted_kwargs(name: str) -> dict[str, object]:
    """Keyword arguments the layer's constructor takes (besides d_model), with defaults."""
    sig = inspect.signature(get(name).__init__)
    keyword_kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in sig.parameters.values()
        if p.name not in ("self", "d_model") and p.kind in keyword_kinds
    }


def gate_view_layers() -> list[str]:
    """Registered layers that show their write gates (``base.GateView``), sorted."""
    return [
        name
        for name in names()
        if hasattr(_REGISTRY[name], "write_gates") and hasattr(_REGISTRY[name], "gate_units")
    ]


def attention_view_layers() -> list[str]:
    """Registered layers that show their attention weights (``base.AttentionView``), sorted."""
    return [name for name in names() if hasattr(_REGISTRY[name], "attention_weights")]


def build(name: str, d_model: int, **kwargs) -> MemoryLayer:
    """Instantiate the layer registered as ``name`` with ``d_model`` and its own options.

    Unknown option names raise a ``ConfigError`` naming the accepted ones.
    """
    cls = get(name)
    allowed = accepted_kwargs(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(
            f"layer {name!r} got unknown option(s) {unknown}; accepted: "
            f"{', '.join(sorted(allowed)) or '(none)'}"
        )
    return cls(d_model=d_model, **kwargs)
