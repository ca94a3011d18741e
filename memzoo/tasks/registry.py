"""Tasks registered by name, so configs, the CLI and reports refer to them by name."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticUndefined

from memzoo.errors import ConfigError
from memzoo.parsing import validation_problems
from memzoo.tasks.base import Task

_REGISTRY: dict[str, type[Task]] = {}


def register_task(name: str):
    """Class decorator: register a ``Task`` subclass under ``name`` (sets its ``name``)."""

    def decorator(cls: type[Task]) -> type[Task]:
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TypeError(f"@register_task({name!r}) expects a Task subclass, got {cls!r}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"task name {name!r} is already registered")
        if not cls.description:
            raise ValueError(f"{cls.__name__}.description must be set")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def names() -> list[str]:
    """Every registered task name, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> type[Task]:
    """The class registered as ``name``; a ``ConfigError`` listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; registered tasks: {', '.join(names())}") from None


def build(name: str, **params: Any) -> Task:
    """Instantiate the task registered as ``name`` with ``params`` (validated).

    Unknown names, unknown parameters, bad values and impossible combinations all raise a
    ``ConfigError`` whose one-line message names the parameter(s).
    """
    cls = get(name)
    try:
        return cls(**params)
    except ValidationError as err:
        raise ConfigError(f"task {name!r}: " + validation_problems(err, accepted=cls.model_fields)) from None


def describe(name: str) -> dict[str, Any]:
    """Name, description, head and every parameter (default, type, meaning) of a task."""
    cls = get(name)
    parameters = {}
    for field_name, info in cls.model_fields.items():
        default = None if info.default is PydanticUndefined else info.default
        annotation = info.annotation
        parameters[field_name] = {
            "default": default,
            "type": getattr(annotation, "__name__", str(annotation)),
            "description": info.description or "",
        }
    return {
        "name": name,
        "description": cls.description,
        "head": cls.head,
        "parameters": parameters,
    }
