"""Progress bars on a terminal, one line per stage in a log: the one helper every loop uses.

tqdm redraws its bar several times a second. On a terminal that is what a user wants; in a log
(CI, nohup, `make demo > log`) the redraws of nested bars fill megabytes with carriage returns.
So `progress()` draws a tqdm bar only when stderr is a terminal; otherwise it counts silently
and prints ONE line when the stage ends (`test images: 100/100 image in 12 s`), or nothing when
the caller prints its own line per stage (summary=False, e.g. the epoch loop's "End of epoch").
"""
from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Iterator, TextIO


def on_terminal(stream: TextIO | None = None) -> bool:
    """True when `stream` (default stderr, where bars are drawn) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def write(message: str, file: TextIO | None = None) -> None:
    """Print a line above any bar being drawn (through it, the bar would be torn apart)."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stdout if file is None else file)


class StageLine:
    """The log stand-in for a tqdm bar: same calls, no redraws, one line when it closes."""

    def __init__(self, iterable: Iterable | None = None, desc: str = "", total: int | None = None,
                 unit: str = "it", initial: int = 0, summary: bool = True, stream: TextIO | None = None):
        self.iterable = iterable
        self.desc = desc
        self.total = total
        self.unit = unit
        self.n = initial
        self.summary = summary
        self.stream = stream
        self.started = time.monotonic()
        self.closed = False

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.n += 1
        finally:
            self.close()

    def __enter__(self) -> "StageLine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        """Bars show a postfix; a log line does not."""

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.summary:
            of = f"/{self.total}" if self.total is not None else ""
            seconds = time.monotonic() - self.started
            print(f"{self.desc}: {self.n}{of} {self.unit} in {seconds:.0f} s",
                  file=sys.stderr if self.stream is None else self.stream, flush=True)


def progress(iterable: Iterable | None = None, *, desc: str = "", total: int | None = None, unit: str = "it",
             initial: int = 0, leave: bool = True, enabled: bool = True, summary: bool = True,
             stream: TextIO | None = None):
    """A tqdm bar on a terminal, a StageLine elsewhere, nothing at all when not `enabled`
    (another rank, a tiny job). Use it as tqdm: iterate it, or `with` it and `update()`."""
    if not enabled:
        return StageLine(iterable, desc, total, unit, initial, summary=False)
    if on_terminal(stream):
        from tqdm import tqdm

        return tqdm(iterable, desc=desc, total=total, unit=unit, initial=initial, leave=leave, file=stream)
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    return StageLine(iterable, desc, total, unit, initial, summary, stream)
