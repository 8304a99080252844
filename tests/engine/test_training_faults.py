"""Faults in training (issue 13): a resume with another schedule, a diverged save, a save killed
or out of disk half-way, unwritable folders and bad learning rates. Each gives a correct run or
one line and loses nothing. Real tiny training runs (unet_64, ngf/ndf 8, 64 px, CPU)."""
import errno
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train
from engine.training import run_training
from models import checkpoint
from options.train_options import TrainOptions
from util import fileio

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--model", "pix2pix", "--direction", "BtoA", "--input_nc", "9", "--netG", "unet_64", "--ngf", "8",
        "--ndf", "8", "--crop_size", "64", "--load_size", "64", "--gpu_ids", "-1", "--num_threads", "0",
        "--no_html", "--display_freq", "1000", "--print_freq", "1000"]


def write_set(root, n_images=2, size=64):
    rng = np.random.default_rng(11)
    (root / "train").mkdir(parents=True)
    for i in range(n_images):
        Image.fromarray(rng.integers(0, 256, (size, 4 * size, 3), dtype=np.uint8)).save(root / "train" / f"{i}.png")
    return root


def argv(tmp_path, name, *extra):
    return ["--dataroot", str(tmp_path / "data"), "--name", name, "--checkpoints_dir", str(tmp_path / "ck"), *TINY,
            *map(str, extra)]


def train_in_process(tmp_path, name, *extra, **stop):
    for seed in (torch.manual_seed, random.seed, np.random.seed):
        seed(0)
    return run_training(TrainOptions().parse(argv(tmp_path, name, *extra)), **stop)


def learning_rates(text):
    """(old, new) of every 'learning rate a -> b' line."""
    return [(float(a), float(b)) for a, b in re.findall(r"learning rate (\S+) -> (\S+)", text)]


def one_line_error(capsys, run):
    """Run an entry point in-process; it must exit 2 with a single 'error: ...' line, no traceback."""
    with pytest.raises(SystemExit) as info:
        run()
    assert info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and lines and lines[-1].startswith("error: ")
    return lines[-1]


@pytest.fixture
def data(tmp_path):
    return write_set(tmp_path / "data")


# ------------------------------------------------------------------ 1. the schedule on resume
def test_a_longer_schedule_on_resume_follows_the_new_schedule_never_a_negative_rate(tmp_path, data, capsys):
    """Recipe of issue 13: 1+1 epochs, then --continue_train with 2+2. The saved schedule ended at
    rate 0; kept, it went on to -0.0001 (gradient ascent). Rebuilt, epochs 3-4 train at the
    rates of a 2+2 run from the start."""
    train_in_process(tmp_path, "short", "--n_epochs", 1, "--n_epochs_decay", 1)
    capsys.readouterr()
    train_in_process(tmp_path, "short", "--n_epochs", 2, "--n_epochs_decay", 2, "--continue_train")
    out = capsys.readouterr().out
    assert "note: the learning-rate schedule changed since the save (n_epochs 1 -> 2, n_epochs_decay 1 -> 2)" in out
    resumed = learning_rates(out)
    train_in_process(tmp_path, "long", "--n_epochs", 2, "--n_epochs_decay", 2)
    straight = learning_rates(capsys.readouterr().out)
    assert len(resumed) == 2 and resumed == straight[2:]  # epochs 3 and 4
    assert all(rate >= 0 for pair in resumed for rate in pair)
    state = torch.load(tmp_path / "ck" / "short" / "latest_train_state.pth", weights_only=True)
    assert state["progress"]["epoch"] == 4 and state["schedule"]["n_epochs"] == 2


def test_a_new_lr_on_resume_is_honoured(tmp_path, data, capsys):
    train_in_process(tmp_path, "lr", "--n_epochs", 2, "--n_epochs_decay", 2, "--save_epoch_freq", 1,
                     stop_after_epoch=2)
    capsys.readouterr()
    train_in_process(tmp_path, "lr", "--n_epochs", 2, "--n_epochs_decay", 2, "--lr", "0.0001", "--continue_train")
    out = capsys.readouterr().out
    assert "(lr 0.0002 -> 0.0001)" in out
    # epoch 3 of a 2+2 schedule runs at 2/3 of the base rate, now 0.0001
    assert learning_rates(out)[0] == pytest.approx((0.0001 * 2 / 3, 0.0001 / 3), abs=1e-7)


def test_an_unchanged_schedule_is_restored_as_saved(tmp_path, data, capsys):
    train_in_process(tmp_path, "same", "--n_epochs", 1, "--n_epochs_decay", 2, "--save_epoch_freq", 1,
                     stop_after_epoch=1)
    capsys.readouterr()
    train_in_process(tmp_path, "same", "--n_epochs", 1, "--n_epochs_decay", 2, "--continue_train")
    out = capsys.readouterr().out
    assert "schedule changed" not in out
    assert [rate for pair in learning_rates(out) for rate in pair] == pytest.approx(
        [0.0002 * 2 / 3, 0.0002 / 3, 0.0002 / 3, 0.0], abs=1e-7)


# ------------------------------------------------------------------ 4. non-finite weights are never saved
def test_a_diverged_batchnorm_statistic_is_never_saved(tmp_path, capsys):
    """A FITS pixel of 3e38 with --fits_norm linear: the losses stay finite, but a BatchNorm
    running_var becomes inf. The save refuses it in one line; no checkpoint file is written."""
    from astropy.io import fits

    rows, cols = np.mgrid[0:64, 0:64]
    for i in range(2):
        cube = np.stack([10.0 * rows + cols + 1000.0 * k + i for k in range(3)]).astype(np.float32)
        if i == 1:
            cube[1, 5, 5] = 3e38
        (tmp_path / "data" / "train").mkdir(parents=True, exist_ok=True)
        fits.PrimaryHDU(cube).writeto(tmp_path / "data" / "train" / f"c{i}.fits")
    args = ["--dataroot", tmp_path / "data", "--name", "fits", "--checkpoints_dir", tmp_path / "ck",
            "--model", "pix2pix", "--dataset_mode", "fits_aligned", "--allow_no_wcs", "--fits_norm", "linear",
            "--input_nc", "2", "--output_nc", "1", "--netG", "unet_64", "--ngf", "8", "--ndf", "8",
            "--crop_size", "64", "--gpu_ids", "-1", "--num_threads", "0", "--no_html", "--serial_batches",
            "--n_epochs", "1", "--n_epochs_decay", "0", "--save_epoch_freq", "1"]
    message = one_line_error(capsys, lambda: train.main(list(map(str, args))))
    assert message.startswith("error: non-finite weights at iteration 2 (epoch 1): ")
    assert "running_var" in message and "stopped without saving" in message
    assert not list((tmp_path / "ck" / "fits").glob("*.pth"))


# ------------------------------------------------------------------ 6. checkpoint sets all or none
def test_a_save_killed_between_the_network_files_keeps_a_whole_resumable_set(tmp_path, data, capsys, monkeypatch):
    """Killed after G was written, before D and the train state: the previous set must stay whole,
    so the next resume restores optimizers and counters (not weights-only from epoch 1)."""
    train_in_process(tmp_path, "kill", "--n_epochs", 3, "--n_epochs_decay", 0, "--save_epoch_freq", 1,
                     stop_after_epoch=1)
    folder = tmp_path / "ck" / "kill"
    before = {p.name: p.read_bytes() for p in folder.glob("latest_*.pth")}
    write = checkpoint.atomic_write_with

    def killed_at_d(path, *args, **kwargs):
        if Path(path).name == "latest_net_D.pth":
            raise KeyboardInterrupt  # the process dies here
        return write(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "atomic_write_with", killed_at_d)
    with pytest.raises(KeyboardInterrupt):
        train_in_process(tmp_path, "kill", "--n_epochs", 3, "--n_epochs_decay", 0, "--save_epoch_freq", 1,
                         "--continue_train")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in folder.glob("latest_*.pth")} == before
    capsys.readouterr()
    assert train_in_process(tmp_path, "kill", "--n_epochs", 3, "--n_epochs_decay", 0, "--save_epoch_freq", 1,
                            "--continue_train") == {"epoch": 3, "total_iters": 6}
    out = capsys.readouterr().out
    assert "resuming at epoch 2, after 0 batches of it (total_iters 2)" in out
    assert "weights only" not in out


def test_temp_files_of_a_killed_save_are_removed_at_the_next_start(tmp_path, data, capsys):
    train_in_process(tmp_path, "stale", "--n_epochs", 1, "--n_epochs_decay", 0)
    folder = tmp_path / "ck" / "stale"
    stale = folder / ".latest_net_G.pth.0123456789ab.tmp"
    stale.write_bytes(b"half a network")
    capsys.readouterr()
    train_in_process(tmp_path, "stale", "--n_epochs", 1, "--n_epochs_decay", 0, "--continue_train")
    assert not stale.exists()
    assert f"note: removed 1 temporary file(s) of an interrupted save in {folder}" in capsys.readouterr().out


# ------------------------------------------------------------------ 11. one line, not a traceback
def test_a_full_disk_at_a_save_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, data, capsys, monkeypatch):
    train_in_process(tmp_path, "full", "--n_epochs", 2, "--n_epochs_decay", 0, "--save_epoch_freq", 1,
                     stop_after_epoch=1)
    folder = tmp_path / "ck" / "full"
    before = {p.name: p.read_bytes() for p in folder.glob("*.pth")}
    real_fsync = os.fsync

    def no_space(fd):  # the disk fills up while a checkpoint file is written
        if re.search(r"\.pth\.\w+\.tmp$", os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(fileio.os, "fsync", no_space)
    message = one_line_error(capsys, lambda: train.main(argv(tmp_path, "full", "--n_epochs", 2, "--n_epochs_decay", 0,
                                                             "--save_epoch_freq", 1, "--continue_train")))
    monkeypatch.undo()
    assert message.startswith(f"error: No space left on device ({folder / 'latest_net_G.pth'}); checkpoint 'latest' "
                              f"not saved")
    assert f"the previous one in {folder} is kept" in message
    assert {p.name: p.read_bytes() for p in folder.glob("*.pth")} == before
    assert not [p for p in os.listdir(folder) if p.endswith(".tmp")]


def test_a_full_disk_at_the_first_save_does_not_promise_an_earlier_checkpoint(tmp_path, data, capsys, monkeypatch):
    """Issue 19 T02: the first save ran out of space and the line said 'the previous one ... is kept'."""
    real_fsync = os.fsync

    def no_space(fd):
        if re.search(r"\.pth\.\w+\.tmp$", os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(fileio.os, "fsync", no_space)
    message = one_line_error(capsys, lambda: train.main(argv(tmp_path, "first", "--n_epochs", 1, "--n_epochs_decay", 0)))
    monkeypatch.undo()
    folder = tmp_path / "ck" / "first"
    assert "checkpoint 'latest' not saved" in message and "previous" not in message
    assert f"no earlier checkpoint is in {folder}, so the training starts from the beginning" in message
    assert not list(folder.glob("*.pth"))


def test_a_checkpoints_dir_that_is_a_file_is_one_line_and_creates_nothing(tmp_path, data, capsys):
    not_a_folder = tmp_path / "ck"
    not_a_folder.write_text("a file")
    message = one_line_error(capsys, lambda: train.main(argv(tmp_path, "run")))
    assert message == (f"error: --checkpoints_dir: {not_a_folder} is a file, not a folder, so {not_a_folder / 'run'} "
                       f"cannot be created; choose another --checkpoints_dir")


@pytest.fixture
def read_only_folder(tmp_path):
    """A read-only tmpfs (root can write into a chmod 555 folder, not into a read-only mount)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0 if os.geteuid() == 0 else False
    if not mounted:
        pytest.skip("mounting a read-only tmpfs needs root")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_checkpoints_dir_is_one_line(tmp_path, data, capsys, read_only_folder):
    message = one_line_error(capsys, lambda: train.main(
        ["--dataroot", str(data), "--name", "run", "--checkpoints_dir", str(read_only_folder), *TINY]))
    assert message == (f"error: --checkpoints_dir: cannot write in {read_only_folder} (a read-only file system or "
                       f"no permission); choose another --checkpoints_dir")


@pytest.mark.parametrize("value", ["nan", "-0.0002", "1e39", "0"])
def test_a_learning_rate_that_cannot_train_is_one_line(tmp_path, data, capsys, value):
    message = one_line_error(capsys, lambda: train.main(argv(tmp_path, "lr", f"--lr={value}")))
    assert message.startswith("error: --lr must be a positive learning rate of at most 1")
    assert not (tmp_path / "ck").exists()


def test_train_py_prints_the_line_without_a_traceback(tmp_path, data):
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), *argv(tmp_path, "lr", "--lr=nan")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --lr must be a positive learning rate")
