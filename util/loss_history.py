"""checkpoints/NAME/loss_log.jsonl: the training's loss history, one JSON object per logged step.

Written by the training display next to upstream's loss_log.txt (kept for upstream users and
their tools) and read by the loss curves and the reports, so nothing re-parses the text log.
A line: {"format": 1, "epoch": 3, "iters": 400, "total_iters": 2800, "losses": {"G_GAN": 0.7, ...}}
(`iters` counts samples within the epoch, as upstream's log does). Lines are appended as training
goes, like the text log; a process killed mid-write can leave a torn last line, which the
reader skips.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import NamedTuple

LOSS_LOG = "loss_log.jsonl"
FORMAT = 1


class LossRecord(NamedTuple):
    epoch: int
    iters: int  # samples into the epoch
    losses: dict[str, float]
    total_iters: int | None = None


def _plain(value: float) -> float | str:
    """JSON has no NaN/inf: a diverged loss is kept as the string 'nan' / 'inf' / '-inf'."""
    return value if math.isfinite(value) else str(value)


def append_record(path: str | os.PathLike, record: LossRecord) -> None:
    line = {"format": FORMAT, "epoch": record.epoch, "iters": record.iters, "total_iters": record.total_iters,
            "losses": {name: _plain(float(value)) for name, value in record.losses.items()}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def read_history(path: str | os.PathLike) -> list[LossRecord]:
    """The records of a loss_log.jsonl ([] when it does not exist); unreadable lines are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
            records.append(LossRecord(int(item["epoch"]), int(item["iters"]),
                                      {name: float(value) for name, value in item["losses"].items()},
                                      item.get("total_iters")))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a torn last line of a killed run, or a line of a future format
    return records
