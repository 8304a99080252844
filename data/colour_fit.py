"""The per-pixel linear colour fit: the target band as a least-squares linear combination of input bands.

One implementation for the two places that need it: the demo's "linear fit" reference
(evaluation.references, scored like a model) and the generator's colour prior (`--prior linear_fit`,
fitted by the FITS dataset on its training cubes). Torch-free.
"""
from __future__ import annotations

import numpy as np

MAX_PIXELS = 2_000_000


class JointSampler:
    """A bounded random sample of the pixels where every chosen plane has data, over many cubes.
    Its own RNG, so training's random streams (and exact resume) are untouched."""

    def __init__(self, planes: tuple[int, ...], per_cube: int, seed: int = 0):
        self.planes = tuple(planes)
        self.per_cube = max(1, per_cube)
        self.rng = np.random.default_rng(seed)
        self.parts: list[np.ndarray] = []

    def add(self, cube: np.ndarray) -> None:
        values = cube[list(self.planes)].reshape(len(self.planes), -1).T.astype(np.float64)
        values = values[np.all(np.isfinite(values), axis=1)]
        if len(values) > self.per_cube:
            values = values[self.rng.choice(len(values), self.per_cube, replace=False)]
        self.parts.append(values)

    def values(self) -> np.ndarray:
        """(N, P) float64, column i = plane planes[i]."""
        return np.concatenate(self.parts) if self.parts else np.empty((0, len(self.planes)))


def least_squares(inputs: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients (one per column of `inputs`, (N, K)) and intercept of the ordinary least-squares
    fit target ~ intercept + inputs @ coefficients."""
    design = np.column_stack([inputs, np.ones(len(target))])
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return solution[:-1], float(solution[-1])
