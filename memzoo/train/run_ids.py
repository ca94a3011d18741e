"""Run ids: the one name a run has in the store and on disk (``<out_dir>/<run_id>/``).

A run id is joined onto folders, so one read from a stored row or a checkpoint's
``config.json`` is checked before use: letters, digits, ``.``, ``_`` and ``-`` only, starting
with a letter or digit, at most 128 characters. No separator and no ``..`` can appear, so
the folder of a run always lies inside its ``out_dir``.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from memzoo.errors import ConfigError
from memzoo.files import make_folder, refuse_links

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def new_run_id() -> str:
    """A fresh random run id: 12 hex digits."""
    return uuid.uuid4().hex[:12]


def check_run_id(run_id: object) -> str:
    """``run_id`` if it is a safe run id, else a ``ConfigError`` naming it."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise ConfigError(
            f"run id {run_id!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, and no '..'"
        )
    return run_id


def run_folder(out_dir: str | Path, run_id: object) -> Path:
    """``<out_dir>/<run_id>``, once ``run_id`` is checked and the resolved folder (symlinks
    followed) is known to lie inside ``out_dir``; else a ``ConfigError``."""
    root = Path(out_dir)
    folder = root / check_run_id(run_id)
    resolved_root, resolved = root.resolve(), folder.resolve()
    if resolved == resolved_root or not resolved.is_relative_to(resolved_root):
        raise ConfigError(f"run folder {str(folder)!r} resolves to {str(resolved)!r}, outside {str(root)!r}")
    return folder


def make_run_folder(out_dir: str | Path, run_id: object) -> Path:
    """``<out_dir>/<run_id>`` (see :func:`run_folder`), created if needed; a ``MemzooError``
    if it is a link or holds one: memzoo writes there, and never through a link."""
    folder = run_folder(out_dir, run_id)
    refuse_links(folder)
    return make_folder(folder, "run folder")
