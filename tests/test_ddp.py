"""torchrun with 2 CPU ranks (gloo) trains ONE pix2pix model: identical weights on both ranks,
the same weights (float tolerance) as one process trained on the same global batches, an exact
resume with each rank's own random streams, and a non-finite loss on one rank stopping both."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.distributed import state_digest

ROOT = Path(__file__).resolve().parents[1]
# no norm layer and no dropout: a sample's gradient does not depend on the rest of its batch,
# so 2 ranks x batch 1 equals 1 process x batch 2 (with batch norm it would not; see docs/performance.md)
COMMON = ["--model", "pix2pix", "--direction", "BtoA", "--input_nc", "9", "--netG", "unet_64", "--ngf", "8",
          "--ndf", "8", "--norm", "none", "--no_dropout", "--preprocess", "none", "--no_flip",
          "--serial_batches", "--crop_size", "64", "--n_epochs", "2", "--n_epochs_decay", "0", "--gpu_ids", "-1",
          "--print_freq", "2", "--display_freq", "4", "--seed", "3", "--lr", "0.002"]


def make_data(root: Path, count: int = 4) -> Path:
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(count):  # A|B|C|D panels of 64 px
        Image.fromarray(rng.integers(0, 256, (64, 256, 3), dtype=np.uint8)).save(root / "train" / f"{i:02d}.png")
    return root


def logged_losses(log: Path) -> list[list[float]]:
    return [[float(v) for v in re.findall(r": (-?[0-9.]+)", line.split(")", 1)[1])]
            for line in log.read_text().splitlines() if "(epoch:" in line]


def load_weights(folder: Path) -> dict:
    return {name: torch.load(folder / f"latest_net_{name}.pth", weights_only=True) for name in ("G", "D")}


@pytest.mark.timeout(240)
def test_torchrun_two_cpu_ranks_train_one_model(tmp_path):
    data = make_data(tmp_path / "data")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(ROOT / "train.py"), "--dataroot", str(data), "--name", "ddp", "--checkpoints_dir", str(tmp_path / "ck"),
         "--batch_size", "1", "--num_threads", "0", *COMMON],
        capture_output=True, text=True, timeout=200, env=env, cwd=tmp_path)
    assert ddp.returncode == 0, ddp.stdout[-2000:] + ddp.stderr[-3000:]
    assert "The number of training images = 4 (2 per rank, 2 ranks)" in ddp.stdout
    digests = re.findall(r"weights identical on all 2 ranks \(sha256 ([0-9a-f]{16})\)", ddp.stdout)
    assert len(digests) == 1  # checked on every rank at the final save, printed by rank 0 alone

    from engine.training import run_training
    from options.train_options import TrainOptions

    single_argv = ["--dataroot", str(data), "--name", "single", "--checkpoints_dir", str(tmp_path / "ck"),
                   "--batch_size", "2", "--num_threads", "0", *COMMON]
    assert run_training(TrainOptions().parse(single_argv)) == {"epoch": 2, "total_iters": 8}

    ddp_weights, single_weights = load_weights(tmp_path / "ck" / "ddp"), load_weights(tmp_path / "ck" / "single")
    # (a) rank 0 saved the weights that every rank held, bit for bit
    assert state_digest(ddp_weights).startswith(digests[0])
    # (b) the same model as one process on the same global batches
    for name in ("G", "D"):
        for key, value in single_weights[name].items():
            torch.testing.assert_close(ddp_weights[name][key], value, rtol=1e-4, atol=2e-5, msg=f"{name} {key}")
    # logged losses are averaged over the ranks: equal to the single process's batch-2 losses
    ddp_losses = logged_losses(tmp_path / "ck" / "ddp" / "loss_log.txt")
    single_losses = logged_losses(tmp_path / "ck" / "single" / "loss_log.txt")
    assert len(ddp_losses) == len(single_losses) == 4  # rank 0 alone wrote the log: no duplicate lines
    np.testing.assert_allclose(ddp_losses, single_losses, rtol=2e-3, atol=2e-3)
    assert ddp_losses[2] != ddp_losses[0]  # the same batch in epoch 2: the weights moved
    # only rank 0 wrote pages and checkpoints (one set of files, nothing per rank)
    assert sorted(p.name for p in (tmp_path / "ck" / "ddp").glob("*.pth")) == \
        ["latest_net_D.pth", "latest_net_G.pth", "latest_train_state.pth"]
    assert (tmp_path / "ck" / "ddp" / "web" / "index.html").is_file()



def torchrun(tmp_path, script: Path, *args, timeout: float = 150) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=tmp_path)


# crops, flips and dropout draw from each rank's own random streams (seeded with --seed + rank)
RANDOM = ["--model", "pix2pix", "--direction", "BtoA", "--input_nc", "9", "--netG", "unet_64", "--ngf", "8",
          "--ndf", "8", "--norm", "none", "--load_size", "72", "--crop_size", "64", "--n_epochs", "2",
          "--n_epochs_decay", "0", "--gpu_ids", "-1", "--display_freq", "1000", "--seed", "3", "--batch_size", "1",
          "--num_threads", "0", "--save_latest_freq", "2"]


@pytest.mark.timeout(240)
def test_ddp_resume_gives_every_rank_its_own_random_streams(tmp_path):
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (72, 288, 3), dtype=np.uint8)).save(data / "train" / f"{i}.png")
    driver = tmp_path / "train_until.py"
    driver.write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                      "from engine.training import run_training\nfrom options.train_options import TrainOptions\n"
                      "stop = int(sys.argv[1]) or None\n"
                      "run_training(TrainOptions().parse(sys.argv[2:]), stop_after_iters=stop)\n")
    common = ["--dataroot", data, "--checkpoints_dir", tmp_path / "ck", *RANDOM]
    straight = torchrun(tmp_path, driver, 0, "--name", "straight", *common)
    assert straight.returncode == 0, straight.stderr[-3000:]
    # killed after iteration 6 (mid-epoch 2, 2 ranks x batch 1 per step), right after a save
    first = torchrun(tmp_path, driver, 6, "--name", "resumed", *common)
    assert first.returncode == 0, first.stderr[-3000:]
    state = torch.load(tmp_path / "ck" / "resumed" / "latest_train_state.pth", weights_only=True)
    assert len(state["rng_ranks"]) == 2 and not torch.equal(state["rng_ranks"][0]["torch"], state["rng_ranks"][1]["torch"])
    resumed = torchrun(tmp_path, driver, 0, "--name", "resumed", *common, "--continue_train")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming at epoch 2, after 1 batches of it (total_iters 6)" in resumed.stdout
    assert state_digest(load_weights(tmp_path / "ck" / "resumed")) == state_digest(load_weights(tmp_path / "ck" / "straight"))


@pytest.mark.timeout(240)
def test_a_non_finite_loss_on_one_rank_stops_every_rank_at_that_step(tmp_path):
    data = make_data(tmp_path / "data")
    driver = tmp_path / "poisoned_train.py"  # rank 1's second step diverges; rank 0's losses stay finite
    driver.write_text(f"import os, sys\nsys.path.insert(0, {str(ROOT)!r})\nimport torch\n"
                      "from models.pix2pix_model import Pix2PixModel\nstep = Pix2PixModel.optimize_parameters\n"
                      "def poisoned(self):\n    step(self)\n    self.steps = getattr(self, 'steps', 0) + 1\n"
                      "    if os.environ['RANK'] == '1' and self.steps == 2:\n"
                      "        self.loss_G_L1 = torch.tensor(float('nan'))\n"
                      "Pix2PixModel.optimize_parameters = poisoned\nimport train\ntrain.main(sys.argv[1:])\n")
    result = torchrun(tmp_path, driver, "--dataroot", data, "--name", "nan", "--checkpoints_dir", tmp_path / "ck",
                      "--batch_size", "1", "--num_threads", "0", *COMMON, timeout=120)
    assert result.returncode != 0
    stops = [line for line in result.stderr.splitlines()
             if line.startswith("error: non-finite loss at iteration 4 (epoch 1) on rank 1")]
    assert len(stops) == 2, result.stderr[-3000:]  # both ranks, each with one line, at the same step
    assert any(line.endswith("(lower --lr?)") and "G_L1=nan" in line for line in stops)
    assert not (tmp_path / "ck" / "nan" / "latest_net_G.pth").exists()
