"""scripts/combine_panels.py: folders of single-band images -> A|B|C|D panels, and its bad-input care."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "combine_panels.py"


def load_script():
    spec = importlib.util.spec_from_file_location("combine_panels_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*argv):
    """main() exits 2 on a user mistake (exit_on_user_error); return its message instead."""
    return load_script().main([str(a) for a in argv] + ["--no_progress"])


def save(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def make_bands(tmp_path, letters="ABCD", names=("m31", "m42"), splits=("train", "test"), size=16, colour="A"):
    """One folder per band; band `colour` is RGB, the others grey. Returns {(letter, split, name): pixels}."""
    rng = np.random.default_rng(1)
    truth = {}
    for letter in letters:
        for split in splits:
            for name in names:
                shape = (size, size, 3) if letter in colour else (size, size)
                pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
                truth[letter, split, name] = save(tmp_path / letter / split / f"{name}.png", pixels)
    return truth


def as_rgb(pixels):
    return pixels if pixels.ndim == 3 else np.repeat(pixels[:, :, None], 3, axis=2)


def test_four_folders_make_aligned_panels_per_split(tmp_path, capsys):
    truth = make_bands(tmp_path)
    out = tmp_path / "out"
    run("--fold_A", tmp_path / "A", "--fold_B", tmp_path / "B", "--fold_C", tmp_path / "C",
        "--fold_D", tmp_path / "D", "--fold_AB", out)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["test/m31.png", "test/m42.png", "train/m31.png", "train/m42.png"]
    combined = np.asarray(Image.open(out / "train" / "m42.png"))
    assert combined.shape == (16, 64, 3)
    for i, letter in enumerate("ABCD"):
        assert np.array_equal(combined[:, 16 * i:16 * (i + 1)], as_rgb(truth[letter, "train", "m42"]))
    assert "wrote 4 A|B|C|D images" in capsys.readouterr().out


def test_the_aligned_loader_reads_the_result_as_four_panels(tmp_path):
    truth = make_bands(tmp_path, colour="")  # all grey: the output stays grey
    out = tmp_path / "out"
    run("--folds", tmp_path / "A", tmp_path / "B", tmp_path / "C", tmp_path / "D", "--out", out)
    assert Image.open(out / "train" / "m31.png").mode == "L"
    from data.aligned_dataset import AlignedDataset
    from options.train_options import TrainOptions

    opt = TrainOptions().parse(["--dataroot", str(out), "--model", "pix2pix", "--direction", "BtoA",
                                 "--input_nc", "3", "--output_nc", "1", "--preprocess", "none", "--no_flip",
                                 "--gpu_ids", "-1"])
    item = AlignedDataset(opt)[0]
    assert item["B"].shape == (3, 16, 16)
    expected_c = truth["C", "train", "m31"].astype(np.float32) / 255 * 2 - 1
    assert np.allclose(item["B"][1].numpy(), expected_c, atol=1e-6)


def test_files_match_by_name_across_extensions_and_unmatched_ones_are_skipped(tmp_path, capsys):
    rng = np.random.default_rng(2)
    a = save(tmp_path / "A" / "x.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    save(tmp_path / "A" / "only_in_a.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    b = save(tmp_path / "B" / "x.bmp", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    run("--fold_A", tmp_path / "A", "--fold_B", tmp_path / "B", "--fold_AB", tmp_path / "out")
    combined = np.asarray(Image.open(tmp_path / "out" / "x.png"))
    assert np.array_equal(combined, np.concatenate([a, b], axis=1))
    assert not (tmp_path / "out" / "only_in_a.png").exists()
    assert "skipped files without a match in every folder: A 1" in capsys.readouterr().out


def test_use_ab_names_and_num_imgs(tmp_path):
    rng = np.random.default_rng(3)
    for name in ("p", "q", "r"):
        save(tmp_path / "A" / "train" / f"{name}_A.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
        save(tmp_path / "B" / "train" / f"{name}_B.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    run("--fold_A", tmp_path / "A", "--fold_B", tmp_path / "B", "--fold_AB", tmp_path / "out",
        "--use_AB", "--num_imgs", "2")
    assert sorted(p.name for p in (tmp_path / "out" / "train").iterdir()) == ["p.png", "q.png"]


def test_different_sizes_are_refused_or_resized_on_request(tmp_path):
    rng = np.random.default_rng(4)
    save(tmp_path / "A" / "x.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    save(tmp_path / "B" / "x.png", rng.integers(0, 256, (16, 16), dtype=np.uint8))
    args = ["--fold_A", tmp_path / "A", "--fold_B", tmp_path / "B", "--fold_AB", tmp_path / "out"]
    with pytest.raises(SystemExit) as stop:
        run(*args)
    assert stop.value.code == 2
    assert not (tmp_path / "out").exists()  # checked before anything is written
    run(*args, "--resize")
    assert Image.open(tmp_path / "out" / "x.png").size == (16, 8)


def test_sixteen_bit_bands_are_scaled_to_eight_bits(tmp_path):
    values = np.array([[0, 257 * 10], [257 * 200, 65535]], dtype=np.uint16)
    (tmp_path / "A").mkdir()
    Image.fromarray(values).save(tmp_path / "A" / "x.png")
    save(tmp_path / "B" / "x.png", np.zeros((2, 2), dtype=np.uint8))
    run("--fold_A", tmp_path / "A", "--fold_B", tmp_path / "B", "--fold_AB", tmp_path / "out")
    assert np.asarray(Image.open(tmp_path / "out" / "x.png"))[:, :2].tolist() == [[0, 10], [200, 255]]


@pytest.mark.parametrize("case, expected", [
    ("missing_folder", "folder of panel B not found"),
    ("no_match", "no image is present with the same name in every folder"),
    ("sizes", "panel B"),
    ("unreadable", "cannot read image"),
    ("one_folder", "at least two input folders"),
    ("gap", "--fold_B is missing"),
    ("both_forms", "either with --folds or with --fold_A"),
    ("out_inside_input", "overlaps the folder of panel A"),
    ("duplicate_name", "two files of panel B match the name 'x'"),
])
def test_each_bad_input_is_one_clear_line(tmp_path, capsys, case, expected):
    grey = np.zeros((8, 8), dtype=np.uint8)
    save(tmp_path / "A" / "x.png", grey)
    save(tmp_path / "B" / ("y.png" if case == "no_match" else "x.png"), grey)
    fold_b = tmp_path / ("nowhere" if case == "missing_folder" else "B")
    args = ["--fold_A", tmp_path / "A", "--fold_B", fold_b, "--fold_AB", tmp_path / "out"]
    if case == "sizes":
        save(tmp_path / "B" / "x.png", np.zeros((4, 4), dtype=np.uint8))
    elif case == "unreadable":
        (tmp_path / "B" / "x.png").write_bytes(b"not a png at all")
    elif case == "one_folder":
        args = ["--folds", tmp_path / "A", "--out", tmp_path / "out"]
    elif case == "gap":
        args = ["--fold_A", tmp_path / "A", "--fold_C", tmp_path / "B", "--fold_AB", tmp_path / "out"]
    elif case == "both_forms":
        args += ["--folds", tmp_path / "A", tmp_path / "B"]
    elif case == "out_inside_input":
        args[-1] = tmp_path / "A" / "out"
    elif case == "duplicate_name":
        save(tmp_path / "B" / "x.jpg", grey)
    with pytest.raises(SystemExit) as stop:
        run(*args)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "\n" not in err


def test_command_line_error_has_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--fold_A", str(tmp_path / "nope"), "--fold_B",
                             str(tmp_path), "--fold_AB", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: folder of panel A not found: {tmp_path / 'nope'}"
