"""Synthetic black-body star fields written as aligned multi-band images with known truth.

Each star has a temperature and a brightness. Its flux in every band is Planck's law integrated
over that band (data.sky.blackbody), it is drawn with the band's own PSF width, and each band gets its
own noise. Panel 0 (A, the target) is an optical colour image whose R, G, B channels are three
optical sub-bands; the input panels are grey: a broad optical band at low resolution, a UV band
and an IR band. Brightness is visible in the optical input alone, but colour needs temperature,
and temperature needs a flux ratio between bands: so colours are predictable only from several bands.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from data.sky.blackbody import Band, relative_band_fluxes
from util.fileio import atomic_write_bytes, atomic_write_text
from util.progress import progress as progress_bar

REFERENCE = Band("optical", 0.40, 0.70)  # star brightness is drawn in this band


@dataclass(frozen=True)
class Panel:
    """One panel of the aligned image: one band (grey) or three (an RGB picture, red first)."""
    name: str
    bands: tuple[Band, ...]
    psf_sigma_px: float
    noise: float  # per-pixel Gaussian noise, in the same linear units as the star fluxes


TARGET = Panel("optical RGB", (Band("R", 0.60, 0.70), Band("G", 0.50, 0.60), Band("B", 0.40, 0.50)), 1.0, 0.004)
INPUTS = (
    Panel("optical grey (low resolution)", (REFERENCE,), 1.8, 0.004),
    Panel("UV", (Band("UV", 0.30, 0.40),), 1.4, 0.008),
    Panel("IR", (Band("IR", 1.20, 2.20),), 1.8, 0.008),
)


@dataclass(frozen=True)
class SkySettings:
    """What a field looks like; defaults give a few dozen stars per 64x64 field."""
    size: int = 64
    stars_per_kpx: float = 8.0  # mean number of stars per 1000 pixels
    t_min_k: float = 3000.0
    t_max_k: float = 30000.0
    flux_min: float = 0.3  # reference-band flux (PSF integral) of the faintest star
    flux_max: float = 30.0
    sky_level: float = 0.01
    stretch_soft: float = 0.05  # asinh softening: fluxes above it are compressed logarithmically
    stretch_top: float = 4.0  # linear value that maps to white


@dataclass(frozen=True)
class StarField:
    rows: np.ndarray
    cols: np.ndarray
    temperature_k: np.ndarray
    flux: np.ndarray  # in the reference band


def sample_stars(rng: np.random.Generator, settings: SkySettings) -> StarField:
    """Positions uniform, temperatures log-uniform, brightness from a Euclidean N(>F) ~ F^-1.5 law."""
    n = rng.poisson(settings.stars_per_kpx * settings.size ** 2 / 1000.0)
    u = rng.uniform(size=n)
    # inverse CDF of a power law between flux_min and flux_max with N(>F) ~ F^-1.5
    lo, hi = settings.flux_min ** -1.5, settings.flux_max ** -1.5
    flux = (lo - u * (lo - hi)) ** (-1.0 / 1.5)
    temperature = np.exp(rng.uniform(np.log(settings.t_min_k), np.log(settings.t_max_k), n))
    rows, cols = rng.uniform(-0.5, settings.size - 0.5, (2, n))
    return StarField(rows, cols, temperature, flux)


def render_band(stars: StarField, band_flux: np.ndarray, psf_sigma: float, size: int) -> np.ndarray:
    """Noise-free linear image: each star a unit-integral Gaussian PSF times its band flux."""
    image = np.zeros((size, size))
    reach = int(np.ceil(4 * psf_sigma))
    for row, col, flux in zip(stars.rows, stars.cols, band_flux):
        r0, r1 = max(0, int(row) - reach), min(size, int(row) + reach + 2)
        c0, c1 = max(0, int(col) - reach), min(size, int(col) + reach + 2)
        if r0 >= r1 or c0 >= c1:
            continue
        rr, cc = np.mgrid[r0:r1, c0:c1]
        psf = np.exp(-((rr - row) ** 2 + (cc - col) ** 2) / (2 * psf_sigma ** 2)) / (2 * np.pi * psf_sigma ** 2)
        image[r0:r1, c0:c1] += flux * psf
    return image


def stretch(linear: np.ndarray, settings: SkySettings) -> np.ndarray:
    """asinh display stretch to [0, 1], the same for every band and image, so ratios survive."""
    soft = settings.stretch_soft
    return np.clip(np.arcsinh(np.clip(linear, 0, None) / soft) / np.arcsinh(settings.stretch_top / soft), 0, 1)


def render_panel(stars: StarField, panel: Panel, settings: SkySettings, rng: np.random.Generator) -> np.ndarray:
    """(H, W, len(bands)) stretched panel in [0, 1]."""
    ratios = relative_band_fluxes(stars.temperature_k, list(panel.bands), REFERENCE)
    channels = []
    for i in range(len(panel.bands)):
        linear = render_band(stars, stars.flux * ratios[:, i], panel.psf_sigma_px, settings.size)
        linear += settings.sky_level + rng.normal(0.0, panel.noise, linear.shape)
        channels.append(stretch(linear, settings))
    return np.stack(channels, axis=2)


def render_sample(rng: np.random.Generator, settings: SkySettings,
                  panels: tuple[Panel, ...] = (TARGET, *INPUTS)) -> tuple[np.ndarray, StarField]:
    """One aligned image (H, W * n_panels, 3) uint8, grey panels repeated to RGB, and its stars."""
    stars = sample_stars(rng, settings)
    pictures = []
    for panel in panels:
        picture = render_panel(stars, panel, settings, rng)
        if picture.shape[2] == 1:
            picture = np.repeat(picture, 3, axis=2)
        pictures.append(picture)
    aligned = np.concatenate(pictures, axis=1)
    return (aligned * 255.0 + 0.5).astype(np.uint8), stars


def describe_panels(panels: tuple[Panel, ...] = (TARGET, *INPUTS)) -> str:
    """CSV of what each panel shows (bands in micrometres, PSF, noise): the truth beside the data."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["panel", "name", "bands_um", "psf_sigma_px", "noise"])
    for i, panel in enumerate(panels):
        bands = " ".join(f"{b.name}:{b.lo_um}-{b.hi_um}" for b in panel.bands)
        writer.writerow([i, panel.name, bands, panel.psf_sigma_px, panel.noise])
    return buffer.getvalue()


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_dataset(out_dir: str | Path, n_train: int, n_test: int, settings: SkySettings = SkySettings(),
                  seed: int = 0, progress: bool = True) -> Path:
    """`out_dir/{train,test}/NNNNN.png` (A|B|C|D) and `manifest.csv`; existing images are kept.

    Each image has its own seed (seed, index), so a re-run or a resumed run writes the same pictures.
    """
    out = Path(out_dir)
    jobs = [("train", i) for i in range(n_train)] + [("test", n_train + i) for i in range(n_test)]
    rows = []
    for split, index in progress_bar(jobs, desc="synthetic sky", unit="img", enabled=progress):
        path = out / split / f"{index:05d}.png"
        rng = np.random.default_rng([seed, index])
        if path.exists():
            n_stars = len(sample_stars(rng, settings).flux)
        else:
            pixels, stars = render_sample(rng, settings)
            atomic_write_bytes(path, png_bytes(pixels))
            n_stars = len(stars.flux)
        rows.append({"file": f"{split}/{path.name}", "split": split, "n_stars": n_stars})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["file", "split", "n_stars"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "manifest.csv", buffer.getvalue())
    atomic_write_text(out / "bands.csv", describe_panels())
    return out
