"""Feed survey cutouts to a trained generator exactly as its training data fed it, and read its output.

PNG-trained models (aligned/single datasets): each survey becomes the 8-bit panel the dataset builder
writes (8-bit tiles keep their levels, FITS tiles are cut and stretched; grey repeated on R, G, B,
no data black), then the panel is read as the dataset reads it (PIL "L" for a 1-channel panel) and
scaled to [-1, 1]. FITS-trained models (fits_aligned): each input plane is normalised with the
checkpoint's fits_norm.json, no data -> 0. The output is the band in its training units: 8-bit levels
of the target survey (PNG models; channels averaged) or physical values (FITS models, inverted).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.base_dataset import to_normalized_array
from data.fits_norm import CubeNorm, PlaneNorm
from data.fits_aligned_dataset import choose_planes
from data.panels import panel_channels
from data.sky.hips_out import DisplayStretch
from data.sky.stretch import StretchSettings, to_uint8
from util.errors import UserError

CHANNEL_INDEX = {"I": 0, "R": 0, "G": 1, "B": 2}


@dataclass(frozen=True)
class PanelInput:
    """What the network reads from one input survey."""

    label: str  # the training survey (or panel) it stands for
    channels: int  # network channels from this survey
    letters: tuple[str, ...] = ()  # FITS models: the survey channels (I, or R/G/B) of the planes
    norms: tuple[PlaneNorm, ...] = ()  # FITS models: each plane's normalisation


@dataclass(frozen=True)
class BandModel:
    """A generator's input panels and its output band, in training terms."""

    kind: str  # "png" or "fits"
    panels: tuple[PanelInput, ...]
    output_channels: int
    output_label: str
    unit: str
    output_norm: PlaneNorm | None = None

    @property
    def input_channels(self) -> int:
        return sum(p.channels for p in self.panels)


def png_band_model(opt, n_inputs: int, labels: list[str] | None = None, target: str = "panel 0") -> BandModel:
    """Inputs of an aligned/single model: the B side panels (--direction BtoA) or panel A (AtoB)."""
    if opt.direction == "BtoA":
        channels = panel_channels(opt, n_inputs)[1]
        out = opt.output_nc
    else:
        channels, out = [opt.input_nc], opt.output_nc
    names = labels if labels and len(labels) == len(channels) else [f"panel {i + 1}" for i in range(len(channels))]
    if out not in (1, 3):
        raise UserError(f"the model makes {out} channels; predict_sky.py writes one band (1 or 3 channels)")
    return BandModel("png", tuple(PanelInput(n, c) for n, c in zip(names, channels)), out, target,
                     "8-bit tile level")


def fits_band_model(opt, norm: CubeNorm) -> BandModel:
    """Inputs of a fits_aligned model: its input planes grouped by survey (PLNAM 'survey:channel')."""
    targets, inputs = choose_planes(opt.target_planes, opt.input_planes, len(norm.planes))
    if len(targets) != 1:
        raise UserError(f"the model makes {len(targets)} planes ({opt.target_planes}); "
                        f"predict_sky.py writes one band")
    groups: list[tuple[str, list[str], list[PlaneNorm]]] = []
    for plane in inputs:
        name, letter = split_label(norm.labels[plane][0])
        if groups and groups[-1][0] == name and letter not in groups[-1][1] and letter != "I":
            groups[-1][1].append(letter)
            groups[-1][2].append(norm.plane(plane))
        else:
            groups.append((name, [letter], [norm.plane(plane)]))
    panels = tuple(PanelInput(name, len(letters), tuple(letters), tuple(norms)) for name, letters, norms in groups)
    label, unit = norm.labels[targets[0]]
    return BandModel("fits", panels, 1, label, unit, norm.plane(targets[0]))


def split_label(label: str) -> tuple[str, str]:
    """'GLIMPSE360:R' -> ('GLIMPSE360', 'R'); a label without a channel is one grey plane."""
    name, sep, letter = label.rpartition(":")
    if sep and letter in CHANNEL_INDEX:
        return name, letter
    return label, "I"


def check_surveys(model: BandModel, names: list[str], channels: list[int]) -> None:
    """One clear line when the surveys cannot stand for the model's input panels (count or channels)."""
    wanted = ", ".join(f"{p.label} ({p.channels} ch)" for p in model.panels)
    if len(names) != len(model.panels):
        raise UserError(f"the model reads {len(model.panels)} input survey(s) [{wanted}], "
                        f"--surveys gives {len(names)}")
    for panel, name, have in zip(model.panels, names, channels):
        if model.kind == "fits":
            colour = any(letter in "RGB" for letter in panel.letters)
            if colour != (have == 3):
                raise UserError(f"survey {name} has {have} channel(s) but the model's input {panel.label} "
                                f"is {'colour' if colour else 'grey'} ({'/'.join(panel.letters)})")
        elif have == 3 and panel.channels == 1:
            raise UserError(f"survey {name} is colour but the model's input {panel.label} is one grey channel")
        elif panel.channels not in (1, 3):
            raise UserError(f"the model's input {panel.label} has {panel.channels} channels (1 or 3 expected)")


def network_input(model: BandModel, values: list[np.ndarray], is_8bit: list[bool],
                  stretch: StretchSettings, cuts: list[tuple[float, float] | None] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(x, valid): the network input (C, H, W) float32 and the pixels where every survey has data.

    values: per survey (H, W, C) float32 with NaN = no data; cuts: fixed value cuts per survey for
    FITS tiles in PNG models (None = per cutout, as the dataset builder does).
    """
    from PIL import Image

    valid = np.logical_and.reduce([np.isfinite(v[..., 0]) for v in values])
    parts = []
    for k, (panel, band) in enumerate(zip(model.panels, values)):
        if model.kind == "fits":
            planes = [norm.normalize(band[..., CHANNEL_INDEX[letter]])
                      for letter, norm in zip(panel.letters, panel.norms)]
            stacked = np.stack(planes).astype(np.float32)
            stacked[~np.isfinite(stacked)] = 0.0
            parts.append(stacked)
            continue
        levels = to_uint8(band, is_8bit[k], stretch, None if cuts is None else cuts[k])
        rgb = np.repeat(levels, 3, axis=2) if levels.shape[2] == 1 else levels[..., :3]
        image = Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")
        parts.append(to_normalized_array(image.convert("L") if panel.channels == 1 else image))
    return np.concatenate(parts, axis=0), valid


def physical_output(model: BandModel, output: np.ndarray) -> np.ndarray:
    """Generator output (C, H, W) in [-1, 1] -> the band (H, W) float32 in training units."""
    if model.kind == "fits":
        return model.output_norm.invert(output[0])
    return ((np.asarray(output, dtype=np.float64).mean(axis=0) + 1.0) * 127.5).astype(np.float32)


def display_stretch(model: BandModel) -> DisplayStretch:
    """The PNG levels the training saw: (y + 1) 127.5 of the network's own scale."""
    norm = model.output_norm
    if norm is None:
        return DisplayStretch("linear", 0.0, 255.0)
    return DisplayStretch(norm.mode, norm.low, norm.high, norm.softening)


# ---- what training saw -----------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingData:
    """Facts about the training set: pixel scale the network saw, panel surveys (manifest order)."""

    pixel_deg: float | None
    source: str
    surveys: tuple[str, ...] = ()
    size: int | None = None  # panel size of the training images, px
    dataroot: str | None = None  # the training set's folder (manifest.csv: splits by sky cell)


def _dataroot_candidates(dataroot: str, checkpoints_dir: str) -> list[Path]:
    path = Path(dataroot).expanduser()
    if path.is_absolute():
        return [path]
    return [path, Path(checkpoints_dir).expanduser().resolve().parent / path]


def training_data(opt) -> TrainingData:
    """Pixel scale from the saved --dataroot: manifest.csv fov/size (aladin_data.py), else the WCS of
    a training FITS cube; a --preprocess resize changes what the network saw (fov / load_size)."""
    from data.base_dataset import size_before_crop
    from data.sky.manifest import read_manifest

    for root in _dataroot_candidates(str(opt.dataroot), str(opt.checkpoints_dir)):
        rows = read_manifest(root / "manifest.csv") if root.is_dir() else []
        rows = [r for r in rows if r.get("fov") and r.get("size")]
        if rows:
            fov = float(np.median([float(r["fov"]) for r in rows]))
            size = int(np.median([int(float(r["size"])) for r in rows]))
            seen = size if opt.dataset_mode == "fits_aligned" else size_before_crop(opt, (size, size))[0]
            surveys = tuple(rows[0].get("surveys", "").split(";")) if rows[0].get("surveys") else ()
            return TrainingData(fov / seen, f"{root / 'manifest.csv'} (fov {fov:g} deg / {seen} px)", surveys,
                                size, str(root.resolve()))
        cube = next(iter(sorted((root / "train").glob("*.fits"))), None) if (root / "train").is_dir() else None
        if cube is not None:
            scale = _cube_pixel_deg(cube)
            if scale:
                return TrainingData(scale, f"WCS of {cube}")
    return TrainingData(None, f"--dataroot {opt.dataroot} (not found or without manifest.csv / FITS cubes)")


def _cube_pixel_deg(path: Path) -> float | None:
    from data.sky.fits_io import celestial_wcs, read_header

    wcs = celestial_wcs(read_header(str(path)))
    if wcs is None:
        return None
    from astropy.wcs.utils import proj_plane_pixel_scales

    return float(np.mean(proj_plane_pixel_scales(wcs)))
