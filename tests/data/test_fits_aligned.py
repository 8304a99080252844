"""--dataset_mode fits_aligned on real FITS files: plane choice, shared crop/flip, masks, the
normalisation saved with the checkpoint and reloaded at test time, and every bad input."""
import json

import numpy as np
import pytest
import torch
from astropy.io import fits
from astropy.wcs import WCS

from data import create_dataset
from data.fits_aligned_dataset import FitsAlignedDataset
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.errors import UserError


def sky_header(width, height, n_planes, ra=83.8, dec=-5.4):
    """A rotated TAN WCS, the cube layout of aladin_data.py (plane axis 3, PLNAMn/PLUNIn)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [width / 2 + 0.5, height / 2 + 0.5]
    angle = np.radians(20.0)
    scale = 0.01
    wcs.wcs.cd = [[-scale * np.cos(angle), scale * np.sin(angle)], [scale * np.sin(angle), scale * np.cos(angle)]]
    header = wcs.to_header()
    if n_planes > 1:
        header["WCSAXES"] = 3
        header["CTYPE3"], header["CRPIX3"], header["CRVAL3"], header["CDELT3"] = "PLANE", 1.0, 1.0, 1.0
    for i in range(1, n_planes + 1):
        header[f"PLNAM{i}"], header[f"PLUNI{i}"] = f"survey{i}:I", f"unit{i}"
    return header


def write_cube(path, planes, header=None, wcs=True):
    """planes (P, H, W) in FITS row order."""
    planes = np.asarray(planes)
    if header is None:
        header = sky_header(planes.shape[2], planes.shape[1], planes.shape[0]) if wcs else fits.Header()
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(planes, header=header).writeto(path, overwrite=True)
    return path


def ramp_cube(offset, height=40, width=48):
    """Plane k = 1000 k + 10 row + col + offset: after any crop/flip, plane k - plane 0 = 1000 k."""
    rows, cols = np.mgrid[0:height, 0:width]
    base = 10.0 * rows + cols + offset
    return np.stack([base + 1000.0 * k for k in range(3)]).astype(np.float32)


def options(root, *extra, train=True):
    cls = TrainOptions if train else TestOptions
    return cls().parse(["--dataroot", str(root), "--model", "pix2pix", "--dataset_mode", "fits_aligned",
                         "--checkpoints_dir", str(root / "ck"), "--name", "run", "--gpu_ids", "-1",
                         "--input_nc", "2", "--output_nc", "1", "--crop_size", "32", "--num_threads", "0", *extra])


@pytest.fixture
def cubes(tmp_path):
    for i in range(3):
        write_cube(tmp_path / "train" / f"c{i}.fits", ramp_cube(100.0 * i))
    test_cube = ramp_cube(50.0)
    test_cube[:, :10, :12] = np.nan  # a corner without data in every band
    write_cube(tmp_path / "test" / "t0.fits", test_cube)
    return tmp_path


def test_items_share_crop_and_flip_and_match_the_saved_normalisation(cubes):
    opt = options(cubes, "--fits_norm", "linear", "--fits_cuts", "0,100")
    dataset = FitsAlignedDataset(opt)
    assert len(dataset) == 3 and opt.direction == "BtoA" and opt.preprocess == "crop"
    assert dataset.panel_indices == ([0], [1, 2]) and dataset.panel_channels == ([1], [1, 1])
    assert not (cubes / "ck" / "run").exists()  # nothing written before the run starts
    dataset.save_run_files()
    saved = json.loads((cubes / "ck" / "run" / "fits_norm.json").read_text())
    assert saved["mode"] == "linear" and saved["n_files"] == 3
    assert [p["name"] for p in saved["planes"]] == ["survey1:I", "survey2:I", "survey3:I"]
    low0 = saved["planes"][0]["low"]
    assert low0 == 0.0 and saved["planes"][0]["high"] == pytest.approx(10 * 39 + 47 + 200)
    flips = set()
    for index in range(3):
        item = dataset[index]
        assert item["A"].shape == (1, 32, 32) and item["B"].shape == (2, 32, 32)
        assert item["A"].dtype == torch.float32 and item["A_mask"].dtype == torch.bool and item["A_mask"].all()
        physical = [dataset.norm.plane(p).invert(t.numpy()) for p, t in zip([0, 1, 2], [item["A"][0], *item["B"]])]
        np.testing.assert_allclose(physical[1] - physical[0], 1000.0, atol=1e-3)  # same crop on every plane
        np.testing.assert_allclose(physical[2] - physical[0], 2000.0, atol=1e-3)
        # picture orientation: row 0 is the top = the highest FITS row, so values fall downwards
        x, y, w, h = item["crop_box"].tolist()
        assert (w, h) == (32, 32)
        top_row_fits = 40 - 1 - y
        flip = bool(item["flip"])
        flips.add(flip)
        left_col = x + 31 if flip else x
        assert physical[0][0, 0] == pytest.approx(10 * top_row_fits + left_col + 100.0 * index)
    assert dataset.norm.plane(0).normalize(np.float32([low0]))[0] == pytest.approx(-1.0)


def test_test_phase_reloads_the_training_normalisation_and_masks_nan(cubes):
    FitsAlignedDataset(options(cubes)).save_run_files()  # training writes fits_norm.json when it starts
    path = cubes / "ck" / "run" / "fits_norm.json"
    saved = json.loads(path.read_text())
    saved["planes"][0]["high"] *= 2  # test.py must use the file, not refit on test cubes
    path.write_text(json.dumps(saved))
    test_opt = options(cubes, "--preprocess", "none", train=False)
    loader = create_dataset(test_opt)
    assert loader.dataset.norm.plane(0).high == saved["planes"][0]["high"]
    batch = next(iter(loader))
    assert batch["A"].shape == (1, 1, 40, 48) and batch["crop_box"].tolist() == [[0, 0, 48, 40]]
    mask = batch["B_mask"][0]
    # FITS rows 0..9 (bottom) = picture rows 30..39; columns 0..11
    assert not mask[:, 30:, :12].any() and mask[:, :30].all() and mask[:, :, 12:].all()
    assert torch.equal(batch["A_mask"][0], mask[:1])
    assert (batch["B"][0][~mask] == 0).all() and torch.isfinite(batch["B"]).all()


def test_continue_train_keeps_the_saved_normalisation(cubes):
    FitsAlignedDataset(options(cubes)).save_run_files()
    path = cubes / "ck" / "run" / "fits_norm.json"
    saved = json.loads(path.read_text())
    saved["planes"][1]["low"] = -5.0
    path.write_text(json.dumps(saved))
    assert FitsAlignedDataset(options(cubes, "--continue_train")).norm.plane(1).low == -5.0
    assert FitsAlignedDataset(options(cubes)).norm.plane(1).low != -5.0  # a fresh run refits


def test_all_nan_cutouts_are_skipped_and_logged(cubes, capsys):
    empty = np.full((3, 40, 48), np.nan, np.float32)
    write_cube(cubes / "train" / "all_nan.fits", empty)
    no_target = ramp_cube(0.0)
    no_target[0] = np.nan
    write_cube(cubes / "train" / "no_target.fits", no_target)
    dataset = FitsAlignedDataset(options(cubes))
    dataset.save_run_files()  # the test phase below reads the normalisation of training
    assert [p.rsplit("/", 1)[1] for p in dataset.cube_paths] == ["c0.fits", "c1.fits", "c2.fits"]
    out = capsys.readouterr().out
    assert "all_nan.fits: every input pixel is NaN" in out and "no_target.fits: every target pixel is NaN" in out
    assert "skipped 2 of 5 cubes" in out
    # at test time a missing target is fine: that band is what the model predicts
    write_cube(cubes / "test" / "no_target.fits", no_target)
    test_set = FitsAlignedDataset(options(cubes, "--preprocess", "none", train=False))
    assert len(test_set) == 2


def test_only_all_nan_cubes_is_an_error(tmp_path):
    write_cube(tmp_path / "train" / "a.fits", np.full((3, 40, 48), np.nan, np.float32))
    with pytest.raises(UserError, match="every cube in .* is all-NaN"):
        FitsAlignedDataset(options(tmp_path))


def test_integer_cubes_with_blank_are_masked(tmp_path):
    raw = (ramp_cube(0.0) / 10).astype(np.int16)
    raw[:, 5, 7] = -32768
    header = sky_header(48, 40, 3)
    header["BLANK"] = -32768
    write_cube(tmp_path / "train" / "int.fits", raw, header)
    opt = options(tmp_path, "--preprocess", "none", "--no_flip", "--fits_norm", "linear")
    item = FitsAlignedDataset(opt)[0]
    # FITS row 5 = picture row 34
    assert not item["A_mask"][0, 34, 7] and not item["B_mask"][:, 34, 7].any()
    assert item["A_mask"].sum() == 40 * 48 - 1 and item["A"][0, 34, 7] == 0


def test_a_cube_without_wcs_needs_allow_no_wcs(tmp_path):
    write_cube(tmp_path / "train" / "plain.fits", ramp_cube(0.0), wcs=False)
    with pytest.raises(UserError, match="plain.fits has no celestial WCS.*--allow_no_wcs"):
        FitsAlignedDataset(options(tmp_path))
    assert len(FitsAlignedDataset(options(tmp_path, "--allow_no_wcs"))) == 1


@pytest.mark.parametrize("extra, message", [
    (["--preprocess", "resize_and_crop"], "takes --preprocess crop or none"),
    (["--direction", "AtoB"], "--direction must be BtoA"),
    (["--input_nc", "3"], "gives 2 input channels but --input_nc is 3"),
    (["--target_planes", "0,1", "--input_planes", "2", "--input_nc", "1"], "gives 2 output channels"),
    (["--target_planes", "3"], "plane 3 is out of range, the cubes have 3 planes"),
    (["--input_planes", "0,1"], "plane 0 is both a target and an input"),
    (["--input_planes", "1,1"], "lists a plane twice"),
    (["--target_planes", "x"], "--target_planes must be comma-separated integers"),
    (["--crop_size", "64"], "smaller than --crop_size 64"),
    (["--fits_cuts", "9"], "--fits_cuts 9: two percentiles"),
])
def test_bad_options_are_one_line_errors(cubes, extra, message):
    with pytest.raises(UserError, match=message):
        FitsAlignedDataset(options(cubes, *extra))


def test_bad_data_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="no 'train' folder"):
        FitsAlignedDataset(options(tmp_path))
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "x.png").write_bytes(b"png")
    with pytest.raises(UserError, match="no FITS cubes in .*aladin_data.py --fits"):
        FitsAlignedDataset(options(tmp_path))
    write_cube(tmp_path / "train" / "a.fits", ramp_cube(0.0))
    write_cube(tmp_path / "train" / "b.fits", ramp_cube(0.0)[:2])
    with pytest.raises(UserError, match="b.fits has 2 planes but .*a.fits has 3"):
        FitsAlignedDataset(options(tmp_path))
    write_cube(tmp_path / "train" / "b.fits", ramp_cube(0.0))
    FitsAlignedDataset(options(tmp_path))
    with pytest.raises(UserError, match="no normalisation file"):
        FitsAlignedDataset(options(tmp_path, "--name", "other", "--phase", "train", train=False))
