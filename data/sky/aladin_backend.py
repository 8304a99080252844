"""--backend aladin: drive Aladin Desktop (Debian package `aladin`) headless under xvfb-run.

One generated script per batch (startup costs ~3.5 s): each survey is loaded from a mirror folder whose
`properties` name one tile format (Aladin opens FITS mode whenever FITS tiles exist) and that holds a
Moc.fits (without one, runs can hang); then every position is cropped and exported as FITS.
Java is pointed at a dead local proxy so Aladin never reaches the network.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np

from util.errors import UserError

from .cutout import coverage_fraction
from .engine import CutoutEngine
from .footprint import local_tiles
from .geometry import OutputGrid, make_wcs
from .render import SurveyCut

DEFAULT_JAR = "/usr/share/java/aladin.jar"
NO_NETWORK = ["-Dhttp.proxyHost=127.0.0.1", "-Dhttp.proxyPort=9", "-Dhttps.proxyHost=127.0.0.1",
              "-Dhttps.proxyPort=9", "-Djava.awt.headless=false"]
MIN_VIEW_PX = 128  # smaller headless views come back empty
RENDER_RETRIES = 3  # further runs for crops that came back with tiles missing
COVERAGE_SLACK = 0.05  # how far below the tiles' own coverage a crop may fall before it is asked again
MAX_OFFSET_PX = 1.0  # good crops' headers lie 0.3-0.4 px from the grid (Aladin's half-pixel rounding)


def find_aladin(jar: str | None = None) -> tuple[str, str, str] | None:
    """(java, xvfb-run, jar) when all three exist, else None."""
    java, xvfb = shutil.which("java"), shutil.which("xvfb-run")
    jar = jar or DEFAULT_JAR
    if java and xvfb and Path(jar).is_file():
        return java, xvfb, jar
    return None


def write_moc(tiles: np.ndarray, order: int, frame: str, path: Path) -> None:
    """An IVOA MOC (NUNIQ) of the tiles present: Aladin needs one to stop asking for absent tiles."""
    from astropy.io import fits

    column = fits.Column(name="UNIQ", format="K", array=4 * 4**order + np.asarray(tiles, dtype=np.int64))
    hdu = fits.BinTableHDU.from_columns([column])
    for key, value in (("PIXTYPE", "HEALPIX"), ("ORDERING", "NUNIQ"), ("COORDSYS", "G" if frame == "galactic" else "C"),
                       ("MOCORDER", order), ("MOCVERS", "1.1"), ("MOCDIM", "SPACE")):
        hdu.header[key] = value
    hdu.writeto(path, overwrite=True)


def mirror_hips(engine: CutoutEngine, folder: Path) -> Path:
    """A folder Aladin opens in the engine's tile format: one-format properties, linked NorderK, Moc.fits."""
    survey = engine.survey
    if survey.local_root is None:
        raise UserError(f"--backend aladin: survey {survey.name} must be a local HiPS folder")
    folder.mkdir(parents=True, exist_ok=True)
    text = (survey.local_root / "properties").read_text(encoding="utf-8", errors="replace")
    kept = [line for line in text.splitlines()
            if not re.match(r"\s*(hips_tile_format|format)\s*=", line)]
    fmt = engine.tile_format
    kept += [f"hips_tile_format = {fmt}", f"format = {fmt}"]
    (folder / "properties").write_text("\n".join(kept) + "\n", encoding="utf-8")
    for norder in survey.local_root.glob("Norder*"):
        os.symlink(norder.resolve(), folder / norder.name)
    footprint = local_tiles(survey, fmt)
    (order, tiles), = footprint.cells.items()
    write_moc(tiles, order, survey.properties.frame, folder / "Moc.fits")
    return folder


def aladin_position(grid: OutputGrid) -> tuple[float, float]:
    """Aladin centres the asked position on 0-based pixel (W/2 - 1, H/2 - 1), half a pixel off the image
    centre; asking for the sky point of that pixel of our grid makes both images coincide."""
    ra, dec = make_wcs(grid).wcs_pix2world([[grid.width / 2 - 1, grid.height / 2 - 1]], 0)[0]
    return float(ra), float(dec)


def batch_script(jobs: list[tuple[Path, list[tuple[OutputGrid, Path]]]]) -> str:
    """Aladin script: for each (mirror folder, [(grid, fits out)]) load, crop each position, export."""
    lines = ["setconf proj=TAN", "setconf frame=ICRS"]
    plane = 0
    view = None
    for folder, cutouts in jobs:
        lines += [f"load {folder}", "sync"]
        for grid, out in cutouts:
            if grid.projection != "TAN":
                raise UserError("--backend aladin: only the TAN projection is scripted")
            ra, dec = aladin_position(grid)
            lines.append(f"{ra:.9f} {dec:+.9f}")
            size = f"{grid.width}x{grid.height}"
            if view != size:  # the position again after resizing: under load, resizing reset the view to (0, 0)
                # (resizing before any position hung Aladin in 2 of 8 runs)
                lines += [f"save {size} /dev/null", "overlay off", "reticle off", f"{ra:.9f} {dec:+.9f}"]
                view = size
            plane += 1
            # saving the view forces a complete redraw: without it a crop can miss tiles still loading
            lines += [f"zoom {grid.fov:.9f}deg", "sync", f"save -png {size} {out.with_suffix('.png')}",
                      f"C{plane} = crop", "sync", f"export C{plane} {out}"]
        lines += ["rm -all", "sync"]
    lines.append("quit")
    return "\n".join(lines) + "\n"


def read_export(path: Path, grid: OutputGrid, black_is_blank: bool) -> np.ndarray | None:
    """An exported crop as (H, W, C) float32 top row first, NaN where Aladin had no data; None when the
    crop is unusable: not written, cut short, of another size, or of another part of the sky (its WCS)."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy's 'may have been truncated': such a crop is asked again
            with fits.open(path) as hdul:
                data = np.array(hdul[0].data, dtype=np.float32)
                header = hdul[0].header
    except (OSError, TypeError, ValueError):  # missing, or a header without its data (TypeError in astropy)
        return None
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or data.shape[1:] != (grid.height, grid.width):
        return None
    if export_offset_px(header, grid) > MAX_OFFSET_PX:
        return None
    blank = header.get("BLANK")
    is_8bit = header.get("BITPIX") == 8
    data = data[:, ::-1, :]  # FITS rows bottom-up -> image rows top-down
    if blank is not None and not is_8bit:
        data[data == float(blank)] = np.nan
    cube = np.moveaxis(data, 0, -1)
    if is_8bit and black_is_blank:
        cube[~np.any(cube > 0, axis=-1)] = np.nan
    return cube


def export_offset_px(header, grid: OutputGrid) -> float:
    """How far, in grid pixels, the export's corners and centre lie from the grid's by its own WCS header:
    under load Aladin once cropped the view before it moved (at RA 0, Dec 0), which no pixel test tells."""
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # Aladin writes the old RADECSYS keyword
        try:
            theirs = WCS(header).celestial
        except Exception:  # noqa: BLE001 - any header astropy cannot read is no proof of position
            return float("inf")
    width, height = grid.width, grid.height
    pixels = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1],
                       [(width - 1) / 2, (height - 1) / 2]], dtype=np.float64)
    a = SkyCoord(*theirs.wcs_pix2world(pixels, 0).T, unit="deg")
    b = SkyCoord(*make_wcs(grid).wcs_pix2world(pixels, 0).T, unit="deg")
    offsets = a.separation(b).deg / grid.pixel_deg
    return float(np.max(offsets)) if np.all(np.isfinite(offsets)) else float("inf")


def run_aladin(script: str, jar: str | None, timeout_s: float, log_path: Path) -> None:
    found = find_aladin(jar)
    if found is None:
        raise UserError("--backend aladin: needs java, xvfb-run and Aladin.jar (apt-get install aladin xvfb)")
    java, xvfb, jar_path = found
    with log_path.open("wb") as log:
        try:
            # a home of its own: Aladin keeps a cache and preferences there, shared by concurrent runs otherwise
            home = [f"-Duser.home={log_path.parent}"]
            subprocess.run([xvfb, "-a", java, "-Xmx1024m", *NO_NETWORK, *home, "-jar", jar_path, "-nogui", "-local"],
                           input=script.encode(), stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s,
                           check=False)
        except subprocess.TimeoutExpired:
            raise UserError(f"Aladin did not finish within {timeout_s:.0f} s") from None


class AladinRenderer:
    """Renderer backed by Aladin Desktop; surveys must be local HiPS folders, sizes >= 128 px."""

    def __init__(self, engines: list[CutoutEngine], config=None):
        self.engines = engines
        self.survey_names = [e.survey.name for e in engines]
        self.jar = getattr(config, "aladin_jar", None)

    def render(self, grids: list[OutputGrid]) -> list[list[SurveyCut]]:
        for grid in grids:
            if min(grid.width, grid.height) < MIN_VIEW_PX:
                raise UserError(f"--backend aladin: --size must be at least {MIN_VIEW_PX} (headless views)")
        with tempfile.TemporaryDirectory(prefix="aladin-batch-") as tmp:
            work = Path(tmp)
            folders = [mirror_hips(engine, work / f"survey{s}") for s, engine in enumerate(self.engines)]
            wanted = [(s, g) for s in range(len(self.engines)) for g in range(len(grids))]
            cuts = self.run_batch(folders, grids, wanted, work, attempt=0)
            expected = {g: self.estimate_coverage(grids[g]) for g in range(len(grids))}
            # a loaded machine sometimes gets a crop of tiles that exist with some or all of them blank (Aladin
            # exported before they loaded), a crop of the wrong place or a file cut short: those crops alone are
            # asked again, keeping the fuller one, so a slow load reads neither as 'no data here' nor as sky
            for attempt in range(1, 1 + RENDER_RETRIES):
                short = [(s, g) for (s, g), values in cuts.items()
                         if values is None or coverage_fraction(values) < expected[g][s] - COVERAGE_SLACK]
                if not short:
                    break
                for key, values in self.run_batch(folders, grids, short, work, attempt=attempt).items():
                    if values is not None and (cuts[key] is None
                                               or coverage_fraction(values) > coverage_fraction(cuts[key])):
                        cuts[key] = values
        unusable = [(s, g) for (s, g), values in cuts.items() if values is None]
        if unusable:
            s, g = unusable[0]
            raise UserError(f"--backend aladin: {1 + RENDER_RETRIES} Aladin runs gave no usable crop of "
                            f"{self.survey_names[s]} at position {g + 1} (not written, cut short, or of another "
                            f"part of the sky); try again on a less loaded machine, or use --backend builtin")
        results = []
        for g in range(len(grids)):
            bands = []
            for s, engine in enumerate(self.engines):
                values = cuts[s, g]
                bands.append(SurveyCut(engine.survey.name, engine.survey.location, engine.tile_format, values,
                                       coverage_fraction(values), engine.unit, engine.tile_format != "fits"))
            results.append(bands)
        return results

    def run_batch(self, folders: list[Path], grids: list[OutputGrid], wanted: list[tuple[int, int]],
                  work: Path, attempt: int) -> dict[tuple[int, int], np.ndarray | None]:
        """One Aladin run exporting crop (survey s, grid g) for each pair wanted; None for an unusable one."""
        paths = {(s, g): work / f"cut_{s}_{g}_try{attempt}.fits" for s, g in wanted}
        jobs = [(folder, [(grids[g], paths[s, g]) for g in range(len(grids)) if (s, g) in paths])
                for s, folder in enumerate(folders)]
        jobs = [job for job in jobs if job[1]]
        run_aladin(batch_script(jobs), self.jar, 60 + 3.0 * len(wanted), work / f"aladin_try{attempt}.log")
        cuts = {}
        for (s, g), path in paths.items():
            engine = self.engines[s]
            values = read_export(path, grids[g], engine.black_is_blank)
            if values is not None and values.shape[2] != engine.channels:
                values = values[..., :1] if engine.channels == 1 else np.repeat(values[..., :1], 3, axis=2)
            cuts[s, g] = values
        return cuts

    def estimate_coverage(self, grid: OutputGrid) -> list[float]:
        from .render import BuiltinRenderer

        return BuiltinRenderer(self.engines).estimate_coverage(grid)
