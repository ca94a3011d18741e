import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))

# pytest-xdist runs one worker per core: one torch thread each avoids oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
