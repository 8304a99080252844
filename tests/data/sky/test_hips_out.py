"""HiPS output pieces: tile grids with margins, tile files read back by the cutout engine, lower orders,
MOC, properties, the seam statistic and the run bookkeeping."""
from __future__ import annotations

import json

import numpy as np
import pytest

from data.sky.engine import CutoutEngine
from data.sky.geometry import OutputGrid, pixel_sky_coords, zorder_rows_cols
from data.sky.hips_finish import finish_tree, parent_tile
from data.sky.hips_out import (DisplayStretch, read_fits_tile, read_moc_cells, tile_done, write_tile,
                               written_tiles)
from data.sky.hips_quality import calibration, seam_stats
from data.sky.hips_run import claim_settings, read_skipped, shard_tiles, write_skipped
from data.sky.properties import parse_properties_text
from data.sky.source import open_survey
from data.sky.tile_grid import (same_cell_neighbour, tile_pixel_lonlat, tile_position, tiles_under,
                                region_tiles)
from util.errors import UserError


def _angle(lon1, lat1, lon2, lat2):
    l1, b1, l2, b2 = (np.radians(a) for a in (lon1, lat1, lon2, lat2))
    cos = np.sin(b1) * np.sin(b2) + np.cos(b1) * np.cos(b2) * np.cos(l1 - l2)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _offset_from_nearest_centre(lon, lat, depth):
    """Distance (in cells) of each point from the centre of the depth-`depth` cell holding it."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    import cdshealpix.nested as healpix

    ipix = healpix.lonlat_to_healpix(Longitude(lon.ravel() * u.deg), Latitude(lat.ravel() * u.deg), depth)
    clon, clat = healpix.healpix_to_lonlat(ipix, depth)
    cell = 58.6 / 2**depth
    return (_angle(lon.ravel(), lat.ravel(), clon.deg, clat.deg) / cell).reshape(lon.shape)


def test_tile_pixels_are_the_healpix_cells_in_hips_order():
    import cdshealpix.nested as healpix

    width, order = 16, 3
    rows, cols = zorder_rows_cols(width)
    for tile in (0, 300, 452, 767):
        lon, lat = tile_pixel_lonlat([tile], order, width)
        centres = np.arange(tile * width * width, (tile + 1) * width * width, dtype=np.uint64)
        clon, clat = healpix.healpix_to_lonlat(centres, order + 4)
        assert _angle(lon[0][rows, cols], lat[0][rows, cols], clon.deg, clat.deg).max() < 1e-6


def test_margins_land_on_the_neighbouring_tiles_pixels():
    """Except the 8 tiles touching a pole, margin pixels are real cell centres of the neighbours
    (also across base cells and the polar cuts), and they continue the tile without a fold."""
    width, order, margin = 16, 3, 8
    pole_corners = [64 * b + (63 if b < 4 else 0) for b in (0, 1, 2, 3, 8, 9, 10, 11)]
    off_grid = []
    for tile in range(12 * 4**order):
        lon, lat = tile_pixel_lonlat([tile], order, width, margin)
        offset = _offset_from_nearest_centre(lon[0], lat[0], order + 4)
        if offset.max() > 0.01:
            off_grid.append(tile)
        if tile not in pole_corners:  # past a pole, margin pixels sit on the pole
            rows = _angle(lon[0][1:], lat[0][1:], lon[0][:-1], lat[0][:-1])
            cols = _angle(lon[0][:, 1:], lat[0][:, 1:], lon[0][:, :-1], lat[0][:, :-1])
            assert min(rows.min(), cols.min()) > 0  # no two neighbouring pixels at the same place
    assert sorted(off_grid) == sorted(pole_corners)


def test_margin_rows_equal_the_next_tiles_rows_inside_a_base_cell():
    width, order, margin = 8, 4, 4
    tile = 1000
    below = int(same_cell_neighbour([tile], order, 0)[0])
    right = int(same_cell_neighbour([tile], order, 1)[0])
    lon, lat = tile_pixel_lonlat([tile, below, right], order, width, margin)
    inner = slice(margin, margin + width)
    np.testing.assert_allclose(lat[0][margin + width:, inner], lat[1][margin:2 * margin, inner], atol=1e-9)
    np.testing.assert_allclose(lat[0][inner, margin + width:], lat[2][inner, margin:2 * margin], atol=1e-9)
    pos = tile_position([tile, below], order)
    assert pos.i[1] == pos.i[0] + 1 and pos.j[1] == pos.j[0]


def _coordinate_tree(root, order, width, tiles):
    """Tiles whose values are their pixels' declination: reading them back must give the sky."""
    stretch = DisplayStretch("linear", -90, 90)
    for tile in tiles:
        _, lat = tile_pixel_lonlat([tile], order, width)
        write_tile(root, order, int(tile), lat[0].astype(np.float32), stretch)
    return stretch


def test_written_tiles_read_back_by_the_cutout_engine_at_the_right_sky_positions(tmp_path):
    order, width = 4, 64
    grid = OutputGrid(266.4, -28.9, 3.0, 96, 96)
    ra, dec = pixel_sky_coords(grid)
    tiles = tiles_under(ra, dec, order, width)
    stretch = _coordinate_tree(tmp_path, order, width, tiles)
    finish_tree(tmp_path, order, 3, stretch, {"hips_frame": "equatorial", "hips_order": order,
                                               "hips_order_min": 3, "hips_tile_width": width,
                                               "hips_tile_format": "fits png"})
    engine = CutoutEngine(open_survey(str(tmp_path)), "fits")
    values = engine.cutout(grid).values[..., 0]
    assert np.isfinite(values).all()
    np.testing.assert_allclose(values, dec, atol=0.02)  # bilinear on 3.7' pixels
    # the PNG tiles hold the same map through the display stretch (transparent = no data)
    png = CutoutEngine(open_survey(str(tmp_path)), "png").cutout(grid).values[..., 0]
    np.testing.assert_allclose(png, stretch.levels(dec), atol=1.5)


def test_lower_orders_average_the_four_children_in_place(tmp_path):
    order, width = 5, 8
    children = {4 * 1234 + k for k in range(4)} | {4 * 1235}
    stretch = _coordinate_tree(tmp_path, order, width, sorted(children))
    finish_tree(tmp_path, order, 3, stretch, {"hips_frame": "equatorial", "hips_order": order,
                                               "hips_order_min": 3, "hips_tile_width": width,
                                               "hips_tile_format": "fits png"})
    _, lat = tile_pixel_lonlat([1234], order - 1, width)
    np.testing.assert_allclose(read_fits_tile(tmp_path, order - 1, 1234), lat[0], atol=1e-3)
    partial = read_fits_tile(tmp_path, order - 1, 1235)  # one child of four: a quarter of the tile
    assert np.isfinite(partial).sum() == width * width // 4
    assert written_tiles(tmp_path, 3).tolist() == [1234 // 4]
    assert (tmp_path / "Norder3" / "Allsky.png").is_file() and (tmp_path / "Norder3" / "Allsky.fits").is_file()
    moc_order, cells = read_moc_cells(tmp_path / "Moc.fits")
    assert moc_order == order and cells.tolist() == sorted(children)
    props = parse_properties_text((tmp_path / "properties").read_text())  # the builder's own reader
    assert (props.max_order, props.min_order, props.tile_width, props.formats) == (order, 3, width, ("fits", "png"))
    assert "moc_sky_fraction" in (tmp_path / "properties").read_text()


def test_parent_tile_layout_matches_healpix():
    width, order, parent = 8, 5, 777
    kids = [tile_pixel_lonlat([4 * parent + k], order, width)[0][0].astype(np.float32) for k in range(4)]
    lon, _ = tile_pixel_lonlat([parent], order - 1, width)
    np.testing.assert_allclose(parent_tile(kids, width), lon[0], atol=1e-3)
    swapped = parent_tile([kids[0], kids[2], kids[1], kids[3]], width)
    assert np.abs(swapped - lon[0]).max() > 0.1  # the layout matters, so the test can fail


def test_seam_statistic_sees_offsets_between_tiles():
    order, width = 4, 32
    tiles = region_tiles(266.4, -28.9, 4.0, order)
    smooth = {int(t): np.sin(tile_pixel_lonlat([t], order, width)[1][0]).astype(np.float32) for t in tiles}
    stats = seam_stats(smooth, order)
    assert stats.pairs > 10 and 0.8 < stats.ratio < 1.2
    rng = np.random.default_rng(0)
    stepped = {t: v + np.float32(rng.normal(0, 0.2)) for t, v in smooth.items()}
    assert seam_stats(stepped, order).ratio > 1.5


def test_calibration_figures():
    rng = np.random.default_rng(1)
    truth = rng.normal(0, 1, 20000)
    mean = truth + rng.normal(0, 0.5, truth.size)
    result = calibration(mean, np.full(truth.size, 0.5), truth)
    assert abs(result.within_1std - 0.683) < 0.02 and abs(result.fitted_scale - 1.0) < 0.05
    narrow = calibration(mean, np.full(truth.size, 0.25), truth)
    assert narrow.within_1std < 0.45 and abs(narrow.fitted_scale - 2.0) < 0.1
    assert calibration(mean, None, truth).pearson_r > 0.85


def test_shards_split_the_tiles_and_settings_guard_the_folder(tmp_path):
    tiles = np.array([9, 3, 5, 1, 7])
    parts = [shard_tiles(tiles, (i, 2)).tolist() for i in range(2)]
    assert sorted(parts[0] + parts[1]) == [1, 3, 5, 7, 9] and not set(parts[0]) & set(parts[1])
    record = {"settings": {"order": 5, "inputs": ["a"]}, "derived": 1}
    claimed = claim_settings(tmp_path, record, overwrite=False)
    assert claimed["derived"] == 1
    assert claim_settings(tmp_path, {**record, "derived": 2}, overwrite=False)["derived"] == 1  # folder wins
    write_tile(tmp_path, 5, 7, np.zeros((8, 8), np.float32), DisplayStretch())
    with pytest.raises(UserError, match="order: 5 in the folder, 6 now"):
        claim_settings(tmp_path, {"settings": {"order": 6, "inputs": ["a"]}}, overwrite=False)
    assert tile_done(tmp_path, 5, 7)
    claim_settings(tmp_path, {"settings": {"order": 6, "inputs": ["a"]}}, overwrite=True)
    assert not tile_done(tmp_path, 5, 7)
    write_skipped(tmp_path, (1, 2), {4: "no data in X"})
    assert read_skipped(tmp_path) == {4: "no data in X"} and read_skipped(tmp_path, (0, 2)) == {}
    other = tmp_path / "other"
    (other / "Norder3").mkdir(parents=True)
    with pytest.raises(UserError, match="did not write"):
        claim_settings(other, record, overwrite=True)
    assert json.loads((tmp_path / "predict.json").read_text())["settings"]["order"] == 6


def test_two_runs_started_together_cannot_both_claim_the_folder(tmp_path, monkeypatch):
    """P12c of the fault sweep: both runs found no predict.json and both went on (margin 32 in predict.json,
    128 in properties and in the tile). The check and the write are one step under a lock now."""
    import threading
    import time

    from data.sky import hips_run

    real = hips_run.looks_like_hips

    def slow(out):  # widen the window between 'no predict.json yet' and writing it
        time.sleep(0.3)
        return real(out)

    monkeypatch.setattr(hips_run, "looks_like_hips", slow)
    outcome = {}

    def run(margin):
        try:
            claim_settings(tmp_path, {"settings": {"order": 5, "margin": margin}}, overwrite=False)
            outcome[margin] = "claimed"
        except UserError as err:
            outcome[margin] = str(err)

    threads = [threading.Thread(target=run, args=(m,)) for m in (128, 32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(v == "claimed" for v in outcome.values()) == [False, True], outcome
    refused = next(v for v in outcome.values() if v != "claimed")
    assert "was written with other settings (margin:" in refused
    kept = json.loads((tmp_path / "predict.json").read_text())["settings"]["margin"]
    assert outcome[kept] == "claimed"


def test_overwrite_waits_for_no_run_and_finish_knows_every_region(tmp_path):
    from data.sky.hips_run import RUN_LOCK, OutFolder, unfinished_shards
    from data.sky.tile_grid import region_tiles
    from util.locks import FileLock

    record = {"settings": {"order": 5, "margin": 32}}
    with OutFolder(tmp_path) as running:  # a run writing tiles holds the run lock (shared)
        running.claim(record, overwrite=False, region=(266.4, -28.9, 2.0), shard=(0, 2))
        write_tile(tmp_path, 5, 7, np.zeros((8, 8), np.float32), DisplayStretch())
        with OutFolder(tmp_path) as second:  # a shard with the same settings joins it
            second.claim(record, overwrite=False, region=(266.4, -28.9, 2.0), shard=(1, 2))
        with pytest.raises(UserError, match="another predict_sky.py run is writing there"):
            claim_settings(tmp_path, {"settings": {"order": 5, "margin": 64}}, overwrite=True)
        assert tile_done(tmp_path, 5, 7)
    assert FileLock(tmp_path / RUN_LOCK).acquire("exclusive", wait=False)  # released with the runs
    saved = json.loads((tmp_path / "predict.json").read_text())
    assert saved["regions"] == [{"region": [266.4, -28.9, 2.0], "shards": 2}]
    tiles = region_tiles(266.4, -28.9, 2.0, 5)
    assert len(tiles) == 11
    missing = unfinished_shards(tmp_path, saved, tiles[::2])  # shard 0's tiles written
    assert missing == ['shard 1/2 of --region "266.4 -28.9 2" (5 of 5 tiles)']
    write_skipped(tmp_path, (1, 2), {int(t): "no data in X" for t in tiles[1::2]})
    assert unfinished_shards(tmp_path, saved, tiles[::2]) == []
