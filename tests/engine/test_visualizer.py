"""Visualizer with multi-band visuals: HTML page, loss_log.txt and .jsonl, loss curves, visdom (real server), wandb offline."""
import argparse
import base64
import glob
import io
import json
import os
import socket
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from engine.context import RunContext
from engine.visualizer import Visualizer
from util.loss_history import read_history


def make_opt(tmp_path, **overrides) -> argparse.Namespace:
    opt = dict(name="exp", checkpoints_dir=str(tmp_path / "checkpoints"), isTrain=True, no_html=False,
               display_winsize=64, display_id=0, display_server="http://localhost", display_port=8097,
               display_env="main", display_ncols=4, use_wandb=False, wandb_project_name="CycleGAN-and-pix2pix")
    opt.update(overrides)
    return argparse.Namespace(**opt)


def nine_channel_visuals():
    """What pix2pix with --input_nc 9 shows once the model split real_A into its panels."""
    real_a = torch.rand(1, 9, 16, 16) * 2 - 1
    visuals = {f"real_A_p{i + 1}": panel for i, panel in enumerate(real_a.split(3, dim=1))}
    visuals.update(fake_B=torch.rand(1, 3, 16, 16) * 2 - 1, real_B=torch.rand(1, 3, 16, 16) * 2 - 1)
    visuals["real_A"] = real_a  # an unsplit 9-channel visual must not crash either
    return visuals


LOSSES = {"G_GAN": 0.869, "G_L1": 41.913, "D_real": 0.917, "D_fake": 0.795}


def test_html_page_images_and_loss_log(tmp_path):
    visualizer = Visualizer(make_opt(tmp_path), RunContext())
    expr = tmp_path / "checkpoints" / "exp"
    images = expr / "web" / "images"
    visuals = nine_channel_visuals()

    visualizer.reset()
    visualizer.display_current_results(visuals, 1, 4, save_result=False)
    saved = sorted(p.name for p in images.iterdir())
    assert saved == sorted(f"epoch001_{label}.png" for label in visuals)
    with Image.open(images / "epoch001_real_A.png") as picture:
        assert picture.size == (48, 16) and picture.mode == "RGB"
    with Image.open(images / "epoch001_real_A_p2.png") as picture:
        assert np.array_equal(np.array(picture), _as_uint8(visuals["real_A_p2"]))

    (images / "epoch001_fake_B.png").unlink()
    visualizer.display_current_results(visuals, 1, 8, save_result=False)  # once per epoch only
    assert not (images / "epoch001_fake_B.png").exists()
    visualizer.display_current_results(visuals, 1, 12, save_result=True)  # update_html_freq hit
    assert (images / "epoch001_fake_B.png").exists()

    visualizer.reset()
    visualizer.display_current_results(visuals, 2, 16, save_result=False)
    page = (expr / "web" / "index.html").read_text()
    assert page.index("epoch [2]") < page.index("epoch [1]")
    assert 'src="images/epoch002_real_A_p3.png"' in page and ">real_A_p3<" in page
    assert 'http-equiv="refresh"' in page

    line = visualizer.print_current_losses(1, 4, LOSSES, 1.5204, 0.0211)
    assert line == ("[Rank 0] (epoch: 1, iters: 4, time: 1.520, data: 0.021) , G_GAN: 0.869, G_L1: 41.913, "
                    "D_real: 0.917, D_fake: 0.795")
    visualizer.print_current_losses(1, 8, {k: v / 2 for k, v in LOSSES.items()}, 1.0, 0.0)
    log = (expr / "loss_log.txt").read_text()  # upstream's text log, for upstream's users and tools
    assert log.startswith("================ Training Loss (") and log.count("[Rank 0] (epoch: 1") == 2
    assert line + "\n" in log
    records = read_history(expr / "loss_log.jsonl")  # what the curves and the reports read
    assert [(r.epoch, r.iters) for r in records] == [(1, 4), (1, 8)]
    assert records[1].losses["G_L1"] == LOSSES["G_L1"] / 2  # full precision, not the log's 3 decimals
    with Image.open(expr / "loss_curves.png") as curves:
        assert curves.format == "PNG" and curves.size[1] > curves.size[0] / 2  # one chart per loss
    visualizer.close()


def _as_uint8(tensor):
    return np.clip((tensor[0].permute(1, 2, 0).numpy() + 1) / 2 * 255, 0, 255).astype(np.uint8)


def test_no_html_writes_only_the_log(tmp_path):
    visualizer = Visualizer(make_opt(tmp_path, no_html=True))
    visualizer.display_current_results(nine_channel_visuals(), 1, 1, True)
    assert not (tmp_path / "checkpoints" / "exp" / "web").exists()
    assert (tmp_path / "checkpoints" / "exp" / "loss_log.txt").exists()


# ------------------------------------------------------------------ visdom
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def visdom_server(tmp_path):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "from visdom.server.run_server import main; main()",
         "-port", str(port), "-bind_local", "-env_path", str(tmp_path / "visdom_env"), "-logging_level", "40"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the visdom server did not start")
                time.sleep(0.2)
        yield process, port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.timeout(90)
def test_visdom_shows_panels_and_loss_plot(tmp_path, visdom_server, capsys):
    import visdom

    process, port = visdom_server
    opt = make_opt(tmp_path, display_id=1, display_port=port, display_env="h2test", display_ncols=3)
    visualizer = Visualizer(opt)
    visuals = nine_channel_visuals()
    visualizer.display_current_results(visuals, 1, 4, True)
    visualizer.plot_current_losses(1, 0.25, LOSSES, total_iters=4)
    visualizer.plot_current_losses(1, 0.5, {k: v / 2 for k, v in LOSSES.items()}, total_iters=8)
    assert "warning" not in capsys.readouterr().err

    client = visdom.Visdom(server="http://localhost", port=port, env="h2test", use_incoming_socket=False,
                           raise_exceptions=True)
    plot = json.loads(client.get_window_data("1", "h2test"))
    assert plot["title"] == "exp loss over time"
    assert [trace["name"] for trace in plot["content"]["data"]] == list(LOSSES)
    assert plot["content"]["data"][1]["x"] == [1.25, 1.5]
    assert plot["content"]["data"][1]["y"] == pytest.approx([41.913, 20.9565])

    grid = json.loads(client.get_window_data("2", "h2test"))
    assert grid["title"] == "exp images"
    png = base64.b64decode(grid["content"]["src"].split(",", 1)[1])
    with Image.open(io.BytesIO(png)) as picture:  # 6 visuals in rows of 3 (the 9-channel one is 48 wide)
        assert picture.width >= 3 * 48 and picture.height >= 2 * 16
    labels = json.loads(client.get_window_data("3", "h2test"))["content"]
    assert all(f">{label}<" in labels for label in visuals)

    one_window_each = Visualizer(make_opt(tmp_path, name="exp2", display_id=10, display_port=port,
                                          display_env="h2test", display_ncols=0))
    one_window_each.display_current_results(visuals, 1, 4, True)
    titles = [json.loads(client.get_window_data(str(10 + i), "h2test"))["title"] for i in range(1, len(visuals) + 1)]
    assert titles == list(visuals)

    process.terminate()
    process.wait(timeout=10)
    visualizer.display_current_results(visuals, 1, 12, True)
    visualizer.plot_current_losses(1, 0.75, LOSSES, total_iters=12)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "visdom" in warnings[0]
    assert (tmp_path / "checkpoints" / "exp" / "web" / "images" / "epoch001_fake_B.png").exists()


@pytest.mark.timeout(60)
def test_visdom_without_server_warns_once_and_goes_on(tmp_path, capsys):
    port = _free_port()  # nothing listens there
    visualizer = Visualizer(make_opt(tmp_path, display_id=1, display_port=port))
    for step in range(3):
        visualizer.display_current_results(nine_channel_visuals(), 1, step, True)
        visualizer.plot_current_losses(1, step / 3, LOSSES, total_iters=step)
        visualizer.print_current_losses(1, step, LOSSES, 0.1, 0.0)
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, err
    assert f"no visdom server at http://localhost:{port}" in warnings[0] and "--display_id 0" in warnings[0]
    assert "Traceback" not in err
    assert (tmp_path / "checkpoints" / "exp" / "web" / "index.html").exists()


def test_visdom_is_not_imported_unless_asked(tmp_path):
    code = ("import argparse, sys, torch\n"
            "from engine.visualizer import Visualizer\n"
            f"v = Visualizer(argparse.Namespace(**{vars(make_opt(tmp_path))!r}))\n"
            "v.display_current_results({'x': torch.zeros(1, 2, 4, 4)}, 1, 1, True)\n"
            "v.print_current_losses(1, 1, {'G': 1.0}, 0.1, 0.1)\n"
            "print(sorted(m for m in ('visdom', 'wandb') if m in sys.modules))\n")
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=repo_root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


# ------------------------------------------------------------------ wandb
def _wandb_records(path):
    """Protobuf records of an offline .wandb file (LevelDB log framing: 32 KiB blocks, 7-byte headers)."""
    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    assert data[:4] == b":W&B"
    block, pos, pending = 32768, 7, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        if length == 0 and kind == 0:
            pos += left - 7
            continue
        pending += data[pos:pos + length]
        pos += length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


@pytest.mark.timeout(120)
def test_wandb_offline_logs_losses_and_images(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.chdir(tmp_path)
    for variable in ("WANDB_DIR", "WANDB_RUN_ID", "WANDB_PROJECT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    for variable, folder in (("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config"),
                             ("WANDB_DATA_DIR", "data"), ("XDG_CACHE_HOME", "xdg")):
        monkeypatch.setenv(variable, str(tmp_path / folder))  # nothing lands in the home folder
    visualizer = Visualizer(make_opt(tmp_path, use_wandb=True, wandb_project_name="h2-test"))
    visualizer.plot_current_losses(1, 0.5, LOSSES, total_iters=4)
    visualizer.display_current_results(nine_channel_visuals(), 1, 8, True)
    visualizer.plot_current_losses(1, 1.0, {k: v / 2 for k, v in LOSSES.items()}, total_iters=8)
    visualizer.close()
    import wandb

    wandb.teardown()  # the offline file is completed by wandb's service at shutdown (normally at exit)

    runs = glob.glob(str(tmp_path / "wandb" / "offline-run-*"))
    assert len(runs) == 1
    history = {}
    for record in _wandb_records(glob.glob(os.path.join(runs[0], "run-*.wandb"))[0]):
        if record.WhichOneof("record_type") == "history":
            items = {item.key or "/".join(item.nested_key): item.value_json for item in record.history.item}
            history[int(items["_step"])] = items
    assert sorted(history) == [4, 8]
    assert float(history[4]["G_L1"]) == pytest.approx(41.913)
    assert float(history[8]["G_L1"]) == pytest.approx(20.9565)
    for label in nine_channel_visuals():
        assert json.loads(history[8][f"results/{label}/_type"]) == "image-file"
    media = glob.glob(os.path.join(runs[0], "files", "media", "images", "results", "real_A_p1_*.png"))
    assert len(media) == 1
