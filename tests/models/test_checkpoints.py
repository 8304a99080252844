"""Checkpoint files: upstream format, strict loading of upstream checkpoints, clear errors for
another architecture or a broken file, atomic saves, and the resume-state file."""
import errno
import io
import os
import random
from collections import OrderedDict

import numpy as np
import pytest
import torch

from models import checkpoint
from models import create_model, networks
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util import fileio
from util.errors import UserError

TINY = ["--netG", "unet_64", "--ngf", "8", "--ndf", "8", "--gpu_ids", "-1", "--crop_size", "64"]


def set_up_model(options_class, tmp_path, *extra):
    opt = options_class().parse(["--dataroot", str(tmp_path), "--model", "pix2pix", "--checkpoints_dir",
                                  str(tmp_path / "ck"), *TINY, *extra])
    model = create_model(opt)
    model.setup(opt)
    return model


def train_model(tmp_path, *extra):
    return set_up_model(TrainOptions, tmp_path, *extra)


def built_for_testing(tmp_path, *extra):
    return set_up_model(TestOptions, tmp_path, *extra)


def batch(input_nc=3, output_nc=3, size=64):
    return {"A": torch.rand(1, input_nc, size, size) * 2 - 1, "B": torch.rand(1, output_nc, size, size) * 2 - 1,
            "A_paths": ["a.png"], "B_paths": ["a.png"]}


def test_saved_networks_are_plain_cpu_state_dicts_named_as_upstream(tmp_path):
    model = train_model(tmp_path)
    model.save_networks("latest")
    model.save_networks(3)
    folder = tmp_path / "ck" / "experiment_name"
    assert {p.name for p in folder.iterdir()} >= {"latest_net_G.pth", "latest_net_D.pth", "3_net_G.pth", "3_net_D.pth"}
    state = torch.load(folder / "latest_net_G.pth", weights_only=True)
    assert isinstance(state, OrderedDict)
    assert list(state) == list(model.netG.state_dict())
    assert all(t.device.type == "cpu" for t in state.values())


def test_round_trip_gives_the_same_generator_output(tmp_path):
    model = train_model(tmp_path)
    model.set_input(batch())
    model.optimize_parameters()  # moves BatchNorm statistics and weights off their init
    model.save_networks("latest")
    loaded = built_for_testing(tmp_path, "--eval")
    model.eval()
    loaded.eval()
    x = batch()["A"]
    with torch.no_grad():
        assert torch.equal(model.netG(x), loaded.netG(x))
    assert loaded.model_names == ["G"]  # test mode: no discriminator is built or loaded


def test_upstream_checkpoint_loads_strictly_and_gives_the_same_output(tmp_path):
    """A file as upstream writes it: torch.save of a freshly built net's plain state_dict."""
    torch.manual_seed(1)
    source = networks.define_G(3, 3, 8, "unet_64", "batch", use_dropout=True)
    folder = tmp_path / "ck" / "experiment_name"
    folder.mkdir(parents=True)
    torch.save(source.state_dict(), folder / "latest_net_G.pth")
    model = built_for_testing(tmp_path, "--eval")
    model.eval()
    source.eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(model.netG(x), source(x), atol=1e-6)


def test_wrapper_prefixes_and_old_instance_norm_entries_are_tolerated(tmp_path):
    source = networks.define_G(3, 3, 8, "unet_64", "instance", use_dropout=True)
    state = OrderedDict(("module._orig_mod." + k, v) for k, v in source.state_dict().items())
    # checkpoints from before PyTorch 0.4 carried statistics for InstanceNorm layers
    state["module.model.model.1.model.2.running_mean"] = torch.zeros(16)
    state["module.model.model.1.model.2.num_batches_tracked"] = torch.tensor(0)
    folder = tmp_path / "ck" / "experiment_name"
    folder.mkdir(parents=True)
    torch.save(state, folder / "latest_net_G.pth")
    model = built_for_testing(tmp_path, "--norm", "instance", "--eval")
    for key, value in source.state_dict().items():
        assert torch.equal(model.netG.state_dict()[key], value)


def test_checkpoint_of_another_architecture_names_the_differing_keys(tmp_path):
    train_model(tmp_path, "--netG", "resnet_6blocks").save_networks("latest")
    with pytest.raises(UserError) as err:
        built_for_testing(tmp_path)  # unet_64 now
    message = str(err.value)
    assert "another architecture" in message and "\n" not in message
    assert "missing keys: model.model.0.weight" in message
    assert "unexpected keys: model.1.weight" in message


def test_checkpoint_with_other_channel_count_reports_shapes(tmp_path):
    train_model(tmp_path).save_networks("latest")
    with pytest.raises(UserError, match=r"shape mismatch .*model\.model\.0\.weight \(8, 3, 4, 4\) vs \(8, 9, 4, 4\)"):
        built_for_testing(tmp_path, "--input_nc", "9")


def test_missing_and_corrupt_checkpoints_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        built_for_testing(tmp_path)
    folder = tmp_path / "ck" / "experiment_name"
    folder.mkdir(parents=True)
    (folder / "latest_net_G.pth").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        built_for_testing(tmp_path)


def test_a_save_that_dies_midway_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    model = train_model(tmp_path)
    model.save_networks("latest")
    folder = tmp_path / "ck" / "experiment_name"
    before = (folder / "latest_net_G.pth").read_bytes()
    model.set_input(batch())
    model.optimize_parameters()

    def die(fd):
        raise OSError("disk full")

    monkeypatch.setattr(fileio.os, "fsync", die)  # dies after the temp file got its bytes
    with pytest.raises(OSError):
        model.save_networks("latest")
    monkeypatch.undo()
    assert (folder / "latest_net_G.pth").read_bytes() == before
    assert sorted(os.listdir(folder)) == ["latest_net_D.pth", "latest_net_G.pth"]  # no temp file left
    torch.load(folder / "latest_net_G.pth", weights_only=True)


def test_train_state_restores_optimizers_schedulers_and_rng(tmp_path):
    model = train_model(tmp_path, "--lr_policy", "step", "--lr_decay_iters", "1")
    model.set_input(batch())
    model.optimize_parameters()
    model.update_learning_rate()
    torch.manual_seed(7)
    random.seed(7)
    np.random.seed(7)
    model.save_train_state("latest", {"epoch": 1, "epoch_finished": True})
    expected = (torch.rand(3), random.random(), np.random.rand())
    other = train_model(tmp_path, "--lr_policy", "step", "--lr_decay_iters", "1")
    restored = other.load_train_state("latest")
    assert restored["progress"] == {"epoch": 1, "epoch_finished": True}
    checkpoint.restore_rng_state(restored["rng"])
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]
    assert np.random.rand() == expected[2]
    assert other.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.00002)
    assert other.schedulers[0].last_epoch == 1
    for mine, theirs in zip(model.optimizers, other.optimizers):
        for key, value in mine.state_dict()["state"][0].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(theirs.state_dict()["state"][0][key]))
    # another --lr_policy on resume: the options' schedule, rebuilt where the saved one stood (1 step)
    cosine = train_model(tmp_path, "--lr_policy", "cosine")
    assert cosine.load_train_state("latest") is not None
    assert cosine.schedulers[0].last_epoch == 1
    assert cosine.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0002 * (1 + np.cos(np.pi / 100)) / 2)


def test_train_state_of_other_network_files_falls_back_to_weights_only(tmp_path, capsys):
    """A run killed after writing the new G but before its train state: do not mix them."""
    model = train_model(tmp_path)
    model.save_networks("latest")
    model.save_train_state("latest", {"epoch": 1, "epoch_finished": True})
    assert train_model(tmp_path).load_train_state("latest") is not None
    model.set_input(batch())
    model.optimize_parameters()
    checkpoint.save_network(model.netG, tmp_path / "ck" / "experiment_name" / "latest_net_G.pth")
    assert train_model(tmp_path).load_train_state("latest") is None
    assert "latest_net_G.pth (a save was interrupted?)" in capsys.readouterr().out


def test_prefix_and_result_folder_follow_epoch_and_load_iter(tmp_path):
    import argparse

    from models.base_model import checkpoint_prefix
    from engine.results import results_dir_for

    opt = argparse.Namespace(epoch="latest", load_iter=0, phase="test", results_dir=str(tmp_path), name="n")
    assert checkpoint_prefix(opt) == "latest" and results_dir_for(opt) == tmp_path / "n" / "test_latest"
    opt.epoch, opt.load_iter = "5", 300
    assert checkpoint_prefix(opt) == "iter_300" and results_dir_for(opt) == tmp_path / "n" / "test_5_iter300"


def test_a_checkpoint_holding_python_objects_is_refused_without_torchs_advice(tmp_path):
    """A pickle that would run a command when loaded: one line saying it is not a plain weights
    file and will not be loaded, never torch's advice to load it with weights_only=False."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    folder = tmp_path / "ck" / "experiment_name"
    folder.mkdir(parents=True)
    torch.save({"model.0.weight": Payload()}, folder / "latest_net_G.pth")
    with pytest.raises(UserError) as info:
        built_for_testing(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{folder / 'latest_net_G.pth'} is not a plain weights file (")
    assert message.endswith("); it will not be loaded") and "system" in message
    assert "weights_only" not in message and "\n" not in message
    assert not marker.exists()


def test_non_finite_weights_name_parameters_buffers_and_optimizer_state(tmp_path):
    model = train_model(tmp_path, "--norm", "batch")
    model.set_input(batch())
    model.optimize_parameters()
    assert model.non_finite_weights() == []
    running_var = next(key for key in model.netG.state_dict() if key.endswith("running_var"))
    model.netG.state_dict()[running_var][0] = float("inf")
    model.netD.state_dict()["model.0.weight"][0, 0, 0, 0] = float("nan")
    assert model.non_finite_weights() == [f"G {running_var}", "D model.0.weight"]
    next(iter(model.optimizer_D.state.values()))["exp_avg"].fill_(float("nan"))
    assert model.non_finite_weights()[-1] == "optimizer 1 param 0 exp_avg"


def test_non_finite_entries_finds_nan_and_inf_but_not_huge_finite_values():
    from models.checkpoint import non_finite_entries

    huge = torch.full((4,), 1e308, dtype=torch.float64)  # finite, beyond the float32 range
    tensors = {"ok": torch.randn(5, 3), "huge": huge, "nan": torch.tensor([1.0, float("nan")]),
               "inf": torch.tensor([float("-inf"), 0.0], dtype=torch.bfloat16), "steps": torch.tensor([3]),
               "empty": torch.zeros(0)}
    assert non_finite_entries(tensors) == ["nan", "inf"]
    assert non_finite_entries({"ok": torch.randn(2), "huge": huge}) == []


class FullDisk(io.RawIOBase):
    """A file that takes `room` bytes, then fails as a full disk does (OSError ENOSPC)."""

    def __init__(self, room: int):
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return len(data)


def test_a_full_disk_while_saving_is_an_oserror_not_torchs_runtimeerror():
    """Sweep T02: train.py with --checkpoints_dir on a 2 MB tmpfs stopped with a traceback of
    'RuntimeError: [enforce fail at inline_container.cc:672] unexpected pos', not the one-line full-disk error:
    torch's zip writer hides the handle's OSError."""
    from models.checkpoint import torch_save_into

    state = {"w": torch.zeros(200_000)}
    with pytest.raises(RuntimeError, match="unexpected pos"):  # what torch.save alone does
        torch.save(state, FullDisk(100_000))
    with pytest.raises(OSError) as caught:
        torch_save_into(FullDisk(100_000), state, hashing=True)
    assert caught.value.errno == errno.ENOSPC
    assert torch_save_into(FullDisk(10_000_000), state, hashing=True) is not None
