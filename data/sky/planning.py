"""From targets to items: file names, the split of each (by sky cell, kept from earlier runs), and which
items an earlier run already finished (resume, append)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from util import fileio
from util.errors import UserError

from .block_sampling import BlockChoice, block_targets
from .config import BuildConfig, TargetSpec
from .engine import CutoutEngine
from .fetch import Retrier
from .geometry import HEALPIX_CELL_DEG
from .manifest import read_manifest, shard_manifest_name
from .render import BuiltinRenderer, Renderer
from .sampling import check_common_area, sampled_targets, screening_renderer
from .split import SPLITS, assign_cells, cells_of, earlier_cells, straddles
from .targets import Target, catalog_targets, read_coords_csv, resolve_names, unique_stems

log = logging.getLogger(__name__)


@dataclass
class Summary:
    """What a run did; the CLI prints it at the end."""

    target_survey: str = ""  # panel A's name
    written: int = 0
    already_done: int = 0
    low_coverage: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    guard_dropped: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    no_target: list[str] = field(default_factory=list)  # no data in the target survey (panel A)
    split_line: str = ""  # how the sky was split, one line
    overlap_line: str = ""  # --sample on a small field: how much the cutouts of each split overlap
    # written but some survey covers part of the field only: (target, survey, coverage)
    partial: list[tuple[str, str, float]] = field(default_factory=list)


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


def explicit_targets(config: BuildConfig, spec: TargetSpec) -> tuple[list[Target], list[str]]:
    if spec.catalog:
        return catalog_targets(spec.catalog), []
    if spec.coords_csv:
        return read_coords_csv(spec.coords_csv), []
    if spec.position is not None:
        ra, dec = spec.position
        return [Target(spec.single_name or f"ra{ra:.4f}_dec{dec:+.4f}", ra % 360.0, dec)], []
    names = list(spec.names) + ([spec.single_name] if spec.single_name else [])
    return resolve_names(names, not config.offline, config.sesame_url, Retrier(config.fetch))


def plan_items(config: BuildConfig, targets: list[Target], split_order: int, single: bool,
               cell_split: dict[int, str] | BlockChoice | None, summary: Summary, earlier: list[dict] = ()) -> list[Item]:
    """Give each target its split (sky cell, or block of a small field) and file name; drop targets that
    straddle two splits.

    `earlier`: rows of targets written by earlier runs. Their cells keep their split: when the
    assignment of this run's list disagrees (more targets, so other counts), the cells are assigned
    again around them, so no target lands in two splits and no new cutout overlaps an old one. (A block
    split depends only on the settings, which an earlier run into the same folder shares.)
    """
    stems = unique_stems(targets)
    if single:
        return [Item(t, s, "test") for t, s in zip(targets, stems)]
    if not targets:
        return []
    if isinstance(cell_split, BlockChoice):
        return block_items(config, targets, stems, cell_split, summary)
    cells = cells_of(np.array([t.ra for t in targets]), np.array([t.dec for t in targets]), split_order)
    if cell_split is None:
        cell_split = assign_cells(cells, config.split, config.seed)
    fixed = earlier_cells(list(earlier), split_order, config.fov, config.split_guard)
    if any(cell in cell_split and cell_split[cell] != split for cell, split in fixed.items()):
        log.info("earlier targets keep their splits: cells assigned again around them")
        cell_split = assign_cells(cells, config.split, config.seed, fixed)
    items, used = [], set()
    for target, stem, cell in zip(targets, stems, cells):
        split = cell_split[int(cell)]
        if config.split_guard and (not split or straddles(target.ra, target.dec, target.fov or config.fov, 1.0,
                                                          split_order, cell_split)):
            summary.guard_dropped.append(target.name)
            continue
        items.append(Item(target, stem, split))
        used.add((int(cell), split))
    summary.split_line = healpix_line(split_order, used)
    return items


def healpix_line(order: int, used: set[tuple[int, str]]) -> str:
    """The run's one line about a HEALPix split: how many cells hold its targets, per split."""
    counts = {name: sum(1 for _, split in used if split == name) for name in SPLITS}
    side = HEALPIX_CELL_DEG / 2**order
    shown = f"{side:.3g} deg" if side >= 1 else f"{60 * side:.3g}'"
    return (f"split: HEALPix cells of order {order} ({shown}): "
            + ", ".join(f"{name} {counts[name]}" for name in SPLITS) + " cells")


def block_items(config: BuildConfig, targets: list[Target], stems: list[str], choice: BlockChoice,
                summary: Summary) -> list[Item]:
    """Items of a block split: each target's split from the blocks its cutout touches (the guard drops one
    that touches two splits' blocks)."""
    fovs = np.array([t.fov or config.fov for t in targets])
    splits = choice.split.split_of(np.array([t.ra for t in targets]), np.array([t.dec for t in targets]), fovs,
                                   config.split_guard)
    summary.split_line, summary.overlap_line = choice.line, choice.overlap_line
    items = []
    for target, stem, split in zip(targets, stems, splits):
        if not split:
            summary.guard_dropped.append(target.name)
            continue
        items.append(Item(target, stem, str(split)))
    return items


def survey_footprints(screen: BuiltinRenderer) -> list[tuple[str, object]]:
    """(name, footprint) of every engine, display engines first, then the cube twins (FITS tiles):
    sampled positions must lie where all of them have data."""
    return ([(e.name, e.footprint()) for e in screen.engines]
            + [(f"{t.name} (FITS tiles)", t.footprint()) for t in screen.cube_engines if t is not None])


def choose_targets(config: BuildConfig, spec: TargetSpec, renderer: Renderer, engines, split_order: int,
                   single: bool, summary: Summary) -> tuple[list[Target], dict[int, str] | BlockChoice | None]:
    """The targets, and (for --sample) the split: HEALPix cells, or blocks of a small field when the cells
    at the automatic order cannot give every split its sky (block_sampling.py)."""
    labelled = survey_footprints(screening_renderer(renderer))
    footprints = [footprint for _, footprint in labelled]
    if any(not isinstance(e, CutoutEngine) for e in engines):  # FITS images are small: check up front
        check_common_area(labelled)
    if spec.sample:
        adapt = config.split_order is None and not single
        targets, cell_split, serves = sampled_targets(config, spec, renderer, footprints, split_order, adapt)
        if serves:
            return targets, cell_split
        blocks = block_targets(config, spec, screening_renderer(renderer), footprints, split_order)
        if blocks is not None:
            return blocks.targets, blocks
        log.info("the shared sky is not a small field: HEALPix cells of order %d split it", split_order)
        targets, cell_split, _ = sampled_targets(config, spec, renderer, footprints, split_order)
        return targets, cell_split
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
    return targets, None



# ---- what earlier runs finished ------------------------------------------------------------------
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


def earlier_rows(out: Path, shard: tuple[int, int] | None, with_fits: bool) -> tuple[dict[str, dict], dict[str, dict]]:
    """(rows this run's manifest keeps, rows of every finished target it must agree with), by file.

    A plain run keeps manifest.csv and merges the shard manifests; a shard keeps its own manifest and
    agrees with manifest.csv too, not with the other shards' (they run at the same time from one base).
    """
    own_name = shard_manifest_name(shard)
    kept = finished_rows(out, own_name, with_fits)
    if shard is None:
        for shard_file in sorted(out.glob("manifest.shard*of*.csv")):
            kept.update(finished_rows(out, shard_file.name, with_fits))
        return kept, dict(kept)
    return kept, {**finished_rows(out, "manifest.csv", with_fits), **kept}


def same_target(row: dict, item: Item, config: BuildConfig) -> bool:
    fov = item.target.fov or config.fov
    return (row.get("name") == item.target.name and row.get("fov") == f"{fov:g}"
            and abs(float(row["ra"]) - item.target.ra) < 2e-6 and abs(float(row["dec"]) - item.target.dec) < 2e-6)


def split_done(items: list[Item], earlier: dict[str, dict], config: BuildConfig) -> list[Item]:
    """The items still to do; an earlier file that holds another target than this run's is refused."""
    by_target = {(row.get("name"), row.get("ra"), row.get("dec"), row.get("fov")): row for row in earlier.values()}
    todo = []
    for item in items:
        row = earlier.get(item.file)
        if row is not None and not same_target(row, item, config):
            raise UserError(f"--out {config.out}: {item.file} holds {row.get('name')} at ({row.get('ra')}, "
                            f"{row.get('dec')}), not {item.target.name}; use another --out, or --overwrite")
        key = (item.target.name, f"{item.target.ra:.6f}", f"{item.target.dec:.6f}",
               f"{item.target.fov or config.fov:g}")
        if row is None and key not in by_target:
            todo.append(item)
    return todo


def remove_stale_temps(out: Path, todo: list[Item], manifest_name: str) -> None:
    """Delete temp files a killed run left for our own targets (util.fileio names them .NAME.*.tmp).

    Only this run's targets and manifest: another shard writing into the same folder is left alone.
    """
    names = [manifest_name] + [name for item in todo for name in (item.file, item.fits_file)]
    fileio.remove_stale_temps(out / relative for relative in names)


