"""checkpoints/NAME/training_inputs.json: what each input band of a FITS-trained model looked like in training.

A generator only knows the values it was trained on: another band in the same slot, another unit, a
background-subtracted image or one of another pixel scale gives a confident and wrong sky. So when
training starts, each input plane's survey name, unit, pixel scale (the cubes' grid and, when the
source is at hand, the native pixel of the image or HiPS they were cut from), the zero point of the
source (MAGZP and kin, or 22.5 for nanomaggies) and a compact summary of its training values
(percentiles, sky level, noise) are written here. predict_sky.py and test.py on new data compare
their inputs with it (prediction.input_check, compare_bands below) before any output is written.

The sky level and noise are astropy's sigma-clipped median and standard deviation (3 sigma), the
background estimate of the field; the percentiles are over every finite pixel.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from util.errors import UserError
from util.fileio import atomic_write_json

RECORD_FILE = "training_inputs.json"
RECORD_VERSION = 1
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
MAX_CUBES = 200  # cubes read for the summary, spread over the training set
MAX_PIXELS = 1_000_000  # pixels per band kept for the summary
ZERO_POINT_KEYS = ("MAGZP", "MAGZPT", "PHOTZP")  # 2MASS and WISE, UKIDSS, the ESO standard
NANOMAGGY_ZERO_POINT = 22.5  # SDSS: 1 nanomaggy is AB magnitude 22.5
# what the builder's engines call values without a BUNIT (data.sky.fits_image, data.sky.engine)
UNKNOWN_UNITS = ("", "image value (no BUNIT)", "tile value (BSCALE/BZERO applied)")

# What counts as unlike training (docs/fill-a-gap.md, "Inputs unlike training")
PIXEL_RATIO = 1.5  # native pixel scales differing by more than this
NOISE_RATIO = 10.0  # sky noise differing by more than this
SKY_NOISES = 3.0  # sky level this many training noises beyond the training's 1st..99th percentile


@dataclass(frozen=True)
class ValueSummary:
    """A band's values in brief: percentiles, sky level and noise (sigma-clipped median / std), pixels."""

    percentiles: dict[str, float]
    sky: float
    noise: float
    pixels: int

    def low_high(self) -> tuple[float, float]:
        return self.percentiles["1"], self.percentiles["99"]


def summarise(values: np.ndarray) -> ValueSummary | None:
    """The summary of a band's finite values (None when it has none)."""
    from astropy.stats import sigma_clipped_stats

    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size < 2:
        return None
    if finite.size > MAX_PIXELS:
        finite = np.random.default_rng(0).choice(finite, MAX_PIXELS, replace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant band: clipping leaves nothing to warn about
        _, sky, noise = sigma_clipped_stats(finite, sigma=3.0, maxiters=10)
    cuts = np.percentile(finite, PERCENTILES)
    return ValueSummary({str(q): float(v) for q, v in zip(PERCENTILES, cuts)}, float(sky), float(noise),
                        int(finite.size))


@dataclass(frozen=True)
class BandRecord:
    """One input band as training saw it."""

    plane: int  # cube plane
    label: str  # cube PLNAMn, 'survey:channel'
    survey: str
    unit: str
    pixel_arcsec: float | None  # the cubes' grid: what the network saw
    source: str | None = None  # the survey the cubes were cut from (dataset.json), when known
    source_pixel_arcsec: float | None = None  # its native pixel, when the source is at hand
    zero_point: float | None = None  # magnitude of one unit of its values (MAGZP...), when known
    zero_point_key: str | None = None
    values: ValueSummary | None = None


@dataclass(frozen=True)
class TrainingInputs:
    bands: tuple[BandRecord, ...]
    cubes: int  # cubes summarised
    version: int = RECORD_VERSION


def one_per_input(record: TrainingInputs, channels: list[int]) -> TrainingInputs:
    """The record with one band per input survey (its first plane) when the inputs' channels add up to the
    recorded planes: a colour survey fills 3 cube planes, but a run compares it as one input."""
    if sum(channels) != len(record.bands) or len(channels) == len(record.bands):
        return record
    starts = np.cumsum([0, *channels[:-1]])
    return TrainingInputs(tuple(record.bands[int(k)] for k in starts), record.cubes, record.version)


def record_path(checkpoints_dir: str, name: str) -> Path:
    return Path(checkpoints_dir) / name / RECORD_FILE


# ---- what a FITS header says -----------------------------------------------------------------
def zero_point(header) -> tuple[float | None, str | None]:
    """(magnitude of one unit of the image's values, where it came from): MAGZP, MAGZPT or PHOTZP, or 22.5
    for SDSS nanomaggies; (None, None) when the header gives none."""
    for key in ZERO_POINT_KEYS:
        value = header.get(key) if header is not None else None
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value), key
    unit = str(header.get("BUNIT", "") if header is not None else "").strip().lower()
    if unit in ("nanomaggy", "nanomaggies", "nmgy"):
        return NANOMAGGY_ZERO_POINT, "BUNIT nanomaggy"
    return None, None


def pixel_arcsec_of(header) -> float | None:
    from astropy.wcs.utils import proj_plane_pixel_scales

    from data.sky.fits_io import celestial_wcs

    wcs = celestial_wcs(header)
    return None if wcs is None else float(np.mean(proj_plane_pixel_scales(wcs))) * 3600.0


def source_facts(spec: str | None, where: Path) -> tuple[float | None, float | None, str | None]:
    """(native pixel in arcsec, zero point, its keyword) of a survey as the builder was given it: a FITS image
    (its header) or a local HiPS folder (its order and tile width); Nones when it is not at hand."""
    from data.sky.fits_image import image_spec
    from data.sky.fits_io import read_header
    from data.sky.properties import parse_properties_text
    from data.sky.tile_grid import tile_pixel_deg

    if not spec:
        return None, None, None
    for base in (None, where):  # as given (the builder's folder), then beside the dataset
        candidate = spec if base is None or Path(spec).is_absolute() else str(base / spec)
        image = image_spec(candidate)
        if image is not None:  # a mosaic: its first piece speaks for it
            header = read_header(str(image.paths[0]))
            return (pixel_arcsec_of(header), *zero_point(header))
        if (Path(candidate) / "properties").is_file():
            props = parse_properties_text((Path(candidate) / "properties").read_text(errors="replace"))
            return tile_pixel_deg(props.max_order, props.tile_width) * 3600.0, None, None
    return None, None, None


# ---- written at the start of training ---------------------------------------------------------
def sampled_planes(cube_paths: list[str], planes: list[int]) -> tuple[object, dict[int, np.ndarray], list[int]]:
    """(first cube's header, every finite-or-not pixel of each plane over up to MAX_CUBES cubes spread over the
    list, the cubes read)."""
    from data.sky.fits_io import read_cube

    picks = sorted(set(np.linspace(0, len(cube_paths) - 1, min(len(cube_paths), MAX_CUBES)).astype(int).tolist()))
    parts: dict[int, list[np.ndarray]] = {plane: [] for plane in planes}
    header = None
    for index in picks:
        cube = read_cube(cube_paths[index])
        header = header if header is not None else cube.header
        for plane in planes:
            parts[plane].append(cube.planes[plane].ravel())
    return header, {plane: np.concatenate(values) for plane, values in parts.items()}, picks


def build_record(dataroot: str, cube_paths: list[str], labels: list[tuple[str, str]],
                 input_planes: list[int]) -> TrainingInputs:
    from data.sky.dataset_record import RECORD

    header, parts, picks = sampled_planes(cube_paths, input_planes)
    try:
        sources = json.loads((Path(dataroot) / RECORD).read_text(encoding="utf-8")).get("sources", [])
    except (OSError, ValueError, AttributeError):
        sources = []
    bands = []
    for plane in input_planes:
        label, unit = labels[plane]
        panel = header.get(f"PLBND{plane + 1}") if header is not None else None
        source = (sources[panel - 1] if isinstance(panel, int) and 0 < panel <= len(sources)
                  else header.get(f"SRCLOC{panel}") if header is not None and panel else None)
        pixel, zp, zp_key = source_facts(source, Path(dataroot).parent)
        bands.append(BandRecord(plane, label, label.rpartition(":")[0] or label, unit,
                                pixel_arcsec_of(header) if header is not None else None, source, pixel, zp, zp_key,
                                summarise(parts[plane])))
    return TrainingInputs(tuple(bands), len(picks))


def save_training_inputs(opt, cube_paths: list[str], labels: list[tuple[str, str]], input_planes: list[int]) -> None:
    """Called by the FITS dataset when training starts (beside fits_norm.json)."""
    record = build_record(str(opt.dataroot), cube_paths, labels, input_planes)
    atomic_write_json(record_path(opt.checkpoints_dir, opt.name), asdict(record))


def load_training_inputs(checkpoints_dir: str, name: str) -> TrainingInputs | None:
    """The record, None for a checkpoint trained before it existed."""
    path = record_path(checkpoints_dir, name)
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        bands = tuple(BandRecord(**{**band, "values": ValueSummary(**band["values"]) if band.get("values") else None})
                      for band in raw["bands"])
        return TrainingInputs(bands, int(raw["cubes"]), int(raw.get("version", RECORD_VERSION)))
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path} is not a readable record of the training inputs ({err}); delete it to go on "
                        f"without the check") from None


# ---- the comparison ------------------------------------------------------------------------------
@dataclass(frozen=True)
class GivenBand:
    """An input band as a run is about to use it."""

    name: str
    unit: str
    pixel_arcsec: float | None  # native pixel of the survey or image
    values: ValueSummary | None
    where: str = ""  # how to name it in a message (the survey as given)


@dataclass
class Comparison:
    refusals: list[str] = field(default_factory=list)  # differences that stop the run
    notes: list[str] = field(default_factory=list)  # differences worth a line, not a refusal

    @property
    def ok(self) -> bool:
        return not self.refusals


def _unit_key(unit: str) -> str:
    return "".join(str(unit).split()).lower()


def known_unit(unit: str) -> bool:
    return _unit_key(unit) not in {_unit_key(u) for u in UNKNOWN_UNITS}


def same_unit(a: str, b: str) -> bool | None:
    """True/False, or None when either is unknown (no BUNIT)."""
    if not known_unit(a) or not known_unit(b):
        return None
    if _unit_key(a) == _unit_key(b):
        return True
    import astropy.units as u

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ua, ub = u.Unit(a, parse_strict="silent"), u.Unit(b, parse_strict="silent")
        if not isinstance(ua, u.UnrecognizedUnit) and not isinstance(ub, u.UnrecognizedUnit):
            return ua == ub
    except (ValueError, TypeError):
        pass
    return False


def _g(value: float) -> str:
    return f"{value:.4g}"


def compare_bands(record: TrainingInputs, given: list[GivenBand], on_grid: bool = False) -> Comparison:
    """What differs between the inputs a run is given and the training's, slot by slot.

    Refused: a survey given in another slot than in training (swapped bands), another unit, a native pixel
    scale more than 1.5x off, a sky level beyond the training's 1st..99th percentile by more than 3 training
    noises, a sky noise more than 10x off. A survey of another name with the same unit, scale and values
    (2MASS J for UKIDSS J) is a note: another survey of the same band is a legitimate use. on_grid: the given
    pixel scales are cube grids (test.py), compared with the training cubes' grid, not the sources'."""
    result = Comparison()
    trained_names = [band.survey for band in record.bands]
    for slot, (band, have) in enumerate(zip(record.bands, given), start=1):
        what = f"input {slot} ({have.where or have.name})"
        if have.name != band.survey:
            if have.name in trained_names:
                result.refusals.append(f"{what} is {have.name}, which the model reads as input "
                                       f"{trained_names.index(have.name) + 1}; input {slot} was {band.survey} in "
                                       f"training (bands swapped?)")
            else:
                result.notes.append(f"{what} is {have.name}, input {slot} was {band.survey} in training (another "
                                    f"survey of the same band is fine when unit, scale and values agree)")
        unit = same_unit(have.unit, band.unit)
        if unit is False:
            result.refusals.append(f"{what} is in {have.unit}, training in {band.unit}")
        elif unit is None and known_unit(band.unit):
            result.notes.append(f"{what} has no unit (BUNIT) to compare with the training's {band.unit}")
        trained_pixel = band.pixel_arcsec if on_grid else (band.source_pixel_arcsec or band.pixel_arcsec)
        if have.pixel_arcsec and trained_pixel:
            ratio = have.pixel_arcsec / trained_pixel
            if not 1 / PIXEL_RATIO <= ratio <= PIXEL_RATIO:
                result.refusals.append(f"{what} has {have.pixel_arcsec:.3g}\" pixels, training "
                                       f"{trained_pixel:.3g}\" ({max(ratio, 1 / ratio):.3g}x "
                                       f"{'finer' if ratio < 1 else 'coarser'})")
        seen, now = band.values, have.values
        if seen is None or now is None:
            continue
        low, high = seen.low_high()
        margin = SKY_NOISES * seen.noise
        if not low - margin <= now.sky <= high + margin:
            result.refusals.append(f"{what} has its sky level at {_g(now.sky)} (1st-99th percentile "
                                   f"{_g(now.low_high()[0])}..{_g(now.low_high()[1])}), training {_g(seen.sky)} "
                                   f"({_g(low)}..{_g(high)}) {band.unit}")
        elif seen.noise > 0 and now.noise > 0 and not 1 / NOISE_RATIO <= now.noise / seen.noise <= NOISE_RATIO:
            result.refusals.append(f"{what} has a sky noise of {_g(now.noise)}, training {_g(seen.noise)} "
                                   f"({max(now.noise / seen.noise, seen.noise / now.noise):.3g}x "
                                   f"{'less' if now.noise < seen.noise else 'more'})")
    return result


# ---- test.py on cubes other than the training's -----------------------------------------------------
def add_option(parser) -> None:
    parser.add_argument("--accept_inputs", action="store_true",
                        help="test.py: go on although the cubes' input planes are unlike the training's (unit, "
                             "pixel scale, values, order); the results manifest records it")


def check_new_cubes(opt, cube_paths: list[str], labels: list[tuple[str, str]], input_planes: list[int]
                    ) -> tuple[str, ...]:
    """test.py's cubes against the training record: one line and a stop when they are unlike it, unless
    --accept_inputs; returns the lines the results manifest keeps (notes, accepted differences)."""
    record = load_training_inputs(opt.checkpoints_dir, opt.name)
    if record is None:
        print(f"note: {record_path(opt.checkpoints_dir, opt.name)} not found (trained before training inputs "
              f"were recorded): the input planes are not compared with training")
        return ()
    header, parts, _ = sampled_planes(cube_paths, input_planes)
    pixel = pixel_arcsec_of(header) if header is not None else None
    given = [GivenBand(labels[p][0].rpartition(":")[0] or labels[p][0], labels[p][1], pixel,
                       summarise(parts[p]), f"plane {p}: {labels[p][0]}") for p in input_planes]
    result = compare_bands(record, given, on_grid=True)
    for note in result.notes:
        print(f"note: {note}")
    if result.refusals and not getattr(opt, "accept_inputs", False):
        raise UserError(f"the cubes in {opt.dataroot} are unlike the model's training inputs: "
                        f"{'; '.join(result.refusals)}; give cubes built like the training ones (same surveys in "
                        f"the same order, unit and pixel scale), or run anyway with --accept_inputs (the results "
                        f"manifest records it)")
    for refusal in result.refusals:
        print(f"warning: accepted with --accept_inputs: {refusal}")
    return tuple(result.notes) + tuple(f"accepted unlike training (--accept_inputs): {r}" for r in result.refusals)
