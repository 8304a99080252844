"""Generated HiPS tiles per second of predict_sky.py's tile loop, stage by stage, side by side.

    python scripts/bench_predict.py --netG unet_64 --ngf 32 --tiles 4 --threads 1,2
    python scripts/bench_predict.py --netG unet_256 --ngf 64 --tiles 2 --margins auto,128 --device cuda
    python scripts/bench_predict.py --name bands_1-2 --checkpoints_dir runs/ablation/checkpoints --order 7 \
        --surveys data/real_fields/galactic_centre/2mass_j.fits.gz data/real_fields/galactic_centre/2mass_h.fits.gz \
        --at 266.4 -28.9333 --uncertainty 0,10

A pix2pix checkpoint with random weights (9 input channels: the bundled GLIMPSE360, Planck-HFI143 and
FermiColor tiles as colour panels) is written to a temporary folder, or a trained one is given
(--name, --checkpoints_dir, --surveys, --at), and run exactly as predict_sky.py runs a model:
inputs rendered on HEALPix tiles with a margin, the generator in batches, tiles
written (FITS + PNG). Figures: input rendering alone, the generator alone, and the whole loop, serial
(render, then generate) and pipelined (the next batches rendered in a thread while the generator runs,
--render_ahead), in tiles/s, with the pipelined rate over the serial one and over the slower stage's
(the pipeline's ceiling where cores are independent), the rate of both stages run at once in two
threads (a perfect pipeline's pace on this machine: cores that share caches or memory slow each
other), and output megapixels/s, for each margin, --uncertainty setting and generator thread count.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from util.errors import UserError, exit_on_user_error  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "sky_samples"
SURVEYS = [str(SAMPLES / name) for name in ("GLIMPSE360", "Planck-HFI143", "FermiColor")]
REGION = (266.4, -28.9)  # the Galactic centre: all three bundled surveys have data


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", help="a trained model (CHECKPOINTS_DIR/NAME) instead of random weights")
    p.add_argument("--checkpoints_dir", default="./checkpoints")
    p.add_argument("--surveys", nargs="+", default=SURVEYS, help="input surveys (with --name: the model's)")
    p.add_argument("--at", type=float, nargs=2, default=REGION, metavar=("RA", "DEC"), help="where to take the tiles")
    p.add_argument("--netG", default="unet_64")
    p.add_argument("--ngf", type=int, default=32)
    p.add_argument("--tile_width", type=int, default=512)
    p.add_argument("--order", type=int, default=3, help="HiPS order (3 = the bundled tiles' 51.5\"/px at 512 px)")
    p.add_argument("--tiles", type=int, default=4, help="tiles per measurement")
    p.add_argument("--margins", default="auto", help="comma-separated margins: auto (exact) and/or pixels")
    p.add_argument("--uncertainty", default="0,4", help="comma-separated --uncertainty values")
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--render_ahead", type=int, default=2, help="the pipelined loop's batches rendered ahead")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", default="0", help="comma-separated generator CPU threads to compare (0 = "
                   "predict_sky.py's default: every core but one)")
    p.add_argument("--repeats", type=int, default=2, help="each figure is the fastest of this many runs")
    return p.parse_args(argv)


def write_checkpoint(folder: Path, args) -> None:
    """train_opt.txt as train.py writes it, and random generator weights in upstream's format."""
    from models import networks
    from options.train_options import TrainOptions
    from models.checkpoint import save_network

    argv = ["--dataroot", str(folder / "no-data"), "--name", "bench", "--checkpoints_dir", str(folder),
            "--model", "pix2pix", "--direction", "BtoA", "--input_nc", "9", "--netG", args.netG,
            "--ngf", str(args.ngf), "--gpu_ids", "-1"]
    options = TrainOptions()
    opt = options.parse(argv)
    (folder / "bench").mkdir(parents=True, exist_ok=True)
    (folder / "bench" / "train_opt.txt").write_text(options.format_options(opt))
    net = networks.define_G(9, 3, args.ngf, args.netG, opt.norm, not opt.no_dropout, opt.init_type, opt.init_gain)
    save_network(net, folder / "bench" / "latest_net_G.pth")


def measure(folder: Path, args, margin: str, passes: int) -> dict:
    import numpy as np

    from prediction.render import TileRenderer
    from dataclasses import replace

    from prediction.drivers import local_statuses
    from data.sky.tile_grid import region_tiles
    from prediction.options import parse_config
    from engine.bench import synchronize
    from prediction.session import prepare, tile_keys
    from prediction.inputs import display_stretch

    model = ["--name", args.name, "--checkpoints_dir", args.checkpoints_dir] if args.name else \
        ["--name", "bench", "--checkpoints_dir", str(folder)]
    argv = [*model, "--surveys", *args.surveys, "--order", str(args.order),
            "--tile_width", str(args.tile_width), "--region", f"{args.at[0]} {args.at[1]} 1",
            "--out", str(folder / "out"),
            "--gpu_ids", "0" if args.device == "cuda" else "-1", "--uncertainty", str(passes),
            "--batch_size", str(args.batch_size), "--workers", str(args.workers), "--no_progress"]
    if margin != "auto":
        argv += ["--margin", margin]
    session = prepare(parse_config(argv))
    tiles = region_tiles(*args.at, 2.5 * 58.6 / 2**args.order, args.order)
    renderer = TileRenderer(session.render_settings(), session.engines)
    rendered = [t for t in renderer.render(tiles[: 4 * args.tiles]) if t.x is not None][: args.tiles]
    if len(rendered) < args.tiles:
        raise UserError(f"only {len(rendered)} tiles with data near {args.at[0]:g} {args.at[1]:+g} "
                        f"at order {args.order}")
    todo = [t.ipix for t in rendered]
    batch = np.stack([t.x for t in rendered[: args.batch_size]])
    session.generator.run(batch, tile_keys(session, todo[: args.batch_size]), passes=passes)  # warm-up
    stretch = display_stretch(session.model)

    def render() -> None:
        TileRenderer(session.render_settings(), session.engines).render(todo)

    def infer() -> None:
        for i in range(0, len(rendered), args.batch_size):
            chunk = rendered[i:i + args.batch_size]
            session.generator.run(np.stack([t.x for t in chunk]), tile_keys(session, [t.ipix for t in chunk]),
                                  passes)
        synchronize(session.loaded.device)

    record = {"display": stretch.as_dict(), "std_display": stretch.as_dict()}

    def whole_loop(ahead: int) -> None:
        """predict_sky.py's own tile loop (prediction.drivers), render_ahead 0 = serial."""
        session.config = replace(session.config, render_ahead=ahead)
        for _ in local_statuses(session, session.render_settings(), record, todo):
            pass

    def serial() -> None:
        whole_loop(0)

    def pipelined() -> None:
        whole_loop(args.render_ahead)

    # serial and pipelined runs alternate, so a busy spell on a shared machine hits both alike
    render_s, generator_s = (best_of(args.repeats, step) for step in (render, infer))
    together_s = min(both_at_once(render, infer) for _ in range(args.repeats))
    total_s, pipelined_s, cores = best_of_pairs(args.repeats, serial, pipelined)
    return {"margin": session.margin, "size": session.size, "render": len(todo) / render_s,
            "generator": len(todo) / generator_s, "total": len(todo) / total_s, "ceiling": len(todo) / together_s,
            "pipelined": len(todo) / pipelined_s, "cores": cores}


def both_at_once(render, infer) -> float:
    """Seconds until both stages are done when each runs in its own thread at the same time, with nothing
    passed between them: the pace of a perfect pipeline on this machine, where cores that slow each other
    (shared caches, memory, SMT siblings) make it slower than the slower stage alone."""
    import threading

    start = time.perf_counter()
    threads = [threading.Thread(target=step) for step in (render, infer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def best_of(repeats: int, step) -> float:
    """Fastest of `repeats` runs: on a shared machine the least disturbed one."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def best_of_pairs(repeats: int, first, second) -> tuple[float, float, float]:
    """Fastest of `repeats` runs of each, the two taking turns; and the cores the second kept busy in its
    fastest run (this process's CPU time over wall time: about 2 when the stages overlap on 2 cores)."""
    times: tuple[list[tuple[float, float]], list[tuple[float, float]]] = ([], [])
    for _ in range(repeats):
        for step, kept in zip((first, second), times):
            start, cpu = time.perf_counter(), time.process_time()
            step()
            kept.append((time.perf_counter() - start, time.process_time() - cpu))
    wall, cpu = min(times[1])
    return min(times[0])[0], wall, cpu / wall


@exit_on_user_error
def main(argv=None) -> None:
    import torch

    from prediction.generate import asked_generator_threads, generator_threads

    args = parse_args(argv)
    thread_counts = [asked_generator_threads(int(t)) for t in args.threads.split(",")]
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but CUDA is not available")
    megapixels = args.tile_width ** 2 / 1e6
    model = f"model {args.name}" if args.name else f"{args.netG} ngf {args.ngf} (random weights), 9 -> 3 channels"
    print(f"{model}, {args.tile_width} px tiles of order {args.order}, "
          f"{args.tiles} tiles, batch {args.batch_size}, {args.workers} render worker(s), {args.device}")
    print(f"{'threads':>7} {'margin':>12} {'passes':>6} {'render tiles/s':>15} {'generator tiles/s':>18} {'serial tiles/s':>15} "
          f"{'pipelined tiles/s':>18} {'pipelined/serial':>17} {'pipelined/min':>14} {'both at once':>13} "
          f"{'pipelined/both':>15} {'(Mpx/s)':>8} {'cores busy':>11}")
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        folder = Path(tmp)
        if not args.name:
            write_checkpoint(folder, args)
        for margin in [m.strip() for m in args.margins.split(",") if m.strip()]:
            for passes in [int(p) for p in args.uncertainty.split(",")]:
                for threads in thread_counts:
                    with generator_threads(threads):
                        fig = measure(folder, args, margin, passes)
                    label = f"{fig['margin']} ({fig['size']} px)"
                    slower = min(fig["render"], fig["generator"])
                    print(f"{threads:>7} {label:>12} {max(1, passes):>6} {fig['render']:>15.2f} "
                          f"{fig['generator']:>18.3f} {fig['total']:>15.3f} {fig['pipelined']:>18.3f} "
                          f"{fig['pipelined'] / fig['total']:>17.2f} {fig['pipelined'] / slower:>14.2f} "
                          f"{fig['ceiling']:>13.3f} {fig['pipelined'] / fig['ceiling']:>15.2f} "
                          f"{fig['pipelined'] * megapixels:>8.3f} {fig['cores']:>11.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
