"""Targets: OpenNGC catalogues and names (offline, via pyongc), Sesame names (online), CSV coordinates."""
from __future__ import annotations

import csv
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

from util.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_SESAME = "https://cds.unistra.fr/cgi-bin/nph-sesame/-oI/A"
SKIPPED_TYPES = {"Duplicated record", "Nonexistent object"}


@dataclass(frozen=True)
class Target:
    """A cutout centre (ICRS deg); fov overrides --fov when the CSV gives one."""

    name: str
    ra: float
    dec: float
    fov: float | None = None


def check_position(ra: float, dec: float, where: str) -> None:
    if not (math.isfinite(ra) and math.isfinite(dec) and -360.0 < ra < 720.0 and -90.0 <= dec <= 90.0):
        raise UserError(f"{where}: position ra={ra} dec={dec} is not on the sky (ra in deg, -90 <= dec <= 90)")


def catalog_targets(catalog: str) -> list[Target]:
    """Every object of the OpenNGC 'ngc' or 'ic' catalogue that has a position (duplicates left out)."""
    from pyongc import ongc

    key = catalog.upper()
    if key not in ("NGC", "IC"):
        raise UserError(f"--catalog {catalog}: choose ngc or ic")
    targets = []
    for obj in ongc.listObjects(catalog=key):
        if obj.type in SKIPPED_TYPES or obj.rad_coords is None:
            continue
        ra, dec = (math.degrees(v) for v in obj.rad_coords)
        targets.append(Target(obj.name, ra % 360.0, dec))
    return targets


def resolve_offline(name: str) -> Target | None:
    """Position of a name OpenNGC knows (NGC/IC/Messier and their cross-identifiers)."""
    from pyongc import ongc

    try:
        obj = ongc.Dso(name.strip())
    except Exception:  # pyongc raises several types for unknown names
        return None
    if obj.rad_coords is None:
        return None
    ra, dec = (math.degrees(v) for v in obj.rad_coords)
    return Target(name.strip(), ra % 360.0, dec)


def resolve_sesame(name: str, sesame_url: str, timeout_s: float = 5.0) -> Target | None:
    """Ask CDS Sesame; None when unknown or unreachable (the caller lists the name as unresolved)."""
    import urllib.parse

    import requests

    try:
        reply = requests.get(f"{sesame_url}?{urllib.parse.quote(name.strip())}", timeout=timeout_s)
    except requests.RequestException as err:
        log.info("Sesame unreachable for %s: %s", name, err)
        return None
    if reply.status_code != 200:
        return None
    for line in reply.text.splitlines():
        if line.startswith("%J "):
            parts = line[3:].split()
            try:
                return Target(name.strip(), float(parts[0]) % 360.0, float(parts[1]))
            except (IndexError, ValueError):
                return None
    return None


def resolve_names(names: list[str], sesame_url: str | None) -> tuple[list[Target], list[str]]:
    """(resolved targets, unknown names): OpenNGC first, then Sesame when a URL is given."""
    found, unknown = [], []
    for name in names:
        target = resolve_offline(name)
        if target is None and sesame_url:
            target = resolve_sesame(name, sesame_url)
        if target is None:
            unknown.append(name)
        else:
            found.append(target)
    return found, unknown


def read_coords_csv(path: str | Path) -> list[Target]:
    """CSV with a header holding at least name, ra, dec (deg, ICRS) and optionally fov (deg)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise UserError(f"--coords {path}: cannot read ({err.strerror or err})") from None
    reader = csv.reader(text.splitlines())
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise UserError(f"--coords {path}: empty file") from None
    missing = [c for c in ("name", "ra", "dec") if c not in header]
    if missing:
        raise UserError(f"--coords {path}:1: header lacks {', '.join(missing)} (needs name,ra,dec[,fov])")
    col = {name: header.index(name) for name in ("name", "ra", "dec", "fov") if name in header}
    targets = []
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"--coords {path}:{line_no}"
        if len(row) < len(header):
            raise UserError(f"{where}: {len(row)} fields, the header has {len(header)}")
        try:
            ra = float(row[col["ra"]])
            dec = float(row[col["dec"]])
            fov_text = row[col["fov"]].strip() if "fov" in col else ""
            fov = float(fov_text) if fov_text else None
        except ValueError:
            raise UserError(f"{where}: ra, dec and fov must be numbers in degrees: {','.join(row)}") from None
        check_position(ra, dec, where)
        if fov is not None and not 0 < fov <= 180:
            raise UserError(f"{where}: fov {fov} out of range (0, 180] deg")
        name = row[col["name"]].strip() or f"line{line_no}"
        targets.append(Target(name, ra % 360.0, dec, fov))
    return targets


def safe_file_stem(name: str) -> str:
    """A file name for a target name ('NGC 6523' -> 'NGC_6523')."""
    stem = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name.strip()).strip("._")
    return stem or "target"


def unique_stems(targets: list[Target]) -> list[str]:
    """File stems for targets; a repeated name gets _2, _3..."""
    seen: dict[str, int] = {}
    stems = []
    for target in targets:
        stem = safe_file_stem(target.name)
        count = seen.get(stem.lower(), 0) + 1
        seen[stem.lower()] = count
        stems.append(stem if count == 1 else f"{stem}_{count}")
    return stems
