"""Resumable stages of a long run: each child process logs to OUT/logs, each finished stage leaves a stamp.

A stage is skipped when its stamp holds the very parameters it would run with, so a killed run
resumes where it stopped and a changed setting redoes only what it changes. Independent children
(the trainings of an ablation) can run side by side: on a CPU machine one single-threaded training
per core finishes the set about twice as fast on two cores as running them one after the other.

A stage that is redone replaces only what this run wrote: every folder a stage writes into has a record
in OUT/stages/files/ of the files the run put there (`FolderRecord`). A redo deletes exactly those; a
folder that also holds anything else (a user's data set in OUT/dataset, notes beside a checkpoint) is
left alone and the run stops with one line naming it. Nothing is ever removed as a whole tree.
"""
from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

from util.errors import UserError
from util.fileio import atomic_write_text

ECHOED = (b"End of epoch",)  # stdout lines of a child worth a line on the terminal


def echo(line: bytes) -> None:
    """A child's line on our stderr, as bytes where it has a buffer; a notebook's or a test's stream has only text."""
    buffer = getattr(sys.stderr, "buffer", None)
    if buffer is not None:
        buffer.write(line)
    else:
        sys.stderr.write(line.decode(errors="replace"))
    sys.stderr.flush()


def folder_files(folder: Path) -> set[str]:
    """Relative paths of everything under `folder` but folders (links are entries, never followed)."""
    found: set[str] = set()
    if not folder.is_dir():
        return found
    for root, dirs, files in os.walk(folder):
        base = Path(root).relative_to(folder)
        found.update((base / name).as_posix() for name in files)
        found.update((base / name).as_posix() for name in dirs if os.path.islink(os.path.join(root, name)))
    return found


# What the stages' children (aladin_data.py, train.py, test.py) write in a folder. After a kill the folder's
# record is still open, and only files of these kinds that appeared since count as the run's: anything else
# there (a note the user added after the kill) is the user's, and the folder is left alone.
CHILD_FILES = ("*.pth", "*_opt.txt", "loss_log.*", "loss_curves.png", "fits_norm.json", "training_inputs.json",
               "index.html", "web/index.html", "web/images/*", "manifest.json", "metrics.json", "images/*",
               "fits/*", "manifest*.csv", "dataset.json", "train/*", "val/*", "test/*", "*.tmp", "*.commit")


def child_file(relative: str) -> bool:
    return any(fnmatch.fnmatchcase(relative, pattern) for pattern in CHILD_FILES)


def _inside(relative: str) -> bool:
    """A recorded path that stays inside its folder (an edited record cannot point elsewhere)."""
    path = Path(relative)
    return bool(relative) and not path.is_absolute() and ".." not in path.parts


def _listed(names: Iterable[str], limit: int = 3) -> str:
    names = sorted(names)
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


class FolderRecord:
    """OUT/stages/files/<folder>.json: the files this run wrote in one folder.

    While a child writes there the record is open and lists what the folder held before (`others`):
    whatever appears meanwhile is the child's, also after a kill. Once it ends the record is closed and
    lists the run's own files (`ours`); a file added later by someone else is not in it."""

    def __init__(self, out: Path, folder: Path):
        self.folder = folder
        name = folder.relative_to(out).as_posix() if folder.is_relative_to(out) else folder.as_posix()
        self.path = out / "stages" / "files" / (name.replace("/", "~") + ".json")

    def _read(self) -> dict:
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
            return record if isinstance(record, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write(self, **record) -> None:
        atomic_write_text(self.path, json.dumps(record, indent=1, sort_keys=True) + "\n")

    def ours(self) -> set[str]:
        """The files in the folder now that this run wrote."""
        record, present = self._read(), folder_files(self.folder)
        if record.get("open"):
            return {name for name in present - set(record.get("others", [])) if child_file(name)}
        return present & {name for name in record.get("ours", []) if _inside(name)}

    def missing(self) -> list[str]:
        """Files the closed record lists that are gone (someone deleted a result)."""
        record = self._read()
        if record.get("open") or not record.get("ours"):
            return []
        present = folder_files(self.folder)
        return sorted(name for name in record["ours"] if _inside(name) and name not in present)

    def refuse_link(self, what: str) -> None:
        """A folder that is a link leads to someone else's files, whatever names they have: never written."""
        if self.folder.is_symlink():
            raise UserError(f"{self.folder} is a link (to {os.readlink(self.folder)}); {what} writes only into "
                            f"folders of its own, so it is left alone: remove the link, or use another --out")

    def open(self) -> None:
        self.refuse_link("this run")
        present = folder_files(self.folder)
        self._write(open=True, others=sorted(present - self.ours()))

    def close(self, also: Iterable[str] = ()) -> None:
        """The files the child wrote (an open record) or the run's earlier ones, plus `also`, become the record."""
        record = self._read()
        ours = (folder_files(self.folder) - set(record.get("others", []))) if record.get("open") else self.ours()
        self._write(open=False, ours=sorted(ours | {name for name in also if _inside(name)}))

    def check(self, what: str) -> set[str]:
        """The run's own files here; UserError when the folder is a link or holds anything else."""
        self.refuse_link(what)
        ours = self.ours()
        others = folder_files(self.folder) - ours
        if others:
            raise UserError(f"{self.folder} holds {len(others)} file(s) this run did not write ({_listed(others)}); "
                            f"{what} would replace the folder's content, so it is left alone: move them, or "
                            f"use another --out")
        return ours

    def clear(self, what: str) -> None:
        """Delete the run's own files; UserError, deleting nothing, when the folder holds anything else or is
        a link."""
        ours = self.check(what)
        for name in ours:
            (self.folder / name).unlink(missing_ok=True)
        for root, dirs, _ in sorted(os.walk(self.folder), key=lambda entry: -len(entry[0])):
            for name in dirs:  # emptied sub-folders (deepest first); the folder itself may be the user's link
                try:
                    os.rmdir(os.path.join(root, name))
                except OSError:
                    pass
        self._write(open=False, ours=[])


class Stages:
    """Runs commands with their output in OUT/logs, and remembers finished stages in OUT/stages."""

    def __init__(self, out: Path, force: bool, threads: int | None = None, cwd: Path | None = None):
        self.out = out
        self.force = force
        self.cwd = cwd
        self.started = time.monotonic()
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if threads:
            self.env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        self._lock = threading.Lock()
        self._children: set[subprocess.Popen] = set()
        self._writes: dict[str, list[Path]] = {}  # stage -> folders its child writes into

    def say(self, text: str) -> None:
        minutes, seconds = divmod(int(time.monotonic() - self.started), 60)
        with self._lock:
            print(f"[ablation {minutes:2d}:{seconds:02d}] {text}", flush=True)

    def stamp_path(self, stage: str) -> Path:
        return self.out / "stages" / f"{stage}.json"

    def done(self, stage: str, params: dict, folder: Path | None = None) -> bool:
        """Stamped with these params, and (given its folder) none of the files it wrote there deleted since."""
        path = self.stamp_path(stage)
        if self.force or not path.exists():
            return False
        try:
            if json.loads(path.read_text()) != params:
                return False
        except (OSError, json.JSONDecodeError):
            return False
        missing = FolderRecord(self.out, folder).missing() if folder is not None else []
        if missing:
            self.say(f"{stage}: {len(missing)} of its files {'is' if len(missing) == 1 else 'are'} gone "
                     f"({_listed(missing)}); redoing it")
        return not missing

    def take_folder(self, stage: str, folder: Path, also: Iterable[Path] = ()) -> None:
        """Before `stage` runs: delete what this run wrote in `folder` (refused, deleting nothing, when it
        holds anything else), and record what the stage's child writes there and in the `also` folders."""
        self.take_folders([(stage, folder, tuple(also))])

    def take_folders(self, takes: Iterable[tuple[str, Path, tuple[Path, ...]]]) -> None:
        """take_folder for several stages at once: every folder is checked before any is cleared, so a
        refusal on the last one leaves the first ones' earlier results in place."""
        takes = list(takes)
        for stage, folder, _ in takes:
            FolderRecord(self.out, folder).check(f"the {stage} stage")
        for stage, folder, also in takes:
            FolderRecord(self.out, folder).clear(f"the {stage} stage")
            self._writes[stage] = [folder, *also]

    def adopt(self, path: Path) -> None:
        """A file this process wrote into a recorded folder (a redo replaces it like the child's files)."""
        record = FolderRecord(self.out, path.parent)
        record.close(also=[path.name])

    def forget(self, stage: str) -> None:
        self.stamp_path(stage).unlink(missing_ok=True)

    def mark(self, stage: str, params: dict) -> None:
        atomic_write_text(self.stamp_path(stage), json.dumps(params, indent=1, sort_keys=True) + "\n")

    def build_folder(self, stage: str, params: dict, command: list[str], folder: Path, pattern: str,
                     description: str, empty_hint: Callable[[str], str] | None = None) -> None:
        """Run `command` to fill `folder` (train/ and test/ files matching `pattern`) unless that was
        already done with the same `params`; a folder built with other settings, or half-way, is redone.
        `empty_hint(phase)`: what to do when a phase got no file (default: more samples or another split)."""
        if self.done(stage, params) and any((folder / "test").glob(pattern)):
            self.say(f"{stage}: already built in {folder}")
            return
        self.take_folder(stage, folder)
        self.say(f"{stage}: {description}")
        self.run(stage, command)
        for phase in ("train", "test"):
            if not any((folder / phase).glob(pattern)):
                hint = (empty_hint(phase) if empty_hint is not None
                        else "use more samples (--n_samples) or another --split")
                raise UserError(f"the {stage} has no {phase} files in {folder / phase}; {hint}")
        self.mark(stage, params)

    def log_path(self, stage: str) -> Path:
        return self.out / "logs" / f"{stage}.log"

    def run(self, stage: str, command: list[str], prefix: str = "") -> None:
        """Run a child with everything it prints in the log. Our stderr shows its stderr (progress lines,
        warnings) and, of its stdout, the epoch lines (ECHOED), each prefixed with `prefix` when several
        children share the terminal: a long training says how far it is without flooding the screen."""
        log_path = self.log_path(stage)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        records = [FolderRecord(self.out, folder) for folder in self._writes.get(stage, [])]
        for record in records:
            record.open()
        try:
            code = self._run_child(stage, command, prefix, log_path)
        finally:
            for record in records:
                record.close()
        if code:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            said = tail[0].removeprefix("error: ")  # the child's own one-line error, said once
            raise UserError(f"{stage} failed (exit {code}): {said[:300]} (full log: {log_path})")

    def _run_child(self, stage: str, command: list[str], prefix: str, log_path: Path) -> int:
        with open(log_path, "wb") as log:
            log.write((" ".join(command) + "\n\n").encode())
            log.flush()
            child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.cwd,
                                     env=self.env)
            with self._lock:
                self._children.add(child)

            def pump(stream, echo_all: bool) -> None:
                for line in iter(stream.readline, b""):
                    with self._lock:
                        log.write(line)
                        log.flush()
                        if echo_all or line.lstrip().startswith(ECHOED):
                            echo(prefix.encode() + line.lstrip() if prefix else line)

            readers = [threading.Thread(target=pump, args=(child.stdout, False), daemon=True),
                       threading.Thread(target=pump, args=(child.stderr, True), daemon=True)]
            for reader in readers:
                reader.start()
            try:
                code = child.wait()
                for reader in readers:
                    reader.join()
            except BaseException:  # Ctrl-C or SIGTERM: never leave a training running on its own
                child.terminate()
                child.wait()
                raise
            finally:
                with self._lock:
                    self._children.discard(child)
        return code

    def run_parallel(self, jobs: list[tuple[str, list[str], dict]], workers: int) -> None:
        """Run (stage, command, params) children `workers` at a time and stamp each one that succeeds.
        The first failure stops the others and is raised once all have ended."""
        if not jobs:
            return
        if workers <= 1 or len(jobs) == 1:
            for stage, command, params in jobs:
                self.run(stage, command)
                self.mark(stage, params)
            return
        failure: list[BaseException] = []

        def one(job: tuple[str, list[str], dict]) -> None:
            stage, command, params = job
            if failure:
                return
            try:
                self.run(stage, command, prefix=f"[{stage}] ")
                self.mark(stage, params)
            except BaseException as err:  # noqa: BLE001 - re-raised below, after the other children stop
                failure.append(err)
                self.stop_children()

        with ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                list(pool.map(one, jobs))
            except BaseException:
                self.stop_children()
                raise
        if failure:
            raise failure[0]

    def stop_children(self) -> None:
        with self._lock:
            for child in list(self._children):
                if child.poll() is None:
                    child.terminate()
