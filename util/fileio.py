"""Atomic file writes: a killed process never leaves a half-written file in place of a good one.

A single file goes through a temp file beside it and one rename. A set of files that only make
sense together (a checkpoint's G, D and training state) goes through a FileGroup: every file is
written to a temp name first, then a small commit record lists the renames, then they happen.
A kill before the record leaves the previous set (the temps are removed at the next start by
recover_file_groups); a kill after it is finished by recover_file_groups. So a reader finds all
the new files or none.

Written files get the permissions `open()` would give (0666 minus the umask), not mkstemp's 0600:
results in a shared group folder stay readable by the group.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from util.errors import UserError

COMMIT_SUFFIX = ".commit"
# temp names: "." + target name + "." + token + ".tmp" (token: ours 12 hex digits, mkstemp's 8 characters)
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8,12}\.tmp$")


def _create_temp(target: Path) -> tuple[int, Path]:
    """A new, exclusive temp file beside `target`, mode 0666 minus the umask (as open() creates files)."""
    while True:
        temp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), temp
        except FileExistsError:
            continue


def _write_temp(target: Path, write: Callable[[BinaryIO], Any]) -> Path:
    """write(f) into a temp file beside `target`, flushed to disk; the temp's path (removed on failure)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = _create_temp(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as err:
        _unlink(temp)
        if isinstance(err, OSError) and err.filename is None:
            err.filename = str(target)  # a full disk at write() names no file: name the one being written
        raise
    return temp


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(folder: Path) -> None:
    """Make renames in `folder` durable (best effort: some file systems cannot open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Call write(f) on a temp file beside `path`, fsync it, then rename it over `path`."""
    target = Path(path)
    temp = _write_temp(target, write)
    try:
        os.replace(temp, target)
    except BaseException:
        _unlink(temp)
        raise
    return target


def atomic_write_bytes(path: str | os.PathLike, data: bytes, group: "FileGroup | None" = None) -> Path:
    """`data` to `path` atomically; inside a FileGroup, as one file of that all-or-none set."""
    return atomic_write_with(path, lambda handle: handle.write(data), group)


def atomic_write_with(path: str | os.PathLike, write: Callable[[BinaryIO], Any],
                      group: "FileGroup | None" = None) -> Path:
    """write(f) to `path` atomically (streamed: large files are never held whole in memory); inside a
    FileGroup, as one file of that all-or-none set."""
    if group is not None:
        return group.write_with(path, write)
    return atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str, group: "FileGroup | None" = None) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), group)


def json_safe(value):
    """NaN and infinity (figures over no pixels, single-image error bars) become null, numpy numbers plain
    ones, paths text: the JSON files the project writes stay valid for strict parsers."""
    import numpy as np

    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def atomic_write_json(path: str | os.PathLike, value, indent: int = 1, sort_keys: bool = False) -> Path:
    """Strict JSON (no bare NaN: json_safe) written atomically."""
    return atomic_write_text(path, json.dumps(json_safe(value), indent=indent, sort_keys=sort_keys,
                                              allow_nan=False) + "\n")


class FileGroup:
    """Files of one folder written all or none. Use as a context manager: the files are committed
    when the block ends normally; on an exception (a full disk, Ctrl-C) the temps are removed and
    the previous files stay as they were."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.token = secrets.token_hex(6)
        self._pending: list[tuple[Path, Path]] = []  # (temp, target)

    def write_bytes(self, path: str | os.PathLike, data: bytes) -> Path:
        return self.write_with(path, lambda handle: handle.write(data))

    def write_with(self, path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
        target = Path(path)
        if target.parent.resolve() != self.folder.resolve():
            raise ValueError(f"{target} is outside the group's folder {self.folder}")
        self._pending.append((_write_temp(target, write), target))
        return target

    def __enter__(self) -> "FileGroup":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def discard(self) -> None:
        for temp, _ in self._pending:
            _unlink(temp)
        self._pending = []

    def commit(self) -> None:
        """Record the renames (atomically), do them, drop the record."""
        if not self._pending:
            return
        record = self.folder / f".{self.token}{COMMIT_SUFFIX}"
        renames = [[temp.name, target.name] for temp, target in self._pending]
        try:
            atomic_write_bytes(record, json.dumps({"renames": renames}).encode())
        except BaseException:
            self.discard()
            raise
        _fsync_dir(self.folder)
        _finish(record, renames)
        self._pending = []


def _finish(record: Path, renames: list[list[str]]) -> None:
    folder = record.parent
    for temp_name, target_name in renames:
        if (folder / temp_name).exists():
            os.replace(folder / temp_name, folder / target_name)
    _fsync_dir(folder)
    _unlink(record)


def _commit_records(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.iterdir()) if p.name.startswith(".") and p.name.endswith(COMMIT_SUFFIX))


def recover_file_groups(folder: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Finish the groups whose commit record was written (a kill during the renames), then remove
    the temp files of writes that never committed. Returns (files completed, temps removed)."""
    folder = Path(folder)
    if not folder.is_dir():
        return [], []
    completed: list[str] = []
    for record in _commit_records(folder):
        try:
            renames = json.loads(record.read_text(encoding="utf-8"))["renames"]
        except (OSError, ValueError, KeyError, TypeError):
            _unlink(record)  # a torn record: its renames never started, the temps go below
            continue
        completed += [target for temp, target in renames if (folder / temp).exists()]
        _finish(record, renames)
    removed = []
    for path in sorted(folder.iterdir()):
        if _TEMP_NAME.match(path.name) and path.is_file():
            _unlink(path)
            removed.append(path.name)
    return completed, removed


def check_writable_folder(folder: str | os.PathLike, option: str, create: bool = False) -> Path:
    """UserError naming `option` unless files can be written in `folder`, checked before any work.

    create=False creates nothing: the nearest existing parent must be a writable folder (a failed start
    leaves no empty folder behind). create=True makes the folder and writes and removes a probe file,
    which also catches read-only mounts and full quotas that permission bits do not show."""
    folder = Path(folder)
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            raise UserError(f"{option} {folder}: cannot write there ({err.strerror or err})") from None
        return folder
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{option}: {existing} is a file, not a folder, so {folder} cannot be created; "
                        f"choose another {option}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option}: cannot write in {existing} (a read-only file system or no permission); "
                        f"choose another {option}")
    return folder


@contextmanager
def output_folder(folder: str | os.PathLike, option: str) -> Iterator[Path]:
    """check_writable_folder(create=True) for the block; when the block fails (a refused input, Ctrl-C)
    the folders it created are removed again if they are still empty, so a refused run leaves no empty
    --out behind. A folder that existed before, or holds anything, is never removed."""
    folder = Path(folder)
    created, missing = [], folder
    while not missing.exists() and missing != missing.parent:
        created.append(missing)
        missing = missing.parent
    check_writable_folder(folder, option, create=True)
    try:
        yield folder
    except BaseException:
        for path in created:  # deepest first; os.rmdir removes empty folders only
            try:
                os.rmdir(path)
            except OSError:
                break
        raise


def remove_stale_temps(targets: Iterable[str | os.PathLike]) -> None:
    """Delete the temp files (".NAME.*.tmp") a killed writer left for these target files only.

    Each folder is listed once, however many targets it holds: a resumed run over a folder of thousands of
    tiles would otherwise list it once per tile. Other targets' temps (another shard's) are left alone."""
    by_folder: dict[Path, set[str]] = {}
    for target in targets:
        path = Path(target)
        by_folder.setdefault(path.parent, set()).add(path.name)
    for folder, names in by_folder.items():
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            name = entry.name
            if not (name.startswith(".") and name.endswith(".tmp")):
                continue
            # ".NAME.TOKEN.tmp": NAME may hold dots, so try every dot as the end of NAME
            inner = name[1:-len(".tmp")]
            if any(inner[:i] in names for i, char in enumerate(inner) if char == "."):
                _unlink(Path(entry.path))
