"""aladin_data.py --dask: the cutouts as tasks on a local Dask cluster give the serial dataset byte for byte."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from data.sky.cli import main as cli_main
from util.errors import UserError

pytest.importorskip("distributed", reason="dask[distributed] is not installed")

SAMPLES = Path(__file__).resolve().parents[3] / "data" / "sky_samples"
SURVEYS = [str(SAMPLES / s) for s in ("DSS2Red", "GLIMPSE360", "Planck-HFI143")]


def build(out: Path, *extra: str) -> str:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert cli_main(["--surveys", *SURVEYS, "--sample", "8", "--fov", "1.8", "--size", "32", "--out", str(out),
                         "--seed", "1", "--fits", "--no_progress", "--quiet", *extra]) == 0
    return err.getvalue()


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_dask_local_two_workers_equals_serial(tmp_path, monkeypatch):
    import data.sky.build as build_module

    build(tmp_path / "serial")
    tasks = []

    def counted(client, *args):
        tasks.append(sum(client.nthreads().values()))
        yield from run_on_dask(client, *args)

    run_on_dask = build_module.run_on_dask
    monkeypatch.setattr(build_module, "run_on_dask", counted)
    log = build(tmp_path / "dask", "--dask", "local:2")
    assert tasks == [2]  # the cutouts ran on the 2 workers' threads
    serial, dask = files(tmp_path / "serial"), files(tmp_path / "dask")
    assert len(serial) >= 2 * 6 + 2 and sorted(dask) == sorted(serial)  # PNG + FITS per target, manifest, record
    assert [k for k in serial if dask[k] != serial[k]] == [], log


@pytest.mark.parametrize("value", ["local:x", "http://127.0.0.1:8786"])
def test_a_bad_dask_value_is_one_line(tmp_path, value):
    with pytest.raises(UserError, match=rf"--dask '{value}': use local, local:N"):
        build(tmp_path / "bad", "--dask", value)
    assert not (tmp_path / "bad").exists()


def test_dask_is_imported_only_when_asked_for():
    import subprocess
    import sys

    code = ("import sys; from data.sky import cli, build; from prediction import options, region; "
            "options.parse_config(['--name', 'x', '--surveys', 'a', '--out', 'o', '--region', '1 2 3']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'distributed'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[3],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-2000:]
