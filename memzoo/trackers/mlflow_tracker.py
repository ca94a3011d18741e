"""MLflow: a local tracking store under ``<tracker_dir>/mlflow/``, written through ``MlflowClient``.

The store. MLflow 3.18 keeps its plain file store (a ``mlruns`` folder) in maintenance mode:
it raises unless ``MLFLOW_ALLOW_FILE_STORE=true``, and points to SQLite. The SQLite store
needs SQLAlchemy and Alembic, which the full ``mlflow`` package brings but ``mlflow-skinny``
(the extra ``memzoo[trackers]``) does not. So the store is, in this order:

    <tracker_dir>/mlflow/mlruns     when that folder exists (the file store; memzoo sets
                                    MLFLOW_ALLOW_FILE_STORE=true for this process, unless
                                    the environment already sets it)
    <tracker_dir>/mlflow/mlflow.db  when it exists, or when SQLAlchemy and Alembic import
                                    (``sqlite:///`` URI)
    <tracker_dir>/mlflow/mlruns     otherwise (mlflow-skinny alone)

Either is read with ``MlflowClient(tracking_uri=MlflowTracker(dir).uri)`` or ``mlflow ui
--backend-store-uri <that uri>`` (the UI needs the full ``mlflow`` package).

A memzoo run is one MLflow run in experiment ``memzoo``, named and tagged with its run id
(``memzoo_run_id``; a resumed run finds it by that tag and goes on in it). Params: the
config flattened to dotted keys (the first start's values: MLflow params never change),
values cut to MLflow's 6000 characters; metrics: each curve point at step = epoch, then
``final/<name>`` and ``state_bytes``; tags: the run's tags, ``status``, ``checkpoint_path``,
``error``; the MLflow status FINISHED (completed, truncated) or FAILED.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from pathlib import Path
from typing import Any

from memzoo.trackers.base import Ending, Tracker, flat_config, require, tracker_run_id

EXPERIMENT = "memzoo"
MAX_KEY, MAX_PARAM_VALUE, MAX_TAG_VALUE = 250, 6000, 8000  # mlflow.utils.validation
PARAMS_PER_BATCH, METRICS_PER_BATCH = 100, 1000
_BAD_KEY_CHARS = re.compile(r"[^\w./\- ]")  # MLflow names: letters, digits, _ - . / and spaces


def mlflow_key(name: str) -> str:
    """``name`` as a valid MLflow param, metric or tag name: other characters (``:``) become
    ``_``, empty, ``.`` and ``..`` path parts become ``_``, at most 250 characters."""
    parts = _BAD_KEY_CHARS.sub("_", name).split("/")
    return "/".join(p if p not in ("", ".", "..") else "_" for p in parts)[:MAX_KEY]


def store_uri(folder: Path) -> str:
    """The tracking URI of the store in ``folder`` (see the module for the choice)."""
    mlruns, database = folder / "mlruns", folder / "mlflow.db"
    sql = all(importlib.util.find_spec(m) is not None for m in ("sqlalchemy", "alembic"))
    if not mlruns.exists() and (database.exists() or sql):
        return "sqlite:///" + str(database.absolute())
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return mlruns.absolute().as_uri()


class MlflowTracker(Tracker):
    """Runs in the local MLflow store under ``<tracker_dir>/mlflow/`` (see the module)."""

    name = "mlflow"

    def __init__(self, root: str | Path):
        self._client_class = require("mlflow.tracking", "mlflow-skinny", self.name).MlflowClient
        self._entities = require("mlflow.entities", "mlflow-skinny", self.name)
        super().__init__(root)
        self.uri = store_uri(self.folder)
        self.client = self._client_class(tracking_uri=self.uri)
        self.mlflow_run: str | None = None

    def experiment_id(self) -> str:
        """The id of experiment ``memzoo``, created (artifacts under this folder) if needed."""
        found = self.client.get_experiment_by_name(EXPERIMENT)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(
                EXPERIMENT, artifact_location=(self.folder / "artifacts").absolute().as_uri()
            )
        except Exception:  # another process created it meanwhile
            found = self.client.get_experiment_by_name(EXPERIMENT)
            if found is None:
                raise
            return found.experiment_id

    def find(self, run_id: str):
        """The MLflow run tagged ``memzoo_run_id = run_id`` (None if there is none)."""
        tracker_run_id(run_id)  # safe inside the filter's quotes
        found = self.client.search_runs(
            [self.experiment_id()], filter_string=f"tags.memzoo_run_id = '{run_id}'", max_results=1
        )
        return found[0] if found else None

    def has_run(self, run_id: str) -> bool:
        return self.find(run_id) is not None

    def start(self, run_id: str, config: dict[str, Any], tags: dict[str, str]) -> None:
        found = self.find(run_id)
        if found is None:
            run = self.client.create_run(self.experiment_id(), tags=self._tags(tags), run_name=run_id)
            self.mlflow_run, logged = run.info.run_id, {}
        else:
            self.mlflow_run, logged = found.info.run_id, found.data.params
            self.client.update_run(self.mlflow_run, status="RUNNING")
        params = {}
        for key, value in flat_config(config).items():
            params.setdefault(mlflow_key(key), value[:MAX_PARAM_VALUE])
        fresh = [self._entities.Param(k, v) for k, v in params.items() if k not in logged]
        for i in range(0, len(fresh), PARAMS_PER_BATCH):
            self.client.log_batch(self.mlflow_run, params=fresh[i : i + PARAMS_PER_BATCH])

    def log_point(self, step: int, metrics: dict[str, float]) -> None:
        self._log_metrics(metrics, step)

    def finish(self, ending: Ending) -> None:
        self._log_metrics(ending.metrics, ending.step)
        tags = [self._entities.RunTag(k, v) for k, v in self._tags(ending.texts()).items()]
        self.client.log_batch(self.mlflow_run, tags=tags)
        self.client.set_terminated(self.mlflow_run, "FINISHED" if ending.clean else "FAILED")
        self.mlflow_run = None

    def close(self) -> None:
        if self.mlflow_run is not None:
            run, self.mlflow_run = self.mlflow_run, None
            self.client.set_terminated(run, "FAILED")

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        rows = [self._entities.Metric(mlflow_key(k), v, now, step) for k, v in metrics.items()]
        for i in range(0, len(rows), METRICS_PER_BATCH):
            self.client.log_batch(self.mlflow_run, metrics=rows[i : i + METRICS_PER_BATCH])

    @staticmethod
    def _tags(tags: dict[str, str]) -> dict[str, str]:
        return {mlflow_key(k): v[:MAX_TAG_VALUE] for k, v in tags.items()}
