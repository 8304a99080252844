"""Who runs a region's tiles: this process (serial, pipelined, render processes) or a Dask cluster.

Every driver runs the same steps on a tile (render its inputs -> generator -> write its FITS + PNG,
or report it skipped) and yields (ipix, None) for a tile written, (ipix, reason) for one skipped; the
caller (prediction.region) keeps the skipped list, the progress bar and the resume bookkeeping, and
--shard I/N picks the tiles before any driver sees them. On Dask a task is one batch of tiles, which
the worker writes into the same tree (a shared file system for remote workers); each worker rebuilds
the session once (model loaded, surveys opened) from the run's config and the folder's record.

Bytes: a tile's bytes do not depend on the batch, shard, driver or worker, with one condition that
the convolution kernels set: the generator's torch thread count (they split work by it, and some
window sizes then differ in the last bits). The folder records the count its first run used
(--threads, by default every core but one), every later shard and resume of it uses that count, and
Dask workers run the generator with it too.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

from data.sky.hips_out import DisplayStretch, write_tile
from prediction.render import RenderSettings, TileRenderer
from prediction.session import Session, TileResult, generate, prepare, render_stream
from util.errors import UserError

UNCERTAINTY = "uncertainty"


def write_result(out: Path, order: int, result: TileResult, display: DisplayStretch,
                 std_display: DisplayStretch) -> str | None:
    """Write one generated tile (and its std tile); the reason it was skipped, None when written."""
    if result.mean is None:
        return "no data in " + "+".join(result.missing)
    if result.std is not None:
        write_tile(out / UNCERTAINTY, order, result.ipix, result.std, std_display)
    write_tile(out, order, result.ipix, result.mean, display)
    return None


def displays(record: dict) -> tuple[DisplayStretch, DisplayStretch]:
    return DisplayStretch(**record["display"]), DisplayStretch(**record["std_display"])


def local_statuses(session: Session, settings: RenderSettings, record: dict,
                   todo: list[int]) -> Iterator[tuple[int, str | None]]:
    """This process: inputs rendered ahead in a thread (--render_ahead) or in --workers processes, the
    generator here, and (pipelined) tiles written by a writer thread, so that the generator's thread
    does nothing but generate; a tile's status comes once its files are on disk."""
    c = session.config
    display, std_display = displays(record)
    stream = render_stream(settings, todo, c.workers, session.engines, chunk=c.batch_size, ahead=c.render_ahead)
    if c.render_ahead <= 0:
        for result in generate(session, stream):
            yield result.ipix, write_result(c.out, session.order, result, display, std_display)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    pending: deque = deque()
    failed = threading.Event()

    def write(result: TileResult) -> str | None:
        if failed.is_set():  # after a failed write (a full disk) nothing more is written, as when serial
            return None
        try:
            return write_result(c.out, session.order, result, display, std_display)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tile-writer") as writer:
        try:
            for result in generate(session, stream):
                pending.append((result.ipix, writer.submit(write, result)))
                while pending and (pending[0][1].done() or len(pending) > 2 * c.batch_size):
                    ipix, written = pending.popleft()
                    yield ipix, written.result()  # (a write error is raised here)
            while pending:
                ipix, written = pending.popleft()
                yield ipix, written.result()
        finally:
            for _, written in pending:
                written.cancel()


# ---- Dask ------------------------------------------------------------------------------------
def dask_setup(config, record: dict, threads: int) -> dict:
    """A worker's session for this run, built on its first task: the model loaded once, the folder's
    input levels and cuts, the client's generator threads."""
    import torch

    from prediction.input_check import InputMatch

    torch.set_num_threads(threads)
    session = prepare(config)
    if session.weights_sha256 != record["settings"]["weights_sha256"]:
        raise UserError(f"a Dask worker reads other weights for --name {config.name} than the run started with "
                        f"({session.loaded.weights}); workers must see the same --checkpoints_dir")
    if record.get("input_match"):
        session.use_matches([InputMatch.from_dict(m) if m else None for m in record["input_match"]])
    settings = session.render_settings(record.get("input_cuts"))
    return {"session": session, "settings": settings, "displays": displays(record),
            "renderers": threading.local(), "generator": threading.Lock(), "claim": threading.Lock(),
            "engines_taken": False}


def dask_job(state: dict, tiles: list[int]) -> list[tuple[int, str | None]]:
    """One task: render, generate and write a batch of tiles on this worker.

    A worker with several threads (dask worker --nthreads K) runs K tasks at once: each thread renders
    with surveys of its own (their tile caches are not shared between threads) while one task at a
    time holds the generator (its dropout masks are per call). On a GPU worker the rendering threads
    then keep the device fed: the GPU-worker path, generator on --gpu_ids, inputs on CPU threads.
    """
    session = state["session"]
    display, std_display = state["displays"]
    local = state["renderers"]
    if not hasattr(local, "renderer"):
        with state["claim"]:  # the session's engines serve the first thread; the others open their own
            first, state["engines_taken"] = not state["engines_taken"], True
        local.renderer = TileRenderer(state["settings"], session.engines if first else None)
    rendered = local.renderer.render(tiles)
    with state["generator"]:
        results = list(generate(session, iter(rendered)))
    return [(result.ipix, write_result(session.config.out, session.order, result, display, std_display))
            for result in results]


def dask_statuses(session: Session, record: dict, todo: list[int]) -> Iterator[tuple[int, str | None]]:
    """The tiles as tasks of --batch_size tiles on the --dask cluster, results in order."""
    from contextlib import closing

    import torch

    from util.dask_run import open_client, run_on_dask

    c = session.config
    chunks = [todo[i:i + c.batch_size] for i in range(0, len(todo), c.batch_size)]
    if not chunks:
        return
    worker_config = _worker_config(c)
    with open_client(c.dask) as client, \
            closing(run_on_dask(client, dask_setup, (worker_config, record, torch.get_num_threads()), dask_job,
                                chunks)) as results:
        for statuses in results:
            yield from statuses


def _worker_config(config):
    """The run's config as a worker uses it: no bar, no cluster of its own, the model and output folders
    absolute. The surveys stay as given, as the record names them (a relative path is found from the
    worker's working directory, the client's own for --dask local)."""
    from dataclasses import replace

    cache = config.fetch.cache_dir
    return replace(config, dask=None, progress=False, workers=1, render_ahead=0,
                   out=Path(config.out).resolve(),
                   fetch=replace(config.fetch, cache_dir=Path(cache).expanduser().resolve() if cache else None),
                   checkpoints_dir=str(Path(config.checkpoints_dir).expanduser().resolve()))


def tile_statuses(session: Session, settings: RenderSettings, record: dict,
                  todo: list[int]) -> Iterator[tuple[int, str | None]]:
    if session.config.dask is not None:
        return dask_statuses(session, record, todo)
    return local_statuses(session, settings, record, todo)
