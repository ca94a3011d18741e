"""The tracker interface, and the fan-out that keeps a failing tracker from failing a run.

A :class:`Tracker` sends one memzoo run at a time to one experiment tracker, offline, under
its own folder ``<tracker_dir>/<name>/``. The life of a run on it::

    start(run_id, config, tags)   once; continues the tracker's run of ``run_id`` when it
                                  has one (a resumed run), else begins one
    log_point(step, metrics)      once per curve point, as the point is appended
    finish(ending)                once, with the run's ending (status, final metrics, ...)
    close()                       after a failure: release what ``start`` opened; never raises

What every tracker logs, under these names (plain numbers only; nested dicts are joined
with ``/``; strings, lists and booleans are left out):

    curve points    at step = the point's ``epoch``: its stored names, e.g. ``train_loss``,
                    ``steps``, ``seconds``, ``train_loss/<key>`` and the validation metrics
                    of that epoch (``accuracy``, ...)
    final metrics   ``final/<name>`` (``final/accuracy``, ``final/validation/accuracy``,
                    ``final/selected_epoch``) and ``state_bytes``, at the last step
    texts           ``status``, ``checkpoint_path`` (absent without a checkpoint), ``error``

:class:`Trackers` wraps the trackers a run chose: an exception inside one of them is
reported once (one ``warning:`` line on stderr, through a rich console) and that tracker is
dropped; the run goes on, and its record and metrics are the same as without trackers.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Literal, get_args

from rich.console import Console

from memzoo.errors import MemzooError, first_line
from memzoo.files import make_folder

TrackerName = Literal["tensorboard", "mlflow", "wandb"]
TRACKER_NAMES: tuple[str, ...] = get_args(TrackerName)
INSTALL_HINT = "pip install 'memzoo[trackers]'"
# Fields of a run record that become a tracker run's tags (besides memzoo_run_id).
TAG_FIELDS = ("task", "layers", "suite", "config_hash", "device", "git_rev")
# Statuses of a run that ended on its own terms (the others: diverged, failed, interrupted).
CLEAN_ENDINGS = ("completed", "truncated")
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # memzoo.train.run_ids: safe as a folder name


def check_tracker_names(names: list[str]) -> list[str]:
    """``names`` if each is a tracker (:data:`TRACKER_NAMES`) named once; else ``ValueError``
    (pydantic reports it with the field)."""
    unknown = [n for n in names if n not in TRACKER_NAMES]
    if unknown:
        raise ValueError(f"unknown tracker {unknown[0]!r}; trackers: {', '.join(TRACKER_NAMES)}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"tracker {twice[0]!r} is named twice")
    return names


def require(module: str, package: str, tracker: str) -> ModuleType:
    """Import ``module`` (of PyPI ``package``) for ``tracker``; a one-line ``MemzooError``
    naming the extra when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MemzooError(
            f"tracker {tracker!r} needs the {package} package ({first_line(err, 120)}): {INSTALL_HINT}"
        ) from None


def tracker_run_id(run_id: object) -> str:
    """``run_id`` if it is safe as a folder name (memzoo's run ids are); else ``MemzooError``."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise MemzooError(f"run id {str(run_id)[:80]!r} cannot name a tracker run")
    return run_id


def flat_numbers(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The plain numbers of ``values`` as floats, nested mappings joined with ``/``:
    ``{"a": 1, "b": {"c": 2.5, "d": "x"}, "e": True}`` -> ``{"a": 1.0, "b/c": 2.5}``."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_numbers(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def flat_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``config`` as ``{"dotted.key": text}``: strings as they are, other leaves (numbers,
    lists, null, empty mappings) as JSON text."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flat_config(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value, default=str)
    return out


def run_tags(run_id: str, fields: Mapping[str, Any]) -> dict[str, str]:
    """The tags of a tracker run: ``memzoo_run_id`` and the :data:`TAG_FIELDS` of ``fields``
    (a run record's fields) that are set; ``layers`` joined with commas."""
    tags = {"memzoo_run_id": run_id}
    for name in TAG_FIELDS:
        value = fields.get(name)
        if value is not None and value != []:
            tags[name] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return tags


@dataclass(frozen=True)
class Ending:
    """How a run ended, as a tracker logs it: ``metrics`` are plain numbers already named
    (``final/<name>``, ``state_bytes``), logged at ``step``."""

    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    step: int = 0
    checkpoint_path: str | None = None
    error: str | None = None

    @property
    def clean(self) -> bool:
        """Whether the run ended on its own terms (completed or truncated)."""
        return self.status in CLEAN_ENDINGS

    def texts(self) -> dict[str, str]:
        """``status``, and ``checkpoint_path`` and ``error`` when set."""
        texts = {"status": self.status, "checkpoint_path": self.checkpoint_path, "error": self.error}
        return {k: v for k, v in texts.items() if v is not None}


class Tracker:
    """One experiment tracker's side of memzoo runs, one run at a time (see the module).

    Args:
        root: the tracker folder (``train.tracker_dir``); this tracker writes in
            ``root/<name>/``, created here (a link there is refused).

    Raises:
        MemzooError: the tracker's package is missing (subclasses import it first, before
            any folder is made); ``root/<name>`` is a link or cannot be made.
    """

    name: ClassVar[str] = ""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.folder = make_folder(self.root / self.name, f"{self.name} tracker folder")

    def has_run(self, run_id: str) -> bool:
        """Whether this tracker already holds a run of memzoo run ``run_id``."""
        raise NotImplementedError

    def start(self, run_id: str, config: dict[str, Any], tags: dict[str, str]) -> None:
        raise NotImplementedError

    def log_point(self, step: int, metrics: dict[str, float]) -> None:
        raise NotImplementedError

    def finish(self, ending: Ending) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what ``start`` opened, after a failure (must not raise)."""


def report(message: str) -> None:
    """One ``warning:`` line on stderr (the rich console keeps it above a live progress bar)."""
    Console(stderr=True, soft_wrap=True, highlight=False).print(f"warning: {message}", markup=False)


class Trackers:
    """The trackers of one run, each isolated: the first exception a tracker raises is
    reported once (:func:`report`), the tracker is closed and dropped, and the run goes on.

    An empty ``Trackers()`` (no tracker chosen, or a rank other than 0) does nothing."""

    def __init__(self, trackers: Iterable[Tracker] = ()):
        self.active: list[Tracker] = list(trackers)
        self.dropped: list[str] = []
        self.finished = False
        self._last_step = 0

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.active]

    def start(self, run_id: str, config: dict[str, Any], tags: dict[str, str]) -> None:
        """Start (or continue) run ``run_id`` on every tracker."""
        self._each("starting", lambda t: t.start(run_id, config, tags))

    def log_point(self, point: Mapping[str, Any]) -> None:
        """Log one curve point (a dict with ``epoch``) at step ``point["epoch"]``."""
        step = int(point.get("epoch", self._last_step + 1))
        metrics = flat_numbers({k: v for k, v in point.items() if k != "epoch"})
        self._last_step = step
        self._each(f"logging epoch {step}", lambda t: t.log_point(step, metrics))

    def finish(
        self,
        status: str,
        metrics: Mapping[str, Any],
        state_bytes: int | None = None,
        checkpoint_path: str | Path | None = None,
        *,
        error: str | None = None,
        step: int | None = None,
    ) -> None:
        """End the run on every tracker (once; later calls do nothing): ``metrics`` become
        ``final/<name>``, at ``step`` (default: the last point logged)."""
        if self.finished:
            return
        self.finished = True
        final = flat_numbers(metrics, "final/")
        if state_bytes is not None:
            final["state_bytes"] = float(state_bytes)
        ending = Ending(
            status,
            final,
            self._last_step if step is None else step,
            None if checkpoint_path is None else str(checkpoint_path),
            error,
        )
        self._each("finishing", lambda t: t.finish(ending))

    def _each(self, doing: str, call: Callable[[Tracker], None]) -> None:
        for tracker in list(self.active):
            try:
                call(tracker)
            except Exception as err:  # a tracker never fails the run
                self.active.remove(tracker)
                self.dropped.append(tracker.name)
                with contextlib.suppress(Exception):
                    tracker.close()
                report(
                    f"tracker {tracker.name!r} failed {doing} ({type(err).__name__}: {first_line(err, 200)}); "
                    "the run goes on without it"
                )
