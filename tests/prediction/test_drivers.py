"""Region runs driven four ways give the same HiPS bytes: serial, pipelined (inputs rendered in a thread
while the generator runs), --dask local:2, and an external dask scheduler with 2 workers on 127.0.0.1
(one of them killed mid-run). The model is a tiny random-weight pix2pix written here (no training)."""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from data.sky.hips_out import written_tiles
from models import networks
from models.checkpoint import save_network
from options.train_options import TrainOptions
from tests.script_runner import call_main, load_script

distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed")

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "sky_samples"
INPUTS = [str(SAMPLES / "GLIMPSE360"), str(SAMPLES / "Planck-HFI143")]
REGION = "266.4 -28.9 2"  # 11 tiles of order 5 with data in both inputs
ORDER = 5
SCRIPT = REPO / "scripts" / "predict_sky.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO)}


PREDICT = load_script("scripts/predict_sky.py")


def predict(*args) -> tuple[int, str]:
    return call_main(PREDICT, *args)


def write_checkpoint(folder: Path, net_g: str) -> Path:
    """train_opt.txt as train.py writes it and random weights (dropout on: --uncertainty passes differ)."""
    argv = ["--dataroot", str(folder / "no-data"), "--name", "tiny", "--checkpoints_dir", str(folder / "ck"),
            "--model", "pix2pix", "--direction", "BtoA", "--input_nc", "6", "--netG", net_g, "--ngf", "8",
            "--gpu_ids", "-1"]
    options = TrainOptions()
    with contextlib.redirect_stdout(io.StringIO()):
        opt = options.parse(argv)
    (folder / "ck" / "tiny").mkdir(parents=True)
    (folder / "ck" / "tiny" / "train_opt.txt").write_text(options.format_options(opt))
    torch.manual_seed(0)
    net = networks.define_G(6, 3, 8, net_g, opt.norm, True, opt.init_type, opt.init_gain)
    save_network(net, folder / "ck" / "tiny" / "latest_net_G.pth")
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("drivers"), "unet_64")


def args_for(folder: Path, out: str, *extra) -> list:
    return ["--name", "tiny", "--checkpoints_dir", folder / "ck", "--surveys", *INPUTS, "--order", ORDER,
            "--tile_width", 64, "--margin", 64, "--region", REGION, "--uncertainty", 2, "--gpu_ids", -1,
            "--no_progress", "--out", folder / out, *extra]


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file but the dated ones and the page naming its folder."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in ("properties", "predict.json", "report.json", "index.html")
            and not p.name.startswith(".predict")}


def assert_same_tree(got: Path, expected: Path) -> None:
    want, have = tree_bytes(expected), tree_bytes(got)
    assert len(want) > 40 and sorted(have) == sorted(want)
    assert [k for k in want if have[k] != want[k]] == [], got.name


@pytest.fixture(scope="module")
def serial(checkpoint) -> Path:
    code, log = predict(*args_for(checkpoint, "serial", "--render_ahead", 0))
    assert code == 0, log
    return checkpoint / "serial"


def test_pipelined_equals_serial(checkpoint, serial):
    code, log = predict(*args_for(checkpoint, "pipelined", "--render_ahead", 2, "--batch_size", 1))
    assert code == 0, log
    assert_same_tree(checkpoint / "pipelined", serial)


def test_dask_local_two_workers_equals_serial(checkpoint, serial):
    code, log = predict(*args_for(checkpoint, "local2", "--dask", "local:2", "--batch_size", 2))
    assert code == 0 and "a local Dask cluster of 2 worker process(es)" in log, log
    assert_same_tree(checkpoint / "local2", serial)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler():
    """`dask scheduler` and 2 `dask worker`s (no nanny: a killed worker stays dead) on 127.0.0.1, each with
    2 threads: two tasks at once per worker, rendering side by side, one at a time in the generator (the
    GPU-worker path, on CPU)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0",
                               "--no-show"], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                           "--nthreads", "2", "--no-nanny", "--host", "127.0.0.1",
                                           "--no-dashboard"], cwd=REPO, env=ENV,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, procs[1:]
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_external_scheduler_with_two_workers_equals_serial_and_resumes(checkpoint, serial, scheduler):
    address, _ = scheduler
    out = checkpoint / "external"
    code, log = predict(*args_for(checkpoint, "external", "--dask", address, "--batch_size", 1))
    assert code == 0 and f"the Dask scheduler at {address}" in log, log
    assert_same_tree(out, serial)
    for ipix in written_tiles(out, ORDER).tolist()[::3]:  # as if stopped: 4 of the 11 tiles to do again
        for tree in (out, out / "uncertainty"):
            (tree / f"Norder{ORDER}" / "Dir0" / f"Npix{ipix}.png").unlink()
    code, log = predict(*args_for(checkpoint, "external", "--dask", address))
    assert code == 0 and "wrote 4 tiles" in log and "(7 already done" in log, log
    assert_same_tree(out, serial)


def test_a_worker_killed_mid_run_costs_only_its_tasks(checkpoint, serial, scheduler):
    """SIGKILL one of the two workers once the first tiles are on disk: the scheduler runs its tasks on the
    other one, and the tree is still the serial one byte for byte."""
    address, workers = scheduler
    out = checkpoint / "killed"
    run = subprocess.Popen([sys.executable, str(SCRIPT), *map(str, args_for(checkpoint, "killed", "--dask", address,
                                                                          "--batch_size", 1))],
                           env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None and len(written_tiles(out, ORDER)) < 2:
        time.sleep(0.01)
    before = len(written_tiles(out, ORDER))
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait(timeout=10)
    _, log = run.communicate(timeout=180)
    assert run.returncode == 0, log
    assert before < 11, "the run ended before a worker was killed"
    assert_same_tree(out, serial)


def test_ctrl_c_during_a_local_dask_run_is_one_line(checkpoint):
    """Independent check of issue 21: Ctrl-C reaches every process of the terminal's group, and each local
    Dask worker printed a KeyboardInterrupt traceback above the run's own 'interrupted' line."""
    out = checkpoint / "ctrl_c"
    run = subprocess.Popen([sys.executable, str(SCRIPT), *map(str, args_for(checkpoint, "ctrl_c", "--dask", "local:2",
                                                                          "--batch_size", 1))],
                           env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           start_new_session=True,  # its own process group, as a terminal gives a command
                           # a terminal's default SIGINT (pytest-xdist's workers ignore it, and children keep that)
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None and len(written_tiles(out, ORDER)) < 1:
        time.sleep(0.01)
    assert run.poll() is None, "the run ended before Ctrl-C"
    os.killpg(run.pid, signal.SIGINT)
    _, log = run.communicate(timeout=60)
    assert run.returncode == 130 and "interrupted" in log, log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log


def test_a_temp_a_dead_writer_left_is_gone_from_the_finished_tree(checkpoint, monkeypatch):
    """The full suite once caught a worker SIGKILLed while writing an uncertainty tile: another worker wrote
    the tile, and the killed one's '.Npix7212.fits.<token>.tmp' stayed in the finished HiPS. Here the first
    tile's writer leaves such a temp, as a dead worker would."""
    import prediction.drivers as drivers

    real_write, left = drivers.write_result, []

    def write_leaving_a_temp(out, order, result, *rest):
        if result.mean is not None and not left:
            from data.sky.source import tile_path

            target = Path(out) / tile_path(order, result.ipix, "fits")
            target.parent.mkdir(parents=True, exist_ok=True)
            left.append(target.parent / f".{target.name}.0123456789ab.tmp")
            left[0].write_bytes(b"half a tile")
        return real_write(out, order, result, *rest)

    monkeypatch.setattr(drivers, "write_result", write_leaving_a_temp)
    code, log = predict(*args_for(checkpoint, "dead_writer"))
    assert code == 0, log
    assert left and not left[0].exists()
    assert not [p for p in (checkpoint / "dead_writer").rglob("*.tmp")]


@pytest.mark.parametrize("value, message", [
    ("local:0", "--dask local:0: the number of local workers must be 1 to 1024"),
    ("mars", "--dask 'mars': use local, local:N"),
])
def test_a_bad_dask_value_is_one_line(checkpoint, value, message):
    code, log = predict(*args_for(checkpoint, "bad", "--dask", value))
    assert code == 2 and message in log and "Traceback" not in log, log


def test_an_unreachable_scheduler_is_one_line(checkpoint):
    address = f"tcp://127.0.0.1:{free_port()}"
    code, log = predict(*args_for(checkpoint, "unreachable", "--dask", address))
    assert code == 2 and f"--dask {address}: no Dask scheduler answers there" in log, log
    assert "Traceback" not in log


def test_a_web_server_at_the_scheduler_address_is_one_line(checkpoint, tmp_path):
    """Independent check of issue 21: a port where a web server (not Dask) answers passed the TCP check, and
    the run then waited forever in Dask's handshake, after writing predict.json and its locks into --out."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # (its lines about Dask's bytes are noise here)
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.server_address[1]}"
    try:
        started = time.monotonic()
        code, log = predict(*args_for(checkpoint, "web_server", "--dask", address))
    finally:
        server.shutdown()
    assert code == 2 and f"--dask {address}: something answers there, but not a Dask scheduler" in log, log
    assert "Traceback" not in log and time.monotonic() - started < 60
    assert not (checkpoint / "web_server").exists()


def test_shards_run_with_other_thread_counts_give_the_folders_bytes(tmp_path, monkeypatch):
    """A job array on nodes of other sizes: the fullres generators' bytes depend on torch's thread count, and a
    shard started with 2 threads wrote other last bits than its sibling with 1. The folder records the count
    its first run used (every core but one: 1 of OMP_NUM_THREADS=2), and every shard and resume uses it."""
    folder = write_checkpoint(tmp_path, "fullres_4blocks")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        code, log = predict(*args_for(folder, "one_go"))
        assert code == 0, log
        code, log = predict(*args_for(folder, "shards", "--shard", "0/2"))
        assert code == 0, log
        torch.set_num_threads(2)  # the second node, asking for its own count: the folder's wins
        code, log = predict(*args_for(folder, "shards", "--shard", "1/2", "--threads", "2"))
        assert code == 0 and "made with 1 generator thread(s); using 1" in log, log
        assert "wrote 0 tiles" not in log, log
        code, log = predict("--finish", "--out", folder / "shards", "--no_progress")
        assert code == 0, log
        assert torch.get_num_threads() == 2  # a run gives the caller's count back
    finally:
        torch.set_num_threads(before)
    assert json.loads((folder / "shards" / "predict.json").read_text())["generator_threads"] == 1
    assert_same_tree(folder / "shards", folder / "one_go")


def test_the_generator_leaves_one_core_to_rendering():
    from prediction.generate import default_generator_threads

    assert default_generator_threads({}, cpus=2) == 1 and default_generator_threads({}, cpus=1) == 1
    assert default_generator_threads({}, cpus=16) == 15
    assert default_generator_threads({"OMP_NUM_THREADS": "4"}, cpus=16) == 3


def test_a_region_of_one_tile_gets_its_page(checkpoint):
    """Sweep S05: a region of one tile has no tile borders, its seam ratio is NaN (null in report.json), and
    the viewer page raised TypeError formatting it (exit 1 after every tile was written)."""
    args = args_for(checkpoint, "one_tile")
    args[args.index("--region") + 1] = "266.4 -28.9 0.05"
    code, log = predict(*args)
    assert code == 0, log
    report = json.loads((checkpoint / "one_tile" / "report.json").read_text())
    assert report["tiles"] == 1 and report["seams"]["ratio"] is None
    assert "no two written tiles share a border" in (checkpoint / "one_tile" / "index.html").read_text()
