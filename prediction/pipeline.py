"""Render the next tiles' inputs while the generator runs on the current ones: a bounded pipeline in one process.

Rendering (survey tiles read, resampled, stretched: numpy, cdshealpix, PIL) and the generator (torch)
both spend most of their time outside the GIL, so one render thread beside the generator's thread
overlaps the two stages, and a run goes at the pace of the slower one instead of their harmonic sum.
At most `ahead` chunks wait rendered, so memory stays bounded whatever the region. The thread is the
only one touching the survey engines while it runs; the tiles come out in the order asked, with the
same bytes as rendered one after the other (the same calls on the same engines).
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Sequence

from prediction.render import RenderedTile

_DONE = object()
POLL_S = 0.1


def rendered_ahead(render: Callable[[list[int]], list[RenderedTile]], chunks: Sequence[list[int]],
                   ahead: int = 2) -> Iterator[RenderedTile]:
    """render(chunk) for each chunk in a background thread, up to `ahead` chunks before they are used.

    An error in the thread is raised here, where the tiles are taken; a consumer that stops early (an
    error, Ctrl-C) stops the thread after the chunk it is rendering.
    """
    ready: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if stop.is_set() or not put(render(list(chunk))):
                    return
            put(_DONE)
        except BaseException as err:  # handed over to the consumer, which raises it
            put(err)

    thread = threading.Thread(target=produce, name="render-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        thread.join()
