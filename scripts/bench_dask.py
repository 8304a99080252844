"""Tiles/s of predict_sky.py --region and cutouts/s of aladin_data.py, serial, pipelined and on Dask, side by side.

    python scripts/bench_dask.py --order 4 --tile_width 256 --radius 9 --threads 1
    python scripts/bench_dask.py --modes serial,pipelined,local:1,local:2 --targets 200 --size 256

The real commands run in this process, one after the other for each mode, on the bundled sky sample:
predict_sky.py with a random-weight pix2pix (scripts/bench_predict.py writes it) over one region into
a fresh folder per mode, and aladin_data.py on --sample N targets. Figures: the tile loop's wall time
(for Dask: the cluster's start and each worker's model load included), its steady rate (tiles after the
first batch of every worker, over the time after it), and the scaling efficiency of the steady rates
(local:N over N x local:1). The cutout phase of the builder likewise (its cluster start included).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from util.errors import exit_on_user_error  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "sky_samples"
INPUTS = [str(SAMPLES / name) for name in ("GLIMPSE360", "Planck-HFI143", "FermiColor")]
BUILD = [str(SAMPLES / name) for name in ("DSS2Red", "GLIMPSE360", "Planck-HFI143")]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--modes", default="serial,pipelined,local:1,local:2",
                   help="serial (render, then generate), pipelined (--render_ahead 2), --dask values")
    p.add_argument("--netG", default="unet_64")
    p.add_argument("--ngf", type=int, default=32)
    p.add_argument("--order", type=int, default=4)
    p.add_argument("--tile_width", type=int, default=256)
    p.add_argument("--at", type=float, nargs=2, default=(266.4, -28.9), metavar=("RA", "DEC"))
    p.add_argument("--radius", type=float, default=9.0, help="region radius, deg")
    p.add_argument("--batch_size", type=int, default=2)
    p.add_argument("--targets", type=int, default=120, help="aladin_data.py --sample (0: skip the builder)")
    p.add_argument("--size", type=int, default=256, help="aladin_data.py --size")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the generator (every mode, every "
                   "worker: tiles are byte-identical for one thread count)")
    return p.parse_args(argv)


def quiet_call(function, *args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return function(*args)
        except SystemExit as stop:
            if stop.code:
                raise RuntimeError(err.getvalue()[-2000:]) from None


def mode_args(mode: str) -> list[str]:
    if mode == "serial":
        return ["--render_ahead", "0"]
    if mode == "pipelined":
        return ["--render_ahead", "2"]
    return ["--dask", mode]


def workers_of(mode: str) -> int:
    return int(mode.split(":")[1]) if mode.startswith("local:") else 1


def bench_predict(folder: Path, args) -> dict[str, dict]:
    import prediction.region as region
    from bench_predict import write_checkpoint

    write_checkpoint(folder, args)
    stamps: list[float] = []
    original = region.tile_statuses

    def timed(*a):
        stamps.append(time.perf_counter())
        for status in original(*a):
            stamps.append(time.perf_counter())
            yield status

    region.tile_statuses = timed
    script = _script()
    figures = {}
    try:
        for mode in args.modes.split(","):
            stamps.clear()
            out = folder / f"out-{mode.replace(':', '')}"
            quiet_call(script.main, ["--name", "bench", "--checkpoints_dir", str(folder), "--surveys", *INPUTS,
                                     "--order", str(args.order), "--tile_width", str(args.tile_width),
                                     "--region", f"{args.at[0]} {args.at[1]} {args.radius}", "--gpu_ids", "-1",
                                     "--batch_size", str(args.batch_size), "--threads", str(args.threads),
                                     "--no_progress", "--out", str(out),
                                     *mode_args(mode)])
            tiles = len(stamps) - 1
            first = min(tiles - 1, workers_of(mode) * args.batch_size)
            figures[mode] = {"tiles": tiles, "wall": stamps[-1] - stamps[0],
                             "start": stamps[1] - stamps[0],
                             "steady": (tiles - first) / (stamps[-1] - stamps[first])}
            shutil.rmtree(out)
    finally:
        region.tile_statuses = original
    return figures


def _script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("predict_sky_bench", Path(__file__).parent / "predict_sky.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_build(folder: Path, args) -> dict[str, dict]:
    import data.sky.build as build
    from data.sky.cli import main as cli_main

    spans: list[float] = []
    original = build._run

    def timed(*a):
        start = time.perf_counter()
        try:
            return original(*a)
        finally:
            spans.append(time.perf_counter() - start)

    build._run = timed
    figures = {}
    try:
        for mode in [m for m in args.modes.split(",") if m != "pipelined"]:
            spans.clear()
            out = folder / f"ds-{mode.replace(':', '')}"
            extra = [] if mode == "serial" else ["--dask", mode]
            quiet_call(cli_main, ["--surveys", *BUILD, "--sample", str(args.targets), "--fov", "1.8", "--size",
                                  str(args.size), "--out", str(out), "--seed", "1", "--fits", "--no_progress",
                                  "--quiet", *extra])
            written = len(list(out.rglob("*.png")))
            figures[mode] = {"targets": written, "wall": spans[-1], "rate": written / spans[-1]}
            shutil.rmtree(out)
    finally:
        build._run = original
    return figures


def efficiency(figures: dict[str, dict], key: str) -> dict[str, float]:
    one = figures.get("local:1", {}).get(key)
    return {m: f[key] / (workers_of(m) * one) for m, f in figures.items() if m.startswith("local:") and one}


@exit_on_user_error
def main(argv=None) -> None:
    import os

    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{os.cpu_count()} CPUs; {args.netG} ngf {args.ngf} (random weights), {args.tile_width} px tiles of order "
          f"{args.order} within {args.radius:g} deg of {args.at[0]:g} {args.at[1]:+g}, batch {args.batch_size}, "
          f"{args.threads} torch thread(s) per generator")
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        folder = Path(tmp)
        figures = bench_predict(folder, args)
        eff = efficiency(figures, "steady")
        print(f"{'predict_sky':>12} {'tiles':>6} {'wall s':>7} {'to 1st tile s':>14} {'steady tiles/s':>15} "
              f"{'efficiency':>11}")
        for mode, f in figures.items():
            shown = f"{eff[mode]:.2f}" if mode in eff else ""
            print(f"{mode:>12} {f['tiles']:>6} {f['wall']:>7.1f} {f['start']:>14.1f} {f['steady']:>15.3f} "
                  f"{shown:>11}", flush=True)
        if args.targets:
            built = bench_build(folder, args)
            eff = efficiency(built, "rate")
            print(f"{'aladin_data':>12} {'cutouts':>7} {'wall s':>7} {'cutouts/s':>10} {'efficiency':>11}  "
                  f"({args.size} px, 3 surveys, FITS cubes too; wall s of the cutout phase, cluster start included)")
            for mode, f in built.items():
                shown = f"{eff[mode]:.2f}" if mode in eff else ""
                print(f"{mode:>12} {f['targets']:>7} {f['wall']:>7.1f} {f['rate']:>10.2f} {shown:>11}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
