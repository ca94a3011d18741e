import os
import sys

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
