"""memzoo.inspect: probe layouts, curves on an exact oracle, stored inspections, the CLI and
the report section."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from memzoo.cli.main import app
from memzoo.errors import MemzooError
from memzoo.inspect import INSPECTION, RecallLayout, inspect_model, recall_curve
from memzoo.inspect.probes import (
    KEY,
    QUERY,
    VALUE,
    capacity_probe,
    forgetting_probe,
    interference_probe,
    overwrite_probe,
)
from memzoo.models import SequenceModel
from memzoo.report import inside
from memzoo.report.html import write_report
from memzoo.results.store import ResultsStore
from memzoo.train import fit

LAYOUT = RecallLayout(96, 6, keys=(1, 33), values=(33, 65), filler=(65, 100))


class WindowOracle(torch.nn.Module):
    """Exact recall within a window of ``window`` tokens, as a sliding-window attention
    with a previous-token feature would do it: at position t, the latest position s in
    ``(t - window, t]`` whose previous token equals x[t] gives its own token as the answer."""

    def __init__(self, window: int, vocab: int = 100):
        super().__init__()
        self.window, self.vocab = window, vocab

    def forward(self, x: torch.Tensor):
        b, t = x.shape
        prev = torch.cat([torch.zeros(b, 1, dtype=x.dtype), x[:, :-1]], 1)  # [B, T]
        match = prev[:, None, :] == x[:, :, None]  # [B, T(query), T(source)]
        pos = torch.arange(t)
        lag = pos[:, None] - pos[None, :]
        match &= (lag > 0) & (lag < self.window)
        source = torch.where(match, pos[None, None, :], -1).amax(-1)  # latest match, -1: none
        answer = x.gather(1, source.clamp(min=0))
        logits = torch.zeros(b, t, self.vocab)
        logits.scatter_(2, answer[..., None], 1.0)
        logits[..., 0] += 0.5 * (source < 0)  # no match: answer token 0, never a value
        return logits, None


def test_forgetting_probe_queries_the_last_pair_at_the_stated_lag():
    batch = forgetting_probe(LAYOUT, 4, torch.Generator().manual_seed(0))
    k = LAYOUT.num_pairs
    n = torch.arange(len(batch.inputs))
    q = batch.query_pos[:, 0]
    assert torch.equal(batch.inputs[n, q], batch.inputs[:, 2 * (k - 1)])  # the last key is asked
    assert torch.equal(batch.answers[:, 0], batch.inputs[:, 2 * k - 1])  # its value answers
    assert torch.equal(batch.x, q - (2 * k - 1))
    assert (batch.roles[n, q] == QUERY).all() and (batch.roles[:, : 2 * k : 2] == KEY).all()
    assert (batch.roles[:, 1 : 2 * k : 2] == VALUE).all()
    assert len(batch.x.unique()) > 5 and (q % 2 == 0).all()


def test_interference_probe_keeps_the_lag_and_counts_the_pairs_after():
    batch = interference_probe(LAYOUT, 4, torch.Generator().manual_seed(0))
    k = LAYOUT.num_pairs
    which = k - 1 - batch.x  # the probed pair's index
    lag = batch.query_pos[:, 0] - (2 * which + 1)
    assert (lag == 2 * k - 1).all()
    assert sorted(batch.x.unique().tolist()) == list(range(k))
    n = torch.arange(len(batch.inputs))
    assert torch.equal(batch.answers[:, 0], batch.inputs[n, 2 * which + 1])


def test_capacity_probe_queries_every_key_once():
    for batch in capacity_probe(LAYOUT, 3, torch.Generator().manual_seed(0)):
        size = int(batch.x[0])
        asked = batch.inputs.gather(1, batch.query_pos)
        assert torch.equal(asked.sort(1).values, batch.inputs[:, 0 : 2 * size : 2].sort(1).values)
        assert batch.query_pos.min() >= 2 * size and batch.query_pos.max() < LAYOUT.seq_len


def test_overwrite_probe_rebinds_a_key_with_a_new_value():
    batch = overwrite_probe(LAYOUT, 4, torch.Generator().manual_seed(0))
    k = LAYOUT.num_pairs
    first = k - 2 - batch.x
    n = torch.arange(len(batch.inputs))
    assert torch.equal(batch.inputs[n, 2 * first], batch.inputs[:, 2 * (k - 1)])  # same key twice
    assert (batch.answers[:, 0] != batch.stale[:, 0]).all()
    assert torch.equal(batch.stale[:, 0], batch.inputs[n, 2 * first + 1])


@pytest.mark.parametrize("window", [8, 20])
def test_a_window_recalls_below_its_width_and_not_beyond(window):
    curve = recall_curve(WindowOracle(window), LAYOUT, "forgetting", samples=16)
    for point in curve["points"]:
        assert point["accuracy"] == (1.0 if point["x"] < window else 0.0), point


def test_the_oracle_answers_the_latest_binding_and_a_narrow_window_loses_old_pairs():
    over = recall_curve(WindowOracle(1000), LAYOUT, "overwrite", samples=16)
    assert all(p["accuracy"] == 1.0 and p["stale"] == 0.0 for p in over["points"])
    inter = recall_curve(WindowOracle(2 * LAYOUT.num_pairs), LAYOUT, "interference", samples=16)
    assert all(p["accuracy"] == 1.0 for p in inter["points"])  # lag 2K-1 < window
    narrow = recall_curve(WindowOracle(LAYOUT.num_pairs), LAYOUT, "interference", samples=16)
    assert all(p["accuracy"] == 0.0 for p in narrow["points"])


def test_inspect_model_is_deterministic_and_reports_views():
    torch.manual_seed(0)
    model = SequenceModel(layers=["gated_deltanet", "attention"], d_model=32, vocab_size=100)
    first = inspect_model(model, LAYOUT, samples=8)
    again = inspect_model(model, LAYOUT, samples=8)
    assert first == again
    assert set(first["curves"]) == {"forgetting", "interference", "capacity", "overwrite"}
    assert first["state_bytes"] == model.state_size(LAYOUT.seq_len)
    layers = first["layers"]
    assert {"beta", "decay"} <= set(layers["gates"]["0:gated_deltanet"])
    mass = layers["attention"]["1:attention"]
    assert sum(mass.values()) == pytest.approx(1.0, abs=1e-4)
    json.dumps(first)  # storable


def test_bad_layouts_and_tasks_are_one_clear_error():
    with pytest.raises(MemzooError, match="seq_len=10 must be >= 4"):
        RecallLayout(10, 3, keys=(1, 9), values=(9, 17), filler=(1, 17))
    from memzoo import tasks
    from memzoo.inspect import layout_for_task

    with pytest.raises(MemzooError, match="supported tasks: mqar"):
        layout_for_task(tasks.build("copy"))


def _trained(tmp_path, layer="attention", **train):
    config = {
        "task": {"name": "mqar", "vocab_size": 64, "seq_len": 32, "num_kv_pairs": 2},
        "model": {"layers": [layer], "d_model": 16},
        "train": {"num_train": 128, "num_test": 32, "num_validation": 32, "epochs": 1, "batch_size": 32}
        | {"out_dir": str(tmp_path / "runs")}
        | train,
    }
    store = ResultsStore(tmp_path / "r.db")
    return store, fit(config, store=store, progress=False)


def test_a_stored_run_is_inspected_from_its_checkpoint_and_shown_in_the_report(tmp_path):
    store, result = _trained(tmp_path)
    before = store.get(result.run_id).metrics
    out = CliRunner().invoke(
        app, ["inspect", result.run_id, "--db", str(tmp_path / "r.db"), "--samples", "8"]
    )
    assert out.exit_code == 0, out.output
    after = store.get(result.run_id).metrics
    assert {k: v for k, v in after.items() if k != INSPECTION} == before  # nothing else touched
    assert set(after[INSPECTION]["curves"]) >= {"forgetting", "capacity"}
    page = write_report(store, tmp_path / "report.html").read_text()
    assert 'id="inside-memories"' in page and 'id="fig-inside-32-2"' in page
    assert inside.INSPECTION == INSPECTION


def test_runs_that_cannot_be_inspected_are_named_with_the_reason(tmp_path):
    store, result = _trained(tmp_path, checkpoint=False)
    out = CliRunner().invoke(app, ["inspect", result.run_id, "--db", str(tmp_path / "r.db")])
    assert out.exit_code == 2 and "has no checkpoint" in out.output
    out = CliRunner().invoke(app, ["inspect", "nosuchrun", "--db", str(tmp_path / "r.db")])
    assert out.exit_code == 2 and "no run 'nosuchrun'" in out.output
    out = CliRunner().invoke(
        app, ["inspect", "--curves", "nope", "--suite", "x", "--db", str(tmp_path / "r.db")]
    )
    assert out.exit_code == 2 and "choose from forgetting" in out.output


def test_bench_inspect_stores_an_inspection_per_completed_recall_run(tmp_path):
    db = str(tmp_path / "b.db")
    out = CliRunner().invoke(
        app,
        ["bench", "--suite", "smoke", "--db", db, "--inspect", "--json"]
        + ["train.checkpoint=true", f"train.out_dir={tmp_path / 'runs'}"],
    )
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output.strip().splitlines()[-1])
    assert len(summary["inspection"]["inspected"]) == 4 and not summary["inspection"]["skipped"]
    runs = ResultsStore(db).runs(suite="smoke")
    assert all(INSPECTION in r.metrics for r in runs)
