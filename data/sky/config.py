"""Everything one dataset build needs, validated once (so workers never re-check options)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from util.dask_run import DaskTarget

from .fetch import FetchSettings
from .services import HIPS2FITS_URL, MOCSERVER_URL, SESAME_URL
from .stretch import StretchSettings


@dataclass(frozen=True)
class TargetSpec:
    """Exactly one way of choosing targets."""

    catalog: str | None = None
    names: tuple[str, ...] = ()
    coords_csv: str | None = None
    sample: int | None = None
    sample_mode: str = "random"
    position: tuple[float, float] | None = None  # --ra --dec
    single_name: str | None = None  # --target: a one-item inference set


@dataclass(frozen=True)
class BuildConfig:
    surveys: tuple[str, ...]
    out: Path
    fov: float
    size: int
    projection: str = "TAN"
    tile_formats: tuple[str | None, ...] = ()
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_order: int | None = None
    split_guard: bool = True
    seed: int = 0
    fits: bool = False
    workers: int = 1
    dask: DaskTarget | None = None  # --dask: the cutouts as tasks on a Dask cluster (util.dask_run)
    shard: tuple[int, int] | None = None
    min_coverage: float = 0.0
    stretch: StretchSettings = field(default_factory=StretchSettings)
    backend: str = "builtin"
    fetch: FetchSettings = field(default_factory=FetchSettings)
    mocserver_url: str = MOCSERVER_URL
    sesame_url: str | None = SESAME_URL  # None: astropy's Sesame servers
    offline: bool = False  # names from OpenNGC only, never Sesame
    hips2fits_url: str | None = HIPS2FITS_URL  # None: astroquery's hips2fits server
    aladin_jar: str | None = None
    cache_tiles: int = 96
    black_is_blank: bool | None = None  # None: colour surveys only
    resample: str = "interp"  # FITS-image surveys: reproject_interp (bilinear) or reproject_exact
    inputs_only: bool = False  # every survey is an input (B|C|D items in test/ for inference); no panel A
    overwrite: bool = False  # replace the dataset in --out (its PNG, FITS, manifests, dataset.json)
    progress: bool = True
