"""Black-body physics of the synthetic sky and the dataset it writes."""
import numpy as np
import pytest
from PIL import Image

from data.sky import blackbody, synthetic_sky
from data.sky.blackbody import Band
from data.sky.synthetic_sky import INPUTS, TARGET, SkySettings, StarField
from evaluation.photometry import PhotometryConfig, aperture_fluxes

SIGMA_SB = 5.670374419e-8  # W m^-2 K^-4 (CODATA 2018)


def test_band_integral_matches_rayleigh_jeans_limit():
    band = Band("mm", 1000.0, 2000.0)  # 1-2 mm at 3000 K: h c / (lambda k T) < 0.005
    t = 3000.0
    lo, hi = band.lo_um * 1e-6, band.hi_um * 1e-6
    rayleigh_jeans = 2 * blackbody.C * blackbody.K_B * t * (lo ** -3 - hi ** -3) / 3
    assert blackbody.band_radiance(t, band)[0] == pytest.approx(rayleigh_jeans, rel=0.005)


def test_all_wavelengths_give_stefan_boltzmann():
    t = 5800.0
    total = np.pi * blackbody.band_radiance(t, Band("all", 0.05, 500.0), samples=400001)[0]
    assert total == pytest.approx(SIGMA_SB * t ** 4, rel=0.002)


def test_hotter_stars_are_bluer():
    temperatures = np.geomspace(2500, 40000, 30)
    red, blue = TARGET.bands[0], TARGET.bands[2]
    ratios = blackbody.relative_band_fluxes(temperatures, [blue, red], synthetic_sky.REFERENCE)
    blue_over_red = ratios[:, 0] / ratios[:, 1]
    assert np.all(np.diff(blue_over_red) > 0)
    uv_over_ir = blackbody.relative_band_fluxes(temperatures, [INPUTS[1].bands[0], INPUTS[2].bands[0]],
                                                synthetic_sky.REFERENCE)
    assert np.all(np.diff(uv_over_ir[:, 0] / uv_over_ir[:, 1]) > 0)


def test_white_star_is_white_in_every_band():
    bands = [*TARGET.bands, *(p.bands[0] for p in INPUTS)]
    assert blackbody.relative_band_fluxes(np.array([6000.0]), bands, synthetic_sky.REFERENCE) == pytest.approx(1.0)


def render_one(temperature, panel, flux=20.0):
    stars = StarField(np.array([16.0]), np.array([16.0]), np.array([temperature]), np.array([flux]))
    quiet = panel.__class__(panel.name, panel.bands, panel.psf_sigma_px, 0.0)
    settings = SkySettings(size=32)
    return synthetic_sky.render_panel(stars, quiet, settings, np.random.default_rng(0))


def test_rendered_hot_star_is_bluer_and_colour_needs_more_than_the_optical_band():
    cfg = PhotometryConfig()
    centre = np.array([[16.0, 16.0]])
    colours = {}
    for t in (3500.0, 20000.0):
        rgb = aperture_fluxes(render_one(t, TARGET), centre, cfg)[0]
        colours[t] = rgb[2] / rgb[0]
    assert colours[20000.0] > 1.5 * colours[3500.0]
    # same reference-band flux: the optical input panel alone cannot tell the two stars apart ...
    optical = [render_one(t, INPUTS[0]) for t in (3500.0, 20000.0)]
    assert np.abs(optical[0] - optical[1]).max() < 1e-9
    # ... but the UV panel can, so the colour is predictable only with more bands
    uv = [aperture_fluxes(render_one(t, INPUTS[1]), centre, cfg)[0, 0] for t in (3500.0, 20000.0)]
    assert uv[1] > 2 * uv[0]


def test_write_dataset_layout_and_resume(tmp_path):
    settings = SkySettings(size=32)
    out = synthetic_sky.write_dataset(tmp_path / "sky", n_train=3, n_test=2, settings=settings, seed=5, progress=False)
    train = sorted((out / "train").glob("*.png"))
    test = sorted((out / "test").glob("*.png"))
    assert len(train) == 3 and len(test) == 2
    pixels = np.asarray(Image.open(train[0]))
    assert pixels.shape == (32, 128, 3)
    for panel in range(1, 4):  # input panels are grey
        grey = pixels[:, 32 * panel: 32 * (panel + 1)]
        assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 0], grey[..., 2])
    manifest = (out / "manifest.csv").read_text().splitlines()
    assert manifest[0] == "file,split,n_stars" and len(manifest) == 6
    before = {p: p.stat().st_mtime_ns for p in train + test}
    first = train[0].read_bytes()
    synthetic_sky.write_dataset(out, n_train=3, n_test=2, settings=settings, seed=5, progress=False)
    assert {p: p.stat().st_mtime_ns for p in train + test} == before
    train[0].unlink()
    synthetic_sky.write_dataset(out, n_train=3, n_test=2, settings=settings, seed=5, progress=False)
    assert train[0].read_bytes() == first  # same seed per image: a resumed run writes the same picture


def test_target_colour_follows_the_uv_to_optical_ratio_not_the_optical_flux():
    """Known truth on whole rendered fields: measured with the evaluation's own photometry, a star's
    target colour (B/R) is predicted by the UV/optical flux ratio of the input panels, and not by the
    optical input alone. This is what a multi-band model can learn and a one-band model cannot."""
    from scipy.stats import spearmanr

    from evaluation.photometry import detect_sources, to_grey

    size, cfg = 64, PhotometryConfig(aperture_radius=3.0)
    colour, uv_ratio, optical = [], [], []
    for index in range(6):
        pixels, _ = synthetic_sky.render_sample(np.random.default_rng([3, index]), SkySettings(size=size))
        panels = [pixels[:, k * size:(k + 1) * size].astype(float) / 255 for k in range(4)]
        positions, _ = detect_sources(to_grey(panels[0]), cfg)
        target = aperture_fluxes(panels[0], positions, cfg)
        opt = aperture_fluxes(panels[1][..., 0], positions, cfg)[:, 0]
        uv = aperture_fluxes(panels[2][..., 0], positions, cfg)[:, 0]
        good = (target[:, 0] > 0.05) & (target[:, 2] > 0.05) & (opt > 0.05) & (uv > 0.05)
        colour += list(target[good, 2] / target[good, 0])
        uv_ratio += list(uv[good] / opt[good])
        optical += list(opt[good])
    assert len(colour) > 40
    with_uv = spearmanr(uv_ratio, colour)[0]
    optical_only = abs(spearmanr(optical, colour)[0])  # weak: the display stretch whitens bright stars
    assert with_uv > 0.85 and optical_only < 0.5 and with_uv > 2 * optical_only
