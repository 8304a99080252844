"""Suite-wide test settings.

Tiny networks run fastest on one thread: two threads on a shared, busy 2-core machine can be
50x slower (OpenMP spinning). Subprocesses started by tests inherit OMP_NUM_THREADS=1.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
