"""The science path end to end: FITS cubes -> train.py -> test.py -> FITS in physical units with the
input cutout's WCS. Round trip through test.py's own code with an identity generator, then a real
short CPU training on cubes that aladin_data.py --fits builds from the bundled HiPS sample."""
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits
from astropy.wcs import WCS

from data import create_dataset
from data.fits_aligned_dataset import FitsAlignedDataset
from data.fits_norm import load_norm
from data.sky.cli import main as build_cubes
from engine.fits_results import FitsResultWriter
from engine.inference import run_test
from evaluation.physical import physical_pair
import models
from models.pix2pix_model import Pix2PixModel
from options.test_options import TestOptions
from options.train_options import TrainOptions
from tests.script_runner import run_script
from util.results_manifest import read_manifest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "sky_samples"


def galactic_sin_header(width, height):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["GLON-SIN", "GLAT-SIN"]
    wcs.wcs.crval = [30.0, 1.5]
    wcs.wcs.crpix = [20.3, 17.8]
    angle = np.radians(-33.0)
    scale = 0.02
    wcs.wcs.cd = [[-scale * np.cos(angle), scale * np.sin(angle)], [scale * np.sin(angle), scale * np.cos(angle)]]
    header = wcs.to_header()
    header["WCSAXES"] = 3
    header["CTYPE3"], header["CRPIX3"], header["CRVAL3"], header["CDELT3"] = "PLANE", 1.0, 1.0, 1.0
    header["PLNAM1"], header["PLUNI1"] = "IRAC4:I", "MJy/sr"
    header["PLNAM2"], header["PLUNI2"] = "IRAC4 copy:I", "MJy/sr"
    header["OBJECT"] = "field"
    return header


def twin_plane_cube(seed, height=44, width=48):
    """Target plane 0 == input plane 1: an identity generator must give plane 0 back."""
    rng = np.random.default_rng(seed)
    sky = rng.lognormal(3.0, 1.5, (height, width)).astype(np.float32) - 5.0
    sky[3:9, 30:41] = np.nan
    return np.stack([sky, sky])


class IdentityPix2Pix(Pix2PixModel):
    """pix2pix whose generator returns its input plane (nothing to load)."""

    def build(self) -> None:
        self.netG = torch.nn.Identity()

    def load_networks(self, prefix) -> None:
        pass


def sky_offset(out_wcs, src_wcs, width, height):
    """Integer (dx, dy) with output pixel p at source pixel p + (dx, dy); asserts every pixel maps to the
    same sky position within 0.01 pixel."""
    ys, xs = np.mgrid[0:height, 0:width]
    world = out_wcs.pixel_to_world_values(xs.ravel(), ys.ravel())
    sx, sy = src_wcs.world_to_pixel_values(*world)
    dx, dy = sx - xs.ravel(), sy - ys.ravel()
    offset = (round(float(dx[0])), round(float(dy[0])))
    assert np.abs(dx - offset[0]).max() < 0.01 and np.abs(dy - offset[1]).max() < 0.01
    return offset


@pytest.mark.parametrize("norm, extra", [("asinh", ["--preprocess", "crop", "--crop_size", "32"]),
                                         ("linear", ["--preprocess", "none"])])
def test_identity_round_trip_gives_back_the_fits_and_its_wcs(tmp_path, monkeypatch, norm, extra):
    for i in range(2):
        cube = twin_plane_cube(i)
        header = galactic_sin_header(cube.shape[2], cube.shape[1])
        (tmp_path / "data" / "train").mkdir(parents=True, exist_ok=True)
        fits.PrimaryHDU(cube, header=header).writeto(tmp_path / "data" / "train" / f"c{i}.fits")
    source = tmp_path / "data" / "test" / "t0.fits"
    source.parent.mkdir()
    cube = twin_plane_cube(7)
    header = galactic_sin_header(cube.shape[2], cube.shape[1])
    fits.PrimaryHDU(cube, header=header).writeto(source)
    common = ["--dataroot", str(tmp_path / "data"), "--name", "ident", "--model", "pix2pix",
              "--dataset_mode", "fits_aligned", "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1",
              "--input_nc", "1", "--output_nc", "1", "--netG", "resnet_6blocks", "--fits_norm", norm,
              "--num_threads", "0", *extra]
    FitsAlignedDataset(TrainOptions().parse(common)).save_run_files()  # the training side writes fits_norm.json
    monkeypatch.setattr(models, "create_model", lambda opt: IdentityPix2Pix(opt))
    random.seed(1)  # the crop position (python's random, as upstream): an off-centre one, see below
    run_test(TestOptions().parse([*common, "--results_dir", str(tmp_path / "results")]))

    written = tmp_path / "results" / "ident" / "test_latest" / "fits" / "t0_fake_B.fits"
    with fits.open(written) as hdul:
        data, out_header = hdul[0].data, hdul[0].header
    size = 32 if "crop" in extra else None
    assert data.dtype.kind == "f" and data.shape == ((size, size) if size else cube.shape[1:])
    height, width = data.shape
    dx, dy = sky_offset(WCS(out_header), WCS(header).celestial, width, height)
    assert 0 <= dx <= cube.shape[2] - width and 0 <= dy <= cube.shape[1] - height
    if size:  # off-centre vertically, so a crop counted from the wrong edge cannot pass
        assert dy != (cube.shape[1] - height) / 2
    expected = cube[0, dy:dy + height, dx:dx + width]
    assert np.array_equal(np.isnan(data), np.isnan(expected))
    np.testing.assert_allclose(data[~np.isnan(data)], expected[~np.isnan(expected)], rtol=1e-5, atol=1e-4)
    assert out_header["BUNIT"] == "MJy/sr" and out_header["PLNAM1"] == "IRAC4:I"
    assert out_header["OBJECT"] == "field" and out_header["FITSNORM"] == norm
    assert (tmp_path / "results" / "ident" / "test_latest" / "images" / "t0_fake_B.png").is_file()


run = run_script


TINY = ["--model", "pix2pix", "--dataset_mode", "fits_aligned", "--target_planes", "0", "--input_planes", "1,2,3,4",
        "--input_nc", "4", "--output_nc", "1", "--netG", "unet_64", "--ngf", "8", "--ndf", "8", "--crop_size", "64",
        "--gpu_ids", "-1", "--num_threads", "0"]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """Cubes from the bundled sample (DSS2Red target; GLIMPSE360 RGB + Planck inputs), one short training."""
    work = tmp_path_factory.mktemp("fitsrun")
    data = work / "cubes"
    surveys = [str(SAMPLES / s) for s in ("DSS2Red", "GLIMPSE360", "Planck-HFI143")]
    build_cubes(["--surveys", *surveys, "--sample", "6", "--fov", "1.5", "--size", "64", "--out", str(data),
                 "--seed", "3", "--split", "0.5,0,0.5", "--fits", "--no_progress", "--quiet"])
    assert list((data / "train").glob("*.fits")) and list((data / "test").glob("*.fits"))
    trained = run("train.py", "--dataroot", data, "--name", "sky", "--checkpoints_dir", work / "ck", *TINY,
                  "--n_epochs", "1", "--n_epochs_decay", "0", "--print_freq", "1", cwd=work)
    assert trained.returncode == 0, trained.stderr[-3000:]
    tested = run("test.py", "--dataroot", data, "--name", "sky", "--checkpoints_dir", work / "ck",
                 "--results_dir", work / "results", *TINY, "--eval", cwd=work)
    assert tested.returncode == 0, tested.stderr[-3000:]
    return work, data


def test_short_training_on_sample_cubes_writes_fits_in_physical_units_with_wcs(sample_run):
    work, data = sample_run
    norm = load_norm(work / "ck" / "sky" / "fits_norm.json")
    assert norm.mode == "asinh" and norm.labels[0][0] == "DSS2Red:I"
    assert "G_L1" in (work / "ck" / "sky" / "loss_log.txt").read_text()
    results = work / "results" / "sky" / "test_latest"
    cubes = sorted((data / "test").glob("*.fits"))
    assert sorted(p.name for p in (results / "fits").iterdir()) == sorted(f"{c.stem}_fake_B.fits" for c in cubes)
    assert (results / "images" / f"{cubes[0].stem}_fake_B.png").is_file()
    manifest = read_manifest(results)  # what evaluation reads: roles, bands, planes and the way back to the cube
    assert (manifest.run.kind, manifest.run.input, manifest.run.target) == ("planes", [1, 2, 3, 4], [0])
    assert manifest.run.bands[0] == "DSS2Red:I" and manifest.run.units[0] == norm.labels[0][1]
    assert Path(manifest.run.norm_file) == work / "ck" / "sky" / "fits_norm.json"
    assert [item.stem for item in manifest.items] == [c.stem for c in cubes]
    for item, cube_path in zip(manifest.items, cubes):
        assert [(f.panel, f.band) for f in item.inputs] == [(p, norm.labels[p][0]) for p in (1, 2, 3, 4)]
        assert item.generated.fits == f"fits/{cube_path.stem}_fake_B.fits"
        assert (item.target.source, item.target.planes) == (str(cube_path), [0])
        assert item.target.crop_box == [0, 0, 64, 64] and item.target.flip is False
        generated, real = physical_pair(results, item)
        with fits.open(cube_path) as hdul:
            np.testing.assert_array_equal(real, hdul[0].data[:1])  # the real band in physical units
        assert generated.shape == real.shape == (1, 64, 64)

    # the file holds this generator's output with the saved normalisation inverted, on the cube's pixels
    opt = TestOptions().parse(["--dataroot", str(data), "--name", "sky", "--checkpoints_dir", str(work / "ck"),
                                *TINY, "--eval"])
    model = models.create_model(opt)
    model.setup(opt)
    model.eval()
    for batch in create_dataset(opt):
        model.set_input(batch)
        model.test()
        source = Path(batch["B_paths"][0])
        with fits.open(results / "fits" / f"{source.stem}_fake_B.fits") as hdul:
            written, header = hdul[0].data, hdul[0].header
        with fits.open(source) as hdul:
            cube_header, cube = hdul[0].header, hdul[0].data
        assert written.shape == (64, 64) and written.dtype.kind == "f"
        assert header["BUNIT"] == cube_header["PLUNI1"] and header["PLNAM1"] == cube_header["PLNAM1"]
        assert sky_offset(WCS(header), WCS(cube_header).celestial, 64, 64) == (0, 0)
        expected = norm.plane(0).invert(model.fake_B[0, 0].numpy())[::-1]  # picture rows -> FITS rows
        no_input = ~np.isfinite(cube[1:]).any(axis=0)
        expected[no_input] = np.nan
        assert np.array_equal(np.isnan(written), no_input)
        np.testing.assert_allclose(written[~no_input], expected[~no_input], rtol=1e-5, atol=1e-3)
        # physical units: inside the training range of the band, not [-1, 1]
        assert norm.plane(0).low - 1 <= np.nanmin(written) and np.nanmax(written) <= norm.plane(0).high + 1
        assert np.nanmax(written) > 1.5


def test_cli_errors_are_one_line(sample_run, tmp_path):
    work, data = sample_run
    bare = tmp_path / "bare" / "train"
    bare.mkdir(parents=True)
    with fits.open(next((data / "train").glob("*.fits"))) as hdul:
        fits.PrimaryHDU(hdul[0].data).writeto(bare / "nowcs.fits")  # pixels without the header
    result = run("train.py", "--dataroot", bare.parent, "--name", "bad", "--checkpoints_dir", tmp_path / "ck",
                 *TINY, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "nowcs.fits has no celestial WCS" in lines[-1]
    assert "Traceback" not in result.stderr
    saved = json.loads((work / "ck" / "sky" / "fits_norm.json").read_text())
    assert len(saved["planes"]) == 5


def test_writer_undoes_any_crop_and_flip(tmp_path):
    """Training items are cropped and flipped at random; the writer maps each back onto the sky."""
    cube = twin_plane_cube(3)
    header = galactic_sin_header(cube.shape[2], cube.shape[1])
    (tmp_path / "train").mkdir()
    fits.PrimaryHDU(cube, header=header).writeto(tmp_path / "train" / "c.fits")
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "pix2pix", "--dataset_mode", "fits_aligned",
                                 "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1", "--input_nc", "1",
                                 "--output_nc", "1", "--crop_size", "24"])
    dataset = FitsAlignedDataset(opt)
    writer = FitsResultWriter(opt, dataset.describe().cube, tmp_path / "out")
    seen = set()
    for seed in range(8):
        random.seed(seed)
        item = dataset[0]
        flip = bool(item["flip"])
        seen.add(flip)
        path = writer.write_one(item["B"].numpy(), item["B_paths"], item["crop_box"].tolist(), flip,
                                item["B_mask"].numpy())
        with fits.open(path) as hdul:
            data, out_header = hdul[0].data, hdul[0].header
        dx, dy = sky_offset(WCS(out_header), WCS(header).celestial, 24, 24)
        expected = cube[0, dy:dy + 24, dx:dx + 24]
        assert np.array_equal(np.isnan(data), np.isnan(expected))
        np.testing.assert_allclose(data[~np.isnan(data)], expected[~np.isnan(expected)], rtol=1e-5, atol=1e-4)
    assert seen == {True, False}


def test_evaluate_scores_fits_results_in_the_band_unit_against_references(sample_run):
    work, data = sample_run
    results = work / "results" / "sky" / "test_latest"
    done = run("scripts/evaluate.py", "--results_dir", results, cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "in the band's unit" in done.stdout and "linear fit (" in done.stdout
    physical = json.loads((results / "metrics.json").read_text())["physical"]
    assert [ref["name"] for ref in physical["references"]] == ["flat", "input_resampled", "linear_fit", "asinh_fit"]
    flat, band, fit, colour = physical["references"]
    assert colour["input_panels"] == [1, 2, 3, 4] and -1.0 <= colour["CC"] <= 1.0
    assert fit["input_panels"] == [1, 2, 3, 4] and len(fit["coefficients"]) == 4
    assert band["input_panels"][0] in (1, 2, 3, 4)
    assert flat["CC"] == 0.0 and -1.0 <= fit["CC"] <= 1.0 and fit["L1"] > 0.0
    model = physical["model"]
    assert "images" not in model and model["n_images"] == len(list((data / "test").glob("*.fits")))
    # L1 in the band's unit: the 8-bit score is in [0, 1], the physical one is not
    cube_values = np.concatenate([fits.getdata(p)[0].ravel() for p in (data / "test").glob("*.fits")])
    assert model["L1"] > 1.0 and model["L1"] < float(np.nanmax(cube_values) - np.nanmin(cube_values))


def edited_copy(results: Path, into: Path, edit) -> Path:
    """A copy of a results folder whose manifest.json went through edit(dict)."""
    import shutil

    shutil.copytree(results, into)
    manifest = json.loads((into / "manifest.json").read_text())
    edit(manifest)
    (into / "manifest.json").write_text(json.dumps(manifest))
    return into


def test_evaluation_trusts_the_fits_files_over_an_edited_manifest(sample_run, tmp_path):
    """Issue 19 E04, E05, E06: an edited manifest paired results with the wrong cube (scored silently), named a
    plane the cube lacks (IndexError traceback) or another unit (printed as the table's unit)."""
    from evaluation.physical_eval import evaluate_physical

    work, _ = sample_run
    results = work / "results" / "sky" / "test_latest"
    truth = evaluate_physical(results)
    unit = truth["unit"]
    assert truth["notes"] == [] and unit and unit != "Jy"

    def swap_sources(manifest):  # E04
        first, second = manifest["items"][0]["target"], manifest["items"][1]["target"]
        first["source"], second["source"] = second["source"], first["source"]

    def plane_seven(manifest):  # E05
        manifest["run"]["target"] = [7]
        for item in manifest["items"]:
            item["target"]["planes"] = [7]

    def other_unit(manifest):  # E06
        manifest["run"]["units"]["0"], manifest["run"]["bands"]["0"] = "Jy", "wise_w4:I"

    def moved_crop(manifest):
        manifest["items"][0]["target"]["crop_box"] = [0, 0, 60, 60]

    for edit, words in ((swap_sources, "was made from"), (plane_seven, "target plane(s) [7], the generated FITS [0]"),
                        (other_unit, f"{unit!r} (PLUNI1): {unit!r} is used"), (moved_crop, "generated FITS's WCS at (0, 0)")):
        folder = edited_copy(results, tmp_path / edit.__name__, edit)
        scored = evaluate_physical(folder)
        assert any(words in note for note in scored["notes"]), (edit.__name__, scored["notes"])
        assert scored["unit"] == unit and scored["model"]["L1"] == truth["model"]["L1"]
        assert scored["model"]["CC"] == truth["model"]["CC"]
    # what the files cannot settle is one line: a source cube of the same name on other sky
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    manifest = json.loads((results / "manifest.json").read_text())
    first, second = (Path(item["target"]["source"]) for item in manifest["items"][:2])
    (elsewhere / first.name).write_bytes(second.read_bytes())

    def other_sky(manifest):
        manifest["items"][0]["target"]["source"] = str(elsewhere / first.name)

    folder = edited_copy(results, tmp_path / "other_sky", other_sky)
    done = run("scripts/evaluate.py", "--results_dir", folder, cwd=work)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "covers other sky than the target cube" in done.stderr.strip().splitlines()[-1]
    # the command line prints the notes and keeps the file's unit in the table
    folder = edited_copy(results, tmp_path / "unit_cli", other_unit)
    done = run("scripts/evaluate.py", "--results_dir", folder, cwd=work)
    assert done.returncode == 0 and f"in the band's unit ({unit})" in done.stdout
    assert "note: the results manifest gives plane 0 the unit 'Jy'" in done.stderr


def test_evaluate_without_a_manifest_says_why_the_fits_are_not_scored(sample_run, tmp_path):
    """Issue 19 E01: without manifest.json the scores in the band's unit vanished without a word."""
    import shutil

    work, _ = sample_run
    folder = tmp_path / "no_manifest"
    shutil.copytree(work / "results" / "sky" / "test_latest", folder)
    (folder / "manifest.json").unlink()
    done = run("scripts/evaluate.py", "--results_dir", folder, cwd=work)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "generated FITS" in done.stderr and "without manifest.json" in done.stderr
    skipped = json.loads((folder / "metrics.json").read_text())["physical"]["skipped"]
    assert "run test.py again" in skipped
