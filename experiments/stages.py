"""Resumable stages of a long run: each child process logs to OUT/logs, each finished stage leaves a stamp.

A stage is skipped when its stamp holds the very parameters it would run with, so a killed run
resumes where it stopped and a changed setting redoes only what it changes. Independent children
(the trainings of an ablation) can run side by side: on a CPU machine one single-threaded training
per core finishes the set about twice as fast on two cores as running them one after the other.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from util.errors import UserError
from util.fileio import atomic_write_text

ECHOED = (b"End of epoch",)  # stdout lines of a child worth a line on the terminal


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

    def say(self, text: str) -> None:
        minutes, seconds = divmod(int(time.monotonic() - self.started), 60)
        with self._lock:
            print(f"[ablation {minutes:2d}:{seconds:02d}] {text}", flush=True)

    def stamp_path(self, stage: str) -> Path:
        return self.out / "stages" / f"{stage}.json"

    def done(self, stage: str, params: dict) -> bool:
        path = self.stamp_path(stage)
        if self.force or not path.exists():
            return False
        try:
            return json.loads(path.read_text()) == params
        except (OSError, json.JSONDecodeError):
            return False

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
        if folder.exists():
            shutil.rmtree(folder)
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
                            sys.stderr.buffer.write(prefix.encode() + line.lstrip() if prefix else line)
                            sys.stderr.flush()

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
        if code:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            raise UserError(f"{stage} failed (exit {code}): {tail[0][:300]} (full log: {log_path})")

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
