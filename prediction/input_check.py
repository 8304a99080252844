"""predict_sky.py's inputs against the model's training inputs, before any tile is written.

The model's record (data.training_inputs: checkpoints/NAME/training_inputs.json, written when a FITS model's
training starts) says what each input band was: survey, unit, pixel scale, values. The surveys given here
are summarised the same way over the region (or field) they will be read on, and compared slot by slot
(data.training_inputs.compare_bands). A refusal is one line saying what differs, by how much, and how to
go on; --accept_inputs goes on anyway and the output records it (properties, report.json, FITS header).

--match_inputs puts inputs on the training scale where their headers allow it, as Hipsgen's skyval does:
each image's sky level (astropy's sigma-clipped median over the whole image) is subtracted, the values are
scaled by 10^(0.4 (ZP_training - ZP_image)) when both the image and the training source carry a zero
point (MAGZP, MAGZPT, PHOTZP; 22.5 for SDSS nanomaggies), and the training's sky level is added back.
Not possible, and said so: the zero point of an image or training source without one; a HiPS input has no
image headers, so its sky level is measured over the region and it is never scaled. Photometric systems
(Vega or AB) and pixel areas are not converted: zero points are applied as the headers give them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.sky.cutout import Cutout
from data.sky.geometry import OutputGrid
from data.sky.image_engine import ImageEngine
from data.training_inputs import (BandRecord, GivenBand, TrainingInputs, compare_bands, load_training_inputs,
                                  one_per_input, record_path, summarise, zero_point)
from util.errors import UserError

PROBE = 256  # pixels per side of the view over the region the inputs are summarised on
MAX_VIEW_DEG = 150.0  # a TAN view wider than this is not a view


@dataclass(frozen=True)
class InputMatch:
    """x -> (x - sky) x scale + add, per image of a survey (one entry for a HiPS): picklable, for workers."""

    sky: tuple[float, ...]
    scale: tuple[float, ...]
    add: float

    def as_dict(self) -> dict:
        return {"sky": list(self.sky), "scale": list(self.scale), "add": self.add}

    @staticmethod
    def from_dict(raw: dict) -> "InputMatch":
        return InputMatch(tuple(raw["sky"]), tuple(raw["scale"]), float(raw["add"]))


class MatchedEngine:
    """A survey engine whose cutouts are put on the training scale (HiPS surveys: one level for all)."""

    def __init__(self, engine, match: InputMatch):
        self._engine = engine
        self._match = match

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def cutout(self, grid, sky=None, shared=None) -> Cutout:
        cut = self._engine.cutout(grid, sky=sky, shared=shared)
        m = self._match
        values = ((cut.values.astype(np.float64) - m.sky[0]) * m.scale[0] + m.add).astype(np.float32)
        return dataclasses.replace(cut, values=values)


def matched_engine(engine, match: InputMatch | None):
    """The engine with `match` applied: an image survey's pieces each get their own level and scale."""
    if match is None:
        return engine
    if isinstance(engine, ImageEngine):
        pieces = [dataclasses.replace(piece, data=((piece.data.astype(np.float64) - sky) * scale + match.add)
                                      .astype(np.float32))
                  for piece, sky, scale in zip(engine.pieces, match.sky, match.scale)]
        return ImageEngine(pieces, engine.name, engine.location, engine.spec, engine.resample)
    return MatchedEngine(engine, match)


# ---- what the run is given -----------------------------------------------------------------------
def native_pixel_arcsec(engine) -> float | None:
    """The survey's own pixel: the image's, or the HiPS's deepest tiles'."""
    from data.sky.tile_grid import tile_pixel_deg

    pieces = getattr(engine, "pieces", None)
    if pieces:
        return float(np.mean([piece.pixel_deg for piece in pieces])) * 3600.0
    survey = getattr(engine, "survey", None)
    if survey is None:
        return None
    return tile_pixel_deg(survey.properties.max_order, survey.properties.tile_width) * 3600.0


def short_spec(spec: str) -> str:
    """A survey as messages name it: a file's or folder's name, else the spec (URL, CDS ID)."""
    path = Path(spec)
    return path.name if path.exists() else spec


def view_of(grid: OutputGrid) -> OutputGrid:
    """A PROBE x PROBE view over the same sky as `grid` (a region's or a field's)."""
    return OutputGrid(grid.ra, grid.dec, min(grid.fov, MAX_VIEW_DEG), PROBE, PROBE)


def given_bands(engines, view: OutputGrid) -> list[GivenBand]:
    """The inputs as the run will read them, summarised over `view` (first channel of a colour survey)."""
    bands = []
    shared: dict = {}
    for engine in engines:
        values = engine.cutout(view, shared=shared).values[..., 0]
        bands.append(GivenBand(engine.name, engine.unit, native_pixel_arcsec(engine), summarise(values),
                               short_spec(engine.spec)))
    return bands


# ---- --match_inputs -------------------------------------------------------------------------------
def _sky_level(values: np.ndarray) -> float | None:
    summary = summarise(values)
    return None if summary is None else summary.sky


def plan_matches(engines, record: TrainingInputs, view: OutputGrid) -> tuple[list[InputMatch | None], list[str]]:
    """(a match per input survey, lines saying what was matched and what could not be)."""
    from data.sky.fits_io import read_header

    matches: list[InputMatch | None] = []
    lines: list[str] = []
    for slot, (engine, band) in enumerate(zip(engines, record.bands), start=1):
        what = f"input {slot} ({engine.name})"
        if band.values is None:
            matches.append(None)
            lines.append(f"{what}: no training values recorded, not matched")
            continue
        skies, scales, missing = [], [], []
        if isinstance(engine, ImageEngine):
            for piece in engine.pieces:
                level = _sky_level(piece.data)
                point, _ = zero_point(read_header(piece.path))
                skies.append(0.0 if level is None else level)
                if point is not None and band.zero_point is not None:
                    scales.append(10.0 ** (0.4 * (band.zero_point - point)))
                else:
                    scales.append(1.0)
                    missing.append(piece.path)
            how = f"sky level of each of its {len(skies)} image(s) subtracted" if len(skies) > 1 else \
                f"sky level {skies[0]:.4g} subtracted"
        else:
            level = _sky_level(engine.cutout(view).values[..., 0])
            skies, scales = [0.0 if level is None else level], [1.0]
            missing = ["a HiPS has no image headers"]
            how = f"sky level {skies[0]:.4g} over the region subtracted (a HiPS: one level)"
        if missing:
            why = (missing[0] if missing[0].startswith("a HiPS") else
                   "the training source has no zero point" if band.zero_point is None else
                   f"no zero point (MAGZP, MAGZPT, PHOTZP, BUNIT nanomaggy) in {', '.join(missing[:2])}")
            scale_text = f"not scaled ({why})"
        else:
            scale_text = f"scaled by {scales[0]:.4g} (zero points {band.zero_point:.4g} vs the image's)"
        lines.append(f"{what}: {how}, {scale_text}, training sky {band.values.sky:.4g} added")
        matches.append(InputMatch(tuple(skies), tuple(scales), band.values.sky))
    return matches, lines


# ---- the check -------------------------------------------------------------------------------------
@dataclass
class InputReport:
    """What the run tells and records about its inputs."""

    notes: list[str]
    accepted: list[str]  # refusals overridden by --accept_inputs
    matched: list[str]

    def as_dict(self) -> dict:
        return {"notes": self.notes, "accepted_unlike_training": self.accepted, "matched": self.matched}

    def description(self) -> str:
        """For obs_description / FITS HISTORY: '' when there is nothing to say."""
        parts = []
        if self.matched:
            parts.append("inputs put on the training scale (--match_inputs): " + "; ".join(self.matched))
        if self.accepted:
            parts.append("INPUTS UNLIKE TRAINING, accepted with --accept_inputs: " + "; ".join(self.accepted))
        return ". ".join(parts)


def png_record(model) -> TrainingInputs:
    """A PNG model knows only its input surveys' names (manifest.csv): enough to catch swapped bands."""
    return TrainingInputs(tuple(BandRecord(k, panel.label, panel.label, "", None)
                                for k, panel in enumerate(model.panels)), 0)


def check_inputs(session, grid: OutputGrid, say) -> InputReport:
    """Compare the session's inputs with the training record over `grid`; refuse with one line, or go on
    (--accept_inputs) and return what to record. With --match_inputs the engines are matched first
    (session.matches, session.engines)."""
    c = session.config
    opt = session.loaded.opt
    record = load_training_inputs(opt.checkpoints_dir, opt.name) if session.model.kind == "fits" else None
    if record is None and session.model.kind == "fits":
        say(f"note: {record_path(opt.checkpoints_dir, opt.name)} not found (the model was trained before "
            f"training inputs were recorded): the inputs are not compared with training")
        if c.match_inputs:
            raise UserError("--match_inputs needs the model's record of its training inputs, which this model "
                            "(trained before it existed) lacks; run without --match_inputs")
        return InputReport([], [], [])
    if record is not None:
        record = one_per_input(record, [engine.channels for engine in session.engines])
    if record is None and all(panel.label.startswith("panel ") for panel in session.model.panels):
        return InputReport([], [], [])  # a PNG model whose training set named no survey: nothing to compare
    view = view_of(grid)
    matched: list[str] = []
    if record is not None and c.match_inputs:
        matches, matched = plan_matches(session.engines, record, view)
        session.use_matches(matches)
        for line in matched:
            say(f"--match_inputs: {line}")
    given = given_bands(session.engines, view) if record is not None else \
        [GivenBand(e.name, "", None, None, short_spec(e.spec)) for e in session.engines]
    result = compare_bands(record or png_record(session.model), given)
    if record is None:  # a PNG model knows names only: another name is no news, a swap is
        result.notes = []
    for note in result.notes:
        say(f"note: {note}")
    if result.refusals and not c.accept_inputs:
        trained = ", ".join(band.survey for band in (record or png_record(session.model)).bands)
        matching = "" if c.match_inputs or record is None else \
            "try --match_inputs (each image's sky level subtracted, scaled by the zero points in the headers), "
        raise UserError(f"the inputs are unlike the model's training inputs: {'; '.join(result.refusals)}; give the "
                        f"model's bands ({trained}) in its unit and pixel scale, {matching}or run anyway with "
                        f"--accept_inputs (the output records it)")
    for refusal in result.refusals:
        say(f"warning: accepted with --accept_inputs: {refusal}")
    return InputReport(result.notes, result.refusals, matched)


def region_grid(ra: float, dec: float, radius: float) -> OutputGrid:
    return OutputGrid(ra, dec, min(max(2 * radius, 1e-3), MAX_VIEW_DEG), PROBE, PROBE)
