"""The one table of run kinds (``memzoo.train.kinds``): every kind has a runner, and what a kind
refuses (resume, torchrun, being a multitask entry, a curriculum) is refused in one line."""

from __future__ import annotations

import pytest

from memzoo.errors import ConfigError
from memzoo.train import build_config, fit
from memzoo.train.kinds import KINDS, NOT_SINGLE_TASK, SINGLE, kind_of
from memzoo.train.run_kinds import _RUNNERS


def test_every_kind_has_exactly_one_runner():
    assert set(_RUNNERS) == {SINGLE.name, *KINDS}
    assert kind_of("mqar") is SINGLE and kind_of("multitask") is KINDS["multitask"]


@pytest.mark.parametrize("name", [k for k, kind in KINDS.items() if not kind.resumable])
def test_a_kind_that_cannot_resume_is_refused(name, tmp_path):
    with pytest.raises(ConfigError, match=f"task {name!r} cannot be resumed; only single-task runs can"):
        fit(build_config({}, [f"task.name={name}"]), resume_from=tmp_path)


@pytest.mark.parametrize("name", [k for k, kind in KINDS.items() if not kind.distributed])
def test_a_kind_that_trains_in_one_process_is_refused_under_torchrun(name, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="trains in one process"):
        fit(build_config({}, [f"task.name={name}"]))


@pytest.mark.parametrize("name", NOT_SINGLE_TASK)
def test_no_kind_of_its_own_is_a_multitask_entry(name):
    with pytest.raises(ConfigError, match="cannot be part of a multitask run"):
        build_config({}, ["task.name=multitask", f"task.tasks=[{{name: {name}}}, {{name: mqar}}]"])
