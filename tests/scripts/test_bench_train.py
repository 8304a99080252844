"""scripts/bench_train.py: real timed pix2pix steps on synthetic tensors, and the loader alone."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def test_bench_prints_seconds_per_step_and_samples_per_second(tmp_path):
    (tmp_path / "train").mkdir()
    Image.fromarray(np.zeros((64, 256, 3), dtype=np.uint8)).save(tmp_path / "train" / "a.png")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_train.py"), "--netG", "unet_64", "--ngf", "8", "--ndf", "8",
         "--crop_size", "64", "--input_nc", "9", "--batch_size", "2", "--device", "cpu", "--threads", "1",
         "--warmup", "1", "--steps", "2", "--dataroot", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if "s/step" in line]
    assert lines[0].startswith("unet_64+basic batch 2 crop 64 input_nc 9 on cpu")
    assert "median of 2" in lines[0] and "samples/s" in lines[0]
    assert lines[1].startswith("data loader alone")
    assert not (tmp_path / "checkpoints").exists() and not Path("/nonexistent-bench").exists()


def test_overhead_times_the_real_loop_against_the_bare_step(tmp_path):
    """--overhead: train.py's loop and the bare step of the same model, in blocks, side by side,
    then each piece of the loop with its share of the step; nothing is left on disk."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_train.py"), "--netG", "unet_64", "--ngf", "8", "--ndf", "8",
         "--crop_size", "64", "--input_nc", "9", "--batch_size", "2", "--device", "cpu", "--threads", "1",
         "--warmup", "1", "--steps", "4", "--block", "2", "--overhead"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "[loop] train.py's loop: " in out and "(median of 2 blocks of 2), bare model step " in out
    assert "[loop] overhead after the first block: " in out and "goal <= 2%: " in out
    for piece in ("progress bar update", "non-finite watch (no sync)", "loss line", "loss-curve PNG",
                  "HTML page of visuals", "RNG capture"):
        assert piece in out
    assert list(tmp_path.iterdir()) == []
