"""Remote HiPS over a real HTTP server on 127.0.0.1 with injected faults (500, slow, truncated, corrupt, 404)."""
from __future__ import annotations

import collections
import gzip
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
        if path.startswith("/sesame/"):  # astropy asks BASE/<databases>?<name>
            return self._send(500, b"busy") if action == "500" else self._send(200, server.sesame_reply)
        if path.endswith("/hips2fits"):
            if action == "500":
                return self._send(500, b"busy")
            return self._send(200, hips2fits_stand_in(self.path, Path(self.directory), server))
        if server.missing_prefix and path.startswith(server.missing_prefix) and "/Norder" in path:
            return self._send(404, b"")
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
        if action == "gzip":  # Content-Length then counts the compressed bytes, as HTTP says
            return self._send(200, gzip.compress(body), {"Content-Encoding": "gzip"})
        self._send(200, body)

    def _send(self, code: int, body: bytes, headers: dict | None = None):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
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
    server.missing_prefix = ""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


GRID = OutputGrid(267.2, -28.0, 3.0, 48, 48)  # needs several DSS2Red tiles
SETTINGS = FetchSettings(timeout_s=2.0, retries=2, backoff_s=0.01, max_connection_failures=4)


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


def test_gzip_encoded_replies_are_not_truncated(hips_server, samples):
    """Content-Length counts the compressed bytes: a gzip reply is complete, fetched once."""
    path = "/DSS2Red/Norder3/Dir0/Npix450.jpg"
    hips_server.faults[path] = ["gzip"]
    body = _fast(retries=1).get(hips_server.url + path)
    assert body == (samples / path.lstrip("/")).read_bytes()
    assert hips_server.hits[path] == 1


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


def test_dead_server_stops_the_run_with_one_line(hips_server, tmp_path):
    """A server that refuses every connection: after a few failed connections in a row the run stops with
    one line and a non-zero exit, instead of ~9 s of retries per target (issue 13, case 13)."""
    from data.sky.cli import main as cli_main

    survey = f"{hips_server.url}/DSS2Red"
    cache = tmp_path / "cache"
    Fetcher(FetchSettings(cache_dir=cache)).get(f"{survey}/properties")  # the survey opened once, then
    hips_server.shutdown()  # the server dies
    hips_server.server_close()
    coords = tmp_path / "many.csv"
    coords.write_text("name,ra,dec\n" + "".join(f"p{i},{264 + 0.5 * i:.2f},-27.0\n" for i in range(24)))
    out = tmp_path / "ds"
    with pytest.raises(UserError, match=r"127\.0\.0\.1:\d+ unreachable: \d+ failed connections in a row.*re-run"):
        cli_main(["--surveys", survey, "--coords", str(coords), "--fov", "0.5", "--size", "16", "--out", str(out),
                  "--cache_dir", str(cache), "--retries", "1", "--timeout", "2", "--no_progress", "--quiet"])
    assert not list(out.rglob("*.png")) and not list(out.rglob("*.tmp"))
    with pytest.raises(UserError, match="unreachable.*re-run"):  # also while screening --sample candidates
        cli_main(["--surveys", survey, "--sample", "5", "--min_coverage", "0.5", "--fov", "0.5", "--size", "16",
                  "--out", str(out), "--cache_dir", str(cache), "--retries", "1", "--timeout", "2",
                  "--no_progress", "--quiet"])


def test_target_survey_without_any_tile_is_skipped_not_black(hips_server, tmp_path, capsys):
    """Every tile of panel A's survey is 404: the target is skipped and listed, not written with a black A."""
    from data.sky.cli import main as cli_main

    hips_server.missing_prefix = "/DSS2Red/"
    out = tmp_path / "ds"
    argv = ["--surveys", f"{hips_server.url}/DSS2Red", f"{hips_server.url}/FermiColor", "--coords", "", "--fov",
            "1", "--size", "16", "--out", str(out), "--no_progress", "--quiet"]
    coords = tmp_path / "two.csv"
    coords.write_text("name,ra,dec\nfield1,266.4,-28.9\nfield2,268.0,-26.0\n")
    argv[argv.index("--coords") + 1] = str(coords)
    assert cli_main(argv) == 0
    assert "skipped 2 without data in the target survey DSS2Red" in capsys.readouterr().err
    assert not list(out.rglob("*.png"))


def test_sesame_resolves_names_openngc_lacks(hips_server, tmp_path):
    """Sesame through astropy's SkyCoord.from_name, pointed at the stand-in; --retries and --timeout apply."""
    from data.sky.fetch import Retrier
    from data.sky.targets import resolve_names

    sesame = hips_server.url + "/sesame/"
    hips_server.sesame_reply = b"# Sgr A*\n%J 266.41681662 -29.00782497 = 17:45:40.03 -29:00:28.1\n"
    hips_server.faults["/sesame/SNV"] = ["500"]  # one server error: retried
    found, unknown = resolve_names(["NGC 6523", "Sgr A*"], True, sesame, Retrier(SETTINGS))
    assert [t.name for t in found] == ["NGC 6523", "Sgr A*"] and not unknown
    assert found[1].ra == pytest.approx(266.41681662) and found[1].dec == pytest.approx(-29.00782497)
    assert hips_server.hits["/sesame/SNV"] == 2  # OpenNGC answered for NGC 6523; Sgr A*: a 500, then the answer
    hips_server.sesame_reply = b"# nothing\n#! *** Nothing found *** \n"
    found, unknown = resolve_names(["Nowhere 42"], True, sesame, Retrier(SETTINGS))
    assert not found and unknown == ["Nowhere 42"] and hips_server.hits["/sesame/SNV"] == 3  # unknown: asked once
    found, unknown = resolve_names(["Sgr A*"], True, "http://127.0.0.1:9/sesame/", Retrier(SETTINGS))  # refused
    assert not found and unknown == ["Sgr A*"]


def test_long_name_from_sesame_gets_a_short_file_name(hips_server, tmp_path):
    """A 300-character name given with --targets (resolved by Sesame) is written under a short name."""
    from data.sky.cli import main as cli_main

    long_name = "Cloud " + "x" * 294
    hips_server.sesame_reply = b"%J 266.40 -28.90 = 17:45:36.0 -28:54:00\n"
    out = tmp_path / "ds"
    assert cli_main(["--surveys", f"{hips_server.url}/DSS2Red", "--targets", long_name, "--fov", "1", "--size",
                     "16", "--out", str(out), "--sesame_url", hips_server.url + "/sesame/", "--retries", "1",
                     "--no_progress", "--quiet"]) == 0
    files = list(out.rglob("*.png"))
    assert len(files) == 1 and len(files[0].stem) <= 100 and files[0].stem.startswith("Cloud_xxx")


def test_dead_sesame_stops_with_one_line():
    from data.sky.fetch import Retrier
    from data.sky.targets import resolve_names

    with pytest.raises(UserError, match="unreachable.*--offline"):
        resolve_names([f"Star {i}" for i in range(10)], True, "http://127.0.0.1:9/sesame/", Retrier(SETTINGS))
