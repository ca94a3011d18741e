"""JSON and YAML from outside memzoo, parsed within bounds.

Every JSON/YAML text memzoo reads from a user or a file (a config file, a ``key=value``
override, a checkpoint's ``config.json``, a ``.jsonl`` line, a tokenizer or labels file) goes
through :func:`load_json_text` or :func:`load_yaml_text`. Each refuses, with one
``ConfigError`` line that starts with ``where``:

- text longer than ``MAX_JSON_CHARS`` / ``MAX_YAML_CHARS`` characters, before parsing;
- lists and mappings nested more than ``MAX_DEPTH`` deep (``[]`` is 1 deep, ``[[]]`` 2), so
  neither the parser nor later code that recurses (pydantic, ``json.dumps``, ``repr``) meets
  a value deep enough to exhaust Python's stack;
- (YAML) an alias (``*name``) to an anchor: an alias repeats a value, so a few bytes could
  expand into gigabytes (the "billion laughs") or into a value that contains itself. An anchor
  nothing refers to is harmless and accepted.

Malformed text still raises the parser's own error (``json.JSONDecodeError`` or
``yaml.YAMLError``, an alias to an undefined anchor included), which each caller words with its
line and column. Messages show a value through :func:`preview`, never in full.

>>> load_yaml_text("{a: [1, 2]}", "override 'x'")
{'a': [1, 2]}
>>> load_yaml_text("{a: &n [1], b: *n}", "override 'x'")
Traceback (most recent call last):
memzoo.errors.ConfigError: override 'x': a YAML alias ('*n') at line 1, column 16; aliases are not accepted (a few bytes can expand into gigabytes): write the value out
>>> load_json_text("[" * 65 + "]" * 65, "f.json")
Traceback (most recent call last):
memzoo.errors.ConfigError: f.json: lists/mappings nested deeper than 64 levels
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import yaml

from memzoo.errors import ConfigError

MAX_DEPTH = 64
MAX_YAML_CHARS = 1_000_000  # configs and overrides: PyYAML reads about 1 MB/s
MAX_JSON_CHARS = 256 * 2**20  # tokenizer files of large vocabularies run to tens of MB
PREVIEW_CHARS = 80


def preview(value: Any) -> str:
    """``repr(value)``, cut to ``PREVIEW_CHARS`` characters (ending ``...`` when cut)."""
    text = repr(value)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 3] + "..."


def load_json_text(text: str, where: str) -> Any:
    """The value of JSON ``text``; a ``ConfigError`` naming ``where`` if it is too long or
    nested too deep (see the module), the parser's ``json.JSONDecodeError`` if malformed."""
    _check_size(text, MAX_JSON_CHARS, where)
    try:
        value = json.loads(text)
    except RecursionError:
        raise ConfigError(f"{where}: {_too_deep()}") from None
    # A value holds at most as many containers as the text has openers: most texts skip the walk.
    if text.count("[") + text.count("{") > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise ConfigError(f"{where}: {_too_deep()}")
    return value


def load_yaml_text(text: str, where: str) -> Any:
    """The value of YAML ``text`` (safe tags only); a ``ConfigError`` naming ``where`` if it is
    too long, nested too deep or uses an alias (see the module), the parser's
    ``yaml.YAMLError`` if malformed. Checked while composing, before any value is built."""
    _check_size(text, MAX_YAML_CHARS, where)
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as refused:
        raise ConfigError(f"{where}: {refused}") from None
    finally:
        loader.dispose()


class _Refused(Exception):
    """Raised inside the loader; :func:`load_yaml_text` turns it into a ``ConfigError``."""


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose composer refuses aliases to an anchor and collections more
    than ``MAX_DEPTH`` deep."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        at = f"at line {event.start_mark.line + 1}, column {event.start_mark.column + 1}"
        if isinstance(event, yaml.AliasEvent) and event.anchor in self.anchors:
            raise _Refused(
                f"a YAML alias ({preview('*' + event.anchor)}) {at}; aliases are not accepted "
                "(a few bytes can expand into gigabytes): write the value out"
            )
        nested = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        self.depth += nested
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(f"{_too_deep()} ({at})")
            return super().compose_node(parent, index)
        finally:
            self.depth -= nested


def _check_size(text: str, limit: int, where: str) -> None:
    if len(text) > limit:
        raise ConfigError(f"{where}: {len(text):,} characters, more than the {limit:,} accepted")


def _too_deep() -> str:
    return f"lists/mappings nested deeper than {MAX_DEPTH} levels"


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists/dicts more than ``limit`` deep (walked without recursion)."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def validation_problems(err, *, root: str | None = None, accepted: Iterable[str] | None = None) -> str:
    """A pydantic ``ValidationError`` as one line: ``field.path: message (got value)`` joined by
    ``; `` (values through :func:`preview`). A problem with no field is named ``root`` (or
    given bare); an unknown field lists ``accepted`` when given."""
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or root
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden" and accepted is not None:
            message = f"unknown parameter; accepted: {', '.join(accepted)}"
        elif e["type"] not in ("value_error", "missing") and not isinstance(e.get("input"), dict):
            message += f" (got {preview(e.get('input'))})"
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)
