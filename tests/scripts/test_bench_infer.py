"""scripts/bench_infer.py: test.py's generator path timed per batch size and mode, with ratios."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_infer_prints_images_per_second_and_ratios(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_infer.py"), "--netG", "unet_64", "--ngf", "8",
         "--crop_size", "64", "--input_nc", "9", "--device", "cpu", "--threads", "1", "--batch_sizes", "1,2",
         "--modes", "fp32,bf16+channels_last", "--warmup", "1", "--steps", "2"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if "images/s" in line]
    assert [line.split("]")[0] for line in lines] == ["[fp32", "[bf16+channels_last"] * 2
    assert "batch 1 crop 64 input_nc 9 on cpu" in lines[0] and "batch 2 crop 64" in lines[2]
    assert result.stdout.count("x the speed of fp32") == 4
    assert not (tmp_path / "results").exists() and not Path("/nonexistent-bench").exists()


def test_bench_infer_rejects_an_unknown_mode_before_starting_torch(tmp_path):
    # the script runs as `python scripts/bench_infer.py`; afterwards the process tells whether torch was imported
    code = ("import runpy, sys\n"
            f"sys.argv = [{str(ROOT / 'scripts' / 'bench_infer.py')!r}, '--modes', 'fp8']\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit as done:\n    print('exit', done.code, 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.stdout.split() == ["exit", "2", "False"], result.stderr[-2000:]
    assert result.stderr.startswith("error: unknown or conflicting mode 'fp8'")
