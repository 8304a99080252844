"""predict_sky.py --target / --ra --dec: the generated band on one field, as FITS + PNG + an HTML page.

The field is cut out of the same map a --region run writes: the HEALPix tiles under the field are
generated exactly as in a region run (in memory) and resampled onto the field's grid by the
builder's own cutout engine reading them as a HiPS. So one position and the HiPS at that position
agree (the tests hold them to r >= 0.999), and both agree with what Aladin shows.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from data.sky.fits_io import image_bytes
from prediction.inputs import display_stretch
from data.sky.engine import CutoutEngine
from data.sky.geometry import OutputGrid, make_wcs, pixel_sky_coords
from data.sky.hips_out import fits_tile_bytes, png_tile_bytes, properties_text, spread_stretch
from data.sky.hips_quality import calibration
from data.sky.properties import parse_properties_text
from data.sky.source import Survey, tile_path
from data.sky.stretch import to_uint8
from data.sky.fetch import Retrier
from data.sky.targets import Target, check_position, resolve_names, safe_file_stem
from data.sky.tile_grid import tile_pixel_deg, tiles_under
from util.errors import UserError
from util.fileio import atomic_write_bytes, check_writable_folder
from engine.storage import storage_errors_as_user_errors
from prediction.generate import asked_generator_threads, generator_threads
from prediction.input_check import InputReport, check_inputs
from prediction.render import open_truth
from prediction.session import Session, describe, generate, prepare, render_stream


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def resolve_target(config) -> Target:
    if config.position is not None:
        ra, dec = config.position
        check_position(ra, dec, "--ra/--dec")
        return Target(f"ra{ra:.4f}_dec{dec:+.4f}", ra, dec)
    found, _ = resolve_names([config.target], not config.offline, config.sesame_url, Retrier(config.fetch))
    if not found:
        raise UserError(f"--target {config.target}: unknown name (OpenNGC{'' if config.offline else ', Sesame'})")
    return found[0]


def field_grid(session: Session, target: Target) -> OutputGrid:
    """--fov/--size, else the training images' size at the model's pixel scale."""
    c = session.config
    pixel = session.training.pixel_deg or tile_pixel_deg(session.order, session.width)
    size = c.size or session.training.size or int(session.loaded.opt.crop_size)
    fov = c.fov or pixel * size
    return OutputGrid(target.ra, target.dec, fov, size, size)


def memory_hips(name: str, order: int, width: int, tiles: dict[int, np.ndarray]) -> Survey:
    """An in-memory HiPS of float tiles, read through the same Survey/CutoutEngine code as files."""
    blobs = {tile_path(order, ipix, "fits"): fits_tile_bytes(values) for ipix, values in tiles.items()}
    text = properties_text({"hips_frame": "equatorial", "hips_order": order, "hips_order_min": order,
                            "hips_tile_width": width, "hips_tile_format": "fits", "obs_title": name})
    props = parse_properties_text(text, f"{name} (in memory)")
    return Survey(name, "memory", props, lambda relative, validate=None: blobs.get(relative))


def resample(session: Session, tiles: dict[int, np.ndarray], grid: OutputGrid, label: str) -> np.ndarray:
    engine = CutoutEngine(memory_hips(label, session.order, session.width, tiles), "fits",
                          cache_tiles=max(96, len(tiles)))
    return engine.cutout(grid).values[..., 0]


def run_position(config) -> int:
    check_writable_folder(config.out, "--out")  # creates nothing: a refused run leaves no folder behind
    session = prepare(config)
    say(describe(session))
    target = resolve_target(config)
    grid = field_grid(session, target)
    ra, dec = pixel_sky_coords(grid)
    tiles = tiles_under(ra, dec, session.order, session.width).tolist()
    inputs_check = check_inputs(session, grid, say)
    if config.truth and not open_truth(session.render_settings()).has_data(ra, dec, grid.pixel_deg).any():
        raise UserError(f"--truth {config.truth} has no data on the field of {target.name} ({grid.fov:g} deg), "
                        f"so nothing could be compared; give a --truth that covers it, or run without --truth")
    means, stds = {}, {}
    settings = session.render_settings()
    with generator_threads(asked_generator_threads(config.threads)):
        for result in generate(session, render_stream(settings, tiles, config.workers, session.engines)):
            if result.mean is not None:
                means[result.ipix] = result.mean
                if result.std is not None:
                    stds[result.ipix] = result.std
    if not means:
        raise UserError(f"no input data around {target.name} ({target.ra:.4f}, {target.dec:+.4f}) in "
                        f"{', '.join(e.name for e in session.engines)}")
    band = resample(session, means, grid, "mean")
    std = resample(session, stds, grid, "std") if stds else None
    check_writable_folder(config.out, "--out", create=True)
    with storage_errors_as_user_errors("every file of the field is written whole or not at all; run the same "
                                       "command again"):
        stem = safe_file_stem(target.name)
        out = Path(config.out)
        write_fits(session, out / f"{stem}.fits", grid, band, std, target, inputs_check)
        display = display_stretch(session.model)
        atomic_write_bytes(out / f"{stem}.png", png_tile_bytes(display.levels(band)))
        figures = compare_truth(session, grid, band, std) if config.truth else None
        page = write_page(session, out, stem, grid, band, std, figures, inputs_check.description())
    say(f"wrote {out / (stem + '.fits')}, {stem}.png and {page.name} ({grid.width}x{grid.height} px, "
        f"{grid.fov:g} deg, from {len(means)} generated tiles of order {session.order})")
    return 0


def fits_cards(session: Session, target: Target, has_std: bool) -> list[tuple[str, object, str]]:
    c, opt, model = session.config, session.loaded.opt, session.model
    cards = [("BUNIT", model.unit[:68], "unit of the generated band"),
             ("PLNAM1", f"{model.output_label} (generated)"[:68], "plane 1"), ("PLUNI1", model.unit[:68], "")]
    if has_std:
        cards += [("PLNAM2", f"std of {c.uncertainty} passes"[:68], "plane 2: uncertainty"),
                  ("PLUNI2", model.unit[:68], ""), ("NPASS", c.uncertainty, session.generator.pass_kind[:46]),
                  ("STDSCALE", c.std_scale.short(), "factor on the std of the passes")]
    cards += [("OBJECT", target.name[:68], "field centre"), ("ORIGIN", "skytrans predict_sky.py", "generated"),
              ("MODEL", f"{opt.model} {opt.netG}"[:68], "model and generator"),
              ("EXPNAME", str(opt.name)[-68:], "experiment (--name)"),
              ("CKPT", session.loaded.weights.name[-68:], "weights file"),
              ("CKPTSHA", session.weights_sha256[:16], "sha256 of the weights (start)"),
              ("HIPSORD", session.order, "HEALPix tile order the band was generated at"),
              ("TILEW", session.width, "tile width, px"), ("MARGIN", session.margin, "context px per tile side")]
    for k, engine in enumerate(session.engines, start=1):
        cards.append((f"SURVEY{k}", engine.name[:68], f"input {k}"))
        cards.append((f"SRCLOC{k}", str(engine.location)[-68:], ""))
    return cards


def write_fits(session: Session, path: Path, grid: OutputGrid, band: np.ndarray, std: np.ndarray | None,
               target: Target, inputs_check: InputReport | None = None) -> None:
    planes = [band[::-1]] + ([std[::-1]] if std is not None else [])  # image rows top-down -> FITS bottom-up
    cards = fits_cards(session, target, std is not None)
    said = inputs_check.description() if inputs_check else ""
    if said:  # HISTORY lines of 70 characters: the whole sentence survives
        cards.append(("INPUTCHK", "accepted unlike training" if inputs_check.accepted else "matched",
                      "inputs vs training (see HISTORY)"))
        cards += [("HISTORY", said[i:i + 70], "") for i in range(0, len(said), 70)]
    atomic_write_bytes(path, image_bytes(np.stack(planes), make_wcs(grid), cards))


def compare_truth(session: Session, grid: OutputGrid, band: np.ndarray, std: np.ndarray | None) -> dict:
    from prediction.render import TileRenderer

    renderer = TileRenderer(session.render_settings(), engines=[])
    truth = renderer.truth_on(grid)
    result = calibration(band, std, truth).as_dict()
    say(f"against {session.config.truth}: r = {result['pearson_r']:.3f}"
        + (f", {100 * result['within_1std']:.1f}% within 1 std" if std is not None else ""))
    return {**result, "truth": truth}


def write_page(session: Session, out: Path, stem: str, grid: OutputGrid, band, std, figures,
               inputs_note: str = "") -> Path:
    """Pictures of every input panel as training made it, the band, its std and the truth, and NAME.html,
    the sky viewer page of NAME.fits with them beside it."""
    pictures = []
    shared: dict = {}
    for k, engine in enumerate(session.engines, start=1):
        values = engine.cutout(grid, shared=shared).values
        level = to_uint8(values, engine.is_8bit, session.config.stretch)
        name = f"{stem}_input{k}.png"
        atomic_write_bytes(out / name, png_tile_bytes(level.mean(axis=2)) if level.shape[2] == 1 else
                           _rgb_png(level))
        pictures.append((name, f"input {k}: {engine.name}"))
    pictures.append((f"{stem}.png", f"generated {session.model.output_label} ({session.loaded.opt.name})"))
    display = display_stretch(session.model)
    if std is not None:
        atomic_write_bytes(out / f"{stem}_std.png", png_tile_bytes(spread_stretch(std).levels(std)))
        pictures.append((f"{stem}_std.png", f"std of {session.config.uncertainty} passes"))
    if figures is not None:
        atomic_write_bytes(out / f"{stem}_truth.png", png_tile_bytes(display.levels(figures["truth"])))
        pictures.append((f"{stem}_truth.png", f"real band: {session.config.truth}"))
    from prediction.viewer_page import position_page

    return position_page(session, out, stem, grid, std, figures, pictures, inputs_note)


def _rgb_png(levels: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(levels[..., :3])).save(buffer, format="PNG")
    return buffer.getvalue()
