"""Single-image mode (plain and multi-panel) and the upstream --preprocess modes."""
import argparse

import numpy as np
import pytest
from PIL import Image

from data import create_dataset
from data.base_dataset import get_transform
from data.image_folder import make_dataset


def make_opt(dataroot, **overrides) -> argparse.Namespace:
    opt = dict(dataroot=str(dataroot), phase="test", dataset_mode="single", max_dataset_size=float("inf"),
               input_nc=3, output_nc=3, direction="AtoB", preprocess="resize_and_crop", load_size=16,
               crop_size=16, no_flip=True, serial_batches=True, num_threads=0, batch_size=1,
               n_panels=0, input_panels="", panel_nc="")
    opt.update(overrides)
    return argparse.Namespace(**opt)


def write_panels(path, colours, size=16):
    path.parent.mkdir(parents=True, exist_ok=True)
    row = np.concatenate([np.broadcast_to(np.array(c, dtype=np.uint8), (size, size, 3)) for c in colours], axis=1)
    Image.fromarray(np.ascontiguousarray(row)).save(path)


def level(v):
    return v / 255.0 * 2 - 1


def test_single_reads_every_image_recursively(tmp_path):
    write_panels(tmp_path / "b" / "2.png", [(9, 9, 9)])
    write_panels(tmp_path / "a.jpg", [(9, 9, 9)])
    write_panels(tmp_path / "c.webp", [(9, 9, 9)])
    (tmp_path / "notes.txt").write_text("x")
    loader = create_dataset(make_opt(tmp_path))
    assert [p.rsplit("/", 2)[-1] for p in loader.dataset.A_paths] == ["a.jpg", "2.png", "c.webp"]
    batch = next(iter(loader))
    assert batch["A"].shape == (1, 3, 16, 16) and set(batch) == {"A", "A_paths"}
    assert loader.dataset.panel_channels == ([3], []) and loader.dataset.panel_indices == ([0], [])


def test_single_gives_the_input_panels_of_a_multi_panel_image(tmp_path):
    write_panels(tmp_path / "x.png", [(10, 10, 10), (20, 30, 40), (50, 60, 70), (80, 90, 100)])
    opt = make_opt(tmp_path, input_nc=6, input_panels="1,3")
    dataset = create_dataset(opt).dataset
    assert dataset.panel_indices == ([1, 3], []) and dataset.panel_channels == ([3, 3], [])
    item = dataset[0]
    assert item["A"][:, 0, 0].tolist() == pytest.approx([level(v) for v in (20, 30, 40, 80, 90, 100)])
    # --input_nc 3 over 3 colour panels would read them as grey: refused, unless asked for by --panel_nc
    from util.errors import UserError

    with pytest.raises(UserError, match="panels 1, 2, 3 of .* carry colour and would be read as grey: give "
                                        "--input_nc 9 to keep the colours, or --panel_nc 1,1,1"):
        create_dataset(make_opt(tmp_path, input_nc=3, n_panels=4))
    grey = create_dataset(make_opt(tmp_path, input_nc=3, n_panels=4, panel_nc="1,1,1")).dataset
    assert grey.panel_channels == ([1, 1, 1], [])
    assert grey[0]["A"].shape == (3, 16, 16)


def test_single_plain_image_with_too_many_channels_is_a_user_error(tmp_path):
    from util.errors import UserError

    write_panels(tmp_path / "x.png", [(1, 1, 1)])
    with pytest.raises(UserError, match="one square panel, which cannot give --input_nc 9"):
        create_dataset(make_opt(tmp_path, input_nc=9))


def test_single_reads_input_only_panels_for_a_missing_band(tmp_path):
    """B|C|D files (no target band): every panel feeds the generator when they fill input_nc."""
    write_panels(tmp_path / "x.png", [(20, 30, 40), (50, 60, 70), (80, 90, 100)])
    dataset = create_dataset(make_opt(tmp_path, input_nc=9)).dataset
    assert dataset.panel_indices == ([0, 1, 2], []) and dataset.panel_channels == ([3, 3, 3], [])
    assert dataset[0]["A"][:, 0, 0].tolist() == pytest.approx(
        [level(v) for v in (20, 30, 40, 50, 60, 70, 80, 90, 100)])
    chosen = create_dataset(make_opt(tmp_path, input_nc=6, input_panels="0,2")).dataset
    assert chosen.panel_indices == ([0, 2], [])
    with_target = create_dataset(make_opt(tmp_path, input_nc=6)).dataset  # A|B|C file: inputs 1..N-1
    assert with_target.panel_indices == ([1, 2], [])


@pytest.mark.parametrize("preprocess,load,crop,size", [
    ("resize_and_crop", 24, 16, (16, 16)),
    ("crop", 99, 16, (16, 16)),
    ("scale_width", 20, 8, (20, 10)),
    ("scale_width_and_crop", 20, 8, (8, 8)),
    ("none", 99, 99, (40, 20)),
])
def test_preprocess_modes_give_upstream_sizes(preprocess, load, crop, size):
    opt = argparse.Namespace(preprocess=preprocess, load_size=load, crop_size=crop, no_flip=False)
    image = Image.new("RGB", (40, 20))
    out = get_transform(opt, {"crop_pos": (1, 2), "flip": True})(image)
    assert tuple(out.shape) == (3, size[1], size[0])


def test_none_rounds_to_multiples_of_four_with_a_warning():
    opt = argparse.Namespace(preprocess="none", load_size=0, crop_size=0, no_flip=True)
    with pytest.warns(UserWarning, match="not a multiple of 4"):
        out = get_transform(opt, grayscale=True)(Image.new("RGB", (41, 18)))
    assert tuple(out.shape) == (1, 16, 40)


def test_make_dataset_caps_and_rejects_missing_folder(tmp_path):
    for name in ("b.PNG", "a.tif", "c.TIFF", "d.gif"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.rsplit("/", 1)[1] for p in make_dataset(tmp_path)] == ["a.tif", "b.PNG", "c.TIFF"]
    assert len(make_dataset(tmp_path, 2)) == 2
    from util.errors import UserError

    with pytest.raises(UserError, match="image folder not found"):
        make_dataset(tmp_path / "missing")
