"""Every bad-input case of the data package is one clear UserError line, raised as early as possible."""
import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data import create_dataset
from util.errors import UserError


def make_opt(dataroot, **overrides) -> argparse.Namespace:
    opt = dict(dataroot=str(dataroot), phase="train", dataset_mode="aligned", max_dataset_size=float("inf"),
               input_nc=3, output_nc=3, direction="AtoB", preprocess="resize_and_crop", load_size=40,
               crop_size=32, no_flip=False, serial_batches=True, num_threads=0, batch_size=1,
               n_panels=0, input_panels="", panel_nc="")
    opt.update(overrides)
    return argparse.Namespace(**opt)


def write_image(path, width, height):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), 128, dtype=np.uint8)).save(path)
    return path


def user_error(opt) -> str:
    with pytest.raises(UserError) as info:
        loader = create_dataset(opt)
        for _ in loader:
            pass
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_width_not_a_multiple_of_height(tmp_path):
    path = write_image(tmp_path / "train" / "a.png", 100, 40)
    assert user_error(make_opt(tmp_path)) == (
        f"{path} is 100x40: width is not a multiple of height, so the number of square panels cannot "
        f"be inferred; give --n_panels")


def test_input_nc_not_matching_the_panels(tmp_path):
    write_image(tmp_path / "train" / "a.png", 64, 32)
    assert user_error(make_opt(tmp_path, input_nc=9, direction="BtoA")) == (
        "9 channels over 1 input panels gives 9 per panel, but a panel has 1 (grey) or 3 (colour) "
        "channels; check --input_nc / --input_panels")
    write_image(tmp_path / "train" / "a.png", 128, 32)
    assert user_error(make_opt(tmp_path, input_nc=9, direction="BtoA", input_panels="1,3")) == (
        "9 channels cannot be split evenly over 2 input panels; give each panel's channels with "
        "--panel_nc (e.g. 3,1,3)")
    assert user_error(make_opt(tmp_path, input_nc=9, output_nc=2, direction="BtoA")) == (
        "panel 0 would need 2 channels, but an image panel has 1 (grey) or 3 (colour); "
        "check --output_nc / --input_nc")


def test_panel_index_out_of_range(tmp_path):
    write_image(tmp_path / "train" / "a.png", 128, 32)
    assert user_error(make_opt(tmp_path, input_panels="1,5", input_nc=6, direction="BtoA")) == (
        "--input_panels 1,5: panel 5 is out of range, the images have 4 panels (0..3, 0 is the target A)")
    assert user_error(make_opt(tmp_path, input_panels="0,1", input_nc=6, direction="BtoA")) == (
        "--input_panels cannot use panel 0: it is the target A")
    assert user_error(make_opt(tmp_path, input_panels="1,x")) == (
        "--input_panels must be comma-separated integers, got '1,x'")


def test_corrupt_first_file_fails_at_creation(tmp_path):
    bad = tmp_path / "train" / "a.png"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not an image at all")
    message = user_error(make_opt(tmp_path))
    assert message.startswith(f"cannot read image {bad}: ")


def test_truncated_file_fails_naming_it_even_in_a_worker(tmp_path):
    write_image(tmp_path / "train" / "a.png", 64, 32)
    good = (tmp_path / "train" / "a.png").read_bytes()
    rng = np.random.default_rng(0)
    noisy = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)).save(noisy)
    bad = tmp_path / "train" / "b.png"
    bad.write_bytes(noisy.read_bytes()[:200])  # header intact, pixels cut off
    noisy.unlink()
    assert good
    for workers in (0, 1):
        message = user_error(make_opt(tmp_path, num_threads=workers))
        assert message.startswith(f"corrupt image file {bad}: "), message


def test_empty_file(tmp_path):
    write_image(tmp_path / "train" / "a.png", 64, 32)
    empty = tmp_path / "train" / "b.png"
    empty.write_bytes(b"")
    assert user_error(make_opt(tmp_path)) == f"empty image file: {empty}"


def test_image_smaller_than_crop_size(tmp_path):
    path = write_image(tmp_path / "train" / "a.png", 48, 24)
    assert user_error(make_opt(tmp_path, preprocess="crop", crop_size=32)) == (
        f"a panel of {path} is 24x24 pixels, smaller than --crop_size 32")
    assert user_error(make_opt(tmp_path, load_size=28, crop_size=32)) == (
        "--load_size 28 is smaller than --crop_size 32")
    assert user_error(make_opt(tmp_path, preprocess="scale_width_and_crop", load_size=24, crop_size=32)) == (
        f"a panel of {path} is 24x32 pixels after --preprocess scale_width_and_crop, smaller than --crop_size 32")


def test_a_later_file_with_another_panel_count(tmp_path):
    write_image(tmp_path / "train" / "a.png", 128, 32)
    odd = write_image(tmp_path / "train" / "b.png", 96, 32)
    assert user_error(make_opt(tmp_path, input_nc=9, direction="BtoA")) == (
        f"{odd} is 96x32, but the dataset has 4 square panels per image (from its first image); "
        f"give --n_panels or fix the file")


def test_missing_or_empty_dataroot(tmp_path):
    missing = tmp_path / "nope"
    assert user_error(make_opt(missing)) == f"--dataroot folder not found: {missing}"
    assert user_error(make_opt(tmp_path)) == (
        f"no 'train' folder in --dataroot {tmp_path} (aligned images are read from DATAROOT/PHASE; set --phase)")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("no images here")
    assert user_error(make_opt(tmp_path)) == (
        f"no images in {tmp_path / 'train'} (looked for .png, .jpg, .jpeg, .bmp, .ppm, .tif, .tiff, .webp)")
    assert user_error(make_opt(missing, dataset_mode="single")) == f"--dataroot folder not found: {missing}"


def test_unknown_dataset_mode(tmp_path):
    from data import available_dataset_modes

    modes = available_dataset_modes()
    assert {"aligned", "single"} <= set(modes)
    assert user_error(make_opt(tmp_path, dataset_mode="unpaired")) == (
        f"unknown --dataset_mode 'unpaired'; available: {', '.join(modes)}")


def test_a_cli_shows_the_line_without_traceback(tmp_path):
    write_image(tmp_path / "train" / "a.png", 100, 40)
    code = (
        "import argparse, sys\n"
        "from data import create_dataset\n"
        "from util.errors import exit_on_user_error\n"
        f"opt = argparse.Namespace(**{vars(make_opt(tmp_path, max_dataset_size=100))!r})\n"
        "exit_on_user_error(lambda: create_dataset(opt))()\n"
    )
    repo_root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=repo_root)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'train' / 'a.png'} is 100x40: width is not a multiple of height, so the number "
        f"of square panels cannot be inferred; give --n_panels"]


def test_every_image_header_is_checked_before_training(tmp_path):
    """A file of the wrong width or too small for the crop is found when the dataset is built,
    naming it and counting the others, not when an epoch reaches it."""
    for name in ("a", "b", "d"):
        write_image(tmp_path / "train" / f"{name}.png", 128, 32)
    odd = write_image(tmp_path / "train" / "c.png", 96, 32)
    write_image(tmp_path / "train" / "e.png", 64, 16)  # 4 panels of 16 px, smaller than the crop
    with pytest.raises(UserError) as info:
        create_dataset(make_opt(tmp_path, input_nc=9, direction="BtoA", preprocess="crop"))
    assert str(info.value) == (f"{odd} is 96x32, but the dataset has 4 square panels per image (from its first "
                               f"image); give --n_panels or fix the file (and 1 more of the 5 images)")


def test_check_images_full_decodes_every_file_before_training(tmp_path):
    write_image(tmp_path / "train" / "a.png", 64, 32)
    rng = np.random.default_rng(0)
    noisy = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)).save(noisy)
    bad = tmp_path / "train" / "b.png"
    bad.write_bytes(noisy.read_bytes()[:200])  # header intact, pixels cut off
    create_dataset(make_opt(tmp_path))  # the header check passes: it does not decode
    with pytest.raises(UserError, match=f"^corrupt image file {bad}: "):
        create_dataset(make_opt(tmp_path, check_images="full"))


def write_colour_panels(path, colours, size=32):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    panels = [np.clip(rng.normal(colour, 20, (size, size, 3)), 0, 255) for colour in colours]
    Image.fromarray(np.concatenate(panels, axis=1).astype(np.uint8)).save(path)
    return path


def test_default_input_nc_on_colour_panels_is_an_error_not_grey(tmp_path):
    """--input_nc 3 over three colour input panels used to read each as 1 grey channel, silently."""
    first = write_colour_panels(tmp_path / "train" / "a.png", [(200, 40, 40), (40, 200, 40), (40, 40, 200), (90, 90, 9)])
    write_colour_panels(tmp_path / "train" / "b.png", [(200, 40, 40), (40, 200, 40), (40, 40, 200), (90, 90, 9)])
    assert user_error(make_opt(tmp_path, direction="BtoA", input_nc=3)) == (
        f"--input_nc 3 over 3 panels gives 1 channel per panel, but panels 1, 2, 3 of {first} (and the files like "
        f"it) carry colour and would be read as grey: give --input_nc 9 to keep the colours, or --panel_nc 1,1,1 "
        f"to read them as grey on purpose")
    assert "--output_nc 3 over 3 panels" in user_error(make_opt(tmp_path, direction="AtoB"))


def test_colour_panels_read_as_grey_on_purpose_are_a_printed_choice(tmp_path, capsys):
    write_colour_panels(tmp_path / "train" / "a.png", [(200, 40, 40), (40, 200, 40), (40, 40, 200), (90, 90, 9)])
    dataset = create_dataset(make_opt(tmp_path, direction="BtoA", input_nc=3, panel_nc="1,1,1")).dataset
    assert dataset.panel_channels == ([3], [1, 1, 1])
    assert "note: panels 1, 2, 3 of the images carry colour and are read as grey (--panel_nc)" in capsys.readouterr().out
    create_dataset(make_opt(tmp_path, direction="BtoA", input_nc=9))  # colour kept: no note, no error
    assert "note" not in capsys.readouterr().out


def test_grey_panels_stored_as_rgb_read_as_one_channel_each(tmp_path, capsys):
    """The sky builder writes grey surveys as RGB with equal channels: one channel each loses nothing."""
    grey = np.random.default_rng(2).integers(0, 256, (32, 32), dtype=np.uint8)
    write_image(tmp_path / "train" / "a.png", 128, 32)
    Image.fromarray(np.repeat(np.tile(grey, (1, 4))[..., None], 3, axis=2)).save(tmp_path / "train" / "a.png")
    dataset = create_dataset(make_opt(tmp_path, direction="BtoA", input_nc=3, output_nc=1)).dataset
    assert dataset.panel_channels == ([1], [1, 1, 1])
    assert "note" not in capsys.readouterr().out
