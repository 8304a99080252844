"""HiPS survey sources: a local HiPS folder, an http(s) HiPS URL, or a CDS ID resolved through the MocServer
(FITS images: fits_image.py; data.sky.surveys.open_engine tells them apart)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from util.errors import UserError

from .fetch import Fetcher, FetchError
from .properties import TILE_EXTENSIONS, HipsProperties, parse_properties_text
from .services import MOCSERVER_URL

CDS_ID = re.compile(r"^[A-Za-z0-9_.-]+/P/[^\s]+$")


def tile_path(order: int, ipix: int, fmt: str) -> str:
    """Path of a tile inside a HiPS (IVOA HiPS 1.0 layout)."""
    return f"Norder{order}/Dir{(ipix // 10000) * 10000}/Npix{ipix}.{TILE_EXTENSIONS[fmt]}"


ALLSKY_ORDER = 3  # HiPS 1.0 keeps the Allsky preview in Norder3


def allsky_path(order: int, fmt: str) -> str:
    return f"Norder{order}/Allsky.{TILE_EXTENSIONS[fmt]}"


@dataclass
class Survey:
    """One HiPS: its name (panel label, manifest column), where it lives and how to read its files."""

    name: str
    location: str
    properties: HipsProperties
    read: Callable[[str, Callable[[bytes], None] | None], bytes | None]  # relative path -> bytes or None
    local_root: Path | None = None
    read_many: Callable[[list[str], Callable[[bytes], None] | None], dict[str, bytes | None]] | None = None
    spec: str = ""  # as the user gave it (folder, URL or CDS ID)
    lowest_order: int = 0  # coarsest tile order to read: hips_order_min, raised to the lowest NorderK on disk

    def __post_init__(self):
        self.lowest_order = max(self.lowest_order, self.properties.min_order)

    def read_file(self, relative: str, validate: Callable[[bytes], None] | None = None) -> bytes | None:
        return self.read(relative, validate)


def survey_name(spec: str) -> str:
    """Short, file-name safe name: folder name, last URL part, or the CDS ID with / -> _."""
    if CDS_ID.match(spec) and not Path(spec).exists():
        base = spec.replace("/P/", "/").replace("/", "_")
    else:
        base = spec.rstrip("/").rsplit("/", 1)[-1] or "survey"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", base)


def open_survey(spec: str, fetcher: Fetcher | None = None, mocserver_url: str = MOCSERVER_URL) -> Survey:
    """Resolve `spec` and read its properties; every failure is a one-line UserError."""
    path = Path(spec).expanduser()
    if path.is_dir():
        survey = _open_local(path, spec)
    elif spec.startswith(("http://", "https://")):
        survey = _open_remote(spec.rstrip("/"), spec, fetcher or Fetcher())
    elif CDS_ID.match(spec):
        fetcher = fetcher or Fetcher()
        survey = _open_remote(resolve_cds_id(spec, fetcher, mocserver_url), spec, fetcher)
    else:
        survey = None
    if survey is not None:
        survey.spec = spec
        return survey
    if path.exists():
        raise UserError(f"survey {spec}: neither a HiPS folder nor a FITS image (.fits .fit .fts, also .gz .bz2, .fz)")
    raise UserError(f"survey {spec}: no such folder or file, not an http(s) URL, not a CDS ID like CDS/P/DSS2/red")


def _open_local(root: Path, spec: str) -> Survey:
    props_file = root / "properties"
    if not props_file.is_file():
        raise UserError(f"survey {spec}: no 'properties' file and no FITS images: neither a HiPS nor a mosaic folder")
    props = parse_properties_text(props_file.read_text(encoding="utf-8", errors="replace"), str(props_file))

    def read(relative: str, validate=None) -> bytes | None:
        file = root / relative
        return file.read_bytes() if file.is_file() else None

    return Survey(survey_name(spec), str(root), props, read, local_root=root,
                  lowest_order=lowest_order_on_disk(root, props.max_order))


def lowest_order_on_disk(root: Path, max_order: int) -> int:
    """The coarsest NorderK folder of a local HiPS (0 when none): a copy or subset may lack the coarse
    orders that its hips_order_min (or the standard's default 0) promises, and absent tiles read as no data."""
    orders = [int(match.group(1)) for match in (re.fullmatch(r"Norder(\d+)", p.name) for p in root.glob("Norder*"))
              if match]
    return min(min(orders), max_order) if orders else 0


def _open_remote(base_url: str, spec: str, fetcher: Fetcher) -> Survey:
    try:
        text = fetcher.get(f"{base_url}/properties")
    except FetchError as err:
        raise UserError(f"survey {spec}: cannot read properties ({err})") from None
    if text is None:
        raise UserError(f"survey {spec}: {base_url}/properties not found, not a HiPS")
    props = parse_properties_text(text.decode("utf-8", errors="replace"), f"{base_url}/properties")

    def read(relative: str, validate=None) -> bytes | None:
        return fetcher.get(f"{base_url}/{relative}", validate)

    def read_many(relatives: list[str], validate=None) -> dict[str, bytes | None]:
        by_url = fetcher.get_many([f"{base_url}/{r}" for r in relatives], validate)
        return {r: by_url[f"{base_url}/{r}"] for r in relatives}

    return Survey(survey_name(spec), base_url, props, read, read_many=read_many)


def resolve_cds_id(hips_id: str, fetcher: Fetcher, mocserver_url: str = MOCSERVER_URL) -> str:
    """HiPS base URL of a CDS ID, asked from the CDS MocServer (needs the network)."""
    import json

    url = f"{mocserver_url}?ID={hips_id}&fields=ID,hips_service_url&fmt=json&get=record"
    try:
        body = fetcher.get(url)
    except FetchError as err:
        raise UserError(f"survey {hips_id}: cannot reach the CDS MocServer to resolve the ID ({err})") from None
    try:
        records = json.loads(body.decode("utf-8")) if body else []
    except ValueError:
        records = []
    if isinstance(records, dict):
        records = [records]
    for record in records:
        if record.get("ID") == hips_id and record.get("hips_service_url"):
            service = record["hips_service_url"]
            return (service[0] if isinstance(service, list) else service).rstrip("/")
    raise UserError(f"survey {hips_id}: unknown to the CDS MocServer")
