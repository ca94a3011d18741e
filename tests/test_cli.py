"""The memzoo command: exit codes, JSON output, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

TINY = [
    "task.vocab_size=32",
    "task.seq_len=16",
    "task.num_kv_pairs=2",
    "model.d_model=16",
    "train.num_train=64",
    "train.num_test=32",
    "train.epochs=1",
    "train.batch_size=32",
]


def memzoo_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "memzoo", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def run_main(monkeypatch, capsys, args):
    """Run the console entry point in-process; returns (exit code, stdout, stderr)."""
    from memzoo.cli.main import main

    monkeypatch.setattr(sys, "argv", ["memzoo", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_layers_lists_registered_layers():
    out = memzoo_cli("layers", "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    names = {r["name"] for r in rows}
    assert {"attention", "sliding_window", "rnn", "lstm", "gru", "attention_lstm"} <= names
    assert all(r["kind"] in ("short", "long") for r in rows)
    table = memzoo_cli("layers")
    assert table.returncode == 0 and "attention_lstm" in table.stdout and "O(window)" in table.stdout


def test_train_json_last_line(tmp_path):
    out = memzoo_cli(
        "train",
        "--task",
        "mqar",
        "--layer",
        "gru",
        *TINY,
        f"train.out_dir={tmp_path}/runs",
        "--db",
        str(tmp_path / "r.db"),
        "--json",
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"run_id", "status", "metrics", "wall_seconds", "state_bytes", "params"} <= set(result)
    assert result["status"] == "completed" and "accuracy" in result["metrics"]
    listed = memzoo_cli("runs", "--db", str(tmp_path / "r.db"), "--json")
    assert json.loads(listed.stdout.splitlines()[0])["run_id"] == result["run_id"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "--layer", "lstmm", "--no-store"], "lstmm"),
        (["train", "train.lr=-1", "--no-store"], "train.lr"),
        (["train", "task.num_kv_pairs=100", "--no-store"], "num_kv_pairs"),
        (["train", "--config", "/nonexistent.yaml", "--no-store"], "does not exist"),
        (["bench", "--suite", "nosuch", "--db", "{tmp}/b.db"], "nosuch"),
        (["bench", "--suite", "smoke", "--workers", "0", "--db", "{tmp}/b.db"], "workers"),
        (["runs", "--db", "{tmp}/not_a_db.txt"], "not"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, monkeypatch, capsys, args, needle):
    (tmp_path / "not_a_db.txt").write_text("hello, I am not a database\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, _, err = run_main(monkeypatch, capsys, args)
    assert code == 2, err
    assert needle in err
    assert "Traceback" not in err
    assert (tmp_path / "not_a_db.txt").read_text() == "hello, I am not a database\n"
