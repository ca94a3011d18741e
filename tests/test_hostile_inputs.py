"""Hostile inputs, second round: each is refused in one ``error: `` line with exit code 2 (or,
for a failure inside a run, exit code 1), names the file or field, prints no traceback and
loses nothing already stored.

Cases: a series value whose standardisation overflows; JSON/YAML nested without bound or
expanded by aliases, wherever memzoo reads it; a WAV holding NaN samples; a layer import path
with a relative import; a user layer that raises in the middle of a run.
"""

from __future__ import annotations

import json
import signal
import textwrap
from contextlib import contextmanager

import numpy as np
import pytest
from test_hostile import TINY, alias_bomb, assert_one_line_error, copy_run, run_main

import memzoo
from memzoo.errors import MemzooError
from memzoo.results.record import RunRecord
from memzoo.results.store import ResultsStore
from memzoo.train.config import parse_value

DEEP = 100_000  # past Python's recursion limit: json and PyYAML raise RecursionError
SHALLOW_BUT_DEEP = 500  # parses, but nests past memzoo's bound (crashes later code instead)


def deep_json(levels: int) -> str:
    return "[" * levels + "]" * levels


@contextmanager
def within(seconds: int):
    """Fail instead of hanging when the block runs longer than ``seconds``."""

    def expired(signum, frame):
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def stored_db(tmp_path):
    """A results database already holding one finished run (which must survive)."""
    db = tmp_path / "r.db"
    ResultsStore(db).write_record(
        RunRecord(run_id="kept", config={}, config_hash="h", status="completed", task="mqar", layers=["gru"])
    )
    return db


def assert_kept(db):
    runs = ResultsStore(db).runs()
    assert "kept" in [r.run_id for r in runs], runs
    assert not [r for r in runs if r.status in ("running", "completed") and r.run_id != "kept"], runs


# ---------------------------------------------------------------- 5. overflowing series values
def test_a_forecast_value_whose_standardisation_overflows_names_file_row_column(
    tmp_path, monkeypatch, capsys
):
    path = tmp_path / "s.csv"
    values = [str(v) for v in range(1, 41)]
    values[6] = "1e300"  # data row 7 (line 8 of the file, after the header)
    path.write_text("value\n" + "\n".join(values) + "\n")
    db = stored_db(tmp_path)
    args = [
        "train",
        "task.name=forecast",
        f"task.path={path}",
        "task.context_len=4",
        "model.layers=[gru]",
        "model.d_model=8",
        "train.epochs=1",
        "train.num_train=16",
        "train.num_test=8",
        f"train.out_dir={tmp_path / 'runs'}",
        "--db",
        db,
    ]
    code, _, err = run_main(monkeypatch, capsys, args)
    assert_one_line_error(code, err, "s.csv", "column 'value'", "'1e300'", "row 7")
    assert_kept(db)


@pytest.mark.parametrize("value", ["-1e200", "1.5e100"])
def test_an_overflowing_value_names_its_row_in_the_file_even_when_sorted_by_time(tmp_path, value):
    from memzoo.data.series import load_series

    path = tmp_path / "s.csv"
    path.write_text(f"t,a,b\n3,1,1\n1,2,{value}\n2,3,3\n")  # time order puts row 2 first
    with pytest.raises(MemzooError, match=rf"s.csv'.*column 'b' .*'{value}' at row 2 "):
        load_series(path, column=["a", "b"], time_column="t")


def test_values_up_to_the_bound_are_accepted(tmp_path):
    from memzoo.data.series import load_series

    path = tmp_path / "s.csv"
    path.write_text("value\n1e100\n-1e100\n3\n")
    values = load_series(path)
    assert np.isfinite(values.std()) and values.tolist() == [1e100, -1e100, 3.0]


# ---------------------------------------------------------------- 7. nested and aliased JSON/YAML
@pytest.mark.parametrize(
    "name,text,needle",
    [
        ("deep.json", '{"task": ' + deep_json(DEEP) + "}", "deeper than 64"),
        ("deep.yaml", "model:\n  layer_options: " + deep_json(SHALLOW_BUT_DEEP) + "\n", "deeper than 64"),
        ("laughs.yaml", alias_bomb(9, 9), "alias"),
        ("alias.yaml", "a: &a [*a]\n", "alias"),
    ],
)
def test_nested_or_aliased_config_files_are_one_line(tmp_path, monkeypatch, capsys, name, text, needle):
    path = tmp_path / name
    path.write_text(text)
    with within(10):
        code, _, err = run_main(monkeypatch, capsys, ["train", "--config", path, "--no-store"])
    assert_one_line_error(code, err, needle, name)


@pytest.mark.parametrize(
    "value,needle",
    [
        (alias_bomb(6, 10), "alias"),
        (deep_json(DEEP), "deeper than 64"),
        ("{a: " * SHALLOW_BUT_DEEP + "1" + "}" * SHALLOW_BUT_DEEP, "deeper than 64"),
        ("x" * 100_000, "model.layer_options"),
    ],
)
def test_nested_aliased_or_huge_overrides_are_one_short_line(monkeypatch, capsys, value, needle):
    with within(10):
        code, _, err = run_main(monkeypatch, capsys, ["train", f"model.layer_options={value}", "--no-store"])
    assert_one_line_error(code, err, needle)
    assert len(err) < 400, len(err)


def test_plain_override_values_parse_as_before():
    assert parse_value("3") == 3 and parse_value("1e-3") == 1e-3 and parse_value("[a, b]") == ["a", "b"]
    assert parse_value("yes") is True and parse_value("~") is None and parse_value("{") == "{"
    assert parse_value("*undefined") == "*undefined" and parse_value("*.csv") == "*.csv"
    assert parse_value("&a 5") == 5  # an anchor nothing refers to is harmless
    assert parse_value("{a: {b: [1, {c: 2}]}}") == {"a": {"b": [1, {"c": 2}]}}


@pytest.mark.parametrize("levels", [DEEP, SHALLOW_BUT_DEEP])
def test_a_deeply_nested_checkpoint_config_is_one_line(finished_run, tmp_path, monkeypatch, capsys, levels):
    folder = copy_run(finished_run, tmp_path)
    for meta_file in (folder / "config.json", folder / "last" / "config.json"):
        meta = json.loads(meta_file.read_text())
        meta_file.write_text(json.dumps(meta)[:-1] + f', "extra": {deep_json(levels)}}}')
    code, _, err = run_main(
        monkeypatch, capsys, ["train", "--resume", folder, "train.epochs=2", "--no-store"]
    )
    assert_one_line_error(code, err, "config.json", "deeper than 64")
    with pytest.raises(MemzooError, match="config.json.*deeper than 64"):
        memzoo.load(folder)


@pytest.mark.parametrize("levels", [DEEP, SHALLOW_BUT_DEEP])
def test_deeply_nested_text_files_name_the_file(tmp_path, levels):
    from memzoo.data.text_files import read_records
    from memzoo.data.text_tokenizers import load_tokenizer
    from memzoo.tasks.text_classify import load_artifacts

    deep = deep_json(levels)
    (tmp_path / "t.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": ' + deep + ', "label": "y"}\n')
    with pytest.raises(MemzooError, match=r"t.jsonl:2: .*deeper than 64"):
        read_records(tmp_path / "t.jsonl")
    (tmp_path / "tokenizer.json").write_text('{"model": ' + deep + "}")
    with pytest.raises(MemzooError, match=r"tokenizer.json: .*deeper than 64"):
        load_tokenizer(tmp_path / "tokenizer.json")
    (tmp_path / "labels.json").write_text('{"classes": ' + deep + ', "seq_len": 8}')
    with pytest.raises(MemzooError, match=r"labels.json: .*deeper than 64"):
        load_artifacts(tmp_path)


# ---------------------------------------------------------------- 10. a WAV with NaN samples
def test_a_wav_with_nan_samples_names_the_file(tmp_path, monkeypatch, capsys):
    import soundfile

    folder = tmp_path / "wavs"
    folder.mkdir()
    tone = (0.3 * np.sin(np.linspace(0, 200 * np.pi, 8000))).astype(np.float32)
    broken = tone.copy()
    broken[100:200] = np.nan
    for name, samples in [("a.wav", tone), ("b.wav", broken), ("c.wav", tone)]:
        soundfile.write(str(folder / name), samples, 16000, subtype="FLOAT")
    (folder / "transcript.txt").write_text("a.wav yes\nb.wav no\nc.wav yes\n")
    db = stored_db(tmp_path)
    args = [
        "train",
        "task.name=speech_words",
        f"task.path={folder}",
        f"task.cache_dir={tmp_path / 'cache'}",
        "model.layers=[gru]",
        "model.d_model=8",
        "train.epochs=1",
        f"train.out_dir={tmp_path / 'runs'}",
        "--db",
        db,
    ]
    code, _, err = run_main(monkeypatch, capsys, args)
    assert_one_line_error(code, err, "b.wav", "non-finite")
    assert_kept(db)


# ---------------------------------------------------------------- 11. user layers
@pytest.mark.parametrize("path", ["..pkg:Cls", ".pkg:Cls", "pkg..mod:Cls", "pkg:Cls.inner", "pkg mod:Cls"])
def test_a_layer_path_that_is_not_a_dotted_import_path_is_one_line(monkeypatch, capsys, path):
    code, _, err = run_main(monkeypatch, capsys, ["train", f"model.layers=[{path}]", "--no-store"])
    assert_one_line_error(code, err, "model.layers", "package.module:ClassName")


RAISING_LAYER = textwrap.dedent(
    """
    import torch

    from memzoo.layers.base import MemoryLayer


    class Breaks(MemoryLayer):
        kind = "short"
        family = "recurrent"
        calls = 0

        def init_state(self, batch_size, device=None, dtype=None):
            return torch.zeros(batch_size, self.d_model, device=device, dtype=dtype)

        def forward(self, x, state=None):
            if self.training:
                Breaks.calls += 1
                if Breaks.calls % 3 == 0:
                    raise ValueError("boom at step 3\\nsecond line")
            return x, self.init_state(x.shape[0], x.device, x.dtype)

        def state_size(self, seq_len):
            return 0
    """
)


def test_a_user_layer_that_raises_mid_run_is_one_line_and_a_failed_row(tmp_path, monkeypatch, capsys):
    (tmp_path / "breaking_layer.py").write_text(RAISING_LAYER)
    monkeypatch.syspath_prepend(str(tmp_path))
    db = stored_db(tmp_path)
    args = [
        "train",
        *TINY,
        "model.layers=[breaking_layer:Breaks]",
        "train.batch_size=16",
        f"train.out_dir={tmp_path / 'runs'}",
        "--db",
        db,
    ]
    monkeypatch.delenv("MEMZOO_DEBUG", raising=False)
    code, _, err = run_main(monkeypatch, capsys, args)
    assert code == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    failed = [r for r in ResultsStore(db).runs() if r.run_id != "kept"]
    assert [r.status for r in failed] == ["failed"] and "boom at step 3" in failed[0].error
    for needle in (failed[0].run_id, "ValueError: boom at step 3", "breaking_layer.py", "MEMZOO_DEBUG=1"):
        assert needle in err, (needle, err)
    assert "second line" not in err
    assert_kept(db)

    monkeypatch.setenv("MEMZOO_DEBUG", "1")  # the traceback, for whoever debugs the layer
    with pytest.raises(ValueError, match="boom at step 3"):
        run_main(monkeypatch, capsys, [*args[:-2], "--no-store"])
