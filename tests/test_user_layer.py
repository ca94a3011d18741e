"""A user's own layer, outside memzoo, named in a config by import path, runs everywhere:
in this process, through ``memzoo.fit``, and in the bench's local worker processes."""

from __future__ import annotations

import sys
import textwrap

import pytest

import memzoo
from memzoo.errors import ConfigError
from memzoo.results import ResultsStore
from memzoo.sweep.executors import LocalExecutor
from memzoo.sweep.runner import run_bench

LAYER_SOURCE = textwrap.dedent(
    '''
    import torch
    from torch import nn

    from memzoo.layers.base import MemoryLayer


    class LeakyAverage(MemoryLayer):
        """h_t = a h_{t-1} + (1 - a) x_t, read through a linear map: O(1) state [B, D]."""

        kind = "short"
        family = "recurrent"
        description = "a user's leaky running average"

        def __init__(self, d_model: int, decay: float = 0.5):
            super().__init__(d_model)
            self.decay = decay
            self.out = nn.Linear(d_model, d_model)

        def init_state(self, batch_size, device=None, dtype=None):
            device, dtype = self._param_device_dtype(device, dtype)
            return torch.zeros(batch_size, self.d_model, device=device, dtype=dtype)

        def forward(self, x, state=None):
            h = self.init_state(x.shape[0], x.device, x.dtype) if state is None else state
            outputs = []
            for t in range(x.shape[1]):
                h = self.decay * h + (1 - self.decay) * x[:, t]
                outputs.append(h)
            return self.out(torch.stack(outputs, 1)), h

        def state_size(self, seq_len):
            return 4 * self.d_model
    '''
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "user_memory.py").write_text(LAYER_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{sys.path[0]}")  # for worker processes
    return "user_memory:LeakyAverage"


def test_a_layer_named_by_import_path_builds_and_trains(user_module, tmp_path):
    layer = memzoo.layers.build(user_module, d_model=8, decay=0.25)
    assert type(layer).__name__ == "LeakyAverage" and layer.decay == 0.25
    cfg = {
        "task": {"name": "mqar", "vocab_size": 32, "seq_len": 16, "num_kv_pairs": 2},
        "model": {"layers": [user_module], "d_model": 16, "layer_options": {user_module: {"decay": 0.9}}},
        "train": {"epochs": 1, "num_train": 64, "num_validation": 32, "num_test": 32, "checkpoint": False},
    }
    result = memzoo.fit(cfg)
    assert result.status == "completed" and result.record.layers == [user_module]


def test_a_user_layer_runs_in_two_local_bench_workers(user_module, tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    summary = run_bench(
        "smoke", store, LocalExecutor(workers=2), progress=False, overrides=[f"model.layers=[{user_module}]"]
    )
    runs = store.runs(suite="smoke")
    assert summary and runs and all(r.status == "completed" for r in runs), [r.error for r in runs]
    assert all(r.layers == [user_module] for r in runs)


def test_a_bad_import_path_is_one_clear_error(user_module):
    with pytest.raises(ConfigError, match="cannot be imported"):
        memzoo.layers.build("user_memory:Nope", d_model=8)
    with pytest.raises(ConfigError, match="not a memzoo.layers.base.MemoryLayer subclass"):
        memzoo.layers.build("torch.nn:Linear", d_model=8)
