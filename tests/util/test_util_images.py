"""tensor2im for any channel count, clipping, save_image aspect handling, HTML page."""
import numpy as np
import pytest
import torch
from PIL import Image

from util import html, util


def _panels_tensor(n_channels: int, h: int = 4, w: int = 5) -> torch.Tensor:
    """Channel c holds the constant value that maps to grey level 10 * (c + 1)."""
    levels = torch.tensor([10.0 * (c + 1) for c in range(n_channels)])
    values = levels / 255.0 * 2.0 - 1.0 + 1e-4
    return values[:, None, None].expand(n_channels, h, w).unsqueeze(0).clone()


@pytest.mark.parametrize("n_channels,tiles", [(1, 1), (2, 2), (3, 1), (6, 2), (9, 3), (12, 4), (4, 2), (5, 3)])
def test_tensor2im_tiles_any_channel_count(n_channels, tiles):
    image = util.tensor2im(_panels_tensor(n_channels))
    assert image.dtype == np.uint8
    assert image.shape == (4, 5 * tiles, 3)
    n_colour = n_channels // 3 if n_channels != 1 else 0
    for t in range(tiles):
        tile = image[:, 5 * t:5 * (t + 1)]
        if t < n_colour:
            expected = [10 * (3 * t + k + 1) for k in range(3)]
        else:
            grey_channel = 0 if n_channels == 1 else 3 * n_colour + (t - n_colour)
            expected = [10 * (grey_channel + 1)] * 3
        assert tile.reshape(-1, 3).tolist() == [expected] * 20, (n_channels, t)


def test_tensor2im_clips_and_uses_first_batch_item():
    batch = torch.zeros(2, 3, 2, 2)
    batch[0, 0] = 5.0      # far above 1 -> 255, not wrapped around
    batch[0, 1] = -7.0     # far below -1 -> 0
    batch[0, 2] = float("nan")
    batch[1] = 1.0
    image = util.tensor2im(batch)
    assert image[..., 0].tolist() == [[255, 255], [255, 255]]
    assert image[..., 1].tolist() == [[0, 0], [0, 0]]
    assert image[..., 2].tolist() == [[0, 0], [0, 0]]


def test_tensor2im_accepts_chw_and_grey_arrays():
    assert util.tensor2im(torch.ones(3, 2, 3)).shape == (2, 3, 3)
    assert util.tensor2im(np.full((2, 3), 7, dtype=np.uint8)).tolist() == [[[7, 7, 7]] * 3] * 2


@pytest.mark.parametrize("ratio,size", [(1.0, (40, 20)), (2.0, (80, 20)), (0.5, (40, 40))])
def test_save_image_aspect_ratio_scales_the_right_side(tmp_path, ratio, size):
    image = np.zeros((20, 40, 3), dtype=np.uint8)  # h=20, w=40
    path = tmp_path / "sub" / "x.png"
    util.save_image(image, path, aspect_ratio=ratio)
    with Image.open(path) as saved:
        assert saved.size == size
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]  # no temp file left


def test_save_image_of_nine_channel_visual(tmp_path):
    util.save_image(util.tensor2im(torch.rand(1, 9, 8, 8) * 2 - 1), tmp_path / "v.png")
    with Image.open(tmp_path / "v.png") as saved:
        assert saved.size == (24, 8) and saved.mode == "RGB"


def test_html_page_lists_images_with_links(tmp_path):
    page = html.HTML(tmp_path / "web", "my title", refresh=3)
    assert (tmp_path / "web" / "images").is_dir()
    page.add_header("epoch [2]")
    page.add_images(["a.png", "b.png"], ["real_A_p1", "fake_B"], ["a.png", "b.png"], width=128)
    index = tmp_path / "web" / "index.html"
    assert page.save() == str(index)
    text = index.read_text()
    assert "<title>my title</title>" in text
    assert 'http-equiv="refresh"' in text and 'content="3"' in text
    assert "epoch [2]" in text and "real_A_p1" in text and "fake_B" in text
    assert 'src="images/a.png"' in text and 'href="images/b.png"' in text and "width:128px" in text


def test_mkdirs_accepts_one_path_or_many(tmp_path):
    util.mkdirs(tmp_path / "a" / "b")
    util.mkdirs([tmp_path / "c", str(tmp_path / "d")])
    assert all((tmp_path / p).is_dir() for p in ("a/b", "c", "d"))
