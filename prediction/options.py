"""Options of scripts/predict_sky.py: which model, which surveys, where on the sky, where to write.

Model options are not repeated here: they come from checkpoints/NAME/train_opt.txt. Any other
`--key value` on the command line is handed to the model's option parser (e.g. --epoch 5, --amp
bf16); one that contradicts the checkpoint (e.g. another --netG) is refused there.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from data.sky.cli import parse_shard
from data.sky import services
from data.sky.fetch import FetchSettings
from data.sky.hips_quality import SpreadModel
from data.sky.properties import MAX_DEPTH
from data.sky.stretch import STRETCHES, StretchSettings, parse_cuts
from util.cli import ArgumentParser
from util.dask_run import DaskTarget, parse_dask
from util.errors import UserError

DEFAULT_MAX_TILES = 10_000


@dataclass(frozen=True)
class PredictConfig:
    name: str
    checkpoints_dir: str
    out: Path
    surveys: tuple[str, ...] = ()
    tile_formats: tuple[str | None, ...] = ()
    region: tuple[float, float, float] | None = None  # ra, dec, radius (deg)
    position: tuple[float, float] | None = None  # ra, dec
    target: str | None = None
    fov: float | None = None
    size: int | None = None
    order: int | None = None
    tile_width: int = 512
    margin: int | None = None
    uncertainty: int = 0
    std_scale: SpreadModel = field(default_factory=SpreadModel)
    seed: int = 0
    workers: int = 1
    render_ahead: int = 2
    threads: int = 0  # generator CPU threads; 0 = every core but one
    dask: DaskTarget | None = None
    batch_size: int = 4
    shard: tuple[int, int] | None = None
    finish: bool = False
    overwrite: bool = False
    max_tiles: int = DEFAULT_MAX_TILES
    gpu_ids: str = "0"
    model_argv: tuple[str, ...] = ()
    truth: str | None = None
    truth_format: str | None = None
    accept_inputs: bool = False
    match_inputs: bool = False
    stretch: StretchSettings = field(default_factory=StretchSettings)
    black_is_blank: bool | None = None
    fetch: FetchSettings = field(default_factory=FetchSettings)
    mocserver_url: str = services.MOCSERVER_URL
    sesame_url: str | None = services.SESAME_URL
    offline: bool = False
    progress: bool = True


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="predict_sky.py", allow_abbrev=False,
                description="Generate a missing band with a trained pix2pix or regression model: one position (FITS, PNG, "
                            "HTML) or a sky region (a HiPS that Aladin opens), with optional uncertainty.")
    p.add_argument("--name", help="experiment name: the model in CHECKPOINTS_DIR/NAME")
    p.add_argument("--checkpoints_dir", default="./checkpoints")
    p.add_argument("--surveys", nargs="+", help="input surveys in the model's panel order (folder, URL, CDS ID)")
    p.add_argument("--out", required=True, help="output folder (the HiPS root for --region)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--region", help="'RA DEC RADIUS' in deg (ICRS): write a HiPS of the tiles there")
    where.add_argument("--target", help="object name (OpenNGC offline, else CDS Sesame): one position")
    where.add_argument("--ra", type=float, help="with --dec: one position (deg, ICRS)")
    p.add_argument("--dec", type=float)
    p.add_argument("--fov", type=float, help="one position: field width, deg (default: what training used)")
    p.add_argument("--size", type=int, help="one position: image size, px (default: what training used)")
    p.add_argument("--order", type=int, help="HiPS tile order (default: from the model's training pixel scale)")
    p.add_argument("--tile_width", type=int, default=512, help="HiPS tile width, px (a power of 2)")
    p.add_argument("--margin", type=int, help="context pixels around each tile (default: from the generator)")
    p.add_argument("--uncertainty", type=int, default=0, metavar="N",
                   help="N passes, their mean band + std (a second HiPS / FITS plane): stochastic passes with dropout "
                        "on, or for a generator without dropout the input's flips and rotations (N <= 8)")
    p.add_argument("--std_scale", default="1", help="factor on the std: a number, or the calibration.json of a "
                   "--truth run (its spread model fitted on validation sky)")
    p.add_argument("--truth", help="the real target survey: report calibration and agreement on this sky")
    p.add_argument("--truth_format", choices=["jpeg", "png", "fits"], help="tile format of --truth")
    p.add_argument("--match_inputs", action="store_true",
                   help="put FITS inputs on the training scale: subtract each image's sky level, scale by the "
                        "zero points in the headers (MAGZP...), add the training's sky level")
    p.add_argument("--accept_inputs", action="store_true",
                   help="go on although the inputs are unlike the training's (unit, scale, values, order); "
                        "the output records it")
    p.add_argument("--seed", type=int, default=0, help="seed of the dropout masks")
    p.add_argument("--workers", type=int, default=1, help="processes rendering the inputs")
    p.add_argument("--render_ahead", type=int, default=2, metavar="N",
                   help="with one worker: batches of inputs rendered in a thread while the generator runs "
                        "(0 = one stage after the other)")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="CPU threads of the generator (default 0: every core but one, which rendering keeps); a "
                        "region's folder records it, and its shards and resumes use the recorded count")
    p.add_argument("--dask", metavar="local[:N]|tcp://HOST:PORT",
                   help="run the tiles of --region on Dask: N worker processes here, or the workers of a running "
                        "dask scheduler (they must see --out, --checkpoints_dir and local surveys)")
    p.add_argument("--batch_size", type=int, default=4, help="tiles per generator call (and per --dask task)")
    p.add_argument("--gpu_ids", default="0", help="device for the generator: 0 (GPU when present), -1 = CPU")
    p.add_argument("--shard", help="I/N: this job does every N-th tile from I (0-based); then one --finish")
    p.add_argument("--finish", action="store_true",
                   help="build lower orders, Allsky, MOC and properties from what the shards wrote")
    p.add_argument("--overwrite", action="store_true", help="replace a tree written with other settings")
    p.add_argument("--max_tiles", type=int, default=DEFAULT_MAX_TILES, help="refuse regions with more tiles")
    p.add_argument("--tile_format", nargs="+", choices=["jpeg", "png", "fits"],
                   help="input tile format: one for all surveys or one per survey (default: each survey's first)")
    p.add_argument("--stretch", choices=STRETCHES, default="linear", help="8-bit stretch of FITS input tiles "
                   "(as aladin_data.py built the training PNGs)")
    p.add_argument("--cuts", default="0.5,99.5", help="low,high percentiles of that stretch")
    p.add_argument("--black_is_blank", choices=["auto", "yes", "no"], default="auto")
    p.add_argument("--cache_dir", help="on-disk cache of remote tiles")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--retries", type=int, default=4)
    p.add_argument("--offline", action="store_true", help="never ask Sesame for names OpenNGC lacks")
    p.add_argument("--mocserver_url", default=services.MOCSERVER_URL)
    p.add_argument("--sesame_url", default=services.SESAME_URL,
                   help="Sesame base URL in astropy's format (default: astropy's CDS servers)")
    p.add_argument("--no_progress", action="store_true")
    return p


def parse_region(text: str) -> tuple[float, float, float]:
    try:
        ra, dec, radius = (float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise UserError(f"--region {text!r}: three numbers 'RA DEC RADIUS' in deg") from None
    if not (math.isfinite(ra) and -90 <= dec <= 90 and 0 < radius <= 180):
        raise UserError(f"--region {text!r}: need a finite RA, -90 <= DEC <= 90 and 0 < RADIUS <= 180")
    return ra % 360.0, dec, radius


def parse_std_scale(text: str) -> SpreadModel:
    """A positive number (one factor), or a calibration.json written by a --truth run: its spread model
    (`std_model`, fitted on validation sky), else its one factor (`fitted_std_scale`)."""
    import json

    path = Path(text)
    if path.is_file():
        try:
            figures = json.loads(path.read_text())
            model = SpreadModel.from_setting(figures["std_model"] if "std_model" in figures
                                             else figures["fitted_std_scale"])
        except (ValueError, KeyError, TypeError):
            raise UserError(f"--std_scale {text}: no std_model or fitted_std_scale in that file") from None
    else:
        try:
            model = SpreadModel.constant(float(text))
        except ValueError:
            raise UserError(f"--std_scale {text}: a positive number or a calibration.json") from None
    if not all(v > 0 and v < float("inf") for v in model.scale) or len(model.brightness) != len(model.scale):
        raise UserError(f"--std_scale {text}: factors must be positive and finite")
    return model


def parse_config(argv: list[str] | None = None) -> PredictConfig:
    """Own options checked here; unknown `--key value` pairs go to the model's option parser."""
    args, rest = build_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    if rest and not rest[0].startswith("--"):
        raise UserError(f"unexpected argument {rest[0]!r}")
    if (args.ra is None) != (args.dec is None):
        raise UserError("--ra and --dec go together")
    if not args.finish and args.region is None and args.ra is None and args.target is None:
        raise UserError("say where: --region 'RA DEC RADIUS', --target NAME or --ra/--dec (or --finish)")
    if not args.finish and not args.name:
        raise UserError("--name: the model to run (CHECKPOINTS_DIR/NAME)")
    if not args.finish and not args.surveys:
        raise UserError("--surveys: give the input surveys in the model's panel order")
    if args.tile_width < 8 or args.tile_width & (args.tile_width - 1):
        raise UserError(f"--tile_width {args.tile_width}: a power of two >= 8")
    dask = parse_dask(args.dask)
    if dask is not None and args.region is None:
        raise UserError("--dask runs the tiles of a --region; one position (or --finish) runs here")
    for flag, value, low in (("--uncertainty", args.uncertainty, 0), ("--workers", args.workers, 1),
                             ("--render_ahead", args.render_ahead, 0), ("--threads", args.threads, 0),
                             ("--batch_size", args.batch_size, 1), ("--max_tiles", args.max_tiles, 1)):
        if value < low:
            raise UserError(f"{flag} {value}: at least {low}")
    if args.uncertainty == 1:
        raise UserError("--uncertainty 1: a spread needs at least 2 passes")
    if args.fov is not None and not 0 < args.fov <= 180:
        raise UserError(f"--fov {args.fov}: out of range (0, 180] deg")
    if args.size is not None and not 8 <= args.size <= 8192:
        raise UserError(f"--size {args.size}: out of range [8, 8192] px")
    if args.order is not None and not 0 <= args.order <= MAX_DEPTH - int(math.log2(args.tile_width)):
        raise UserError(f"--order {args.order}: out of range [0, {MAX_DEPTH - int(math.log2(args.tile_width))}] for "
                        f"{args.tile_width} px tiles (their pixels lie at HEALPix depth order + "
                        f"{int(math.log2(args.tile_width))}, at most {MAX_DEPTH})")
    if args.margin is not None and args.margin < 0:
        raise UserError(f"--margin {args.margin}: not negative")
    if args.ra is not None and not -90 <= args.dec <= 90:
        raise UserError(f"--dec {args.dec}: not a declination")
    if args.ra is not None and not math.isfinite(args.ra):
        raise UserError(f"--ra {args.ra}: not a right ascension")
    low, high = parse_cuts(args.cuts)
    return PredictConfig(
        name=args.name or "", checkpoints_dir=args.checkpoints_dir, out=Path(args.out), surveys=tuple(args.surveys or ()),
        tile_formats=tuple(args.tile_format or ()), region=parse_region(args.region) if args.region else None,
        position=(args.ra % 360.0, args.dec) if args.ra is not None else None, target=args.target,
        fov=args.fov, size=args.size, order=args.order, tile_width=args.tile_width, margin=args.margin,
        uncertainty=args.uncertainty, std_scale=parse_std_scale(args.std_scale), seed=args.seed,
        workers=args.workers, render_ahead=args.render_ahead, threads=args.threads, dask=dask,
        batch_size=args.batch_size,
        shard=parse_shard(args.shard), finish=args.finish,
        overwrite=args.overwrite, max_tiles=args.max_tiles, gpu_ids=args.gpu_ids, model_argv=tuple(rest),
        truth=args.truth, truth_format=args.truth_format, accept_inputs=args.accept_inputs,
        match_inputs=args.match_inputs, stretch=StretchSettings(args.stretch, low, high),
        black_is_blank={"auto": None, "yes": True, "no": False}[args.black_is_blank],
        fetch=FetchSettings(cache_dir=Path(args.cache_dir) if args.cache_dir else None, timeout_s=args.timeout,
                            retries=max(0, args.retries)),
        mocserver_url=args.mocserver_url, sesame_url=args.sesame_url, offline=args.offline,
        progress=not args.no_progress)
