"""Sky prediction feeds the generator exactly what training fed it: the tensors from a cutout equal the
dataset's tensors of the dataset builder's files for the same field (PNG panels and FITS cubes)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.aligned_dataset import AlignedDataset
from data.fits_aligned_dataset import FitsAlignedDataset
from data.sky.fits_io import read_cube
from data.fits_norm import PlaneSampler, fit_cube_norm, save_norm
from prediction.inputs import (BandModel, check_surveys, display_stretch, fits_band_model, network_input,
                                 physical_output, png_band_model, training_data)
from prediction.render import RenderSettings, open_surveys
from data.sky.cli import main as build
from data.sky.geometry import OutputGrid
from data.sky.stretch import StretchSettings
from options.test_options import TestOptions
from util.errors import UserError

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "sky_samples"
SURVEYS = [str(SAMPLES / s) for s in ("DSS2Red", "GLIMPSE360", "Planck-HFI143")]
RA, DEC, FOV, SIZE = 250.779, -44.659, 1.6, 64  # GLIMPSE360 covers 82 %


def cut_field(root: Path, ra: float, dec: float, fits: bool = False):
    """One field cut by aladin_data.py (PNG + FITS cube) and the same field cut by predict's engines."""
    build(["--surveys", *SURVEYS, "--ra", str(ra), "--dec", str(dec), "--fov", str(FOV), "--size", str(SIZE),
           "--out", str(root), "--fits", "--no_progress", "--quiet"])
    kind = BandModel("fits" if fits else "png", (), 1, "DSS2Red", "")
    engines = open_surveys(RenderSettings(tuple(SURVEYS[1:]), kind, 0, 8, 0), tuple(SURVEYS[1:]), ())
    grid = OutputGrid(ra, dec, FOV, SIZE, SIZE)
    values = [e.cutout(grid).values for e in engines]
    return root, engines, values


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    return cut_field(tmp_path_factory.mktemp("field"), RA, DEC)


def test_png_inputs_equal_the_aligned_datasets_tensors(field):
    root, engines, values = field
    for extra, channels in (([], [3, 3]), (["--panel_nc", "3,1", "--input_nc", "4"], [3, 1])):
        opt = TestOptions().parse(["--dataroot", str(root), "--model", "pix2pix", "--dataset_mode", "aligned",
                                    "--direction", "BtoA", "--input_nc", "6", "--crop_size", str(SIZE),
                                    "--gpu_ids", "-1", *extra])
        item = AlignedDataset(opt)[0]
        model = png_band_model(opt, 2)
        assert [p.channels for p in model.panels] == channels
        x, valid = network_input(model, values, [True, True], StretchSettings())
        assert np.array_equal(x, item["B"].numpy())
        assert valid.mean() > 0.5 and not valid.all()  # GLIMPSE360 has no data in a corner
        out = physical_output(model, item["A"].numpy())  # the target panel, back to 8-bit levels
        np.testing.assert_allclose(out, np.asarray(item["A"].numpy().mean(0) * 127.5 + 127.5), atol=1e-4)
        assert display_stretch(model).levels(np.array([0.0, 255.0])).tolist() == [0.0, 255.0]


def test_fits_inputs_equal_the_fits_datasets_tensors(tmp_path):
    """At the Galactic centre DSS2Red and Planck offer FITS tiles: the cube, and the inputs, hold their values."""
    root, engines, values = cut_field(tmp_path / "gc", 266.4, -28.94, fits=True)
    assert [e.tile_format for e in engines] == ["jpeg", "fits"]
    cube = read_cube(str(next((root / "test").glob("*.fits"))))
    samplers = [PlaneSampler(10_000) for _ in range(cube.planes.shape[0])]
    for sampler, plane in zip(samplers, cube.planes):
        sampler.add(plane)
    labels = [("DSS2Red:I", "8-bit tile level"), ("GLIMPSE360:R", "u"), ("GLIMPSE360:G", "u"),
              ("GLIMPSE360:B", "u"), ("Planck-HFI143:I", "u")]
    norm = fit_cube_norm(samplers, "asinh", (0.5, 100.0), labels, 1)
    save_norm(norm, tmp_path / "ck" / "run" / "fits_norm.json")
    opt = TestOptions().parse(["--dataroot", str(root), "--model", "pix2pix", "--dataset_mode", "fits_aligned",
                                "--input_nc", "4", "--preprocess", "none", "--checkpoints_dir", str(tmp_path / "ck"),
                                "--name", "run", "--gpu_ids", "-1"])
    item = FitsAlignedDataset(opt)[0]
    model = fits_band_model(opt, norm)
    assert [(p.label, p.letters) for p in model.panels] == [("GLIMPSE360", ("R", "G", "B")), ("Planck-HFI143", ("I",))]
    x, _ = network_input(model, values, [True, True], StretchSettings())
    np.testing.assert_array_equal(x, item["B"].numpy())
    physical = physical_output(model, item["A"].numpy())
    truth = cube.planes[0][::-1]
    ok = np.isfinite(truth)
    np.testing.assert_allclose(physical[ok], truth[ok], rtol=1e-4, atol=1e-3)
    levels = display_stretch(model).levels(physical[ok])
    np.testing.assert_allclose(levels, (item["A"].numpy()[0][ok] + 1) * 127.5, atol=1e-3)
    with pytest.raises(UserError, match="is grey"):
        check_surveys(model, ["GLIMPSE360", "DSS2Red"], [3, 3])


def test_survey_count_and_channels_are_checked(field):
    root, engines, values = field
    opt = TestOptions().parse(["--dataroot", str(root), "--model", "pix2pix", "--direction", "BtoA",
                                "--input_nc", "4", "--panel_nc", "1,3", "--gpu_ids", "-1"])
    model = png_band_model(opt, 2, ["A", "B"])
    with pytest.raises(UserError, match="reads 2 input survey"):
        check_surveys(model, ["x"], [3])
    with pytest.raises(UserError, match="survey GLIMPSE360 is colour but the model's input A is one grey"):
        check_surveys(model, ["GLIMPSE360", "Planck"], [3, 1])
    check_surveys(model, ["Planck", "GLIMPSE360"], [1, 3])
    check_surveys(png_band_model(opt, 2), ["Planck", "Planck"], [1, 1])  # grey repeated on R, G, B


def test_training_pixel_scale_from_the_manifest_and_from_cubes(field, tmp_path):
    root, _, _ = field
    opt = TestOptions().parse(["--dataroot", str(root), "--model", "pix2pix", "--direction", "BtoA",
                                "--input_nc", "6", "--gpu_ids", "-1", "--crop_size", "64", "--load_size", "80",
                                "--preprocess", "resize_and_crop"])
    seen = training_data(opt)
    assert seen.pixel_deg == pytest.approx(FOV / 80)  # panels were resized to load_size before the crop
    assert seen.surveys == ("DSS2Red", "GLIMPSE360", "Planck-HFI143") and seen.size == SIZE
    cubes = tmp_path / "cubes"
    (cubes / "train").mkdir(parents=True)
    (cubes / "train" / "c.fits").write_bytes(next((root / "test").glob("*.fits")).read_bytes())
    opt.dataroot, opt.dataset_mode = str(cubes), "fits_aligned"
    assert training_data(opt).pixel_deg == pytest.approx(FOV / SIZE)
    opt.dataroot = str(tmp_path / "gone")
    assert training_data(opt).pixel_deg is None
