import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

# One torch thread everywhere: the tests' tensors are small, and two OpenMP threads per process
# (two xdist workers on a 2-core machine, or a busy machine) spin against each other and run
# many times slower. Subprocesses (CLI tests) inherit the variable.
torch.set_num_threads(1)
os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(autouse=True)
def _seed_and_one_thread() -> Iterator[None]:
    torch.manual_seed(0)
    yield
    torch.set_num_threads(1)  # a test or bench function that changed it does not leak
