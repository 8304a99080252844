"""Shared fixtures for the sky builder tests: paths of the bundled HiPS sample and of the shared set."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "data" / "sky_samples"
SHARED_HIPS = REPO.parent / "shared" / "data" / "hips-samples"


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def shared_hips() -> Path:
    if not (SHARED_HIPS / "IRAC4" / "properties").is_file():
        pytest.skip("../shared/data/hips-samples absent (fresh clone)")
    return SHARED_HIPS
