"""Command line of aladin_data.py: parse and check options, run the build, print a summary."""
from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from util.cli import ArgumentParser
from util.dask_run import parse_dask
from util.errors import UserError

from .config import BuildConfig, TargetSpec
from .fetch import FetchSettings
from .geometry import PROJECTIONS
from .services import HIPS2FITS_URL, MOCSERVER_URL, SESAME_URL
from .split import parse_fractions
from .stretch import STRETCHES, StretchSettings, parse_cuts

MAX_SIZE = 8192


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="aladin_data.py", description="Cut the same sky patches out of several surveys (HiPS "
                       "or FITS images) into A|B|C|D PNG datasets (train/ val/ test/ + manifest.csv).")
    p.add_argument("--surveys", nargs="+", required=True,
                   help="surveys in panel order (first = A, the target): HiPS folder, http(s) HiPS URL, CDS ID, "
                        "FITS image with a sky WCS (.fits .fits.gz .fits.bz2 .fz; FILE[N] = plane N of a cube) "
                        "or a folder of FITS images (pieces of one mosaic)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--catalog", choices=["ngc", "ic"], help="every object of OpenNGC's NGC or IC catalogue")
    which.add_argument("--targets", nargs="+", metavar="NAME", help="object names (OpenNGC offline, Sesame online)")
    which.add_argument("--target", metavar="NAME", help="one object -> a one-item dataset in test/ for test.py")
    which.add_argument("--coords", metavar="CSV", help="CSV with a header name,ra,dec[,fov] (deg, ICRS)")
    which.add_argument("--sample", type=int, metavar="N", help="N positions inside every survey's area")
    which.add_argument("--ra", type=float, help="with --dec: one position -> a one-item dataset in test/")
    p.add_argument("--dec", type=float, help="declination (deg) for --ra")
    p.add_argument("--name", help="name of the --ra/--dec item (default ra..._dec...)")
    p.add_argument("--sample_mode", choices=["random", "grid"], default="random")
    p.add_argument("--fov", type=float, required=True, help="full width of the square image, deg")
    p.add_argument("--size", type=int, required=True, help="width = height of each panel, px")
    p.add_argument("--out", required=True, help="dataset folder (a re-run adds targets; other settings are "
                   "refused unless --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the dataset in --out (its PNG, FITS, manifests and dataset.json) instead of adding")
    p.add_argument("--inputs_only", action="store_true",
                   help="every survey is an input band: B|C|D items in test/ for test.py --dataset_mode single "
                        "(inference where the target band has no data); without it, targets without data in the "
                        "first survey (panel A) are skipped and listed")
    p.add_argument("--projection", default="TAN", choices=PROJECTIONS)
    p.add_argument("--tile_format", nargs="+", choices=["jpeg", "png", "fits"],
                   help="HiPS tile format of the PNG panels: one for all surveys or one per survey (default: the "
                        "survey's first; --fits cubes take FITS tiles whenever a HiPS has them)")
    p.add_argument("--resample", choices=["interp", "exact"], default="interp",
                   help="FITS-image surveys: bilinear (reproject_interp) or flux-conserving (reproject_exact)")
    p.add_argument("--split", default="0.8,0.1,0.1", help="train,val,test fractions (by sky cell)")
    p.add_argument("--split_order", type=int, help="HEALPix order of the split cells (default: from --fov)")
    p.add_argument("--no_split_guard", action="store_true",
                   help="keep targets whose field reaches a cell of another split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min_coverage", type=float, default=0.0, help="skip targets with less data in any survey")
    p.add_argument("--fits", action="store_true", help="also write a float32 FITS cube per target")
    p.add_argument("--stretch", choices=STRETCHES, default="linear", help="8-bit stretch of FITS tiles")
    p.add_argument("--cuts", default="0.5,99.5", help="low,high percentiles of the FITS stretch")
    p.add_argument("--black_is_blank", choices=["auto", "yes", "no"], default="auto",
                   help="JPEG/PNG black (0 in every channel, in 5x5 blocks) means no data: auto = colour surveys")
    p.add_argument("--backend", choices=["builtin", "aladin", "hips2fits"], default="builtin")
    p.add_argument("--workers", type=int, default=1, help="processes")
    p.add_argument("--dask", metavar="local[:N]|tcp://HOST:PORT",
                   help="cut out on Dask: N worker processes here, or the workers of a running dask scheduler "
                        "(they must see --out and local surveys)")
    p.add_argument("--shard", help="I/N: this machine does every N-th target starting at I (0-based)")
    p.add_argument("--cache_dir", help="on-disk cache of remote tiles (default: none)")
    p.add_argument("--timeout", type=float, default=20.0, help="HTTP timeout per request, s")
    p.add_argument("--retries", type=int, default=4)
    p.add_argument("--offline", action="store_true", help="never ask Sesame for names OpenNGC lacks")
    p.add_argument("--sesame_url", default=SESAME_URL,
                   help="Sesame server for astropy's SkyCoord.from_name (default: astropy's, CDS then a mirror)")
    p.add_argument("--mocserver_url", default=MOCSERVER_URL, help="CDS MocServer (resolves CDS IDs)")
    p.add_argument("--hips2fits_url", default=HIPS2FITS_URL,
                   help="hips2fits service for --backend hips2fits (default: astroquery's)")
    p.add_argument("--aladin_jar", help="Aladin.jar (default: the Debian package's)")
    p.add_argument("--no_progress", action="store_true")
    p.add_argument("--quiet", action="store_true", help="warnings only")
    return p


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text}: use I/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise UserError(f"--shard {text}: need 0 <= I < N")
    return index, count


def config_from_args(args: argparse.Namespace) -> tuple[BuildConfig, TargetSpec]:
    if not 0 < args.fov <= 180:
        raise UserError(f"--fov {args.fov}: out of range (0, 180] deg")
    if not 8 <= args.size <= MAX_SIZE:
        raise UserError(f"--size {args.size}: out of range [8, {MAX_SIZE}] px")
    if args.fov / args.size > 1.0:
        raise UserError(f"--fov {args.fov} / --size {args.size}: pixels larger than 1 deg")
    if not 0.0 <= args.min_coverage <= 1.0:
        raise UserError(f"--min_coverage {args.min_coverage}: out of range [0, 1]")
    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: at least 1")
    if args.sample is not None and args.sample < 1:
        raise UserError(f"--sample {args.sample}: at least 1")
    if (args.ra is None) != (args.dec is None):
        raise UserError("--ra and --dec go together")
    if args.ra is not None and not (-360 < args.ra < 720 and -90 <= args.dec <= 90):
        raise UserError(f"--ra {args.ra} --dec {args.dec}: not a sky position (deg)")
    if args.overwrite and args.shard is not None:
        raise UserError("--overwrite with --shard: every shard would remove the others' files; clear --out once "
                        "(a plain run with --overwrite, or remove it), then start the shards")
    if args.split_order is not None and not 0 <= args.split_order <= 20:
        raise UserError(f"--split_order {args.split_order}: out of range [0, 20]")
    low, high = parse_cuts(args.cuts)
    spec = TargetSpec(catalog=args.catalog, names=tuple(args.targets or ()), coords_csv=args.coords,
                      sample=args.sample, sample_mode=args.sample_mode,
                      position=(args.ra, args.dec) if args.ra is not None else None,
                      single_name=args.target or (args.name if args.ra is not None else None))
    config = BuildConfig(
        surveys=tuple(args.surveys), out=Path(args.out), fov=args.fov, size=args.size, projection=args.projection,
        tile_formats=tuple(args.tile_format or ()), split=parse_fractions(args.split),
        split_order=args.split_order, split_guard=not args.no_split_guard, seed=args.seed, fits=args.fits,
        workers=args.workers, dask=parse_dask(args.dask), shard=parse_shard(args.shard), min_coverage=args.min_coverage,
        stretch=StretchSettings(args.stretch, low, high), backend=args.backend,
        fetch=FetchSettings(cache_dir=Path(args.cache_dir) if args.cache_dir else None, timeout_s=args.timeout,
                            retries=max(0, args.retries)),
        mocserver_url=args.mocserver_url, sesame_url=args.sesame_url, offline=args.offline,
        hips2fits_url=args.hips2fits_url, black_is_blank={"auto": None, "yes": True, "no": False}[args.black_is_blank],
        aladin_jar=args.aladin_jar, progress=not args.no_progress, resample=args.resample,
        inputs_only=args.inputs_only, overwrite=args.overwrite)
    return config, spec


def _listing(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" ... (+{len(names) - limit} more)" if len(names) > limit else "")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(message)s")
    config, spec = config_from_args(args)
    from .build import build_dataset

    summary = build_dataset(config, spec)
    target_survey = summary.target_survey
    if summary.no_target and not summary.written and (spec.position is not None or spec.single_name):
        raise UserError(f"{summary.no_target[0]}: the target survey {target_survey} has no data there; "
                        f"--inputs_only writes the input surveys' panels for inference")
    print(f"wrote {summary.written} targets to {config.out} ({summary.already_done} already done)",
          file=sys.stderr)
    for line in (summary.split_line, summary.overlap_line):
        if line:
            print(line, file=sys.stderr)
    if summary.low_coverage:
        print(f"skipped {len(summary.low_coverage)} below --min_coverage {config.min_coverage}: "
              f"{_listing(summary.low_coverage)}", file=sys.stderr)
    if summary.guard_dropped:
        print(f"dropped {len(summary.guard_dropped)} whose field reaches another split's sky cell "
              f"(--no_split_guard keeps them): {_listing(summary.guard_dropped)}", file=sys.stderr)
    if summary.partial:
        target, survey, lowest = min(summary.partial, key=lambda entry: entry[2])
        print(f"{len(summary.partial)} written with part of the field without data (lowest: {target}, {survey} "
              f"covers {math.floor(lowest * 1000) / 10:.1f}%); --min_coverage F skips targets below F",
              file=sys.stderr)  # rounded down: 99.97% is not 'covers 100.0%'
    if summary.no_target:
        print(f"skipped {len(summary.no_target)} without data in the target survey {target_survey} (panel A; "
              f"--inputs_only writes input panels for inference): {_listing(summary.no_target)}", file=sys.stderr)
    if summary.outside:
        print(f"skipped {len(summary.outside)} outside every survey: {_listing(summary.outside)}", file=sys.stderr)
    if summary.failed:
        print(f"failed {len(summary.failed)} (re-run to retry): {_listing(summary.failed, 5)}", file=sys.stderr)
    if summary.unknown:
        print(f"unknown names ({len(summary.unknown)}): {', '.join(summary.unknown)}", file=sys.stderr)
    return 1 if summary.failed else 0
