"""Chunks of work on a Dask cluster (--dask local[:N] or --dask tcp://HOST:PORT), results in order.

The project's runs are lists of independent chunks (tiles, cutouts) whose files are written atomically
by whoever computes them, so they map onto dask.distributed futures as they are: a task is one chunk,
each worker builds its state (a loaded model, opened surveys) once and keeps it for every later task
of the same run, and a worker that dies costs only its tasks, which the scheduler runs again
elsewhere (the files they write are the same bytes). Dask is imported only here and only when a run
asks for it, so everything else starts as fast as without it. The workers must import this project:
a LocalCluster's processes inherit sys.path; workers started by hand need its root on PYTHONPATH.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from util.errors import UserError

CONNECT_TIMEOUT_S = 10.0
KEPT_STATES = 2  # runs whose state (a loaded model...) a worker keeps: two runs sharing a cluster do not thrash
AHEAD_PER_WORKER = 3  # tasks in flight per worker thread: enough to keep it busy, few enough to stop fast
_STATE_LOCK = threading.Lock()  # a worker's tasks may run in threads: one builds the state, the others wait


@dataclass(frozen=True)
class DaskTarget:
    """Where --dask runs: a LocalCluster of `workers` processes, or the scheduler at `address`."""

    workers: int | None = None
    address: str | None = None

    def describe(self) -> str:
        return f"a local Dask cluster of {self.workers} worker process(es)" if self.address is None else \
            f"the Dask scheduler at {self.address}"


def parse_dask(text: str | None) -> DaskTarget | None:
    """'local', 'local:N' or 'tcp://HOST:PORT' (also tls:// and ws://); None when --dask is not given."""
    if text is None:
        return None
    text = text.strip()
    if text == "local":
        return DaskTarget(workers=os.cpu_count() or 1)
    match = re.fullmatch(r"local:(\d+)", text)
    if match:
        workers = int(match.group(1))
        if not 1 <= workers <= 1024:
            raise UserError(f"--dask {text}: the number of local workers must be 1 to 1024")
        return DaskTarget(workers=workers)
    match = re.fullmatch(r"(tcp|tls|ws|wss)://([^/:\s]+|\[[0-9a-fA-F:]+\]):(\d+)", text)
    if match and 0 < int(match.group(3)) < 65536:
        return DaskTarget(address=text)
    raise UserError(f"--dask {text!r}: use local, local:N (N worker processes here) or tcp://HOST:PORT "
                    f"(a running dask scheduler)")


def check_reachable(target: DaskTarget | None) -> None:
    """A scheduler address where no Dask scheduler answers is refused in one line before the run writes
    anything: first a plain TCP connection (Dask itself would retry for CONNECT_TIMEOUT_S), then Dask's own
    handshake within a deadline (a web server on that port accepted the connection, and the client then
    waited forever; another service's bytes read as a message length asked for exabytes)."""
    import socket

    if target is None or target.address is None:
        return
    host, _, port = target.address.split("://", 1)[1].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise UserError(f"--dask {target.address}: no Dask scheduler answers there ({err.strerror or err}); "
                        f"start one (dask scheduler) with workers (dask worker {target.address}), or use "
                        f"--dask local:N") from None
    problem = _dask_handshake(target.address, CONNECT_TIMEOUT_S)
    if problem:
        raise UserError(f"--dask {target.address}: something answers there, but not a Dask scheduler ({problem}); "
                        f"check the address (dask scheduler prints it), or use --dask local:N")


def _dask_handshake(address: str, timeout_s: float) -> str | None:
    """None when a Dask scheduler at `address` answers a client within timeout_s; else what went wrong. The
    client is made in a daemon thread: a peer that never answers cannot hold this process."""
    distributed = _distributed()
    outcome: dict[str, BaseException | bool] = {}

    def probe() -> None:
        try:
            with distributed.Client(address, timeout=timeout_s) as client:
                client.scheduler_info()
            outcome["ok"] = True
        except BaseException as err:  # noqa: BLE001 - any failure is reported as one line
            outcome["error"] = err

    thread = threading.Thread(target=probe, name="dask-handshake", daemon=True)
    thread.start()
    thread.join(timeout_s + 5)
    if outcome.get("ok"):
        return None
    error = outcome.get("error")
    if error is None:
        return f"no Dask answer within {timeout_s + 5:.0f} s"
    return type(error).__name__


def _distributed():
    try:
        import distributed
    except ImportError:
        raise UserError("--dask needs dask.distributed: pip install 'dask[distributed]'") from None
    return distributed


@contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """SIGINT ignored while the local workers start, so that they inherit it ignored (a Python child keeps an
    ignored SIGINT): Ctrl-C in a terminal reaches every process of its group, and each worker printed a
    KeyboardInterrupt traceback. The client alone stops, says so in one line and closes the cluster."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@contextmanager
def open_client(target: DaskTarget, threads_per_worker: int = 1) -> Iterator:
    """A distributed.Client on the target; a local cluster is started (and stopped at the end)."""
    distributed = _distributed()
    if target.address is None:
        with _workers_ignore_ctrl_c():
            cluster = distributed.LocalCluster(n_workers=target.workers, threads_per_worker=threads_per_worker,
                                               processes=True, dashboard_address=None, silence_logs=40)
        with cluster, distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(target.address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as err:
        raise UserError(f"--dask {target.address}: no Dask scheduler answers there ({type(err).__name__}); "
                        f"start one (dask scheduler) with workers (dask worker {target.address}), or use "
                        f"--dask local:N") from None
    with client:
        yield client


def absolute_spec(spec: str | None) -> str | None:
    """A local path made absolute for workers (their working directory is their own); a URL, a CDS ID or
    anything that is not a path here is returned as it is."""
    from pathlib import Path

    if not spec:
        return spec
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def state_key(setup: Callable, setup_args: tuple) -> str:
    """Which worker state a task needs: the same setup and arguments share one."""
    blob = pickle.dumps((setup.__module__, setup.__qualname__, setup_args))
    return hashlib.sha256(blob).hexdigest()


def worker_state(key: str, setup: Callable[..., dict], setup_args: tuple) -> dict:
    """This worker's state for `key`, built by setup(*setup_args) on its first task. It lives on the
    distributed Worker object, so it goes away with the worker (no process-wide cache)."""
    from distributed import get_worker

    worker = get_worker()
    with _STATE_LOCK:
        states = worker.__dict__.setdefault("_skytrans_states", {})
        if key not in states:
            while len(states) >= KEPT_STATES:  # a worker serving run after run keeps the last ones only
                states.pop(next(iter(states)))
            states[key] = setup(*setup_args)
        return states[key]


def _task(key: str, setup: Callable[..., dict], setup_args: tuple, job: Callable, chunk):
    return job(worker_state(key, setup, setup_args), chunk)


def run_on_dask(client, setup: Callable[..., dict], setup_args: tuple, job: Callable,
                chunks: Iterable) -> Iterator:
    """Results of job(state, chunk) for each chunk, in order, computed on the client's workers.

    setup(*setup_args) runs once per worker (module-level functions: they are pickled by reference).
    A bounded window of tasks is in flight; closing the iterator (a stop) cancels the rest.
    """
    distributed = _distributed()
    key = state_key(setup, setup_args)
    threads = sum(client.nthreads().values()) or 1
    ahead = max(2, AHEAD_PER_WORKER * threads)
    todo = iter(chunks)
    pending: deque = deque()

    def submit_next() -> None:
        for chunk in todo:
            pending.append(client.submit(_task, key, setup, setup_args, job, chunk, pure=False))
            return

    try:
        for _ in range(ahead):
            submit_next()
        while pending:
            future = pending.popleft()
            submit_next()
            try:
                result = future.result()
            except distributed.client.FutureCancelledError:
                raise UserError("the Dask cluster cancelled the run's tasks (its scheduler stopped?); run the "
                                "same command again: it resumes") from None
            yield result
    finally:
        if pending:
            client.cancel(list(pending))
