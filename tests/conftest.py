import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

# pytest-xdist runs one worker per core: one torch thread each avoids oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

# CI runs the same hypothesis examples every time (a failure there is reproducible);
# local runs keep exploring new ones.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny finished run's checkpoint folder (best + last/), shared by the hostile-input tests."""
    from test_hostile import TINY

    from memzoo.train import build_config, fit

    root = tmp_path_factory.mktemp("run")
    result = fit(build_config({}, TINY + [f"train.out_dir={root / 'runs'}"]), progress=False)
    assert result.status == "completed"
    return result.checkpoint_dir
