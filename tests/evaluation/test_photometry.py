"""Point-source photometry on star fields with known positions, fluxes and colours."""
import numpy as np
import pytest

from evaluation import photometry
from evaluation.photometry import PhotometryConfig, compare_sources, summarise

SIZE = 112
BACKGROUND = 0.1


def star_positions(rng, spacing=16):
    """Stars on a jittered grid: far enough apart that apertures and annuli never overlap."""
    centres = np.arange(spacing, SIZE - spacing + 1, spacing, dtype=float)
    grid = np.array([(r, c) for r in centres for c in centres])
    return grid + rng.uniform(-1.5, 1.5, grid.shape)


def render(positions, fluxes, colours=None, noise=0.0, rng=None, psf_sigma=1.0):
    """Gaussian stars on a flat background; `colours` rows are per-channel shares of each flux."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    channels = 1 if colours is None else colours.shape[1]
    image = np.full((SIZE, SIZE, channels), BACKGROUND)
    for i, ((r, c), flux) in enumerate(zip(positions, fluxes)):
        psf = np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * psf_sigma ** 2)) / (2 * np.pi * psf_sigma ** 2)
        share = np.ones(1) if colours is None else colours[i] * channels
        image += psf[..., None] * flux * share
    if noise:
        image += rng.normal(0, noise, image.shape)
    return image[..., 0] if colours is None else image


@pytest.fixture
def rng():
    return np.random.default_rng(1)


@pytest.fixture
def field(rng):
    positions = star_positions(rng)
    fluxes = rng.uniform(2.0, 4.0, len(positions))
    return positions, fluxes


def test_detection_finds_every_star_where_it_is(field, rng):
    positions, fluxes = field
    image = render(positions, fluxes, noise=0.01, rng=rng)
    found, sigma = photometry.detect_sources(image, PhotometryConfig())
    assert len(found) == len(positions)
    assert sigma == pytest.approx(0.01, rel=0.3)
    distances = np.min(np.linalg.norm(found[:, None] - positions[None], axis=2), axis=1)
    assert distances.max() < 0.5


def test_aperture_flux_recovers_known_flux_on_any_background(field):
    positions, fluxes = field
    cfg = PhotometryConfig(aperture_radius=4.0, annulus=(6.0, 8.0))
    measured = photometry.aperture_fluxes(render(positions, fluxes) + 0.3, positions, cfg)[:, 0]
    inside = 1 - np.exp(-4.0 ** 2 / 2)  # share of a unit Gaussian PSF within 4 sigma
    assert measured == pytest.approx(fluxes * inside, rel=0.01)


def test_identical_images_have_no_errors(field, rng):
    real = render(*field, noise=0.01, rng=rng)
    result = summarise([compare_sources(real, real.copy())])
    assert result["n_sources"] == len(field[0])
    assert result["flux_error"] == 0.0
    assert result["false_source_rate"] == 0.0
    assert result["completeness"] == 1.0
    assert result["colour_error"] is None  # grey target: colour is undefined


def test_scaled_image_gives_known_flux_error(field):
    real = render(*field)
    result = summarise([compare_sources(0.8 * real, real)])
    assert result["flux_error"] == pytest.approx(0.2, abs=1e-9)


def test_missing_sources_give_full_flux_error_and_lower_completeness(field):
    positions, fluxes = field
    real = render(positions, fluxes)
    kept = np.arange(len(positions)) % 4 == 0
    fake = render(positions[kept], fluxes[kept])
    comparison = compare_sources(fake, real)
    errors = np.sort(comparison.flux_errors)
    assert errors[:kept.sum()] == pytest.approx(0.0, abs=1e-9)
    assert errors[kept.sum():] == pytest.approx(1.0, abs=0.02)
    result = summarise([comparison])
    assert result["flux_error"] == pytest.approx(1.0, abs=0.02)
    assert result["completeness"] == pytest.approx(kept.mean())
    assert result["false_source_rate"] == 0.0


def test_extra_sources_give_known_false_source_rate(field, rng):
    positions, fluxes = field
    real = render(positions, fluxes, noise=0.005, rng=rng)
    extra = positions[:6] + np.array([8.0, 8.0])  # between the grid stars, far from any real one
    fake = real + render(extra, np.full(6, 3.0)) - BACKGROUND
    result = summarise([compare_sources(fake, real)])
    assert result["n_generated_sources"] == len(positions) + 6
    assert result["false_source_rate"] == pytest.approx(6 / (len(positions) + 6))
    assert result["completeness"] == 1.0


def test_swapped_colours_give_known_colour_error(field):
    positions, fluxes = field
    n = len(positions)
    colours = np.tile([0.5, 0.3, 0.2], (n, 1))
    real = render(positions, fluxes, colours=colours)
    fake = render(positions, fluxes, colours=colours[:, ::-1])
    result = summarise([compare_sources(fake, real)])
    assert result["colour_error"] == pytest.approx((0.3 + 0.0 + 0.3) / 3, abs=1e-6)
    assert result["flux_error"] == pytest.approx(0.0, abs=1e-9)
    assert summarise([compare_sources(real, real.copy())])["colour_error"] == 0.0


def test_grey_image_saved_as_rgb_is_not_colour(field):
    grey = render(*field)
    assert not photometry.is_colour(np.stack([grey] * 3, axis=2))
    assert photometry.is_colour(render(*field, colours=np.tile([0.6, 0.3, 0.1], (len(field[0]), 1))))


def test_pooled_medians_over_images(field):
    real = render(*field)
    pooled = summarise([compare_sources(0.9 * real, real), compare_sources(0.5 * real, real),
                        compare_sources(0.5 * real, real)])
    assert pooled["flux_error"] == pytest.approx(0.5)
    assert pooled["n_sources"] == 3 * len(field[0])


def test_blank_real_image_has_no_sources_and_no_crash():
    blank = np.full((32, 32), 0.2)
    result = summarise([compare_sources(blank, blank.copy())])
    assert result["n_sources"] == 0 and result["flux_error"] is None and result["completeness"] is None


def test_a_false_source_on_a_faint_real_peak_is_not_invented(rng):
    """A generated star where the real image has a 4-sigma peak is false (below the 5-sigma catalogue)
    but not invented; one where the real image has nothing is both."""
    noise = 0.01
    positions = np.array([[30.0, 30.0], [30.0, 80.0]])
    real = render(positions[:1], np.array([4 * 2 * np.pi * noise]), noise=noise, rng=rng)  # a 4-sigma peak
    fake = render(positions, np.full(2, 20 * 2 * np.pi * noise))  # both stars, bright
    result = summarise([compare_sources(fake, real)])
    assert result["n_sources"] == 0 and result["n_generated_sources"] == 2
    assert result["false_source_rate"] == 1.0 and result["invented_source_rate"] == 0.5
