"""Tiny networks run fastest on one thread; two threads on a shared, busy 2-core machine can be
50x slower (OpenMP spinning). Restored after each test."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
