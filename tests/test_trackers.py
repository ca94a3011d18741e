"""Experiment trackers: a run logged to TensorBoard, MLflow and W&B (offline, no network),
read back with each tracker's own reader; failures isolated; resume; export; bad names."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import run_main

import memzoo
from memzoo.errors import ConfigError, MemzooError
from memzoo.results.store import ResultsStore
from memzoo.sweep.jobs import Job, run_job
from memzoo.trackers import TRACKERS, Trackers, open_trackers
from memzoo.trackers.base import flat_numbers
from memzoo.trackers.mlflow_tracker import mlflow_key, store_uri
from memzoo.trackers.tensorboard import TensorBoardTracker
from memzoo.train import build_config, validate_config
from memzoo.train.run_kinds import resume_run
from memzoo.train.seq2seq_config import validate_translation_config

TINY = [
    "task.name=mqar",
    "task.vocab_size=32",
    "task.seq_len=16",
    "task.num_kv_pairs=2",
    "model.layers=[gru]",
    "model.d_model=16",
    "train.num_train=64",
    "train.num_validation=64",
    "train.num_test=64",
    "train.epochs=2",
    "train.batch_size=32",
]
ALL = "train.trackers=[tensorboard,mlflow,wandb]"


def tiny_config(root: Path, *extra: str):
    return build_config(
        overrides=[*TINY, f"train.out_dir={root / 'runs'}", f"train.tracker_dir={root / 'trk'}", *extra]
    )


# ---------------------------------------------------------------- each tracker's own reader
def tensorboard_run(folder: Path) -> tuple[dict[str, dict[int, float]], dict[str, str]]:
    """``({tag: {step: value}}, {text tag: last text})`` through TensorBoard's EventAccumulator."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    scalars = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
    texts = {
        tag.removesuffix("/text_summary"): events.Tensors(tag)[-1].tensor_proto.string_val[0].decode()
        for tag in events.Tags()["tensors"]
    }
    return scalars, texts


def mlflow_runs(tracker_dir: Path, run_id: str):
    """The MLflow runs tagged ``memzoo_run_id = run_id``, through ``MlflowClient``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store_uri(tracker_dir / "mlflow"))
    experiment = client.get_experiment_by_name("memzoo")
    runs = client.search_runs([experiment.experiment_id], f"tags.memzoo_run_id = '{run_id}'")
    return client, runs


def wandb_records(path: Path):
    """The records of a W&B transaction log (``run-<id>.wandb``), as W&B's own protobuf
    ``Record``s: the file is a ``:W&B`` header, then LevelDB-log chunks in 32 KiB blocks."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, pos, pending = path.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (length == 0 and kind == 0):  # block trailer / padding
            pos += left
            continue
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def wandb_folders(tracker_dir: Path, run_id: str) -> list[Path]:
    """The offline W&B folders of ``run_id``, oldest first (a second one within the same
    second is named ``...-<run_id>-1``)."""
    return sorted(log.parent for log in (tracker_dir / "wandb").glob(f"offline-run-*/run-{run_id}.wandb"))


def wandb_run(folder: Path) -> dict:
    """What one offline W&B run folder holds: history rows by step, summary, config, tags."""
    out = {"history": {}, "summary": {}, "config": {}, "tags": [], "exit": None}
    for record in wandb_records(next(folder.glob("run-*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["config"] = {u.key: json.loads(u.value_json) for u in record.run.config.update}
            out["tags"] = list(record.run.tags)
        elif kind == "history":
            row = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            out["history"][row["_step"]] = row
        elif kind == "summary":
            for u in record.summary.update:
                out["summary"][u.key or "/".join(u.nested_key)] = json.loads(u.value_json)
        elif kind == "exit":
            out["exit"] = record.exit.exit_code
    return out


def expected(stored) -> tuple[dict[str, dict[int, float]], dict[str, float]]:
    """What a tracker must hold for stored run ``stored``: curve ``{name: {epoch: value}}``
    and the final numbers."""
    curve: dict[str, dict[int, float]] = {}
    for point in stored.curve:
        for name, value in flat_numbers({k: v for k, v in point.items() if k != "epoch"}).items():
            curve.setdefault(name, {})[point["epoch"]] = value
    return curve, {**flat_numbers(stored.metrics, "final/"), "state_bytes": float(stored.state_bytes)}


def check_tensorboard(tracker_dir: Path, stored) -> None:
    scalars, texts = tensorboard_run(tracker_dir / "tensorboard" / stored.run_id)
    curve, final = expected(stored)
    last = stored.curve[-1]["epoch"]
    for name, points in curve.items():
        assert scalars[name] == pytest.approx(points, rel=1e-6), name  # float32 in event files
    assert {k: scalars[k][last] for k in final} == pytest.approx(final, rel=1e-6)
    assert json.loads("\n".join(line[4:] for line in texts["config"].splitlines())) == stored.config
    assert texts["status"] == stored.status


def check_mlflow(tracker_dir: Path, stored) -> None:
    client, runs = mlflow_runs(tracker_dir, stored.run_id)
    assert len(runs) == 1
    run = runs[0]
    curve, final = expected(stored)
    for name, points in curve.items():
        history = client.get_metric_history(run.info.run_id, mlflow_key(name))
        assert {m.step: m.value for m in history} == points, name
    assert {k: run.data.metrics[mlflow_key(k)] for k in final} == final
    assert run.data.params["train.lr"] == str(stored.config["train"]["lr"])
    assert run.data.params["model.layers"] == '["gru"]'
    assert run.data.tags["status"] == stored.status and run.data.tags["task"] == "mqar"
    assert run.info.status == "FINISHED"


def check_wandb(tracker_dir: Path, stored) -> None:
    (folder,) = wandb_folders(tracker_dir, stored.run_id)
    run = wandb_run(folder)
    curve, final = expected(stored)
    for name, points in curve.items():
        assert {step: row[name] for step, row in run["history"].items()} == points, name
    assert {k: run["summary"][k] for k in final} == final
    assert run["summary"]["status"] == stored.status
    assert run["config"]["train"] == stored.config["train"] and "task:mqar" in run["tags"]
    assert run["exit"] == 0


# ---------------------------------------------------------------- a run logged live
@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One tiny run, stored, logged to all three trackers as it trained."""
    root = tmp_path_factory.mktemp("tracked")
    store = ResultsStore(root / "r.db")
    result = memzoo.fit(tiny_config(root, ALL), store=store)
    assert result.status == "completed"
    return root, store, store.get(result.run_id)


def test_tensorboard_holds_the_run(tracked):
    root, _, stored = tracked
    check_tensorboard(root / "trk", stored)
    scalars, texts = tensorboard_run(root / "trk" / "tensorboard" / stored.run_id)
    assert texts["checkpoint_path"] == str((root / "runs" / stored.run_id).absolute())


def test_mlflow_holds_the_run(tracked):
    root, _, stored = tracked
    check_mlflow(root / "trk", stored)
    _, (run,) = mlflow_runs(root / "trk", stored.run_id)
    assert run.data.tags["checkpoint_path"] == str((root / "runs" / stored.run_id).absolute())


def test_wandb_offline_run_holds_the_run_and_no_service_lingers(tracked):
    root, _, stored = tracked
    check_wandb(root / "trk", stored)
    if Path("/proc").is_dir():  # no W&B service process left behind this one
        children = []
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(
                    line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
                )
            except OSError:
                continue
            if fields.get("PPid", "").strip() == str(os.getpid()):
                children.append(fields.get("Name", "").strip())
        assert not [c for c in children if "wandb" in c], children


def test_a_failing_tracker_is_reported_once_and_the_run_goes_on(tracked, tmp_path, monkeypatch, capsys):
    def broken(self, step, metrics):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(TensorBoardTracker, "log_point", broken)
    result = memzoo.fit(tiny_config(tmp_path, "train.trackers=[tensorboard,mlflow]"))
    assert result.status == "completed" and len(result.record.curve) == 2
    assert result.metrics == tracked[2].metrics  # identical to the run whose trackers all worked
    warnings = [line for line in capsys.readouterr().err.splitlines() if "tracker" in line]
    assert warnings == [
        "warning: tracker 'tensorboard' failed logging epoch 1 (RuntimeError: disk on fire); "
        "the run goes on without it"
    ]
    _, (run,) = mlflow_runs(tmp_path / "trk", result.run_id)  # the other tracker went on
    assert run.info.status == "FINISHED" and run.data.metrics["final/accuracy"] == result.metrics["accuracy"]


class Recorder:
    """A tracker that records its calls (stands in for a real one)."""

    name = "mlflow"
    calls: list = []

    def __init__(self, root):
        self.root = root

    def start(self, run_id, config, tags):
        Recorder.calls.append(("start", run_id, tags["memzoo_run_id"]))

    def log_point(self, step, metrics):
        Recorder.calls.append(("point", step))

    def finish(self, ending):
        Recorder.calls.append(("finish", ending.status, ending.error))

    def close(self):
        Recorder.calls.append(("close",))


@pytest.fixture
def recorder(monkeypatch):
    Recorder.calls = []
    monkeypatch.setitem(TRACKERS, "mlflow", Recorder)
    return Recorder.calls


def test_a_failed_run_finishes_its_trackers_failed(tmp_path, monkeypatch, recorder):
    from memzoo.train.recipes.single_task import SingleTaskRecipe

    def crash(self):
        raise RuntimeError("validation blew up")

    monkeypatch.setattr(SingleTaskRecipe, "validate", crash)
    with pytest.raises(RuntimeError, match="blew up"):
        memzoo.fit(tiny_config(tmp_path, "train.trackers=[mlflow]"), run_id="boom")
    assert recorder == [("start", "boom", "boom"), ("finish", "failed", "RuntimeError: validation blew up")]


def test_a_diverged_run_finishes_its_trackers_diverged(tmp_path, recorder):
    result = memzoo.fit(
        tiny_config(tmp_path, "train.trackers=[mlflow]", "train.lr=1e30", "train.grad_clip=1e30")
    )
    assert result.status == "diverged"
    assert recorder[0][0] == "start" and recorder[-1][:2] == ("finish", "diverged")


def test_trackers_isolate_every_phase():
    class Fails(Recorder):
        name = "wandb"

        def start(self, run_id, config, tags):
            raise ValueError("no")

    Recorder.calls = []
    both = Trackers([Fails(None), Recorder(None)])
    both.start("r", {}, {"memzoo_run_id": "r"})
    both.log_point({"epoch": 1, "loss": 0.5, "flag": True, "name": "x"})
    both.finish("completed", {"accuracy": 1, "validation": {"accuracy": 0.5}}, 64)
    both.finish("completed", {})  # once only
    assert both.names == ["mlflow"] and both.dropped == ["wandb"]
    assert Recorder.calls == [("close",), ("start", "r", "r"), ("point", 1), ("finish", "completed", None)]


def test_a_resumed_run_goes_on_in_the_same_tracker_runs(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    first = memzoo.fit(tiny_config(tmp_path, ALL, "train.epochs=1"), store=store)
    resumed = resume_run(first.run_id, store=store, overrides=["train.epochs=2"])
    assert resumed.run_id == first.run_id and resumed.status == "completed"
    stored = store.get(first.run_id)
    assert [p["epoch"] for p in stored.curve] == [1, 2]
    check_tensorboard(tmp_path / "trk", stored)  # one folder, both processes' points
    check_mlflow(tmp_path / "trk", stored)  # one MLflow run, found again by its tag
    folders = wandb_folders(tmp_path / "trk", first.run_id)
    assert len(folders) == 2  # W&B offline: one folder per process, one run id (wandb sync joins them)
    assert sorted(wandb_run(folders[0])["history"]) == [1] and sorted(wandb_run(folders[1])["history"]) == [2]


def test_a_bench_job_logs_to_its_trackers(tmp_path):
    config = tiny_config(tmp_path, "train.trackers=[tensorboard]", "train.epochs=1").model_dump(mode="json")
    record = run_job(Job("benchjob", config, "quick"))  # what a bench worker runs
    assert record.status == "completed"
    scalars, texts = tensorboard_run(tmp_path / "trk" / "tensorboard" / "benchjob")
    assert scalars["train_loss"] == pytest.approx({1: record.curve[0]["train_loss"]})
    assert '"suite": "quick"' in texts["tags"]


# ---------------------------------------------------------------- export
@pytest.mark.parametrize("to", ["tensorboard", "mlflow", "wandb"])
def test_export_sends_stored_runs_once(tracked, tmp_path, monkeypatch, capsys, to):
    root, store, stored = tracked
    args = ["export", "--to", to, "--db", str(store.path), "--tracker-dir", str(tmp_path)]
    code, out, err = run_main(monkeypatch, capsys, args)
    assert (code, out.splitlines()[-1]) == (0, f"1 sent, 0 already there -> {tmp_path / to}")
    assert f"{to}: {stored.run_id} sent" in err
    {"tensorboard": check_tensorboard, "mlflow": check_mlflow, "wandb": check_wandb}[to](tmp_path, stored)
    code, out, _ = run_main(monkeypatch, capsys, [*args, "--run", stored.run_id])
    assert (code, out.splitlines()[-1]) == (0, f"0 sent, 1 already there -> {tmp_path / to}")


def test_export_refuses_bad_input_in_one_line(tracked, tmp_path, monkeypatch, capsys):
    db = str(tracked[1].path)
    for args, problem in [
        (
            ["--to", "neptune", "--db", db],
            "unknown tracker 'neptune' for --to; trackers: tensorboard, mlflow, wandb",
        ),
        (["--to", "mlflow", "--db", str(tmp_path / "none.db")], "no results store at"),
        (["--to", "mlflow", "--db", db, "--run", "nope"], "no run 'nope' in"),
    ]:
        code, out, err = run_main(monkeypatch, capsys, ["export", *args, "--tracker-dir", str(tmp_path)])
        assert code == 2 and len(err.strip().splitlines()) == 1 and problem in err, err
    assert not (tmp_path / "mlflow").exists()


# ---------------------------------------------------------------- settings and packages
def test_unknown_or_repeated_tracker_names_are_refused():
    with pytest.raises(ConfigError, match="Input should be 'tensorboard', 'mlflow' or 'wandb'"):
        validate_config({"train": {"trackers": ["tensorbord"]}})
    with pytest.raises(ConfigError, match="train.trackers: tracker 'wandb' is named twice"):
        validate_config({"train": {"trackers": ["wandb", "mlflow", "wandb"]}})
    assert (
        validate_config({}).train.trackers == []
        and validate_config({}).train.tracker_dir == "results/trackers"
    )
    translation = validate_translation_config({"train": {"trackers": ["mlflow"], "tracker_dir": "t"}})
    assert translation.train.trackers == ["mlflow"] and translation.train.tracker_dir == "t"
    with pytest.raises(ConfigError, match="train.trackers.0: Input should be"):
        validate_translation_config({"train": {"trackers": ["comet"]}})


def test_a_bad_tracker_name_is_one_line_on_the_cli(monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, ["train", *TINY, "train.trackers=[tensorbord]"])
    assert code == 2
    assert err.strip() == (
        "error: train.trackers.0: Input should be 'tensorboard', 'mlflow' or 'wandb' (got 'tensorbord')"
    )


@pytest.mark.parametrize(
    ("name", "module"), [("tensorboard", "torch.utils.tensorboard"), ("mlflow", "mlflow"), ("wandb", "wandb")]
)
def test_a_missing_package_names_the_extra(tmp_path, monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # import of it raises ImportError
    monkeypatch.delitem(sys.modules, f"{module}.tracking", raising=False)
    monkeypatch.delitem(sys.modules, f"{module}.entities", raising=False)
    with pytest.raises(MemzooError) as err:
        open_trackers([name], tmp_path)
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert f"tracker {name!r} needs the" in message and message.endswith("pip install 'memzoo[trackers]'")


def test_importing_memzoo_imports_no_tracker_package():
    code = "import sys, memzoo; print([m for m in ('tensorboard', 'mlflow', 'wandb') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


def test_tracker_folders_are_never_links(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "link").symlink_to(elsewhere)
    with pytest.raises(MemzooError, match="symbolic link"):
        open_trackers(["tensorboard"], tmp_path / "link")
    (tmp_path / "trk").mkdir()
    (tmp_path / "trk" / "tensorboard").symlink_to(elsewhere)
    with pytest.raises(MemzooError, match="symbolic link"):
        open_trackers(["tensorboard"], tmp_path / "trk")
    trackers = open_trackers(["tensorboard"], tmp_path / "ok")
    (tmp_path / "ok" / "tensorboard" / "r1").symlink_to(elsewhere)
    trackers.start("r1", {}, {"memzoo_run_id": "r1"})  # reported and dropped, nothing written there
    assert trackers.dropped == ["tensorboard"] and not any(elsewhere.iterdir())


def test_mlflow_names_are_made_valid():
    assert mlflow_key("model.layer_options.pkg.mod:Cls.x") == "model.layer_options.pkg.mod_Cls.x"
    assert mlflow_key("/a//../b") == "_/a/_/_/b" and len(mlflow_key("k" * 400)) == 250


def test_a_continual_run_is_one_tracker_run_with_its_retention(tmp_path):
    """The continual record (both phases' curve, retention) is logged, not its phases apart."""
    from memzoo.train import fit

    phase = {"name": "mqar", "vocab_size": 32, "seq_len": 16, "num_kv_pairs": 2}
    config = {
        "task": {"name": "continual", "task_a": phase, "task_b": {**phase, "vocab_size": 40}},
        "model": {"layers": ["gru"], "d_model": 16},
        "train": {"num_train": 64, "num_validation": 32, "num_test": 32, "epochs": 1, "batch_size": 32}
        | {
            "trackers": ["tensorboard"],
            "tracker_dir": str(tmp_path / "trk"),
            "out_dir": str(tmp_path / "runs"),
        },
    }
    result = fit(config, progress=False)
    folders = sorted(p.name for p in (tmp_path / "trk" / "tensorboard").iterdir())
    assert folders == [result.run_id]
    scalars, _ = tensorboard_run(tmp_path / "trk" / "tensorboard" / result.run_id)
    assert scalars["final/plasticity"][2] == pytest.approx(result.metrics["plasticity"])
    # one epoch learns neither phase: retention is undefined, and not logged as a number
    assert result.metrics["retention"] is None and "final/retention" not in scalars


def test_trackers_leave_the_config_hash_as_it_was():
    """Where a run is also reported is not what it measures: same hash with or without trackers
    (a finished suite is not rerun because a tracker was turned on)."""
    from memzoo.results.record import config_hash

    plain = validate_config(build_config(overrides=TINY)).model_dump(mode="json")
    tracked = validate_config(build_config(overrides=[*TINY, ALL, "train.tracker_dir=elsewhere"]))
    assert config_hash(tracked.model_dump(mode="json")) == config_hash(plain)
    no_fields = {
        **plain,
        "train": {k: v for k, v in plain["train"].items() if k not in ("trackers", "tracker_dir")},
    }
    assert config_hash(plain) == config_hash(no_fields)
