"""Build a dataset: choose targets, split them by sky region, cut them out, write PNG/FITS + manifest.

Resumable: targets whose files and manifest row exist are skipped; every file is written atomically.
Workers are processes, each with its own surveys and tile cache; only the parent writes the manifest.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from util.errors import UserError
from util.fileio import atomic_write_bytes

from .config import BuildConfig, TargetSpec
from .cutout import SurveyEngine
from .engine import CutoutEngine
from .fetch import Fetcher, FetchError
from .geometry import OutputGrid
from .manifest import columns, coverage_column, read_manifest, shard_manifest_name, write_manifest
from .output import fits_cube, panels_png
from .render import BuiltinRenderer, Renderer
from .sampling import check_common_area, sampled_targets, screening_renderer
from .split import assign_cells, auto_split_order, cells_of, straddles
from .stretch import to_uint8
from .surveys import make_unique_names, open_engine, science_engine
from .targets import Target, catalog_targets, read_coords_csv, resolve_names, unique_stems

log = logging.getLogger(__name__)

MANIFEST_EVERY_S = 2.0


@dataclass(frozen=True)
class Item:
    target: Target
    stem: str
    split: str

    @property
    def file(self) -> str:
        return f"{self.split}/{self.stem}.png"

    @property
    def fits_file(self) -> str:
        return f"{self.split}/{self.stem}.fits"


@dataclass
class Summary:
    """What a run did; the CLI prints it at the end."""

    written: int = 0
    already_done: int = 0
    low_coverage: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    guard_dropped: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    # written but some survey covers part of the field only: (target, survey, coverage)
    partial: list[tuple[str, str, float]] = field(default_factory=list)


# ---- setup -----------------------------------------------------------------------------------
def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"--out {out}: cannot write there ({err.strerror or err})") from None


def open_engines(config: BuildConfig) -> list[SurveyEngine]:
    """One engine per survey in panel order (HiPS or FITS image), with unique names."""
    fetcher = Fetcher(config.fetch)
    formats = list(config.tile_formats) or [None]
    if len(formats) == 1:
        formats = formats * len(config.surveys)
    if len(formats) != len(config.surveys):
        raise UserError(f"--tile_format: give one format or one per survey ({len(config.surveys)})")
    engines = [open_engine(spec, fmt, fetcher=fetcher, mocserver_url=config.mocserver_url,
                           cache_tiles=config.cache_tiles, black_is_blank=config.black_is_blank,
                           resample=config.resample)
               for spec, fmt in zip(config.surveys, formats)]
    make_unique_names(engines)
    return engines


def make_renderer(config: BuildConfig, engines: list[SurveyEngine] | None = None) -> Renderer:
    engines = engines if engines is not None else open_engines(config)
    if config.backend == "builtin":
        twins = [science_engine(e, config.cache_tiles) for e in engines] if config.fits else None
        return BuiltinRenderer(engines, twins)
    hips_only = [e for e in engines if not isinstance(e, CutoutEngine)]
    if hips_only:
        raise UserError(f"--backend {config.backend}: survey {hips_only[0].name} is a FITS image; "
                        f"only --backend builtin reads FITS images")
    if config.backend == "aladin":
        from .aladin_backend import AladinRenderer

        return AladinRenderer(engines, config)
    if config.backend == "hips2fits":
        from .hips2fits_backend import Hips2FitsRenderer

        return Hips2FitsRenderer(engines, config)
    raise UserError(f"--backend {config.backend}: choose builtin, aladin or hips2fits")


def survey_footprints(screen: BuiltinRenderer) -> list[tuple[str, object]]:
    """(name, footprint) of every engine, display engines first, then the cube twins (FITS tiles):
    sampled positions must lie where all of them have data."""
    return ([(e.name, e.footprint()) for e in screen.engines]
            + [(f"{t.name} (FITS tiles)", t.footprint()) for t in screen.cube_engines if t is not None])


# ---- targets ---------------------------------------------------------------------------------
def explicit_targets(config: BuildConfig, spec: TargetSpec) -> tuple[list[Target], list[str]]:
    if spec.catalog:
        return catalog_targets(spec.catalog), []
    if spec.coords_csv:
        return read_coords_csv(spec.coords_csv), []
    if spec.position is not None:
        ra, dec = spec.position
        return [Target(spec.single_name or f"ra{ra:.4f}_dec{dec:+.4f}", ra % 360.0, dec)], []
    names = list(spec.names) + ([spec.single_name] if spec.single_name else [])
    return resolve_names(names, config.sesame_url)


def plan_items(config: BuildConfig, targets: list[Target], split_order: int, single: bool,
               cell_split: dict[int, str] | None, summary: Summary) -> list[Item]:
    """Give each target its split (sky cell) and file name; drop targets that straddle two splits."""
    stems = unique_stems(targets)
    if single:
        return [Item(t, s, "test") for t, s in zip(targets, stems)]
    if not targets:
        return []
    cells = cells_of(np.array([t.ra for t in targets]), np.array([t.dec for t in targets]), split_order)
    if cell_split is None:
        cell_split = assign_cells(cells, config.split, config.seed)
    items = []
    for target, stem, cell in zip(targets, stems, cells):
        if config.split_guard and straddles(target.ra, target.dec, target.fov or config.fov, 1.0, split_order,
                                            cell_split):
            summary.guard_dropped.append(target.name)
            continue
        items.append(Item(target, stem, cell_split[int(cell)]))
    return items


# ---- one target ------------------------------------------------------------------------------
def write_item(config: BuildConfig, item: Item, bands) -> tuple[str, dict | None]:
    """('written', row) or ('low_coverage'|'outside', None)."""
    coverages = [b.coverage for b in bands]
    if max(coverages) == 0.0:
        return "outside", None
    if min(coverages) < config.min_coverage:
        return "low_coverage", None
    fov = item.target.fov or config.fov
    panels = [to_uint8(b.values, b.is_8bit, config.stretch) for b in bands]
    row = {"file": item.file, "name": item.target.name, "ra": f"{item.target.ra:.6f}",
           "dec": f"{item.target.dec:.6f}", "fov": f"{fov:g}", "size": str(config.size),
           "surveys": ";".join(b.name for b in bands), "split": item.split}
    for band in bands:
        row[coverage_column(band.name)] = f"{band.coverage:.4f}"
    if config.fits:
        grid = OutputGrid(item.target.ra, item.target.dec, fov, config.size, config.size, config.projection)
        cube = [dict(name=b.name, location=b.location, values=b.values if b.cube is None else b.cube,
                     unit=b.unit if b.cube is None else b.cube_unit, coverage=b.coverage,
                     tile_format=b.tile_format if b.cube is None else b.cube_format) for b in bands]
        atomic_write_bytes(config.out / item.fits_file, fits_cube(grid, cube, item.target.name))
        row["fits"] = item.fits_file
    atomic_write_bytes(config.out / item.file, panels_png(panels))  # PNG last: it marks the item done
    return "written", row


def process_items(renderer: Renderer, config: BuildConfig, items: list[Item]) -> list[tuple[Item, str, dict | None]]:
    grids = [OutputGrid(i.target.ra, i.target.dec, i.target.fov or config.fov, config.size, config.size,
                        config.projection) for i in items]
    try:
        all_bands = renderer.render(grids)
    except FetchError as err:
        if len(items) == 1:
            return [(items[0], f"failed: {err}", None)]
        return [result for item in items for result in process_items(renderer, config, [item])]
    results = []
    for item, bands in zip(items, all_bands):
        status, row = write_item(config, item, bands)
        results.append((item, status, row))
    return results


# ---- worker processes (each builds its own renderer once) -----------------------------------
_WORKER: dict = {}  # per worker process only: its config and renderer, set by the pool initializer


def _worker_init(config: BuildConfig) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    _WORKER["config"] = config
    _WORKER["renderer"] = make_renderer(config)


def _worker_run(items: list[Item]):
    return process_items(_WORKER["renderer"], _WORKER["config"], items)


# ---- driver ----------------------------------------------------------------------------------
def finished_rows(out: Path, manifest_name: str, with_fits: bool) -> dict[str, dict]:
    """Manifest rows whose files are all on disk, by file."""
    rows = {}
    for row in read_manifest(out / manifest_name):
        if not (out / row.get("file", "")).is_file():
            continue
        if with_fits and not (row.get("fits") and (out / row["fits"]).is_file()):
            continue
        rows[row["file"]] = row
    return rows


def remove_stale_temps(out: Path, todo: list[Item], manifest_name: str) -> None:
    """Delete temp files a killed run left for our own targets (util.fileio names them .NAME.*.tmp).

    Only this run's targets and manifest: another shard writing into the same folder is left alone.
    """
    names = [manifest_name] + [name for item in todo for name in (item.file, item.fits_file)]
    for relative in names:
        path = out / relative
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)


def build_dataset(config: BuildConfig, spec: TargetSpec) -> Summary:
    check_writable(config.out)
    summary = Summary()
    engines = open_engines(config)
    renderer = make_renderer(config, engines)
    single = spec.position is not None or spec.single_name is not None
    split_order = config.split_order if config.split_order is not None else auto_split_order(config.fov)
    labelled = survey_footprints(screening_renderer(renderer))
    footprints = [footprint for _, footprint in labelled]
    if any(not isinstance(e, CutoutEngine) for e in engines):  # FITS images are small: check up front
        check_common_area(labelled)

    cell_split = None
    if spec.sample:
        targets, cell_split = sampled_targets(config, spec, renderer, footprints, split_order)
    else:
        targets, summary.unknown = explicit_targets(config, spec)
        if targets:
            ras = np.array([t.ra for t in targets])
            decs = np.array([t.dec for t in targets])
            any_inside = np.zeros(len(targets), dtype=bool)
            for footprint in footprints[:len(engines)]:
                any_inside |= footprint.contains(ras, decs) if footprint is not None else True
            summary.outside = [t.name for t, ok in zip(targets, any_inside) if not ok]
            targets = [t for t, ok in zip(targets, any_inside) if ok]
        if single and summary.outside:
            raise UserError(f"position of {summary.outside[0]} is outside every survey")
    if not targets:
        if summary.unknown:
            raise UserError(f"no target resolved; unknown: {', '.join(summary.unknown)}")
        if summary.outside:
            raise UserError(f"every target is outside every survey ({len(summary.outside)} given)")
        raise UserError("no targets to cut out")

    items = plan_items(config, targets, split_order, single, cell_split, summary)
    if config.shard is not None:
        index, count = config.shard
        items = items[index::count]
    manifest_name = shard_manifest_name(config.shard)
    done = finished_rows(config.out, manifest_name, config.fits)
    if config.shard is None:  # a plain run after sharded ones merges their manifests
        for shard_file in sorted(config.out.glob("manifest.shard*of*.csv")):
            done.update(finished_rows(config.out, shard_file.name, config.fits))
    wanted = {item.file for item in items}
    done = {file: row for file, row in done.items() if file in wanted}
    rows = dict(done)
    todo = [item for item in items if item.file not in done]
    remove_stale_temps(config.out, todo, manifest_name)
    summary.already_done = len(items) - len(todo)
    cols = columns(renderer.survey_names, config.fits)
    _run(config, renderer, todo, rows, cols, manifest_name, summary)
    return summary


def _run(config: BuildConfig, renderer: Renderer, todo: list[Item], rows: dict, cols: list[str],
         manifest_name: str, summary: Summary) -> None:
    from tqdm import tqdm

    manifest_path = config.out / manifest_name
    chunk = 16 if config.backend == "aladin" else 4
    chunks = [todo[i:i + chunk] for i in range(0, len(todo), chunk)]
    bar = tqdm(total=len(todo), unit="target", disable=not config.progress, file=sys.stderr, leave=False)
    last_save = time.monotonic()

    def collect(results) -> None:
        nonlocal last_save
        for item, status, row in results:
            if status == "written":
                rows[item.file] = row
                summary.written += 1
                lowest = min((float(v), k[len("coverage_"):]) for k, v in row.items() if k.startswith("coverage_"))
                if lowest[0] < 1.0:
                    summary.partial.append((item.target.name, lowest[1], lowest[0]))
            elif status == "low_coverage":
                summary.low_coverage.append(item.target.name)
                log.info("skipped %s: coverage below %.2f", item.target.name, config.min_coverage)
            elif status == "outside":
                summary.outside.append(item.target.name)
            else:
                summary.failed.append(f"{item.target.name} ({status})")
        bar.update(len(results))
        if time.monotonic() - last_save > MANIFEST_EVERY_S:
            write_manifest(manifest_path, list(rows.values()), cols)
            last_save = time.monotonic()

    try:
        if config.workers <= 1 or len(chunks) <= 1:
            for piece in chunks:
                collect(process_items(renderer, config, piece))
        else:
            with ProcessPoolExecutor(max_workers=config.workers, initializer=_worker_init,
                                     initargs=(replace(config, progress=False),)) as pool:
                for results in pool.map(_worker_run, chunks):
                    collect(results)
    finally:
        bar.close()
        write_manifest(manifest_path, sorted(rows.values(), key=lambda r: r["file"]), cols)
