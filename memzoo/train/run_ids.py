"""Run ids: the one name a run has in the store and on disk (``<out_dir>/<run_id>/``).

A run id is joined onto folders, so one read from a stored row or a checkpoint's
``config.json`` is checked before use: letters, digits, ``.``, ``_`` and ``-`` only, starting
with a letter or digit, at most 128 characters. No separator and no ``..`` can appear, so
the folder of a run always lies inside its ``out_dir``.
"""

from __future__ import annotations

import re

from memzoo.errors import ConfigError

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_id(run_id: object) -> str:
    """``run_id`` if it is a safe run id, else a ``ConfigError`` naming it."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise ConfigError(
            f"run id {run_id!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, and no '..'"
        )
    return run_id
