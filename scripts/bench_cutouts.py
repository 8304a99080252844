#!/usr/bin/env python3
"""Speed of the built-in engines: HiPS cutouts (bundled tiles) and FITS-image cutouts (reproject).

Per core = per CPU second of this single-threaded process (robust on a shared machine); wall figures too.
With --aladin (default when Aladin Desktop is installed) the same HiPS cutouts go through Aladin for a ratio.
The library case cuts the DSS2Red FITS tiles out with reproject's own HiPS reader (hips_as_dask_array +
reproject_interp) beside the built-in engine: the measured reason the builder keeps its own engine.
The FITS-image case runs on a Galactic-centre field when it is found in $SKYTRANS_EXTRA_DATA/real-fields
(real data, not in the repo; 2MASS K, J, H 721x720 TAN + MSX 599x599 galactic CAR; 64 px, 0.0889 deg).

    .venv/bin/python scripts/bench_cutouts.py            # 40 HiPS positions (256 px, 1.8 deg) + 200 FITS ones
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from util.cli import ArgumentParser  # noqa: E402
from data.sky.engine import CutoutEngine  # noqa: E402
from data.sky.footprint import survey_footprint  # noqa: E402
from data.sky.image_engine import ImageEngine  # noqa: E402
from data.sky.geometry import OutputGrid  # noqa: E402
from data.sky.output import panels_png  # noqa: E402
from data.sky.render import BuiltinRenderer  # noqa: E402
from data.sky.sampling import random_candidates  # noqa: E402
from data.sky.source import open_survey  # noqa: E402
from data.sky.stretch import StretchSettings, to_uint8  # noqa: E402
from data.sky.surveys import open_engine  # noqa: E402

DEFAULT_SURVEYS = [str(REPO / "data" / "sky_samples" / s) for s in ("DSS2Red", "GLIMPSE360", "Planck-HFI143",
                                                                    "FermiColor")]
FIELD = Path(os.environ.get("SKYTRANS_EXTRA_DATA") or REPO.parent / "shared" / "data") / "real-fields" / "galactic-centre"
DEFAULT_FITS = [str(FIELD / f) for f in ("2mass_k.fits.gz", "2mass_j.fits.gz", "2mass_h.fits.gz", "msx_e.fits.gz")]


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--surveys", nargs="+", default=DEFAULT_SURVEYS)
    parser.add_argument("--n", type=int, default=40, help="positions")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--fov", type=float, default=1.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no_aladin", action="store_true")
    parser.add_argument("--aladin_n", type=int, default=8, help="positions sent through Aladin (slow)")
    parser.add_argument("--fits_surveys", nargs="*", default=DEFAULT_FITS, help="FITS images (empty: skip)")
    parser.add_argument("--fits_n", type=int, default=200, help="positions for the FITS-image case")
    parser.add_argument("--fits_size", type=int, default=64)
    parser.add_argument("--fits_fov", type=float, default=0.0889)
    args = parser.parse_args()
    bench_fits(args)
    bench_library(args)

    engines = [CutoutEngine(open_survey(s)) for s in args.surveys]
    footprints = [survey_footprint(e.survey, e.tile_format) for e in engines]
    ra, dec = random_candidates(footprints, args.n, args.seed)
    grids = [OutputGrid(float(r), float(d), args.fov, args.size, args.size) for r, d in zip(ra, dec)]
    renderer = BuiltinRenderer(engines)
    renderer.render(grids[:2])  # warm: decode tiles once, as the LRU cache does across a real run

    print(f"{len(grids)} positions, {args.size}x{args.size} px, fov {args.fov} deg, single process")
    for engine in engines:
        single = BuiltinRenderer([engine])
        _, wall, cpu = timed(lambda: single.render(grids))
        print(f"  {engine.survey.name:16s} {len(grids) / cpu:7.1f} cutouts/s per core   ({len(grids) / wall:6.1f}/s wall)")
    _, wall, cpu = timed(lambda: renderer.render(grids))
    print(f"  {len(engines)}-band samples      {len(grids) / cpu:7.1f} samples/s per core   ({len(grids) / wall:6.1f}/s wall)")
    stretch = StretchSettings()

    def with_png():
        for bands in renderer.render(grids):
            panels_png([to_uint8(b.values, b.is_8bit, stretch) for b in bands])

    _, wall_png, cpu_png = timed(with_png)
    print(f"  + 8-bit + PNG        {len(grids) / cpu_png:7.1f} samples/s per core   ({len(grids) / wall_png:6.1f}/s wall)")

    if args.no_aladin:
        return
    from data.sky.aladin_backend import AladinRenderer, find_aladin

    if find_aladin() is None:
        print("Aladin Desktop not installed: no ratio")
        return
    big = [g for g in grids if g.width >= 128][: args.aladin_n]
    if not big:
        print("Aladin needs --size >= 128: no ratio")
        return
    aladin = AladinRenderer(engines)
    _, wall_al, _ = timed(lambda: aladin.render(big))
    one = AladinRenderer(engines[:1])
    _, wall_start, _ = timed(lambda: one.render(big[:1]))
    per_sample = (wall_al - wall_start) / max(len(big) - 1, 1)
    print(f"  Aladin Desktop       {len(big) / wall_al:7.2f} samples/s wall, start-up ~{wall_start:.1f} s "
          f"(one cutout), ~{per_sample:.2f} s per {len(engines)}-band sample after it")
    print(f"  ratio builtin/Aladin (wall, {len(big)} samples incl. its start-up): "
          f"{(len(grids) / wall) / (len(big) / wall_al):.0f}x; per sample after start-up: "
          f"{per_sample / (wall / len(grids)):.0f}x")


def bench_library(args, n: int = 12) -> None:
    """DSS2Red FITS tiles, 256 px over 1 deg: built-in engine vs reproject_interp on reproject's HiPS reader."""
    import tempfile
    import warnings

    import numpy as np
    from reproject import reproject_interp
    from reproject.hips import hips_as_dask_array

    from data.sky.geometry import make_wcs

    source = REPO / "data" / "sky_samples" / "DSS2Red"
    with tempfile.TemporaryDirectory() as tmp:  # reproject needs dataproduct_type, absent from the sample
        mirror = Path(tmp)
        (mirror / "properties").write_text((source / "properties").read_text() + "dataproduct_type = image\n")
        (mirror / "Norder3").symlink_to(source / "Norder3")
        engine = CutoutEngine(open_survey(str(mirror)), "fits")
        ra, dec = random_candidates([engine.footprint()], 4 * n, args.seed)
        grids = [g for g in (OutputGrid(float(r), float(d), 1.0, 256, 256) for r, d in zip(ra, dec))
                 if engine.cutout(g).coverage == 1.0][:n]
        array, wcs = hips_as_dask_array(str(mirror), level=3)

        def library(grid):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return reproject_interp((array, wcs), make_wcs(grid), shape_out=(256, 256), return_footprint=False)

        library(grids[0])
        ours, wall_ours, cpu_ours = timed(lambda: [engine.cutout(g).values[..., 0] for g in grids])
        theirs, wall_lib, cpu_lib = timed(lambda: [library(g)[::-1] for g in grids])
    r = min(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]) for a, b in zip(ours, theirs))
    print(f"{len(grids)} DSS2Red FITS-tile cutouts, 256x256 px, 1 deg: built-in {1e3 * cpu_ours / len(grids):.0f} ms "
          f"CPU ({1e3 * wall_ours / len(grids):.0f} wall), reproject's HiPS reader + reproject_interp "
          f"{1e3 * cpu_lib / len(grids):.0f} ms CPU ({1e3 * wall_lib / len(grids):.0f} wall); "
          f"{cpu_lib / cpu_ours:.1f}x; lowest r between them {r:.6f}")


def bench_fits(args) -> None:
    """FITS-image surveys: reproject cutouts per survey, interp vs exact, and N-band samples per core."""
    if not args.fits_surveys or not all(Path(f).is_file() for f in args.fits_surveys):
        print("FITS-image case skipped: files not found (real data, not in the repo: set SKYTRANS_EXTRA_DATA)")
        return
    engines = [open_engine(f) for f in args.fits_surveys]
    footprints = [e.footprint() for e in engines]
    ra, dec = random_candidates(footprints, args.fits_n, args.seed)
    grids = [OutputGrid(float(r), float(d), args.fits_fov, args.fits_size, args.fits_size) for r, d in zip(ra, dec)]
    renderer = BuiltinRenderer(engines)
    renderer.render(grids[:2])
    print(f"{len(grids)} positions, {args.fits_size}x{args.fits_size} px, fov {args.fits_fov} deg, FITS images, "
          f"single process")
    for engine in engines:
        shape = "x".join(str(n) for n in engine.pieces[0].shape[::-1])
        single = BuiltinRenderer([engine])
        _, wall, cpu = timed(lambda: single.render(grids))
        print(f"  {engine.name:10s} {shape:>8s} interp {len(grids) / cpu:7.1f} cutouts/s per core "
              f"({1e3 * cpu / len(grids):5.2f} ms; {len(grids) / wall:6.1f}/s wall)")
    exact = ImageEngine(engines[0].pieces, engines[0].name, engines[0].location, resample="exact")
    few = grids[: max(len(grids) // 10, 1)]
    _, wall, cpu = timed(lambda: BuiltinRenderer([exact]).render(few))
    print(f"  {exact.name:10s}          exact  {len(few) / cpu:7.1f} cutouts/s per core "
          f"({1e3 * cpu / len(few):5.2f} ms)")
    _, wall, cpu = timed(lambda: renderer.render(grids))
    per = cpu / len(grids)
    print(f"  {len(engines)}-band samples     {1 / per:7.1f} samples/s per core   ({len(grids) / wall:6.1f}/s wall); "
          f"600 samples = {600 * per:.1f} s of one core")


if __name__ == "__main__":
    main()
