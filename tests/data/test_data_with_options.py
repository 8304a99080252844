"""The data package with the real command-line options: the seed's `--input_nc 9 --direction BtoA` usage."""
import numpy as np
from PIL import Image

from data import create_dataset
from engine.visualizer import Visualizer
from options.test_options import TestOptions
from options.train_options import TrainOptions


def write_four_panel_set(root, n=3, size=32):
    rng = np.random.default_rng(3)
    (root / "train").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, 4 * size, 3), dtype=np.uint8)).save(root / "train" / f"{i}.png")


def test_seed_usage_input_nc_9_btoa_on_four_panels(tmp_path):
    write_four_panel_set(tmp_path / "sky")
    opt = TrainOptions().parse([
        "--dataroot", str(tmp_path / "sky"), "--model", "pix2pix", "--direction", "BtoA", "--input_nc", "9",
        "--load_size", "36", "--crop_size", "32", "--num_threads", "0", "--gpu_ids", "-1",
        "--checkpoints_dir", str(tmp_path / "ck"), "--name", "seed"])
    assert (opt.dataset_mode, opt.n_panels, opt.input_panels) == ("aligned", 0, "")
    loader = create_dataset(opt)
    assert loader.dataset.panel_channels == ([3], [3, 3, 3])
    assert loader.dataset.panel_indices == ([0], [1, 2, 3])
    batch = next(iter(loader))
    assert batch["B"].shape == (1, 9, 32, 32) and batch["A"].shape == (1, 3, 32, 32)
    visuals = {f"real_A_p{i}": part for i, part in zip((1, 2, 3), batch["B"].split(3, dim=1))}
    visuals.update(fake_B=batch["A"], real_B=batch["A"])
    visualizer = Visualizer(opt)
    visualizer.display_current_results(visuals, 1, 1, True)
    visualizer.close()
    assert sorted(p.name for p in (tmp_path / "ck" / "seed" / "web" / "images").iterdir()) == sorted(
        f"epoch001_{label}.png" for label in visuals)


def test_ablation_flags_pick_panels(tmp_path):
    write_four_panel_set(tmp_path / "sky")
    opt = TrainOptions().parse([
        "--dataroot", str(tmp_path / "sky"), "--model", "pix2pix", "--direction", "BtoA", "--input_nc", "4",
        "--input_panels", "1,3", "--panel_nc", "3,1", "--preprocess", "crop", "--crop_size", "32",
        "--num_threads", "0", "--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path / "ck")])
    dataset = create_dataset(opt).dataset
    assert dataset.panel_channels == ([3], [3, 1]) and dataset.panel_indices == ([0], [1, 3])
    assert dataset[0]["B"].shape == (4, 32, 32)


def test_single_mode_for_test_model_reads_input_panels(tmp_path):
    write_four_panel_set(tmp_path / "sky")
    opt = TestOptions().parse([
        "--dataroot", str(tmp_path / "sky" / "train"), "--model", "test", "--input_nc", "9", "--n_panels", "4",
        "--crop_size", "32", "--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path / "ck")])
    loader = create_dataset(opt)
    assert loader.dataset.panel_channels == ([3, 3, 3], [])
    assert next(iter(loader))["A"].shape == (1, 9, 32, 32)
