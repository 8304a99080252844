"""Agreement with Aladin Desktop on the same local HiPS, position, field and size (skipped without it).

One Aladin run renders every survey x position (its start-up costs ~3.5 s).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from data.sky.aladin_backend import AladinRenderer, aladin_position, find_aladin
from data.sky.engine import CutoutEngine
from data.sky.geometry import OutputGrid
from data.sky.render import BuiltinRenderer
from data.sky.source import open_survey

pytestmark = pytest.mark.skipif(find_aladin() is None,
                                reason="Aladin Desktop absent (apt-get install aladin xvfb)")

GRIDS = [OutputGrid(266.40, -28.94, 3.0, 256, 256),  # Galactic centre, in the FITS tiles of both
         OutputGrid(269.50, -25.00, 2.5, 224, 224)]
CASES = [("DSS2Red", "fits", 0.99), ("Planck-HFI143", "fits", 0.99),  # equatorial and galactic FITS tiles
         ("DSS2Red", "jpeg", 0.95), ("Planck-HFI143", "jpeg", 0.95), ("FermiColor", "jpeg", 0.95)]


@pytest.fixture(scope="module")
def both(request):
    from pathlib import Path

    samples = Path(__file__).resolve().parents[3] / "data" / "sky_samples"
    engines = [CutoutEngine(open_survey(str(samples / name)), fmt) for name, fmt, _ in CASES]
    aladin = AladinRenderer(engines).render(GRIDS)
    ours = BuiltinRenderer(engines).render(GRIDS)
    return aladin, ours


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{n}-{f}" for n, f, _ in CASES])
def test_builtin_matches_aladin(both, case):
    aladin, ours = both
    name, fmt, threshold = CASES[case]
    for g in range(len(GRIDS)):
        a, b = aladin[g][case].values, ours[g][case].values
        assert a.shape == b.shape
        ok = np.isfinite(a[..., 0]) & np.isfinite(b[..., 0])
        assert ok.mean() > 0.95
        r = np.corrcoef(a[ok].ravel(), b[ok].ravel())[0, 1]
        assert r >= threshold, (name, fmt, g, r)
        # a one-pixel shift must be worse: agreement is geometric, not just large-scale
        shifted = np.corrcoef(np.roll(a, 1, axis=1)[:, 2:-2][ok[:, 2:-2]].ravel(),
                              b[:, 2:-2][ok[:, 2:-2]].ravel())[0, 1]
        assert shifted < r


def test_aladin_backend_writes_a_dataset(tmp_path):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    out = tmp_path / "al"
    done = subprocess.run([sys.executable, str(repo / "aladin_data.py"), "--surveys",
                           str(repo / "data/sky_samples/DSS2Red"), str(repo / "data/sky_samples/FermiColor"),
                           "--ra", "266.4", "--dec", "-28.94", "--fov", "2", "--size", "128", "--out", str(out),
                           "--backend", "aladin", "--fits", "--no_progress"], capture_output=True, text=True,
                          timeout=240, cwd=repo)
    assert done.returncode == 0, done.stderr
    png = next((out / "test").glob("*.png"))
    cube_file = next((out / "test").glob("*.fits"))
    with fits.open(cube_file) as hdul:
        cube = hdul[0].data
        wcs = WCS(hdul[0].header).celestial
    assert cube.shape == (4, 128, 128) and np.isfinite(cube).mean() > 0.95
    x, y = wcs.world_to_pixel_values(266.4, -28.94)
    assert abs(x - 63.5) < 0.01 and abs(y - 63.5) < 0.01
    assert png.stat().st_size > 1000


def test_half_pixel_convention():
    grid = OutputGrid(10.0, 20.0, 1.0, 100, 100)
    ra, dec = aladin_position(grid)
    assert ra > 10.0 and dec < 20.0  # half a pixel east (left) and south of the centre
    assert abs((ra - 10.0) * np.cos(np.radians(20)) - 0.005) < 1e-4 and abs(dec - 20.0 + 0.005) < 1e-4


def spoil_export(path, fault: str) -> None:
    """What a loaded machine's Aladin wrote (CI and a loaded 2-core machine, 2026-12)."""
    if fault == "cut-short":  # the header alone: astropy raised TypeError reading its data
        data = path.read_bytes()
        path.write_bytes(data[:2880])
        return
    with fits.open(path, mode="update") as hdul:
        hdu = hdul[0]
        if fault == "moved":  # the view cropped before it moved: a full crop of the sky at (0, 0)
            hdu.header["CRVAL1"], hdu.header["CRVAL2"] = 360.0, 0.0
        else:  # exported before its tiles loaded: all or part of the rows blank
            blank = hdu.header.get("BLANK", 0) if hdu.header.get("BITPIX") > 0 else np.nan
            hdu.data[..., :256 if fault == "all-blank" else 60, :] = blank


def render_with_faults(monkeypatch, faulty_runs: int, fault: str):
    """Planck FITS at the first grid, the first export of the first `faulty_runs` Aladin runs spoilt."""
    from pathlib import Path

    from data.sky import aladin_backend

    samples = Path(__file__).resolve().parents[3] / "data" / "sky_samples"
    engines = [CutoutEngine(open_survey(str(samples / "Planck-HFI143")), "fits")]
    real_run, scripts = aladin_backend.run_aladin, []

    def spoilt_run(script, jar, timeout_s, log_path):
        scripts.append(script)
        real_run(script, jar, timeout_s, log_path)
        if len(scripts) <= faulty_runs:
            spoil_export(log_path.parent / f"cut_0_0_try{len(scripts) - 1}.fits", fault)

    monkeypatch.setattr(aladin_backend, "run_aladin", spoilt_run)
    return engines, scripts, (lambda: AladinRenderer(engines).render(GRIDS[:1]))


@pytest.mark.parametrize("fault", ["all-blank", "part-blank", "moved", "cut-short"])
def test_a_spoilt_crop_is_rendered_again(monkeypatch, fault):
    """On a loaded machine Aladin exported crops before their tiles loaded (CI, Planck FITS: once all blank,
    once 23% blank), a crop of the sky at (0, 0) and a header without data: such a crop alone is asked
    again instead of being read as sky without data, as the wrong sky, or failing with a traceback."""
    from data.sky import aladin_backend

    engines, scripts, render = render_with_faults(monkeypatch, 1, fault)
    cuts = render()
    # (a loaded machine can spoil a retry too: then one more run, still for that crop alone)
    assert 2 <= len(scripts) <= 1 + aladin_backend.RENDER_RETRIES
    assert all(script.count("export ") == 1 for script in scripts[1:])
    assert cuts[0][0].coverage > 0.95
    ours = BuiltinRenderer(engines).render(GRIDS[:1])[0][0].values
    ok = np.isfinite(cuts[0][0].values) & np.isfinite(ours)
    assert np.corrcoef(cuts[0][0].values[ok], ours[ok])[0, 1] > 0.99


def test_a_crop_spoilt_every_time_is_a_one_line_error(monkeypatch):
    from data.sky import aladin_backend
    from util.errors import UserError

    _, scripts, render = render_with_faults(monkeypatch, 99, "moved")
    with pytest.raises(UserError, match="no usable crop of Planck-HFI143 at position 1"):
        render()
    assert len(scripts) == 1 + aladin_backend.RENDER_RETRIES


def test_the_view_is_moved_again_after_it_is_resized():
    """Resizing the headless view after moving it left the first crop at (0, 0) under load."""
    from data.sky.aladin_backend import aladin_position, batch_script

    lines = batch_script([(Path("/a"), [(GRIDS[0], Path("/o.fits"))])]).splitlines()
    ra, _ = aladin_position(GRIDS[0])
    last_move = max(k for k, line in enumerate(lines) if line.startswith(f"{ra:.9f}"))
    assert lines.index("save 256x256 /dev/null") < last_move < next(k for k, line in enumerate(lines)
                                                                    if line.startswith("C1 = crop"))
