"""The render-ahead pipeline: order kept, bounded, errors raised where the tiles are taken, a stop ends it."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from prediction.pipeline import rendered_ahead
from prediction.render import RenderedTile


def fake_render(log: list):
    def render(chunk):
        log.append(list(chunk))
        return [RenderedTile(ipix, None, np.zeros((1, 1), bool)) for ipix in chunk]
    return render


def test_tiles_come_in_order_and_at_most_ahead_chunks_wait():
    log: list = []
    chunks = [[i, i + 100] for i in range(10)]
    stream = rendered_ahead(fake_render(log), chunks, ahead=2)
    assert [next(stream).ipix for _ in range(2)] == [0, 100]
    time.sleep(0.3)  # the thread renders ahead, then waits: one chunk taken, 2 waiting, 1 in its hands
    assert len(log) <= 4
    assert [t.ipix for t in stream] == [i + k for i in range(1, 10) for k in (0, 100)]
    assert not [t for t in threading.enumerate() if t.name == "render-ahead"]


def test_an_error_in_the_thread_is_raised_where_the_tiles_are_taken():
    def render(chunk):
        if chunk[0] == 3:
            raise OSError("disk gone")
        return [RenderedTile(ipix, None, np.zeros((1, 1), bool)) for ipix in chunk]

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for tile in rendered_ahead(render, [[i] for i in range(6)], ahead=2):
            got.append(tile.ipix)
    assert got == [0, 1, 2]


def test_a_consumer_that_stops_stops_the_thread():
    log: list = []
    stream = rendered_ahead(fake_render(log), [[i] for i in range(1000)], ahead=2)
    assert next(stream).ipix == 0
    stream.close()
    assert not [t for t in threading.enumerate() if t.name == "render-ahead"]
    assert len(log) < 10
