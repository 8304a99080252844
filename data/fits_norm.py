"""Per-band normalisation of physical FITS values to the generator's [-1, 1] range, and back.

The parameters are fitted once over the training set and saved beside the checkpoint
(checkpoints/NAME/fits_norm.json): test.py must invert exactly the mapping the network was
trained with, whatever the test images look like. Nothing is clipped, so the mapping is
exactly invertible (values beyond the cuts land beyond [-1, 1]).

- linear: y = 2 (x - low) / (high - low) - 1, low/high = percentile cuts (default 0.5, 99.5).
- asinh:  y = 2 asinh((x - low) / s) / asinh((high - low) / s) - 1, with s the band's robust
  noise (1.4826 x MAD) as softening: linear near the background, logarithmic for bright
  sources. Default cuts 0.5, 100 (100 = the training maximum, so every training pixel fits).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from data.sky.stretch import MAD_TO_SIGMA
from data.sky.stretch import parse_cuts as parse_percentile_cuts
from util.errors import UserError
from util.fileio import atomic_write_text

NORM_MODES = ("asinh", "linear")
DEFAULT_CUTS = {"linear": (0.5, 99.5), "asinh": (0.5, 100.0)}
NORM_FILE = "fits_norm.json"
NORM_VERSION = 1


@dataclass(frozen=True)
class PlaneNorm:
    """One band's mapping; computed in float64 so normalise -> invert returns the float32 input."""
    mode: str
    low: float
    high: float
    softening: float = 1.0

    def _asinh_span(self) -> float:
        return math.asinh((self.high - self.low) / self.softening)

    def normalize(self, values: np.ndarray) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64)
        if self.mode == "linear":
            y = 2.0 * (x - self.low) / (self.high - self.low) - 1.0
        else:
            y = 2.0 * np.arcsinh((x - self.low) / self.softening) / self._asinh_span() - 1.0
        return y.astype(np.float32)

    def affine_form(self) -> tuple[float, float, float, float]:
        """(low, scale, span, asinh) with x = low + scale * f((y + 1) / 2 * span), f = sinh when asinh is 1,
        else the identity: the form the generator's colour prior evaluates in torch (models know no data)."""
        if self.mode == "linear":
            return self.low, self.high - self.low, 1.0, 0.0
        return self.low, self.softening, self._asinh_span(), 1.0

    def invert(self, normalized: np.ndarray) -> np.ndarray:
        y = np.asarray(normalized, dtype=np.float64)
        if self.mode == "linear":
            x = self.low + (y + 1.0) * 0.5 * (self.high - self.low)
        else:
            x = self.low + self.softening * np.sinh((y + 1.0) * 0.5 * self._asinh_span())
        return x.astype(np.float32)


def parse_cuts(text: str, mode: str) -> tuple[float, float]:
    """'auto' -> the mode's default; else 'LOW,HIGH' percentiles as for aladin_data.py's --cuts."""
    if text.strip().lower() in ("", "auto"):
        return DEFAULT_CUTS[mode]
    return parse_percentile_cuts(text, "--fits_cuts")


def check_mode(mode: str) -> str:
    if mode not in NORM_MODES:
        raise UserError(f"unknown --fits_norm {mode!r}; choose {' or '.join(NORM_MODES)}")
    return mode


class PlaneSampler:
    """Finite pixels of one plane over many cubes: a bounded random sample for the percentiles,
    exact minimum and maximum (the cuts 0 and 100). Its own RNG: training's random streams
    (and so exact resume) are not touched."""

    def __init__(self, per_cube: int, seed: int = 0):
        self.per_cube = per_cube
        self.rng = np.random.default_rng(seed)
        self.parts: list[np.ndarray] = []
        self.minimum = math.inf
        self.maximum = -math.inf
        self.count = 0

    def add(self, plane: np.ndarray) -> None:
        finite = plane[np.isfinite(plane)]
        if finite.size == 0:
            return
        self.count += finite.size
        self.minimum = min(self.minimum, float(finite.min()))
        self.maximum = max(self.maximum, float(finite.max()))
        if finite.size > self.per_cube:
            finite = self.rng.choice(finite, self.per_cube, replace=False)
        self.parts.append(finite.astype(np.float64))

    def sample(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.empty(0)


def _percentile(sampler: PlaneSampler, values: np.ndarray, q: float) -> float:
    if q <= 0.0:
        return sampler.minimum
    if q >= 100.0:
        return sampler.maximum
    return float(np.percentile(values, q))


def fit_plane(sampler: PlaneSampler, mode: str, cuts: tuple[float, float]) -> PlaneNorm | None:
    """The band's mapping from its training pixels; None when the band has no data at all."""
    values = sampler.sample()
    if values.size == 0:
        return None
    low, high = _percentile(sampler, values, cuts[0]), _percentile(sampler, values, cuts[1])
    if not high > low:  # a constant band: any positive span maps it to -1
        high = low + max(abs(low), 1.0)
    if mode == "linear":
        return PlaneNorm("linear", low, high)
    softening = MAD_TO_SIGMA * float(np.median(np.abs(values - np.median(values))))
    if not softening > 0:  # over half the pixels equal (e.g. 8-bit data clipped at 0): MAD is 0
        softening = float(np.std(values))
    # keep asinh((high - low) / s) finite and the stretch a curve, not a step
    softening = max(softening, 1e-6 * (high - low))
    return PlaneNorm("asinh", low, high, softening)


@dataclass(frozen=True)
class CubeNorm:
    """Every plane's mapping (None for a plane without data), with what it was fitted on."""
    mode: str
    cuts: tuple[float, float]
    planes: tuple[PlaneNorm | None, ...]
    labels: tuple[tuple[str, str], ...]
    n_files: int

    def plane(self, index: int) -> PlaneNorm:
        norm = self.planes[index]
        if norm is None:
            name = self.labels[index][0] if index < len(self.labels) else ""
            raise UserError(f"plane {index} ({name}) has no data in any training cube, so it has no normalisation")
        return norm

    def to_json(self) -> str:
        planes = [{"plane": i, "name": name, "unit": unit, **(asdict(norm) if norm else {"mode": None})}
                  for i, (norm, (name, unit)) in enumerate(zip(self.planes, self.labels))]
        return json.dumps({"version": NORM_VERSION, "mode": self.mode, "cuts": list(self.cuts),
                           "n_files": self.n_files, "planes": planes}, indent=1) + "\n"

    @staticmethod
    def from_json(text: str, where: str) -> "CubeNorm":
        try:
            raw = json.loads(text)
            planes = tuple(None if p["mode"] is None else PlaneNorm(p["mode"], float(p["low"]), float(p["high"]),
                                                                    float(p["softening"])) for p in raw["planes"])
            labels = tuple((str(p["name"]), str(p["unit"])) for p in raw["planes"])
            return CubeNorm(raw["mode"], tuple(raw["cuts"]), planes, labels, int(raw["n_files"]))
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"{where} is not a valid normalisation file ({err}); retrain or restore it") from None


def fit_cube_norm(samplers: Sequence[PlaneSampler], mode: str, cuts: tuple[float, float],
                  labels: Iterable[tuple[str, str]], n_files: int) -> CubeNorm:
    return CubeNorm(mode, tuple(cuts), tuple(fit_plane(s, mode, cuts) for s in samplers),
                    tuple(tuple(label) for label in labels), n_files)


def norm_path(checkpoints_dir: str, name: str) -> Path:
    return Path(checkpoints_dir) / name / NORM_FILE


def save_norm(norm: CubeNorm, path: Path) -> Path:
    return atomic_write_text(path, norm.to_json())


def load_norm(path: Path) -> CubeNorm:
    if not path.is_file():
        raise UserError(f"no normalisation file {path}: train this model with --dataset_mode fits_aligned "
                        f"first (it is written there at the start of training)")
    return CubeNorm.from_json(path.read_text(), str(path))
