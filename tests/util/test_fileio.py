"""util.fileio: atomic single files with the umask's permissions, all-or-none groups of files,
and the recovery of groups whose writer was killed."""
import os
import stat

import pytest

from util import fileio
from util.fileio import FileGroup, atomic_write_bytes, atomic_write_text, recover_file_groups


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring it afterwards."""
    before = os.umask(0o022)
    os.umask(before)
    yield lambda mask: os.umask(mask)
    os.umask(before)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_get_the_permissions_the_umask_gives(tmp_path, umask, mask, expected):
    """A shared group folder stays readable: not mkstemp's 0600 whatever the umask."""
    umask(mask)
    atomic_write_text(tmp_path / "page.html", "<html></html>")
    with FileGroup(tmp_path) as group:
        atomic_write_bytes(tmp_path / "latest_net_G.pth", b"G", group)
    assert mode(tmp_path / "page.html") == expected
    assert mode(tmp_path / "latest_net_G.pth") == expected


def test_a_group_is_written_all_or_none(tmp_path):
    for name in ("a.pth", "b.pth"):
        (tmp_path / name).write_bytes(b"old")

    class Killed(Exception):
        pass

    with pytest.raises(Killed):
        with FileGroup(tmp_path) as group:
            atomic_write_bytes(tmp_path / "a.pth", b"new", group)
            raise Killed()  # before b.pth: a kill, a full disk
    assert (tmp_path / "a.pth").read_bytes() == (tmp_path / "b.pth").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["a.pth", "b.pth"]  # the temp of a.pth is gone
    with FileGroup(tmp_path) as group:
        atomic_write_bytes(tmp_path / "a.pth", b"new", group)
        atomic_write_bytes(tmp_path / "b.pth", b"new", group)
    assert (tmp_path / "a.pth").read_bytes() == (tmp_path / "b.pth").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["a.pth", "b.pth"]


def test_a_group_killed_during_its_renames_is_finished_by_the_recovery(tmp_path, monkeypatch):
    for name in ("a.pth", "b.pth"):
        (tmp_path / name).write_bytes(b"old")
    replace = os.replace
    calls = []

    def killed_at_the_third_rename(src, dst):
        calls.append(dst)
        if len(calls) == 3:  # 1: the commit record, 2: a.pth, 3: b.pth
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", killed_at_the_third_rename)
    with pytest.raises(KeyboardInterrupt):
        with FileGroup(tmp_path) as group:
            atomic_write_bytes(tmp_path / "a.pth", b"new", group)
            atomic_write_bytes(tmp_path / "b.pth", b"new", group)
    monkeypatch.undo()
    assert (tmp_path / "a.pth").read_bytes() == b"new" and (tmp_path / "b.pth").read_bytes() == b"old"
    assert recover_file_groups(tmp_path) == (["b.pth"], [])
    assert (tmp_path / "b.pth").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["a.pth", "b.pth"]
    assert recover_file_groups(tmp_path) == ([], [])


def test_the_recovery_removes_temp_files_of_writes_that_never_committed(tmp_path):
    kept = ["latest_net_G.pth", "notes.tmp", ".hidden", ".plan.tmp"]
    stale = [".latest_net_G.pth.0123456789ab.tmp", ".latest_net_D.pth.k2_x9abc.tmp"]  # ours, mkstemp's
    for name in kept + stale:
        (tmp_path / name).write_bytes(b"x")
    assert recover_file_groups(tmp_path) == ([], sorted(stale))
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
    assert recover_file_groups(tmp_path / "missing") == ([], [])


def test_a_group_takes_files_of_its_own_folder_only(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match="outside the group's folder"):
        with FileGroup(tmp_path) as group:
            atomic_write_bytes(tmp_path / "sub" / "x", b"x", group)
    assert os.listdir(tmp_path / "sub") == []


def test_remove_stale_temps_lists_each_folder_once_and_spares_other_targets(tmp_path, monkeypatch):
    tiles = tmp_path / "Norder5" / "Dir0"
    tiles.mkdir(parents=True)
    stale = [tiles / ".Npix1.png.a1b2c3d4.tmp", tiles / ".Npix1.fits.a1b2c3d4e5f6.tmp", tiles / ".Npix2.png.zz.tmp"]
    kept = [tiles / ".Npix3.png.a1b2c3d4.tmp", tiles / "Npix1.png", tiles / ".Npix10.png.a1b2c3d4.tmp"]
    for path in stale + kept:
        path.write_bytes(b"x")
    listed = []
    real_scandir = os.scandir
    monkeypatch.setattr(fileio.os, "scandir", lambda folder: listed.append(folder) or real_scandir(folder))
    targets = [tiles / f"Npix{n}.{fmt}" for n in (1, 2) for fmt in ("png", "fits")]
    fileio.remove_stale_temps(targets + [tmp_path / "missing" / "x.png"])
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert listed == [tiles]
