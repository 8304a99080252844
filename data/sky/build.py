"""Build a dataset: choose targets, split them by sky region, cut them out, write PNG/FITS + manifest.

Resumable: targets whose files and manifest row exist are skipped; every file is written atomically.
A re-run with more targets appends (earlier rows and their splits are kept); one with other settings
is refused (dataset_record.py). Workers are processes (workers.py), each with its own surveys and tile
cache; only the parent writes the manifest.
"""
from __future__ import annotations

import errno
import logging
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from util.dask_run import absolute_spec, check_reachable, open_client, run_on_dask
from util.errors import UserError
from util.fileio import atomic_write_bytes, output_folder

from .block_sampling import BlockChoice
from .config import BuildConfig, TargetSpec
from .cutout import SurveyEngine, coverage_fraction
from .dataset_record import check_dataset, check_target_names, clear_dataset, settings_of, write_record
from .engine import CutoutEngine
from .fetch import Fetcher, FetchError, ServerUnreachable
from .geometry import OutputGrid
from .manifest import columns, coverage_column, shard_manifest_name, write_manifest
from .output import fits_cube, panels_png
from .planning import (Item, Summary, choose_targets, earlier_rows, plan_items, remove_stale_temps,
                       split_done)
from .render import BuiltinRenderer, Renderer
from .resources import check_memory
from .split import auto_split_order
from .stretch import to_uint8
from .surveys import make_unique_names, open_engine, science_engine
from .workers import run_in_workers

log = logging.getLogger(__name__)

MANIFEST_EVERY_S = 2.0


# ---- setup -----------------------------------------------------------------------------------
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


# ---- one target ------------------------------------------------------------------------------
def write_item(config: BuildConfig, item: Item, bands) -> tuple[str, dict | None]:
    """('written', row) or ('low_coverage'|'outside'|'no_target', None).

    A full disk or another write error is one line (UserError); the item's files are then all absent.
    """
    coverages = [b.coverage for b in bands]
    if max(coverages) == 0.0:
        return "outside", None
    if not config.inputs_only and coverage_fraction(bands[0].values) == 0.0:
        return "no_target", None  # a black panel A would teach the model that this sky is empty
    if min(coverages) < config.min_coverage:
        return "low_coverage", None
    fov = item.target.fov or config.fov
    panels = [to_uint8(b.values, b.is_8bit, config.stretch) for b in bands]
    row = {"file": item.file, "name": item.target.name, "ra": f"{item.target.ra:.6f}",
           "dec": f"{item.target.dec:.6f}", "fov": f"{fov:g}", "size": str(config.size),
           "surveys": ";".join(b.name for b in bands), "split": item.split}
    for band in bands:
        row[coverage_column(band.name)] = f"{band.coverage:.4f}"
    files = []
    if config.fits:
        grid = OutputGrid(item.target.ra, item.target.dec, fov, config.size, config.size, config.projection)
        cube = [dict(name=b.name, location=b.location, values=b.values if b.cube is None else b.cube,
                     unit=b.unit if b.cube is None else b.cube_unit, coverage=b.coverage,
                     tile_format=b.tile_format if b.cube is None else b.cube_format) for b in bands]
        files.append((item.fits_file, fits_cube(grid, cube, item.target.name)))
        row["fits"] = item.fits_file
    files.append((item.file, panels_png(panels)))  # PNG last: it marks the item done
    written = []
    try:
        for relative, data in files:
            atomic_write_bytes(config.out / relative, data)
            written.append(relative)
    except OSError as err:
        for done in written:  # a cube without its PNG would be a half-written item
            (config.out / done).unlink(missing_ok=True)
        raise UserError(write_failure(config.out, relative, err)) from None
    return "written", row


def write_failure(out: Path, relative: str, err: OSError) -> str:
    """One line for a failed write: a full disk says what to do, as does any other OS error."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"--out {out}: the disk is full ({err.strerror}) writing {relative}; free some space and "
                f"re-run: the targets written so far are kept")
    return f"--out {out}: cannot write {relative} ({err.strerror or err}); the targets written so far are kept"


def process_items(renderer: Renderer, config: BuildConfig, items: list[Item]) -> list[tuple[Item, str, dict | None]]:
    grids = [OutputGrid(i.target.ra, i.target.dec, i.target.fov or config.fov, config.size, config.size,
                        config.projection) for i in items]
    try:
        all_bands = renderer.render(grids)
    except ServerUnreachable:
        raise  # the run stops: every other target would wait for the same dead server
    except FetchError as err:
        if len(items) == 1:
            return [(items[0], f"failed: {err}", None)]
        return [result for item in items for result in process_items(renderer, config, [item])]
    results = []
    for item, bands in zip(items, all_bands):
        try:
            status, row = write_item(config, item, bands)
        except UserError as err:  # a full disk: report what is written, then stop
            results.append((item, "stop", str(err)))
            break
        results.append((item, status, row))
    return results


# ---- worker processes (each builds its own renderer once; workers.py) -----------------------------
def _worker_setup(config: BuildConfig) -> dict:
    return {"config": config, "renderer": make_renderer(config)}


def _worker_job(state: dict, items: list[Item]):
    return process_items(state["renderer"], state["config"], items)


def for_workers(config: BuildConfig) -> BuildConfig:
    """The config as a Dask worker uses it: no bar, no pool of its own, the output folders absolute. The
    surveys stay as given (their files record them: a relative path is found from the worker's working
    directory, the client's own for --dask local)."""
    cache = config.fetch.cache_dir
    return replace(config, progress=False, workers=1, dask=None, out=Path(config.out).resolve(),
                   aladin_jar=absolute_spec(config.aladin_jar),
                   fetch=replace(config.fetch, cache_dir=Path(cache).expanduser().resolve() if cache else None))


# ---- driver ----------------------------------------------------------------------------------
def build_dataset(config: BuildConfig, spec: TargetSpec) -> Summary:
    check_reachable(config.dask)
    with output_folder(config.out, "--out"):  # a refused run leaves no empty --out behind
        try:
            return _build(config, spec)
        except FetchError as err:  # while screening or sampling, before the per-target loop: one line too
            raise UserError(f"{err}: stopped, the targets written so far are kept; re-run to resume") from None


def _build(config: BuildConfig, spec: TargetSpec) -> Summary:
    summary = Summary()
    engines = open_engines(config)
    summary.target_survey = engines[0].name
    renderer = make_renderer(config, engines)
    check_memory(config.size, engines, config.fits, config.workers)
    single = spec.position is not None or spec.single_name is not None or config.inputs_only
    split_order = config.split_order if config.split_order is not None else auto_split_order(config.fov)
    settings = settings_of(config, spec, engines, split_order)
    replacing = check_dataset(config.out, settings, config.overwrite)  # refuse before any slow work
    targets, cell_split = choose_targets(config, spec, renderer, engines, split_order, single, summary)

    kept, earlier = ({}, {}) if replacing else earlier_rows(config.out, config.shard, config.fits)
    items = plan_items(config, targets, split_order, single, cell_split, summary, list(earlier.values()))
    if config.shard is not None:
        index, count = config.shard
        items = items[index::count]
    manifest_name = shard_manifest_name(config.shard)
    todo = split_done(items, earlier, config)
    written = [name for item in todo for name in ((item.file, item.fits_file) if config.fits else (item.file,))]
    check_target_names(config.out, written, replacing)
    if replacing:
        removed, foreign = clear_dataset(config.out)
        shown = ", ".join(foreign[:5]) + (f" (+{len(foreign) - 5} more)" if len(foreign) > 5 else "")
        log.log(logging.WARNING if foreign else logging.INFO, "--overwrite: removed %d files of the earlier "
                "dataset, as its manifests list them%s", removed,
                f"; kept {len(foreign)} that no manifest lists: {shown}" if foreign else "")
    write_record(config.out, settings, list(config.surveys),
                 cell_split.split.as_record() if isinstance(cell_split, BlockChoice) else None)
    remove_stale_temps(config.out, todo, manifest_name)
    summary.already_done = len(items) - len(todo)
    cols = columns(renderer.survey_names, config.fits)
    _run(config, renderer, todo, dict(kept), cols, manifest_name, summary)
    return summary


def _save_manifest(path: Path, rows: dict, cols: list[str]) -> UserError | None:
    try:
        write_manifest(path, sorted(rows.values(), key=lambda r: r["file"]), cols)
    except OSError as err:
        return UserError(write_failure(path.parent, path.name, err))
    return None


def _run(config: BuildConfig, renderer: Renderer, todo: list[Item], rows: dict, cols: list[str],
         manifest_name: str, summary: Summary) -> None:
    from util.progress import progress

    manifest_path = config.out / manifest_name
    chunk = 16 if config.backend == "aladin" else 4
    chunks = [todo[i:i + chunk] for i in range(0, len(todo), chunk)]
    bar = progress(total=len(todo), desc="cutouts", unit="target", enabled=config.progress, leave=False)
    last_save = time.monotonic()
    stopped = None

    def collect(results) -> None:
        nonlocal last_save
        stop = None
        for item, status, row in results:
            if status == "stop":
                stop = UserError(row)
            elif status == "written":
                rows[item.file] = row
                summary.written += 1
                lowest = min((float(v), k[len("coverage_"):]) for k, v in row.items() if k.startswith("coverage_"))
                if lowest[0] < 1.0:
                    summary.partial.append((item.target.name, lowest[1], lowest[0]))
            elif status == "low_coverage":
                summary.low_coverage.append(item.target.name)
                log.info("skipped %s: coverage below %.2f", item.target.name, config.min_coverage)
            elif status == "no_target":
                summary.no_target.append(item.target.name)
                log.info("skipped %s: no data in the target survey", item.target.name)
            elif status == "outside":
                summary.outside.append(item.target.name)
            else:
                summary.failed.append(f"{item.target.name} ({status})")
        bar.update(len(results))
        if stop is not None:
            raise stop
        if time.monotonic() - last_save > MANIFEST_EVERY_S:
            unsaved = _save_manifest(manifest_path, rows, cols)
            if unsaved:
                raise unsaved
            last_save = time.monotonic()

    try:
        if config.dask is not None and chunks:
            log.info("cutting out %d targets on %s", len(todo), config.dask.describe())
            with open_client(config.dask) as client, \
                    closing(run_on_dask(client, _worker_setup, (for_workers(config),), _worker_job,
                                        chunks)) as results_in_order:
                for results in results_in_order:
                    collect(results)
        elif config.workers <= 1 or len(chunks) <= 1:
            for piece in chunks:
                collect(process_items(renderer, config, piece))
        else:
            with closing(run_in_workers(config.workers, _worker_setup, (replace(config, progress=False),),
                                        _worker_job, chunks)) as results_in_order:
                for results in results_in_order:  # closing: a stop cancels the chunks not started
                    collect(results)
    except ServerUnreachable as err:
        stopped = UserError(f"{err}: stopped, the targets written so far are kept; re-run to resume")
    except UserError as err:
        stopped = err
    finally:
        bar.close()
        unsaved = _save_manifest(manifest_path, rows, cols)
    if stopped or unsaved:
        raise stopped or unsaved
