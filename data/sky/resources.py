"""Memory a cutout needs against what the machine has: refuse a --size that cannot fit, with the figures.

Measured peak RSS growth of one target (ru_maxrss around BuiltinRenderer.render + 8-bit + PNG/FITS
encoding at 1024-2048 px on the bundled HiPS sample, tiles already cached): one grey HiPS 196-207 B/px,
DSS2Red + FermiColor (one frame) 220, DSS2Red + Planck (two frames) 296-300 with --fits, four surveys (two
frames, 8 channels) 306; a FITS-image survey (reproject_interp) 160, reproject_exact 126. Most of it is the per-pixel coordinate and sampling-plan
arrays (float64 coordinates, four neighbours' weights and indices), built once per frame and freed after.
"""
from __future__ import annotations

import os
from pathlib import Path

from util.errors import UserError

BASE_BYTES_PER_PIXEL = 200  # coordinates and sampling plan of the first frame (the largest image engine: 160)
FRAME_BYTES_PER_PIXEL = 100  # each further HiPS frame (galactic besides equatorial)
CHANNEL_BYTES_PER_PIXEL = 8  # float32 values and 8-bit panel per channel (+ the cube's copy with --fits)


def target_bytes(size: int, frames: int, channels: int, fits: bool) -> int:
    """Estimated peak memory (bytes) of one size x size target: conservative by up to ~20 % (measured)."""
    per_pixel = (BASE_BYTES_PER_PIXEL + FRAME_BYTES_PER_PIXEL * max(frames - 1, 0)
                 + CHANNEL_BYTES_PER_PIXEL * channels * (2 if fits else 1))
    return per_pixel * size * size


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int | None:
    """Bytes this process may still use: /proc/meminfo MemAvailable, capped by a cgroup (container)
    limit; None when unknown (then nothing is refused)."""
    figures = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                figures.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        cap, used = _read_int(limit), _read_int(usage)
        if cap is not None and used is not None and cap < 1 << 60:
            figures.append(max(cap - used, 0))
    if not figures and hasattr(os, "sysconf"):
        try:
            figures.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    return min(figures) if figures else None


def check_memory(size: int, engines, fits: bool, workers: int) -> None:
    """One line naming the figures when `workers` targets of `size` px at once would not fit in memory."""
    frames = {getattr(getattr(e, "survey", None), "properties", None).frame for e in engines
              if getattr(e, "survey", None) is not None}
    channels = sum(e.channels for e in engines)
    need = target_bytes(size, len(frames) or 1, channels, fits)
    have = available_memory()
    if have is None or need * workers <= have:
        return
    gb = 1e9
    several = f" x {workers} --workers = {need * workers / gb:.1f} GB" if workers > 1 else ""
    raise UserError(f"--size {size}: one target needs about {need / gb:.1f} GB of memory{several}, but "
                    f"{have / gb:.1f} GB is available; use a smaller --size (or fewer --workers)")
