"""Point-source photometry for judging generated sky images the way astronomers would.

Sources are detected in the REAL target (local maxima of the background-subtracted image above
k sigma of its noise), then measured with the same apertures in the real and the generated image:
flux (aperture sum minus the local background from an annulus) and colour (each channel's share
of the flux). Sources detected in the generated image, with the real image's noise threshold,
that have no real source nearby are false sources: a generator that invents stars is penalised
even when its pixel metrics look good.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy.stats import sigma_clipped_stats
from scipy import ndimage
from scipy.spatial import cKDTree

NOISE_FLOOR = 0.5 / 255.0  # an 8-bit image cannot show noise below about half a grey level
COLOUR_TOLERANCE = 2.0 / 255.0  # channels closer than this everywhere: a grey image stored as RGB


@dataclass(frozen=True)
class PhotometryConfig:
    """Detection and aperture settings, in pixels."""
    k_sigma: float = 5.0
    peak_radius: int = 2  # a peak must be the maximum within this radius
    aperture_radius: float = 2.5
    annulus: tuple[float, float] = (5.0, 8.0)
    match_radius: float = 2.0  # a generated source within this distance of a real one is real
    background_box: int = 15  # median filter size for the smooth background (nebulae, dust)
    noise_floor: float = NOISE_FLOOR  # 8-bit pictures; 0 for float images in physical units


@dataclass
class SourceComparison:
    """Per-source results for one image pair; pooled over a folder by `summarise`."""
    n_real: int = 0
    n_fake: int = 0
    n_false: int = 0
    n_recovered: int = 0
    flux_errors: list[float] = field(default_factory=list)
    real_fluxes: list[float] = field(default_factory=list)  # the measurable sources' fluxes, for scatter plots
    fake_fluxes: list[float] = field(default_factory=list)
    colour_errors: list[float] = field(default_factory=list)
    is_colour: bool = False


def to_grey(image: np.ndarray) -> np.ndarray:
    """Mean over channels: the detection image of a colour picture."""
    image = np.asarray(image, dtype=np.float64)
    return image if image.ndim == 2 else image.mean(axis=2)


def is_colour(image: np.ndarray) -> bool:
    """True when the channels carry different information (not a grey image saved as RGB)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2 or image.shape[2] < 2:
        return False
    return float(np.max(np.ptp(image, axis=2))) > COLOUR_TOLERANCE


def subtract_background(grey: np.ndarray, box: int) -> np.ndarray:
    """The image minus its running median: removes diffuse emission, keeps point sources."""
    return grey - ndimage.median_filter(grey, size=box, mode="reflect")


def noise_sigma(residual: np.ndarray, floor: float = NOISE_FLOOR) -> float:
    """Sigma-clipped standard deviation of a background-subtracted image (an 8-bit picture cannot show
    noise below about half a grey level: `floor`)."""
    _, _, std = sigma_clipped_stats(residual, sigma=3.0, maxiters=5)
    std = float(std) if np.isfinite(std) else 0.0
    return max(std, floor)


def find_peaks(residual: np.ndarray, threshold: float, peak_radius: int, border: int) -> np.ndarray:
    """(N, 2) float (row, col) positions of local maxima above `threshold`, away from the border.

    A flat-topped (saturated) star gives several equal maxima; they are merged into their centroid.
    """
    size = 2 * peak_radius + 1
    is_peak = (residual == ndimage.maximum_filter(residual, size=size, mode="nearest")) & (residual > threshold)
    labels, n = ndimage.label(is_peak)
    if n == 0:
        return np.zeros((0, 2))
    centres = np.array(ndimage.center_of_mass(is_peak, labels, range(1, n + 1)), dtype=np.float64).reshape(-1, 2)
    centres = refine_centroids(residual, centres)
    h, w = residual.shape
    keep = ((centres[:, 0] >= border) & (centres[:, 0] <= h - 1 - border)
            & (centres[:, 1] >= border) & (centres[:, 1] <= w - 1 - border))
    return centres[keep]


def refine_centroids(residual: np.ndarray, peaks: np.ndarray, half: int = 1) -> np.ndarray:
    """Sub-pixel positions: the flux-weighted centroid of the positive residual around each peak."""
    h, w = residual.shape
    refined = peaks.copy()
    for i, (row, col) in enumerate(np.rint(peaks).astype(int)):
        r0, r1 = max(0, row - half), min(h, row + half + 1)
        c0, c1 = max(0, col - half), min(w, col + half + 1)
        weights = np.clip(residual[r0:r1, c0:c1], 0.0, None)
        total = weights.sum()
        if total > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            refined[i] = ((rows * weights).sum() / total, (cols * weights).sum() / total)
    return refined


def aperture_fluxes(image: np.ndarray, positions: np.ndarray, cfg: PhotometryConfig) -> np.ndarray:
    """(N, C) background-subtracted aperture sums; the background is the annulus median per channel."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        image = image[..., None]
    h, w, channels = image.shape
    r_in, r_out = cfg.annulus
    reach = int(np.ceil(r_out))
    fluxes = np.zeros((len(positions), channels))
    for i, (row, col) in enumerate(positions):
        r0, r1 = max(0, int(round(row)) - reach), min(h, int(round(row)) + reach + 1)
        c0, c1 = max(0, int(round(col)) - reach), min(w, int(round(col)) + reach + 1)
        rows, cols = np.mgrid[r0:r1, c0:c1]
        dist = np.hypot(rows - row, cols - col)
        stamp = image[r0:r1, c0:c1]
        aperture = dist <= cfg.aperture_radius
        ring = (dist >= r_in) & (dist <= r_out)
        background = np.median(stamp[ring], axis=0) if ring.any() else np.zeros(channels)
        fluxes[i] = (stamp[aperture] - background).sum(axis=0)
    return fluxes


def detect_sources(grey: np.ndarray, cfg: PhotometryConfig, sigma: float | None = None) -> tuple[np.ndarray, float]:
    """Positions of sources above k sigma, and the sigma used (the image's own unless given)."""
    residual = subtract_background(grey, cfg.background_box)
    if sigma is None:
        sigma = noise_sigma(residual, cfg.noise_floor)
    border = int(np.ceil(cfg.aperture_radius))
    return find_peaks(residual, cfg.k_sigma * sigma, cfg.peak_radius, border), sigma


def has_neighbour(points: np.ndarray, others: np.ndarray, radius: float) -> np.ndarray:
    """For each point, whether any of `others` lies within `radius`."""
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    if len(others) == 0:
        return np.zeros(len(points), dtype=bool)
    distances, _ = cKDTree(others).query(points, k=1)
    return distances <= radius


def colour_shares(fluxes: np.ndarray) -> np.ndarray:
    """Each channel's share of the total flux (negative fluxes clipped to 0); NaN rows when no flux."""
    positive = np.clip(fluxes, 0.0, None)
    total = positive.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, positive / np.where(total > 0, total, 1.0), np.nan)


def compare_sources(fake: np.ndarray, real: np.ndarray, cfg: PhotometryConfig = PhotometryConfig()) -> SourceComparison:
    """Detect in the real image, measure both at the same positions, and find invented sources."""
    fake = np.asarray(fake, dtype=np.float64)
    real = np.asarray(real, dtype=np.float64)
    if fake.shape != real.shape:
        raise ValueError(f"image shapes differ: {fake.shape} vs {real.shape}")
    real_pos, sigma = detect_sources(to_grey(real), cfg)
    fake_pos, _ = detect_sources(to_grey(fake), cfg, sigma=sigma)
    result = SourceComparison(n_real=len(real_pos), n_fake=len(fake_pos), is_colour=is_colour(real))
    result.n_false = int((~has_neighbour(fake_pos, real_pos, cfg.match_radius)).sum())
    result.n_recovered = int(has_neighbour(real_pos, fake_pos, cfg.match_radius).sum())
    if len(real_pos) == 0:
        return result
    real_flux = aperture_fluxes(real, real_pos, cfg)
    fake_flux = aperture_fluxes(fake, real_pos, cfg)
    real_total, fake_total = real_flux.mean(axis=1), fake_flux.mean(axis=1)
    measurable = real_total > 0
    result.flux_errors = (np.abs(fake_total - real_total)[measurable] / real_total[measurable]).tolist()
    result.real_fluxes = real_total[measurable].tolist()
    result.fake_fluxes = fake_total[measurable].tolist()
    if result.is_colour:
        diff = np.abs(colour_shares(fake_flux) - colour_shares(real_flux)).mean(axis=1)
        result.colour_errors = diff[measurable & np.isfinite(diff)].tolist()
    return result


def _median_or_none(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def summarise(comparisons: list[SourceComparison]) -> dict[str, float | int | None]:
    """Pool sources over many image pairs into the figures of metrics.json (None = undefined)."""
    flux = [e for c in comparisons for e in c.flux_errors]
    colour = [e for c in comparisons for e in c.colour_errors]
    n_real = sum(c.n_real for c in comparisons)
    n_fake = sum(c.n_fake for c in comparisons)
    return {
        "n_sources": n_real,
        "flux_error": _median_or_none(flux),
        "colour_error": _median_or_none(colour) if any(c.is_colour for c in comparisons) else None,
        "false_source_rate": (sum(c.n_false for c in comparisons) / n_fake) if n_fake else 0.0,
        "completeness": (sum(c.n_recovered for c in comparisons) / n_real) if n_real else None,
        "n_generated_sources": n_fake,
    }
