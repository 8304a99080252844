"""Worker processes of the builder: each builds its own renderer once, and exits when the parent dies.

A worker of a ProcessPoolExecutor waits on a queue whose pipe it also holds open, so a parent killed
with SIGKILL never closes it and the workers would wait forever (issue 13, case 9). Each worker runs a
watchdog thread that ends the process as soon as its parent process is gone.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

PARENT_CHECK_S = 0.5

_WORKER: dict = {}  # per worker process only: what the initializer built (config, renderer)


def exit_with_parent(parent_pid: int, every_s: float = PARENT_CHECK_S) -> threading.Thread:
    """Start a daemon thread that ends this process (exit code 1) once `parent_pid` is no longer its parent."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(every_s)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread


def _init(parent_pid: int, setup: Callable[..., dict], args: tuple) -> None:
    exit_with_parent(parent_pid)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    _WORKER.update(setup(*args))


def _call(job: Callable, chunk):
    return job(_WORKER, chunk)


def run_in_workers(workers: int, setup: Callable[..., dict], setup_args: tuple, job: Callable,
                   chunks: Iterable) -> Iterator:
    """Results of job(state, chunk) for each chunk, in order, from `workers` processes.

    setup(*setup_args) runs once per worker and returns its state (module-level functions only: they
    are pickled). On any error the chunks not started yet are cancelled, so a stop is quick.
    """
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init, initargs=(os.getpid(), setup, setup_args))
    try:
        yield from pool.map(_call, [job] * len(chunks := list(chunks)), chunks)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
