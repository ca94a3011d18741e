"""Hostile inputs, round 3 (issue 25, items 1-3, 6 and 9): links planted in a run folder, files
named outside their folder, code named by a checkpoint, sizes beyond the machine, and output
paths that cannot be written. Each is refused in one line (exit 2) or handled, never followed,
never a traceback, and nothing already stored is lost."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from test_hostile import TINY, assert_one_line_error, copy_run, run_main

import memzoo
from memzoo import files
from memzoo.data.audio_files import load_wav_folder
from memzoo.errors import MemzooError
from memzoo.results.store import ResultsStore
from memzoo.train import build_config, fit
from memzoo.train.resume import save_resume_point


def _resume(monkeypatch, capsys, folder, *extra):
    return run_main(
        monkeypatch, capsys, ["train", "--resume", folder, "train.epochs=2", "--no-store", *extra]
    )


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- 1. links in a run folder
@pytest.mark.parametrize(
    "planted",
    ["last.tmp", "config.json.tmp", "last/model.safetensors.tmp", "model.safetensors", "last/train_state.pt"],
)
def test_resume_refuses_a_run_folder_holding_a_link(planted, finished_run, tmp_path, monkeypatch, capsys):
    folder = copy_run(finished_run, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "victim.txt"
    victim.write_text("precious")
    link = folder / planted
    if link.exists():
        link.unlink()
    link.symlink_to(elsewhere if planted == "last.tmp" else victim)
    before = _tree(folder)
    code, _, err = _resume(monkeypatch, capsys, folder)
    assert_one_line_error(code, err, "symbolic link", planted.split("/")[-1])
    assert sorted(p.name for p in elsewhere.iterdir()) == ["victim.txt"]
    assert victim.read_text() == "precious"
    assert _tree(folder) == before  # nothing written in the run folder either


def test_a_run_folder_that_is_a_link_is_refused(tmp_path):
    out_dir = tmp_path / "runs"
    (out_dir / "other").mkdir(parents=True)
    (out_dir / "forged").symlink_to(out_dir / "other")  # resolves inside out_dir, but a link
    cfg = build_config({}, TINY + [f"train.out_dir={out_dir}"])
    with pytest.raises(MemzooError, match="symbolic link"):
        fit(cfg, run_id="forged", progress=False)
    assert list((out_dir / "other").iterdir()) == []


def test_write_file_replaces_a_link_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "folder" / "config.json"
    target.parent.mkdir()
    target.symlink_to(victim)
    files.write_file(target, "{}")
    assert not target.is_symlink() and target.read_text() == "{}"
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in target.parent.iterdir()) == ["config.json"]  # no temporary left


def test_saving_a_resume_point_never_follows_a_link_planted_mid_run(tmp_path):
    """The swap of ``last/`` renames or unlinks links, and never writes or deletes through them
    (a link planted after the run folder was checked)."""
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run_dir.mkdir()
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("precious")
    for name in ("last", "last.old", "last.tmp"):
        (run_dir / name).symlink_to(elsewhere)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    from memzoo.train.resume import ResumePoint, load_resume_point

    meta = {"run_id": "run", "config": {}, "epoch": 1}
    save_resume_point(run_dir, model, meta, ResumePoint(epoch=1), optimizer, scheduler, torch.Generator())
    assert _tree(elsewhere) == {"keep.txt": b"precious"}
    assert (run_dir / "last").is_dir() and not (run_dir / "last").is_symlink()
    assert sorted(p.name for p in run_dir.iterdir()) == ["last"]
    point, weights = load_resume_point(run_dir)
    assert point.epoch == 1 and set(weights) == {"weight", "bias"}


# ---------------------------------------------------------------- 2. WAV names outside the folder
def _wav(path: Path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.sin(np.arange(1600) / 5) * 8000).astype("<i2").tobytes())


@pytest.mark.parametrize("name", ["../outside.wav", "ABSOLUTE", "inner/../../outside.wav", "escape.wav"])
def test_a_transcript_cannot_name_a_file_outside_its_folder(name, tmp_path):
    pytest.importorskip("soundfile")
    folder = tmp_path / "words"
    folder.mkdir()
    _wav(tmp_path / "outside.wav")
    _wav(folder / "a.wav")
    (folder / "inner").mkdir()
    if name == "escape.wav":
        (folder / name).symlink_to(tmp_path / "outside.wav")  # a link out of the folder
    name = str(tmp_path / "outside.wav") if name == "ABSOLUTE" else name
    (folder / "transcript.txt").write_text(f"a.wav one\n{name} two\n")
    with pytest.raises(MemzooError, match=r"transcript.txt:2: .*(absolute path|outside)") as info:
        load_wav_folder(folder)
    assert "\n" not in str(info.value)


def test_the_transcript_name_itself_stays_inside_the_folder(tmp_path):
    folder = tmp_path / "words"
    folder.mkdir()
    (tmp_path / "t.txt").write_text("a.wav one\n")
    with pytest.raises(MemzooError, match="outside"):
        load_wav_folder(folder, transcript="../t.txt")


# ---------------------------------------------------------------- 3. code named by a checkpoint
EVIL = """
from pathlib import Path
Path({marker!r}).write_text("imported")
from memzoo.layers.recurrent import GRU as Layer
"""


@pytest.fixture
def evil_module(tmp_path, monkeypatch):
    """A module whose import leaves a marker file: ``(module name, marker path)``."""
    name = f"evil_layer_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}"
    marker = tmp_path / "IMPORTED"
    (tmp_path / f"{name}.py").write_text(EVIL.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, marker
    sys.modules.pop(name, None)


def _name_layer(config_file: Path, layer: str) -> None:
    meta = json.loads(config_file.read_text())
    meta["config"]["model"]["layers"] = [layer]
    config_file.write_text(json.dumps(meta))


def test_load_imports_no_module_a_checkpoint_names_without_consent(finished_run, tmp_path, evil_module):
    name, marker = evil_module
    folder = copy_run(finished_run, tmp_path)
    _name_layer(folder / "config.json", f"{name}:Layer")
    with pytest.raises(MemzooError, match="trust_code=True") as info:
        memzoo.load(folder)
    assert "not imported" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()
    model = memzoo.load(folder, trust_code=True)  # consent: imported, and the weights fit
    assert marker.exists() and not model.training


def test_resume_imports_no_module_a_checkpoint_names_without_trust_code(
    finished_run, tmp_path, evil_module, monkeypatch, capsys
):
    name, marker = evil_module
    folder = copy_run(finished_run, tmp_path)
    _name_layer(folder / "last" / "config.json", f"{name}:Layer")
    code, _, err = _resume(monkeypatch, capsys, folder)
    assert_one_line_error(code, err, "--trust-code", "not imported")
    assert not marker.exists()
    code, out, err = _resume(monkeypatch, capsys, folder, "--trust-code")
    assert code in (0, None), err
    assert marker.exists() and "completed" in out


def test_a_layer_path_the_user_writes_still_imports(tmp_path, evil_module):
    name, marker = evil_module
    cfg = build_config({}, TINY + [f"model.layers=[{name}:Layer]", "train.checkpoint=false"])
    assert fit(cfg, progress=False).record.status == "completed"
    assert marker.exists()


# ---------------------------------------------------------------- 6. sizes beyond the machine
@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "task.name=recommend", "task.num_users=1000000000000", "--no-store"], "task.num_users"),
        (["train", "task.name=memorization", "task.num_facts=100000000000000", "--no-store"], "GiB"),
        (
            ["train", "task.name=speech_digits", "task.num_train_utterances=10000000000000", "--no-store"],
            "utter",
        ),
        (["train", "task.name=needle", "task.test_lengths=[100000000000]", "--no-store"], "seq_len"),
        (
            [
                "train",
                "task.name=multitask",
                "task.tasks=[{name: recommend, num_users: 1000000000000}, {name: mqar}]",
                "--no-store",
            ],
            "task.tasks[recommend].num_users=1000000000000",
        ),
        (["translate", "train.num_train=100000000000", "--no-store"], "train.num_train"),
        (["speed", "--d-model", "1000000000000", "--no-store"], "--d-model"),
        (["speed", "--seq-lens", "100000000000000", "--no-store"], "longest sequence"),
    ],
)
def test_sizes_beyond_the_machine_are_refused_before_work(args, needle, monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, args)
    assert_one_line_error(code, err, needle, "GiB")


# ---------------------------------------------------------------- 9. outputs that cannot be written
LONG = "a" * 300


@pytest.mark.parametrize(
    "out, needle",
    [("/proc/report.html", "/proc"), ("AFILE/report.html", "is a file"), (f"{LONG}.html", "longer than 255")],
)
def test_report_out_that_cannot_be_written(out, needle, finished_run, tmp_path, monkeypatch, capsys):
    db = tmp_path / "r.db"
    code, _, err = run_main(
        monkeypatch, capsys, ["train", *TINY, "--db", db, f"train.out_dir={tmp_path / 'runs'}"]
    )
    assert code in (0, None), err
    (tmp_path / "AFILE").write_text("")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(monkeypatch, capsys, ["report", "--db", db, "--out", out])
    assert_one_line_error(code, err, needle)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train.out_dir=AFILE/runs"], "is a file"),
        (["train.out_dir=/proc/memzoo-runs"], "/proc"),
        ([f"train.out_dir={LONG}"], "longer than 255"),
        (["--db", "AFILE/r.db"], "is a file"),
        (["--db", "/proc/r.db"], "/proc"),
        (["--db", f"{LONG}.db"], "longer than 255"),
    ],
)
def test_train_destinations_that_cannot_be_written(args, needle, tmp_path, monkeypatch, capsys):
    (tmp_path / "AFILE").write_text("")
    monkeypatch.chdir(tmp_path)
    extra = args if args[0] == "--db" else [*args, "--db", "r.db"]
    code, _, err = run_main(monkeypatch, capsys, ["train", *TINY, *extra])
    assert_one_line_error(code, err, needle)
    if args[0] != "--db":  # refused before the run started: no row, no folder
        assert ResultsStore("r.db").runs() == []


def test_a_full_disk_while_checkpointing_is_named_and_the_row_kept(tmp_path, monkeypatch, capsys):
    db = tmp_path / "r.db"
    real_replace = os.replace

    def full_disk(src, dst):
        if str(dst).endswith("model.safetensors"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", full_disk)
    code, _, err = run_main(
        monkeypatch, capsys, ["train", *TINY, "--db", db, f"train.out_dir={tmp_path / 'runs'}"]
    )
    assert_one_line_error(code, err, "no space left on device", str(tmp_path / "runs"))
    (run,) = ResultsStore(db).runs()
    assert run.status == "failed" and "no space left on device" in run.error
    leftovers = [p.name for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert not [n for n in leftovers if n.endswith(".tmp")], leftovers  # no temporaries left behind


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (root only; skipped where mounting is not allowed): ``mount(opts)``."""
    mounted = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], capture_output=True)


def test_read_only_and_full_mounts(tmpfs, tmp_path, monkeypatch, capsys):
    read_only, full = tmpfs("ro,size=1m"), tmpfs("size=64k")
    db = tmp_path / "r.db"
    code, _, err = run_main(
        monkeypatch, capsys, ["train", *TINY, "--db", db, f"train.out_dir={read_only}/runs"]
    )
    assert_one_line_error(code, err, "read-only file system")
    assert ResultsStore(db).runs() == []  # found before training: no row
    code, _, err = run_main(monkeypatch, capsys, ["train", *TINY, "--db", read_only / "r.db"])
    assert_one_line_error(code, err, "read-only file system")
    big = [*TINY, "model.d_model=96", "--db", db, f"train.out_dir={full}/runs"]
    code, _, err = run_main(monkeypatch, capsys, ["train", *big])
    assert_one_line_error(code, err, "no space left on device", f"{full}/runs")


# ---------------------------------------------------------------- left over from round 3
def test_the_feature_cache_replaces_a_planted_link_instead_of_writing_through_it(tmp_path):
    from memzoo.data import audio_features as af

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "speech").mkdir()
    path = tmp_path / "speech" / f"t-{af.cache_key({'a': 1})}.npz"
    path.symlink_to(victim)
    arrays = af.cached_arrays("t", {"a": 1}, lambda: {"x": np.arange(3)}, tmp_path)
    assert np.array_equal(arrays["x"], np.arange(3)) and victim.read_text() == "precious"
    assert not path.is_symlink()
    assert np.array_equal(
        af.cached_arrays("t", {"a": 1}, lambda: {"x": np.zeros(1)}, tmp_path)["x"], np.arange(3)
    )


@pytest.mark.parametrize(
    "text, needle",
    [
        ("{not json", "not a labels file"),
        ('{"seq_len": 8}', "classes"),
        ("[1, 2]", "not a labels file"),
        ('{"classes": "pos", "seq_len": 8}', "list of class names"),
        ('{"classes": ["a"], "seq_len": 0}', "seq_len"),
    ],
)
def test_a_damaged_labels_file_is_one_line(text, needle, tmp_path):
    from memzoo.tasks.text_classify import LABELS_FILE, load_artifacts

    (tmp_path / LABELS_FILE).write_text(text)
    with pytest.raises(MemzooError, match=needle) as info:
        load_artifacts(tmp_path)
    assert str(tmp_path / LABELS_FILE) in str(info.value) and "\n" not in str(info.value)
