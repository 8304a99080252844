"""The run context: who this process is (rank, world size) and where it computes, read in one place."""
import argparse

import pytest
import torch

from engine.context import RunContext, choose_device, open_run
from util.errors import UserError

CPU = torch.device("cpu")


def test_the_cpu_when_no_gpu_is_asked_for_or_present():
    assert choose_device([], None, cuda_count=2) == CPU  # --gpu_ids -1
    assert choose_device([0], None, cuda_count=0) == CPU  # the default 0 on a machine without CUDA
    assert choose_device([0, 1], None, cuda_count=0) == CPU
    assert choose_device([1], None, cuda_count=2) == torch.device("cuda", 1)


def test_several_or_missing_gpu_ids_are_one_line_errors():
    with pytest.raises(UserError, match=r"--gpu_ids 0,1 names 2 GPUs, but one process drives one GPU: .*"
                                        r"torchrun --nproc_per_node=2 train.py"):
        choose_device([0, 1], None, cuda_count=2)
    with pytest.raises(UserError, match=r"--gpu_ids 3: this machine has 2 GPU\(s\), ids 0..1 \(-1 = the CPU\)"):
        choose_device([3], None, cuda_count=2)


def test_under_torchrun_each_rank_takes_its_local_gpu():
    assert choose_device([0], 1, cuda_count=2) == torch.device("cuda", 1)
    with pytest.raises(UserError, match="LOCAL_RANK 2 but this machine has 2 GPU"):
        choose_device([0], 2, cuda_count=2)


def test_rank_and_world_size_come_from_torchrun_s_environment():
    ctx = RunContext.from_environment([0], {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}, cuda_count=0)
    assert (ctx.rank, ctx.local_rank, ctx.world_size, ctx.device) == (1, 1, 2, CPU)
    assert ctx.is_distributed and not ctx.is_main and not ctx.pin_memory
    alone = RunContext.from_environment([0], {}, cuda_count=0)
    assert alone == RunContext() and alone.is_main and not alone.is_distributed
    with pytest.raises(UserError, match="RANK='one' in the environment is not a number"):
        RunContext.from_environment([], {"RANK": "one"}, cuda_count=0)
    with pytest.raises(UserError, match="RANK 2 / WORLD_SIZE 2"):
        RunContext.from_environment([], {"WORLD_SIZE": "2", "RANK": "2"}, cuda_count=0)


def test_open_run_is_where_the_process_is_set_up():
    opt = argparse.Namespace(gpu_ids=[], preprocess="resize_and_crop", deterministic=False, seed=11)
    with open_run(opt, environ={}) as ctx:
        assert ctx == RunContext()
        assert torch.initial_seed() == 11  # --seed, offset by the rank (0)
