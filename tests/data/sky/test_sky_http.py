"""Remote HiPS over a real HTTP server on 127.0.0.1 with injected faults (500, slow, truncated, corrupt, 404)."""
from __future__ import annotations

import collections
import json
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from data.sky.engine import CutoutEngine
from data.sky.fetch import Fetcher, FetchError, FetchSettings
from data.sky.geometry import OutputGrid
from data.sky.source import open_survey
from util.errors import UserError


class FaultyHandler(SimpleHTTPRequestHandler):
    """Serves a folder; `faults[path]` is a list of actions used up one per request."""

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        server = self.server
        path = self.path.split("?")[0]
        with server.lock:
            server.hits[path] += 1
            actions = server.faults.get(path)
            action = actions.pop(0) if actions else None
        if path.endswith("/MocServer/query"):
            return self._send(200, json.dumps(server.moc_records).encode())
        if path.endswith("/sesame"):
            return self._send(200, server.sesame_reply)
        if path.endswith("/hips2fits"):
            if action == "500":
                return self._send(500, b"busy")
            return self._send(200, hips2fits_stand_in(self.path, Path(self.directory), server))
        if action == "500":
            return self._send(500, b"boom")
        if action == "404":
            return self._send(404, b"")
        if action == "slow":
            time.sleep(server.slow_s)
        file = Path(self.directory) / path.lstrip("/")
        if not file.is_file():
            return self._send(404, b"")
        body = file.read_bytes()
        if action == "truncate":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        if action == "corrupt":
            body = b"\xff\xd8" + bytes(len(body) - 2)
        self._send(200, body)

    def _send(self, code: int, body: bytes):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def hips2fits_stand_in(request_path: str, root: Path, server) -> bytes:
    """Plays the CDS service: renders the asked HiPS (last URL part = local sample) with the built-in engine."""
    import io
    import urllib.parse

    from astropy.io import fits
    from PIL import Image

    from data.sky.geometry import make_wcs
    from data.sky.render import BuiltinRenderer

    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(request_path).query))
    server.hips2fits_queries.append(query)
    grid = OutputGrid(float(query["ra"]), float(query["dec"]), float(query["fov"]), int(query["width"]),
                      int(query["height"]), query["projection"])
    engine = CutoutEngine(open_survey(str(root / query["hips"].rstrip("/").rsplit("/", 1)[-1])))
    values = BuiltinRenderer([engine]).render([grid])[0][0].values
    buffer = io.BytesIO()
    if query["format"] == "fits":
        fits.PrimaryHDU(values[::-1, :, 0], header=make_wcs(grid).to_header()).writeto(buffer)
    else:
        Image.fromarray(np.nan_to_num(values).clip(0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def hips_server(samples):
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(FaultyHandler, directory=str(samples)))
    server.daemon_threads = True
    server.lock = threading.Lock()
    server.hits = collections.Counter()
    server.faults = {}
    server.slow_s = 1.5
    server.moc_records = []
    server.hips2fits_queries = []
    server.sesame_reply = b""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


GRID = OutputGrid(267.2, -28.0, 3.0, 48, 48)  # needs several DSS2Red tiles


def _fast(tmp_path=None, retries=4) -> Fetcher:
    return Fetcher(FetchSettings(cache_dir=tmp_path, timeout_s=0.5, retries=retries, backoff_s=0.01, parallel=4))


def test_remote_equals_local_despite_faults(hips_server, samples, tmp_path):
    local = CutoutEngine(open_survey(str(samples / "DSS2Red"))).cutout(GRID)
    engine = CutoutEngine(open_survey(f"{hips_server.url}/DSS2Red", _fast(tmp_path / "cache")))
    needed = sorted({f"/DSS2Red/Norder3/Dir0/Npix{p}.jpg" for p in (450, 451, 449, 460, 457, 448)})
    present = [p for p in needed if (samples / p.lstrip("/")).is_file()]
    faults = {present[0]: ["500", "500"], present[1]: ["truncate"], present[2]: ["slow"], present[3]: ["corrupt"]}
    hips_server.faults.update({k: list(v) for k, v in faults.items()})
    remote = engine.cutout(GRID)
    assert np.array_equal(np.isnan(local.values), np.isnan(remote.values))
    assert np.allclose(np.nan_to_num(local.values), np.nan_to_num(remote.values))
    used = [p for p in faults if hips_server.hits[p]]
    assert used, "the grid must need the faulty tiles"
    for path in used:
        assert hips_server.hits[path] == len(faults[path]) + 1
    # the disk cache holds only good copies: a second run asks the server for no existing tile
    # (404s are remembered for one run only, so a tile published later is found next time)
    def existing_tile_hits() -> int:
        return sum(v for k, v in hips_server.hits.items() if k.endswith(".jpg") and (samples / k.lstrip("/")).is_file())

    before = existing_tile_hits()
    again = CutoutEngine(open_survey(f"{hips_server.url}/DSS2Red", _fast(tmp_path / "cache"))).cutout(GRID)
    after = existing_tile_hits()
    assert after == before and np.allclose(np.nan_to_num(again.values), np.nan_to_num(remote.values))


def test_404_is_missing_and_asked_once(hips_server, samples):
    fetcher = _fast()
    url = f"{hips_server.url}/DSS2Red/Norder3/Dir0/Npix1.jpg"
    assert fetcher.get(url) is None and fetcher.get(url) is None
    assert hips_server.hits["/DSS2Red/Norder3/Dir0/Npix1.jpg"] == 1
    engine = CutoutEngine(open_survey(f"{hips_server.url}/GLIMPSE360", fetcher), use_allsky=False)
    cut = engine.cutout(OutputGrid(275.5, -18.0, 4.0, 32, 32))  # runs off the sample's tiles
    assert 0 < cut.coverage < 1


def test_persistent_errors_give_up_cleanly(hips_server):
    path = "/DSS2Red/Norder3/Dir0/Npix450.jpg"
    hips_server.faults[path] = ["500"] * 10
    with pytest.raises(FetchError, match="HTTP 500"):
        _fast(retries=2).get(hips_server.url + path)
    assert hips_server.hits[path] == 3


def test_timeout_then_success(hips_server):
    path = "/DSS2Red/properties"
    hips_server.faults[path] = ["slow"]
    assert b"hips_frame" in _fast().get(hips_server.url + path)
    assert hips_server.hits[path] == 2


def test_cds_id_resolved_by_mocserver_stand_in(hips_server):
    hips_server.moc_records = [{"ID": "CDS/P/DSS2/red", "hips_service_url": f"{hips_server.url}/DSS2Red"}]
    survey = open_survey("CDS/P/DSS2/red", _fast(), mocserver_url=f"{hips_server.url}/MocServer/query")
    assert survey.location == f"{hips_server.url}/DSS2Red" and survey.name == "CDS_DSS2_red"
    with pytest.raises(UserError, match="unknown to the CDS MocServer"):
        open_survey("CDS/P/Nothing", _fast(), mocserver_url=f"{hips_server.url}/MocServer/query")
    with pytest.raises(UserError, match="cannot reach the CDS MocServer"):
        open_survey("CDS/P/DSS2/red", _fast(retries=0), mocserver_url="http://127.0.0.1:9/MocServer/query")


def test_url_without_properties_is_a_user_error(hips_server):
    with pytest.raises(UserError, match="properties not found"):
        open_survey(f"{hips_server.url}/nothing-here", _fast())


def test_hips2fits_backend_against_a_stand_in(hips_server, samples, tmp_path):
    from data.sky.cli import main as cli_main
    from data.sky.config import BuildConfig
    from data.sky.hips2fits_backend import Hips2FitsRenderer
    from data.sky.render import BuiltinRenderer

    hips_server.faults["/hips2fits"] = ["500"]
    surveys = [f"{hips_server.url}/DSS2Red", f"{hips_server.url}/FermiColor"]
    engines = [CutoutEngine(open_survey(s, _fast())) for s in surveys]
    config = BuildConfig(surveys=tuple(surveys), out=tmp_path, fov=1.0, size=40,
                         hips2fits_url=f"{hips_server.url}/hips2fits",
                         fetch=FetchSettings(timeout_s=5, retries=2, backoff_s=0.01))
    grid = OutputGrid(266.4, -28.9, 1.0, 40, 30)
    remote = Hips2FitsRenderer(engines, config).render([grid])[0]
    local = BuiltinRenderer(engines).render([grid])[0]
    assert [b.values.shape for b in remote] == [(30, 40, 1), (30, 40, 3)]
    assert np.allclose(remote[0].values, local[0].values, equal_nan=True)  # FITS: exact, rows flipped back
    assert np.abs(remote[1].values - np.rint(local[1].values)).max() <= 1  # PNG: 8-bit
    asked = hips_server.hips2fits_queries[-1]
    assert asked["coordsys"] == "icrs" and asked["projection"] == "TAN" and float(asked["fov"]) == 1.0
    assert hips_server.hits["/hips2fits"] == 3  # one 500 retried
    out = tmp_path / "ds"
    code = cli_main(["--surveys", *surveys, "--ra", "266.4", "--dec", "-28.9", "--fov", "1", "--size", "32",
                     "--out", str(out), "--backend", "hips2fits", "--hips2fits_url", f"{hips_server.url}/hips2fits",
                     "--no_progress", "--quiet"])
    assert code == 0 and len(list((out / "test").glob("*.png"))) == 1


def test_hips2fits_refuses_local_surveys(samples, tmp_path):
    from data.sky.cli import main as cli_main

    with pytest.raises(UserError, match="is local"):
        cli_main(["--surveys", str(samples / "DSS2Red"), "--ra", "266.4", "--dec", "-28.9", "--fov", "1",
                  "--size", "32", "--out", str(tmp_path / "o"), "--backend", "hips2fits", "--quiet",
                  "--hips2fits_url", "http://127.0.0.1:9/hips2fits"])


def test_failed_targets_are_listed_and_retried_on_rerun(hips_server, tmp_path, capsys):
    from data.sky.cli import main as cli_main

    path = "/DSS2Red/Norder3/Dir0/Npix450.jpg"
    hips_server.faults[path] = ["500"] * 3
    argv = ["--surveys", f"{hips_server.url}/DSS2Red", "--ra", "266.4", "--dec", "-28.9", "--fov", "0.5",
            "--size", "16", "--out", str(tmp_path / "ds"), "--retries", "2", "--timeout", "2", "--no_progress",
            "--quiet"]
    assert cli_main(argv) == 1
    assert "failed 1 (re-run to retry)" in capsys.readouterr().err
    assert not list((tmp_path / "ds").rglob("*.png"))
    assert cli_main(argv) == 0 and len(list((tmp_path / "ds" / "test").glob("*.png"))) == 1


def test_sesame_resolves_names_openngc_lacks(hips_server, tmp_path):
    from data.sky.targets import resolve_names

    sesame = hips_server.url + "/sesame"
    hips_server.sesame_reply = b"# Sgr A*\n%J 266.41681662 -29.00782497 = 17:45:40.03 -29:00:28.1\n"
    found, unknown = resolve_names(["NGC 6523", "Sgr A*"], sesame_url=sesame)
    assert [t.name for t in found] == ["NGC 6523", "Sgr A*"] and not unknown
    assert found[1].ra == pytest.approx(266.41681662) and found[1].dec == pytest.approx(-29.00782497)
    assert hips_server.hits["/sesame"] == 1  # OpenNGC answered for NGC 6523
    found, unknown = resolve_names(["Sgr A*"], sesame_url="http://127.0.0.1:9/sesame")  # unreachable
    assert not found and unknown == ["Sgr A*"]
