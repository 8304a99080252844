"""Shared fixtures for the sky builder tests: the bundled HiPS sample, and optional real data outside the repo.

A default run needs only data/sky_samples (in the repo). A few checks also use real data that the repo does
not ship (the full HiPS samples with IRAC4, the sn2010ag FITS images): they look in $SKYTRANS_EXTRA_DATA
(a folder holding hips-samples/ and real-fields/; on the project's machines ../shared/data beside the repo)
and skip with a reason when it is not there.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "data" / "sky_samples"
EXTRA_DATA = Path(os.environ.get("SKYTRANS_EXTRA_DATA") or REPO.parent / "shared" / "data")


def extra_data(relative: str) -> Path:
    """A path under the optional real-data folder (it may not exist: callers skip then)."""
    return EXTRA_DATA / relative


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def shared_hips() -> Path:
    hips = extra_data("hips-samples")
    if not (hips / "IRAC4" / "properties").is_file():
        pytest.skip(f"real HiPS samples not found ({hips}): set SKYTRANS_EXTRA_DATA; they are not in the repo")
    return hips


def real_field(name: str, probe: str) -> Path:
    """A real-fields folder holding `probe`, or a skip saying where it was looked for."""
    folder = extra_data(f"real-fields/{name}")
    if not (folder / probe).is_file():
        pytest.skip(f"{name} images not found ({folder}): set SKYTRANS_EXTRA_DATA; they are not in the repo")
    return folder


@pytest.fixture
def sn2010ag() -> Path:
    return real_field("sn2010ag", "2mass_k.fits.gz")


@pytest.fixture
def sn2010ai() -> Path:
    return real_field("sn2010ai", "wise_w1.fits.gz")
