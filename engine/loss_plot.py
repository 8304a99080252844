"""Loss curves as a PNG, drawn from loss_log.jsonl (so a resumed run shows its whole history)."""
from __future__ import annotations

import io
import math
import os

from util.fileio import atomic_write_bytes
from util.loss_history import read_history


def _moving_average(values: list[float], window: int) -> list[float]:
    out, total, finite = [], 0.0, []
    for value in values:
        finite.append(value if math.isfinite(value) else 0.0)
        total += finite[-1]
        if len(finite) > window:
            total -= finite[-1 - window]
        out.append(total / min(len(finite), window))
    return out


def draw_loss_curves(history_path: str | os.PathLike, png_path: str | os.PathLike) -> bool:
    """Write one small chart per loss (x = epochs, raw and smoothed); False when there is nothing yet."""
    records = read_history(history_path)
    names = list(dict.fromkeys(name for record in records for name in record.losses))
    if not names:
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epoch_size = max(record.iters for record in records) or 1
    x_all = [record.epoch - 1 + record.iters / epoch_size for record in records]
    fig = Figure(figsize=(8, 0.6 + 1.8 * len(names)), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    for ax, name in zip(axes, names):
        points = [(x, r.losses[name]) for x, r in zip(x_all, records) if name in r.losses]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ax.plot(xs, ys, color="tab:blue", alpha=0.35, linewidth=0.8)
        ax.plot(xs, _moving_average(ys, max(1, len(ys) // 20)), color="tab:blue", linewidth=1.6)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("epoch")
    fig.suptitle(os.path.basename(os.path.dirname(os.path.abspath(history_path))) + " losses")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(png_path, buffer.getvalue())
    return True
