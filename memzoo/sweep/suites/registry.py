"""The suite registry: a suite is a function of no arguments returning its run configs,
registered under a name with :func:`register_suite`."""

from __future__ import annotations

from collections.abc import Callable

from memzoo.errors import ConfigError
from memzoo.train.config import RunConfig

_SUITES: dict[str, Callable[[], list[RunConfig]]] = {}


def register_suite(name: str):
    def decorator(fn: Callable[[], list[RunConfig]]):
        _SUITES[name] = fn
        return fn

    return decorator


def suite_names() -> list[str]:
    return sorted(_SUITES)


def suite_configs(name: str) -> list[RunConfig]:
    """The validated configs of suite ``name``; a clear error for an unknown name."""
    if name not in _SUITES:
        raise ConfigError(f"unknown suite {name!r}; available suites: {', '.join(suite_names())}")
    return _SUITES[name]()
