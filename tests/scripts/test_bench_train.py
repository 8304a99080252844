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
