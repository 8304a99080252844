"""Targets: OpenNGC catalogues and names (offline, via pyongc), Sesame names (online, astropy), CSV coordinates."""
from __future__ import annotations

import csv
import hashlib
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

from util.errors import UserError

from .fetch import AttemptFailed, FetchError, FetchSettings, Retrier, ServerUnreachable

log = logging.getLogger(__name__)

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


def resolve_sesame(name: str, retrier: Retrier, sesame_url: str | None = None) -> Target | None:
    """Position from CDS Sesame through astropy's `SkyCoord.from_name`; None when Sesame does not know it.

    `sesame_url` replaces astropy's list of Sesame servers (a mirror, or the tests' stand-in); --timeout
    becomes astropy's remote_timeout and --retries the retry count (astropy asks each server once).
    """
    from contextlib import ExitStack

    from astropy.coordinates import SkyCoord, name_resolve
    from astropy.utils import data as astropy_data

    def attempt():
        with ExitStack() as stack:
            if sesame_url:
                stack.enter_context(name_resolve.sesame_url.set([sesame_url]))
            stack.enter_context(astropy_data.conf.set_temp("remote_timeout", retrier.settings.timeout_s))
            try:
                return SkyCoord.from_name(name.strip(), frame="icrs", cache=False)
            except name_resolve.NameResolveError as err:
                if "Unable to find coordinates" in str(err):  # Sesame answered: it does not know the name
                    return None
                # every server failed (refused, timed out, HTTP error): astropy gives the reasons in one text
                reason = " ".join(str(err).split())[-160:]
                raise AttemptFailed(f"Sesame: {reason}", connection=True) from None

    coord = retrier.call(sesame_url or "Sesame", attempt)
    if coord is None:
        return None
    return Target(name.strip(), float(coord.ra.deg) % 360.0, float(coord.dec.deg))


def resolve_names(names: list[str], online: bool, sesame_url: str | None = None,
                  retrier: Retrier | None = None) -> tuple[list[Target], list[str]]:
    """(resolved targets, unknown names): OpenNGC first, then Sesame when online.

    A name whose Sesame queries all fail is listed as unknown; a Sesame server that keeps refusing
    connections stops the run with one line (ServerUnreachable -> UserError).
    """
    retrier = retrier or Retrier(FetchSettings())
    found, unknown = [], []
    for name in names:
        target = resolve_offline(name)
        if target is None and online:
            try:
                target = resolve_sesame(name, retrier, sesame_url)
            except ServerUnreachable as err:
                raise UserError(f"cannot resolve {name!r}: {err}; --offline resolves names with OpenNGC only") from None
            except FetchError as err:
                log.warning("Sesame gave no answer for %s (%s)", name, err)
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


MAX_STEM = 100  # characters of a file stem: file names stay far below the 255-byte limit, with temp suffixes


def safe_file_stem(name: str) -> str:
    """A file name for a target name ('NGC 6523' -> 'NGC_6523'); a long name is cut and given a hash
    suffix of the full name, so it stays unique and the same on every run (resume)."""
    stem = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name.strip()).strip("._") or "target"
    if len(stem) <= MAX_STEM:
        return stem
    digest = hashlib.sha1(name.strip().encode("utf-8")).hexdigest()[:12]
    return f"{stem[:MAX_STEM - 13].rstrip('._')}_{digest}"


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
