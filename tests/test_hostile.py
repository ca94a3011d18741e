"""Hostile but fair inputs (issue 15): every one is refused in one line with exit code 2 (or
handled), never a traceback, never a path outside its folder, never a row left ``running``."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys

import pytest
import torch

import memzoo
from memzoo.errors import MemzooError
from memzoo.results.record import RunRecord
from memzoo.results.store import ResultsStore
from memzoo.train import build_config, fit

TINY = [
    "task.name=mqar",
    "task.vocab_size=32",
    "task.seq_len=16",
    "task.num_kv_pairs=2",
    "model.layers=[gru]",
    "model.d_model=16",
    "train.num_train=64",
    "train.num_test=32",
    "train.epochs=1",
    "train.batch_size=32",
]


def run_main(monkeypatch, capsys, args):
    """The console entry point in-process: (exit code, stdout, stderr)."""
    from memzoo.cli.main import main

    monkeypatch.setattr(sys, "argv", ["memzoo", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in err, (needle, err)


def copy_run(finished_run, tmp_path, name=None):
    target = tmp_path / "ckpts" / (name or finished_run.name)
    shutil.copytree(finished_run, target)
    return target


# ---------------------------------------------------------------- 1. path escape via run_id
def test_forged_run_id_in_a_checkpoint_cannot_escape(finished_run, tmp_path, monkeypatch, capsys):
    folder = copy_run(finished_run, tmp_path)
    meta_file = folder / "last" / "config.json"
    meta = json.loads(meta_file.read_text())
    escaped = tmp_path / "elsewhere" / "ESCAPED"
    meta["run_id"] = "../../../../" + str(escaped).lstrip("/")
    meta_file.write_text(json.dumps(meta))
    db = tmp_path / "r.db"
    for extra in (["--no-store"], ["--db", db]):
        code, _, err = run_main(monkeypatch, capsys, ["train", "--resume", folder, "train.epochs=3", *extra])
        assert_one_line_error(code, err, "run id", "not valid")
    assert not (tmp_path / "elsewhere").exists()
    assert not escaped.exists()
    assert ResultsStore(db).runs() == []


def test_forged_run_id_in_the_store_cannot_escape(finished_run, tmp_path, monkeypatch, capsys):
    db = tmp_path / "r.db"
    meta = json.loads((finished_run / "config.json").read_text())
    record = RunRecord(
        run_id="../../outside",
        config=meta["config"],
        config_hash="x",
        status="failed",
        task="mqar",
        layers=["gru"],
    )
    ResultsStore(db).write_record(record)
    code, _, err = run_main(monkeypatch, capsys, ["train", "--resume", "../../outside", "--db", db])
    assert_one_line_error(code, err, "cannot be resumed", "not valid")


def test_resume_from_a_folder_stays_in_it(finished_run, tmp_path, monkeypatch, capsys):
    """config.json's out_dir is not followed: the resumed run goes on in its own folder."""
    folder = copy_run(finished_run, tmp_path, name="renamed")
    code, _, err = run_main(monkeypatch, capsys, ["train", "--resume", folder, "--no-store"])
    assert_one_line_error(code, err, "name the folder")
    folder = copy_run(finished_run, tmp_path, name=finished_run.name)
    meta_file = folder / "last" / "config.json"
    meta = json.loads(meta_file.read_text())
    meta["config"]["train"]["out_dir"] = str(tmp_path / "not-here")
    meta_file.write_text(json.dumps(meta))
    code, out, err = run_main(
        monkeypatch, capsys, ["train", "--resume", folder, "train.epochs=2", "--no-store", "--json"]
    )
    assert code in (0, None), err
    assert json.loads(out.splitlines()[-1])["status"] == "completed"
    assert not (tmp_path / "not-here").exists()
    assert sorted(p.name for p in (tmp_path / "ckpts").iterdir()) == sorted(["renamed", meta["run_id"]])
    assert json.loads(meta_file.read_text())["epoch"] == 2  # went on in the folder itself


# ---------------------------------------------------------------- 6. corrupt checkpoints
def _garbage_state(folder):
    (folder / "last" / "train_state.pt").write_bytes(b"garbage, not a zip")


def _pickled_code_state(folder):
    import pickle

    (folder / "last" / "train_state.pt").write_bytes(pickle.dumps(print))


def _truncated_weights(folder):
    path = folder / "last" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])


def _broken_json(folder):
    (folder / "last" / "config.json").write_text("{")


def _wrong_state_field(folder):
    path = folder / "last" / "train_state.pt"
    state = torch.load(path, weights_only=True)
    state["step"] = "many"
    torch.save(state, path)


def _foreign_optimizer(folder):
    path = folder / "last" / "train_state.pt"
    state = torch.load(path, weights_only=True)
    state["optimizer"] = {"state": {}, "param_groups": []}
    torch.save(state, path)


def _wrong_weight_shapes(folder):
    from safetensors.torch import load_file, save_file

    path = folder / "last" / "model.safetensors"
    weights = load_file(str(path))
    name = next(iter(weights))
    weights[name] = torch.zeros(3, 5)
    save_file(weights, str(path))


@pytest.mark.parametrize(
    "damage,needle",
    [
        (_garbage_state, "train_state.pt"),
        (_pickled_code_state, "train_state.pt"),
        (_truncated_weights, "model.safetensors"),
        (_broken_json, "config.json"),
        (_wrong_state_field, "'step'"),
        (_foreign_optimizer, "train_state.pt"),
        (_wrong_weight_shapes, "model.safetensors"),
    ],
)
def test_damaged_checkpoint_is_one_line(finished_run, tmp_path, monkeypatch, capsys, damage, needle):
    folder = copy_run(finished_run, tmp_path)
    damage(folder)
    db = tmp_path / "r.db"
    code, _, err = run_main(monkeypatch, capsys, ["train", "--resume", folder, "train.epochs=3", "--db", db])
    assert_one_line_error(code, err, needle)
    assert "weights_only" not in err
    assert [r.status for r in ResultsStore(db).runs()] in ([], ["failed"])  # never left running


@pytest.mark.parametrize(
    "damage,needle",
    [
        (lambda d: (d / "model.safetensors").write_bytes(b"\x00" * 50), "model.safetensors"),
        (lambda d: (d / "config.json").write_text("not json"), "config.json"),
        (lambda d: (d / "config.json").write_text("[1, 2]"), "JSON object"),
        (lambda d: (d / "config.json").write_text('{"config": {}}'), "do not describe one model"),
        (lambda d: (d / "config.json").write_text('{"kind": "multitask"}'), "do not describe one model"),
    ],
)
def test_memzoo_load_of_a_damaged_checkpoint(finished_run, tmp_path, damage, needle):
    folder = copy_run(finished_run, tmp_path)
    damage(folder)
    with pytest.raises(MemzooError, match=needle):
        memzoo.load(folder)


def test_knn_store_with_wrong_shapes_is_refused_on_load(tmp_path):
    from memzoo.layers import build
    from memzoo.layers.knn import load_store, save_store

    layer = build("knn", d_model=16, capacity=10, local_window=3, top_k=2)
    state = layer.init_state(2)
    save_store(state._replace(store_v=torch.zeros(2, 4, 9, 4)), tmp_path / "kv.safetensors")
    with pytest.raises(memzoo.ConfigError, match="kv.safetensors.*keys and values differ"):
        load_store(tmp_path / "kv.safetensors")
    save_store(state._replace(seen=torch.zeros(3, dtype=torch.long)), tmp_path / "seen.safetensors")
    with pytest.raises(memzoo.ConfigError, match="seen must be"):
        load_store(tmp_path / "seen.safetensors")
    save_store(state, tmp_path / "ok.safetensors")
    other = build("knn", d_model=16, capacity=20, local_window=3, top_k=2)
    with pytest.raises(memzoo.ConfigError, match="the layer needs"):
        load_store(tmp_path / "ok.safetensors", layer=other)
    assert load_store(tmp_path / "ok.safetensors", layer=layer).store_k.shape == (2, 4, 10, 4)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(memzoo.ConfigError, match="junk.safetensors"):
        load_store(tmp_path / "junk.safetensors")


# ---------------------------------------------------------------- 7. output paths, missing dbs
def test_report_out_onto_a_directory_or_under_a_file(tmp_path, monkeypatch, capsys):
    db = tmp_path / "r.db"
    ResultsStore(db)
    (tmp_path / "plain").write_text("x")
    for out, needle in (
        (tmp_path, "is a directory"),
        (tmp_path / "plain" / "r.html", "is a file, not a folder"),
    ):
        code, _, err = run_main(monkeypatch, capsys, ["report", "--db", db, "--out", out])
        assert_one_line_error(code, err, needle)


def test_report_out_checked_before_the_database(tmp_path, monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, ["report", "--db", tmp_path / "no.db", "--out", tmp_path])
    assert_one_line_error(code, err, "is a directory")


@pytest.mark.parametrize("command", ["report", "runs"])
def test_reading_a_missing_database_creates_nothing(tmp_path, monkeypatch, capsys, command):
    db = tmp_path / "sub" / "mistyped.db"
    code, _, err = run_main(monkeypatch, capsys, [command, "--db", db])
    assert_one_line_error(code, err, "run a benchmark first")
    assert not db.exists() and not db.parent.exists()


def test_bench_of_an_unknown_suite_creates_no_database(tmp_path, monkeypatch, capsys):
    db = tmp_path / "b.db"
    code, _, err = run_main(monkeypatch, capsys, ["bench", "--suite", "nosuch", "--db", db])
    assert_one_line_error(code, err, "nosuch", "smoke")
    assert not db.exists()


def test_runs_with_an_unknown_status_lists_the_allowed_ones(tmp_path, monkeypatch, capsys):
    db = tmp_path / "r.db"
    ResultsStore(db)
    code, _, err = run_main(monkeypatch, capsys, ["runs", "--db", db, "--status", "bogus"])
    assert_one_line_error(code, err, "bogus", "running, completed, failed, diverged, truncated")


def test_a_read_only_database_is_called_read_only(tmp_path, monkeypatch):
    """Opened read-only (as SQLite does for a file it may not write), a write says so."""
    db = tmp_path / "r.db"
    ResultsStore(db)
    real = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda path, **kw: real(f"file:{path}?mode=ro", uri=True, **kw))
    store = ResultsStore(db)
    assert store.runs() == []
    record = RunRecord(run_id="a", config={}, config_hash="h", status="running", task="t", layers=[])
    with pytest.raises(MemzooError, match="is read-only"):
        store.start_run(record)


# ---------------------------------------------------------------- 8. config files
@pytest.mark.parametrize(
    "name,text,needle",
    [
        ("alias.yaml", "a: &a [*a]\n", "YAML alias"),
        ("empty.yaml", "", "is empty"),
        ("blank.yaml", "# only a comment\n", "is empty"),
        ("bad.yaml", "task:\n  name: [mqar\n x: {\n", "line 3"),
        ("bad.json", '{"task": \n', "not valid YAML/JSON"),
        ("list.yaml", "- 1\n- 2\n", "mapping"),
        ("latin1.yaml", "task:\n  name: caf\xe9\n", "not UTF-8"),
    ],
)
def test_bad_config_files_are_one_line(tmp_path, monkeypatch, capsys, name, text, needle):
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    code, _, err = run_main(monkeypatch, capsys, ["train", "--config", path, "--no-store"])
    assert_one_line_error(code, err, needle, name)


def test_config_directory_is_named_as_a_directory(tmp_path, monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, ["train", "--config", tmp_path, "--no-store"])
    assert_one_line_error(code, err, "is a directory")


def test_self_referencing_override_value(monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, ["train", "model.layer_options=&a [*a]", "--no-store"])
    assert_one_line_error(code, err, "YAML alias")


# ---------------------------------------------------------------- 3. concurrent benches
def test_two_benches_of_one_suite_share_the_work(tmp_path):
    """Started together on one database, two drivers run each smoke config once."""
    import os
    import subprocess

    from memzoo.report.html import write_report
    from memzoo.results.record import config_hash
    from memzoo.sweep.suites import suite_configs

    db = tmp_path / "same.db"
    args = [
        sys.executable,
        "-m",
        "memzoo",
        "bench",
        "--suite",
        "smoke",
        "--workers",
        "1",
        "--db",
        db,
        "--json",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
    ]
    procs.append(
        subprocess.Popen(
            list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
    )
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert sum(s["completed"] for s in summaries) == 4, summaries
    runs = ResultsStore(db).runs(with_curves=False)
    hashes = {config_hash(c.model_dump(mode="json")) for c in suite_configs("smoke")}
    assert sorted(r.config_hash for r in runs) == sorted(hashes)  # each config exactly once
    assert {r.status for r in runs} == {"completed"}
    page = write_report(db, tmp_path / "r.html").read_text()
    assert "n=2)" in page and "n=4)" not in page  # two seeds per layer, not four


def test_a_live_claim_is_respected_and_a_dead_one_reclaimed(tmp_path):
    from memzoo.results.store import Lease

    store = ResultsStore(tmp_path / "r.db")

    def record(run_id):
        return RunRecord(
            run_id=run_id, config={}, config_hash="h", status="running", task="t", layers=[], suite="s"
        )

    mine = Lease()
    assert store.claim(record("a"), mine)
    assert not store.claim(record("b"), Lease())  # held by a live driver (this process)
    store.release(mine)
    assert store.claim(record("c"), Lease())  # released: a row left running is reclaimed
    dead = Lease(pid=2**22 + 12345)  # no such process
    assert store.claim(record("d"), dead) is False  # c is still held by its live lease
    assert [r.run_id for r in store.runs()] == ["c"]
    expired = Lease(ttl=-1)
    store2 = ResultsStore(tmp_path / "r2.db")
    assert store2.claim(record("e"), expired)
    assert store2.claim(record("f"), Lease())  # an expired lease frees the row
    assert store2.mark_interrupted("s") == []  # f's driver is alive: not interrupted
    store3 = ResultsStore(tmp_path / "r3.db")
    assert store3.claim(record("g"), Lease(pid=dead.pid))
    assert store3.claim(record("h"), Lease())  # a killed driver's claim is recovered at once
    assert store3.mark_interrupted("s") == []


# ---------------------------------------------------------------- 4. non-finite data and weights
@pytest.mark.parametrize("value,row", [("inf", 3), ("-Infinity", 2), ("1e400", 4), ("NaN", None)])
def test_non_finite_series_values_name_the_row(tmp_path, value, row):
    from memzoo.data.series import load_series

    values = ["1", "2", "3", "4"]
    values[(row or 2) - 1] = value
    path = tmp_path / "s.csv"
    path.write_text("value\n" + "\n".join(values) + "\n")
    if row is None:  # NaN is a missing value: interpolated
        assert load_series(path).tolist() == [1.0, 2.0, 3.0, 4.0]
        return
    with pytest.raises(MemzooError, match=rf"s.csv'.*non-finite value '{value}' at row {row}$"):
        load_series(path)


def test_non_finite_interaction_time_names_the_row(tmp_path):
    from memzoo.data.interactions import load_interactions

    path = tmp_path / "i.csv"
    path.write_text("userId,movieId,timestamp\n1,a,1\n1,b,inf\n")
    with pytest.raises(MemzooError, match="non-finite time 'inf' at row 2"):
        load_interactions(path)


@pytest.mark.parametrize("loader", ["series", "interactions"])
def test_non_utf8_files_name_the_row(tmp_path, loader):
    from memzoo.data.interactions import load_interactions
    from memzoo.data.series import load_series

    path = tmp_path / "d.csv"
    if loader == "series":
        path.write_bytes(b"value\n1\n2\n\xe93\n")
        call = lambda: load_series(path)  # noqa: E731
    else:
        path.write_bytes(b"userId,movieId,timestamp\n1,a,1\n1,\xe9b,3\n")
        call = lambda: load_interactions(path)  # noqa: E731
    with pytest.raises(MemzooError, match=r"not valid utf-8 text at row \d \(line \d, byte 0xe9"):
        call()


def test_csv_text_fields_as_long_as_jsonl_ones(tmp_path):
    from memzoo.data.text_files import read_records

    long = "word " * 40_000  # 200,000 characters: over csv's default field limit
    (tmp_path / "t.csv").write_text(f"text,label\n{long},a\nshort,b\n")
    (tmp_path / "t.jsonl").write_text(
        json.dumps({"text": long, "label": "a"}) + "\n" + json.dumps({"text": "short", "label": "b"}) + "\n"
    )
    for name in ("t.csv", "t.jsonl"):
        _, records = read_records(tmp_path / name)
        assert records[0].fields["text"] == long


@pytest.mark.parametrize("override", ["train.lr=inf", "train.lr=nan", "train.lr=-inf", "train.lr=1e400"])
def test_non_finite_learning_rate_is_refused(monkeypatch, capsys, override):
    code, _, err = run_main(monkeypatch, capsys, ["train", override, "--no-store"])
    assert_one_line_error(code, err, "train.lr")


def test_a_blow_up_on_the_last_step_is_diverged(tmp_path):
    """One Adam step of lr 1e30 leaves finite weights (~1e30) whose outputs are NaN."""
    store = ResultsStore(tmp_path / "r.db")
    cfg = build_config(
        {},
        TINY
        + ["model.layers=[attention]", "train.num_train=32", "train.lr=1e30", "train.warmup_fraction=0"]
        + [f"train.out_dir={tmp_path / 'runs'}"],
    )
    result = fit(cfg, store=store, progress=False)
    assert result.metrics["steps"] == 1
    assert result.status == "diverged" and "non-finite validation outputs after step 1" in result.record.error
    assert store.get(result.run_id).status == "diverged"
    assert not (tmp_path / "runs" / result.run_id / "model.safetensors").exists()  # nothing selected


# ---------------------------------------------------------------- 2. no row left running
@pytest.mark.parametrize(
    "override,needle",
    [
        ("model.layer_options={attention: {num_heads: 7}}", "num_heads"),
        ("model.layer_options={attention: {score: bogus}}", "score"),
        ("model.d_model=1e12", "model.d_model"),
        ("train.num_train=1e12", "train.num_train"),
    ],
)
def test_a_failed_train_leaves_no_running_row(tmp_path, monkeypatch, capsys, override, needle):
    db = tmp_path / "t.db"
    args = [
        "train",
        *TINY,
        "model.layers=[attention]",
        override,
        "--db",
        db,
        f"train.out_dir={tmp_path}/runs",
    ]
    code, _, err = run_main(monkeypatch, capsys, args)
    assert_one_line_error(code, err, needle)
    runs = ResultsStore(db).runs()
    assert all(r.status == "failed" and needle.split(".")[-1] in r.error for r in runs), runs
    code, out, _ = run_main(monkeypatch, capsys, ["runs", "--db", db, "--status", "running", "--json"])
    assert code in (0, None) and out.strip() == ""


# ---------------------------------------------------------------- 5. sizes bounded
@pytest.mark.parametrize(
    "overrides,fields",
    [
        (["model.d_model=1e12"], ["model.d_model"]),
        (["task.seq_len=1e12", "task.vocab_size=2e12"], ["task.seq_len", "task.vocab_size"]),
        (["train.num_train=1e12"], ["train.num_train"]),
        (["train.batch_size=1e9", "train.num_train=1e9", "task.seq_len=4096"], ["train.batch_size"]),
    ],
)
def test_sizes_beyond_the_machine_are_one_line(tmp_path, monkeypatch, capsys, overrides, fields):
    db = tmp_path / "t.db"
    code, _, err = run_main(monkeypatch, capsys, ["train", *overrides, "--db", db])
    assert_one_line_error(code, err, "GiB", *fields)
    assert ResultsStore(db).runs() == []  # refused before the row is written


def test_size_estimate_is_a_lower_bound_that_passes_the_suites():
    from memzoo.sweep.suites import suite_configs, suite_names
    from memzoo.train.sizes import check_memory, estimate_bytes

    for name in suite_names():
        for cfg in suite_configs(name):
            if cfg.task.name != "translate":
                check_memory(cfg, available=8 * 2**30)  # every suite fits a small laptop
    cfg = build_config({}, TINY)
    total = sum(size for size, _ in estimate_bytes(cfg).values())
    with pytest.raises(memzoo.ConfigError, match="its data"):
        check_memory(cfg, available=total - 1)


def test_sigterm_during_training_marks_the_row_failed(tmp_path):
    import os
    import signal
    import subprocess
    import time

    db = tmp_path / "t.db"
    args = [sys.executable, "-m", "memzoo", "train", *TINY, "train.epochs=1000", "--db", db]
    args += [f"train.out_dir={tmp_path}/runs"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists() and ResultsStore(db).runs(status="running"):
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    (run,) = ResultsStore(db).runs()
    assert run.status == "failed" and "signal" in run.error


# ---------------------------------------------------------------- 9. a file too small to learn
def test_a_text_file_whose_training_part_has_one_class_is_refused(tmp_path, monkeypatch, capsys):
    path = tmp_path / "three.csv"
    path.write_text("text,label\ngood movie,pos\nbad movie,neg\nawful film,neg\n")
    db = tmp_path / "t.db"
    args = [
        "train",
        "--task",
        "text_classify",
        f"task.path={path}",
        "--layer",
        "gru",
        "train.epochs=1",
        "--db",
        db,
    ]
    code, _, err = run_main(monkeypatch, capsys, args)  # split_seed 0 holds out the only "pos"
    assert_one_line_error(code, err, "three.csv", "only one class", "at least 2 classes")
    assert ResultsStore(db).runs() == []


# ---------------------------------------------------------------- property: random overrides
KEYS = [
    *("task." + k for k in ("name", "seq_len", "vocab_size", "num_kv_pairs")),
    *("model." + k for k in ("layers", "d_model", "mlp_ratio", "layer_options")),
    *(
        "train." + k
        for k in (
            "lr",
            "batch_size",
            "epochs",
            "max_steps",
            "num_train",
            "num_test",
            "num_validation",
            "seed",
            "weight_decay",
            "warmup_fraction",
            "grad_clip",
            "segment_len",
            "tbptt_segments",
            "checkpoint",
            "device",
            "target_accuracy",
            "curriculum",
        )
    ),
    "nosuch.key",
    "train",
    "model",
    "a.b.c",
    "train.lr.x",
    "task.name.deeper",
]
YAML_ODDITIES = [
    "~", "null", "yes", "off", "0x1F", "0o17", "1_000", ".inf", "-.inf", ".nan", "1e400", "-0",
    "!!python/object/apply:os.system ['true']", "&a [*a]", "*undefined", "{", "[", "'", '"', "%x",
    "@", "`", "{a: {b: {c: [1, {d: .nan}]}}}", "[attention, nosuch]", "[]", "{}", "2001-12-14",
    "!!binary aGVsbG8=", "? complex key", "- item", "a: b: c", "\t", "",
]  # fmt: skip


def alias_bomb(levels: int, width: int) -> str:
    """A one-line YAML mapping whose last entry expands to ``width ** levels`` leaves."""
    entries = ["a0: &a0 [x]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * width)
        entries.append(f"a{level}: &a{level} [{refs}]")
    return "{" + ", ".join(entries) + "}"


def _nested(depth: int, opener: str) -> str:
    """``[[1]]`` or ``{a: {a: 1}}``, ``depth`` levels deep."""
    return opener * depth + "1" + ("]" if opener == "[" else "}") * depth


def _values():
    from hypothesis import strategies as st

    numbers = st.one_of(
        st.integers(min_value=-(10**30), max_value=10**30),
        st.integers(min_value=-3, max_value=40),
        st.floats(allow_nan=True, allow_infinity=True),
    ).map(repr)
    scalars = st.one_of(st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=5), st.booleans())
    nested = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=6,
    ).map(lambda v: json.dumps(v, allow_nan=True))
    deep = st.builds(_nested, st.integers(1, 3000), st.sampled_from(["[", "{a: "]))
    aliased = st.builds(alias_bomb, st.integers(1, 7), st.integers(1, 12))
    return st.one_of(numbers, st.text(max_size=12), nested, deep, aliased, st.sampled_from(YAML_ODDITIES))


def test_random_overrides_exit_0_or_2_without_traceback_or_running_rows(tmp_path, monkeypatch, capsys):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from memzoo.train import sizes

    # A small machine: any size worth minutes is refused by the estimate, so examples stay fast.
    monkeypatch.setattr(sizes, "machine_memory", lambda: 256 * 2**20)
    monkeypatch.chdir(tmp_path)
    overrides = st.lists(st.tuples(st.sampled_from(KEYS), _values()), min_size=1, max_size=3)
    counter = iter(range(10**6))

    examples = int(__import__("os").environ.get("MEMZOO_HOSTILE_EXAMPLES", "25"))

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(overrides)
    def check(pairs):
        db = tmp_path / f"p{next(counter)}.db"
        args = ["train", *TINY, *(f"{k}={v}" for k, v in pairs), "train.max_seconds=3", "--db", db]
        code, out, err = run_main(monkeypatch, capsys, args)
        assert code in (0, None, 2), (pairs, code, err[-2000:])
        assert "Traceback" not in out + err, (pairs, err[-2000:])
        if code == 2:
            assert len([line for line in err.splitlines() if line.strip()]) == 1, (pairs, err)
        if db.exists():
            assert not ResultsStore(db).runs(status="running"), pairs

    check()
