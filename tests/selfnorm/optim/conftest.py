import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: threads only add overhead, and stall badly when the machine is busy."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
