"""An offline sky viewer page: Aladin Lite, vendored, showing HiPS trees and FITS images beside the page.

`write_page(folder, page)` writes `folder/index.html` (or another name) and copies the viewer's files into
`folder/viewer/`: Aladin Lite (one ES module with its WebAssembly core, with its LGPL-3 licence texts),
the page's own script and style. The page lists its layers and its panel (figures, credits) as JSON;
`viewer_assets/skytrans-viewer.js` builds the viewer from it. Nothing leaves the machine: every layer is
a path under the folder (inputs elsewhere on disk are copied or linked into `folder/viewer/data/`), the
script switches off what Aladin Lite would fetch from CDS (default surveys and their list, name
resolution, SIMBAD, the usage log), and the page's Content-Security-Policy refuses any other origin.
Browsers load ES modules over http only: `scripts/serve.py FOLDER` (or any static server) serves it.
docs/viewer.md tells the story; the tests load pages in headless Chromium.
"""
from __future__ import annotations

import html
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.sky.hips_out import DisplayStretch
from data.sky.properties import parse_properties_text, properties_values
from data.sky.stretch import asinh_fit
from util.fileio import atomic_write_bytes, atomic_write_text

ALADIN_LITE_VERSION = "3.8.2"
ALADIN_LITE_SHA256 = "bed9c8ef1d1e83501b1cb782366092c72c5ecd1c88f16fef3166188ae8062066"
ASSETS = Path(__file__).with_name("viewer_assets")
VIEWER_DIR = "viewer"  # beside the page: aladin-lite/, skytrans-viewer.js, skytrans-viewer.css, data/
DATA_DIR = "viewer/data"  # inputs that live elsewhere: copies (small FITS files) or links (HiPS folders)
COPY_LIMIT = 64 * 2**20  # FITS images up to this size are copied (the folder then stands alone), larger linked
SAMPLE_PIXELS = 1_000_000  # pixels read from a FITS image to fit its display
ALADIN_CREDIT = (f"Aladin Lite v{ALADIN_LITE_VERSION} (CDS, Strasbourg; LGPL-3; Boch & Fernique 2014, ASP Conf. "
                 "Ser. 485, 277), vendored and run offline; HiPS (Fernique et al. 2015, A&A 578, A114) on "
                 "HEALPix (Gorski et al. 2005, ApJ 622, 759).")
# what the page may load: its own origin only (and the blobs Aladin Lite makes of its WebAssembly core)
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' "
                           "'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self' data: blob:; "
                           "worker-src 'self' blob:; font-src 'self' data:; object-src 'none'; base-uri 'self'; "
                           "form-action 'none'")
CREDIT_CARDS = ("TELESCOP", "INSTRUME", "DATASET", "SURVEY", "BAND", "FILTER", "ORIGIN", "REFERENC")
CREDIT_FILES = ("CREDITS.txt", "CREDITS")


@dataclass(frozen=True)
class Display:
    """How a layer is drawn: cuts in the layer's unit and a stretch. `asinh-softened` is the runs' own asinh
    (data.sky.hips_out.DisplayStretch) drawn through a look-up table; the others are Aladin Lite's; a
    `native` layer (8-bit colour tiles) is drawn as it is."""

    low: float = 0.0
    high: float = 1.0
    stretch: str = "asinh-softened"
    softening: float | None = None
    colormap: str = "grayscale"
    native: bool = False

    @staticmethod
    def of(stretch: DisplayStretch) -> "Display":
        if stretch.mode == "asinh":
            return Display(stretch.low, stretch.high, "asinh-softened", stretch.softening)
        return Display(stretch.low, stretch.high, "linear")

    @staticmethod
    def fitted(values: np.ndarray) -> "Display":
        """The reports' asinh fitted on the values (data.sky.stretch.asinh_fit)."""
        fitted = asinh_fit(values)
        if fitted is None:
            return Display(0.0, 1.0, "linear")
        low, high, softening = fitted
        return Display(low, high, "asinh-softened", softening)

    def as_json(self) -> dict:
        return {"min": _finite(self.low), "max": _finite(self.high), "stretch": self.stretch,
                "softening": _finite(self.softening), "colormap": self.colormap, "native": self.native}


NATIVE = Display(native=True)


@dataclass(frozen=True)
class Layer:
    """One layer: `url` relative to the page; kind `hips` (a HiPS folder) or `image` (a FITS image with a WCS).
    Layers of one `group` share their display (the generated and the real band)."""

    id: str
    name: str
    url: str
    kind: str
    format: str
    role: str  # generated, real, uncertainty, input
    display: Display
    unit: str = ""
    group: str | None = None
    note: str = ""

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "url": self.url, "kind": self.kind, "format": self.format,
                "role": self.role, "display": self.display.as_json(), "unit": self.unit, "group": self.group,
                "note": self.note}


@dataclass(frozen=True)
class Section:
    """A block of the panel: paragraphs, a table (`head` + `rows`, or label/value rows) and/or pictures."""

    title: str
    text: tuple[str, ...] = ()
    head: tuple[str, ...] | None = None
    rows: tuple[tuple[str, ...], ...] = ()
    pictures: tuple[tuple[str, str], ...] = ()  # (url relative to the page, caption)

    def as_json(self) -> dict:
        return {"title": self.title, "text": list(self.text), "head": list(self.head) if self.head else None,
                "rows": [list(r) for r in self.rows], "pictures": [{"src": s, "caption": c} for s, c in self.pictures]}


@dataclass(frozen=True)
class Overlay:
    """Outlines drawn on the sky (Aladin Lite's graphic overlay): polygons of (ra, dec) corners in deg."""

    name: str
    polygons: tuple[tuple[tuple[float, float], ...], ...]
    color: str = "#ffd54a"

    def as_json(self) -> dict:
        return {"name": self.name, "color": self.color,
                "polygons": [[[float(ra), float(dec)] for ra, dec in polygon] for polygon in self.polygons]}


@dataclass(frozen=True)
class Page:
    """A viewer page: the first layer is the base (the generated band), drawn first and at once."""

    title: str
    ra: float
    dec: float
    fov: float
    layers: tuple[Layer, ...]
    subtitle: str = ""
    sections: tuple[Section, ...] = ()
    credits: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    missing_layers: tuple[str, ...] = ()  # why a wanted layer is not there (a remote survey, say)
    overlays: tuple[Overlay, ...] = ()

    def config(self) -> dict:
        return {"title": self.title, "subtitle": self.subtitle,
                "target": {"ra": self.ra, "dec": self.dec, "fov": self.fov},
                "layers": [layer.as_json() for layer in self.layers],
                "sections": [s.as_json() for s in self.sections], "credits": list(self.credits),
                "notes": list(self.notes), "missing_layers": list(self.missing_layers),
                "overlays": [overlay.as_json() for overlay in self.overlays]}


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


# ---- the page ------------------------------------------------------------------------------------------
def install_assets(folder: Path) -> Path:
    """Copy Aladin Lite (with its licence) and the viewer's script and style into folder/viewer/; files
    already there with the same bytes are left alone."""
    target = folder / VIEWER_DIR
    for source in sorted(ASSETS.rglob("*")):
        if not source.is_file():
            continue
        dest = target / source.relative_to(ASSETS)
        data = source.read_bytes()
        if dest.is_file() and not dest.is_symlink() and dest.stat().st_size == len(data) and dest.read_bytes() == data:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, data)
    return target


def page_html(page: Page, folder_hint: str) -> str:
    config = json.dumps(page.config(), allow_nan=False).replace("<", "\\u003c")  # no '</script>' inside
    title = html.escape(page.title)
    command = html.escape(f"python scripts/serve.py {folder_hint}")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\n"
        f"<title>{title}</title>\n<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CONTENT_SECURITY_POLICY}\">\n"
        f"<link rel='modulepreload' href='{VIEWER_DIR}/aladin-lite/aladin.js'>\n"
        f"<link rel='stylesheet' href='{VIEWER_DIR}/skytrans-viewer.css'>\n"
        f"<script type='application/json' id='skytrans-viewer-config'>{config}</script>\n"
        f"<script type='module' src='{VIEWER_DIR}/skytrans-viewer.js'></script>\n</head><body>\n"
        f"<div id='skytrans-needs-server'><b>{title}</b><p>This page shows the sky with Aladin Lite, which "
        f"browsers load only from a web server, not from a file. Serve this folder, then open the address it "
        f"prints:</p><pre>{command}</pre><p>(any static server works, e.g. <code>python -m http.server</code> "
        f"in this folder; nothing is fetched from the internet).</p></div>\n"
        "<div id='skytrans-page'><div id='skytrans-aladin'></div><div id='skytrans-panel'></div></div>\n"
        "</body></html>\n")


def write_page(folder: str | os.PathLike, page: Page, name: str = "index.html") -> Path:
    """folder/NAME (written atomically) and the viewer's files in folder/viewer/."""
    folder = Path(folder)
    if not page.layers:
        raise ValueError("a viewer page needs at least one layer")
    install_assets(folder)
    return atomic_write_text(folder / name, page_html(page, str(folder)))


# ---- layers --------------------------------------------------------------------------------------------
def relative_url(path: Path, folder: Path) -> str:
    """The path as the page's server sees it (links inside the folder are not followed)."""
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(folder))).as_posix()


def read_properties(root: Path) -> dict[str, str]:
    try:
        return properties_values((Path(root) / "properties").read_text(errors="replace"))
    except OSError:
        return {}


def hips_layer(root: Path, folder: Path, layer_id: str, name: str, role: str, display: Display | None = None,
               unit: str = "", group: str | None = None, note: str = "") -> Layer:
    """A HiPS folder under (or linked into) the page's folder. FITS tiles when the display has cuts (the
    values under the cursor are then in the unit), else the survey's own 8-bit tiles."""
    text = (Path(root) / "properties").read_text(errors="replace")
    props = parse_properties_text(text, str(Path(root) / "properties"))
    values = properties_values(text)
    if display is None:
        display = hips_display(Path(root), props.formats, values)
    fmt = "fits" if not display.native and "fits" in props.formats else next(
        (f for f in props.formats if f != "fits"), props.formats[0])
    return Layer(layer_id, name, relative_url(root, folder), "hips", fmt, role, display,
                 unit or values.get("bunit", ""), group, note)


def hips_display(root: Path, formats: tuple[str, ...], values: dict[str, str]) -> Display:
    """A survey's own 8-bit tiles when it has them; FITS-only surveys get their hips_pixel_cut, linear."""
    if any(f != "fits" for f in formats):
        return NATIVE
    try:
        low, high = (float(v) for v in values.get("hips_pixel_cut", "").split()[:2])
    except ValueError:
        low, high = 0.0, 1.0
    return Display(low, high, "linear")


def image_layer(path: Path, folder: Path, layer_id: str, name: str, role: str, display: Display | None = None,
                unit: str | None = None, group: str | None = None, note: str = "") -> Layer:
    """A FITS image (2-D, a WCS; .fits or .fits.gz) under (or copied into) the page's folder."""
    header, sample = fits_sample(path)
    return Layer(layer_id, name, relative_url(path, folder), "image", "fits", role,
                 display or Display.fitted(sample), str(header.get("BUNIT", "")) if unit is None else unit,
                 group, note)


def fits_sample(path: Path, limit: int = SAMPLE_PIXELS):
    """(header, up to `limit` pixels of the first image plane, evenly strided) of a FITS image."""
    from astropy.io import fits

    try:
        return _first_plane(fits, path, limit, memmap=True)
    except ValueError:  # scaled integers (BZERO/BSCALE) cannot be memory-mapped
        return _first_plane(fits, path, limit, memmap=False)


def _first_plane(fits, path: Path, limit: int, memmap: bool):
    with fits.open(path, memmap=memmap) as hdul:
        hdu = next((h for h in hdul if h.is_image and h.header.get("NAXIS", 0) >= 2), hdul[0])
        header = hdu.header.copy()
        data = hdu.data if limit > 1 else None
        if data is None:
            return header, np.empty(0)
        plane = data.reshape((-1,) + data.shape[-2:])[0]
        step = max(1, int(math.sqrt(plane.size / limit)))
        return header, np.asarray(plane[::step, ::step], dtype=np.float64)


def stage(source: Path, folder: Path, name: str) -> Path:
    """`source` inside folder/viewer/data/NAME: a copy for a FITS file up to COPY_LIMIT (the folder then
    stands alone), else an absolute link (a HiPS folder, a large image). Returns the path in the folder."""
    source = Path(source).resolve()
    dest = Path(folder) / DATA_DIR / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_file() and source.stat().st_size <= COPY_LIMIT:
        if dest.is_file() and not dest.is_symlink() and dest.stat().st_size == source.stat().st_size \
                and dest.stat().st_mtime >= source.stat().st_mtime:
            return dest
        if dest.is_symlink():
            dest.unlink()
        atomic_write_bytes(dest, source.read_bytes())
        return dest
    if dest.is_symlink() and Path(os.readlink(dest)) == source:
        return dest
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.is_dir():
        shutil.rmtree(dest)
    temp = dest.with_name(f".{dest.name}.link")
    temp.unlink(missing_ok=True)
    os.symlink(source, temp, target_is_directory=source.is_dir())
    os.replace(temp, dest)
    return dest


def survey_layer(spec: str, folder: Path, layer_id: str, name: str, role: str = "input",
                 display: Display | None = None) -> Layer | str:
    """A layer for an input survey as the tools take it (a HiPS folder, a FITS image); a sentence saying why
    not for one that is not on this machine (a URL or CDS ID: the page never asks another host)."""
    path = Path(spec).expanduser()
    if "://" in spec or not path.exists():
        return f"{name} ({spec}): not on this machine, so not shown (the page asks no other host)"
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{layer_id}_{path.name}")
    if path.is_dir():
        if not (path / "properties").is_file():
            return f"{name} ({spec}): a folder without a HiPS properties file, not shown"
        return hips_layer(stage(path, folder, safe), folder, layer_id, name, role, display)
    return image_layer(stage(path, folder, safe), folder, layer_id, name, role, display)


# ---- credits -------------------------------------------------------------------------------------------
def survey_credits(specs: list[str]) -> list[str]:
    """Who made each survey, from what it says about itself: a HiPS's obs_copyright / obs_ack /
    bib_reference, a FITS image's identity cards, and a CREDITS.txt beside the file or one folder up
    (given once however many files share it)."""
    lines, shared = [], []
    for spec in dict.fromkeys(specs):
        line, sidecar = _credit(spec)
        lines.append(line)
        if sidecar and sidecar not in shared:
            shared.append(sidecar)
    return lines + shared


def _credit(spec: str) -> tuple[str, str | None]:
    path = Path(spec).expanduser()
    if "://" in spec or not path.exists():
        return f"{spec}: see the survey's own page for its credits", None
    if path.is_dir():
        values = read_properties(path)
        parts = []
        for key in ("obs_copyright", "obs_ack", "bib_reference", "obs_copyright_url"):
            if values.get(key):
                text = " ".join(values[key].replace("\\n", " ").split())
                parts.append(text if len(text) <= 400 else text[:397] + "...")
        title = values.get("obs_title") or path.name
        return f"{title} ({path.name}): " + ("; ".join(parts) if parts else "no credit in its properties"), None
    try:
        header, _ = fits_sample(path, limit=1)
        cards = [f"{key} {str(header[key]).strip()}" for key in CREDIT_CARDS if str(header.get(key, "")).strip()]
    except (OSError, ValueError):
        cards = []
    sidecar = None
    for place in (path.parent, path.parent.parent):
        found = next((place / n for n in CREDIT_FILES if (place / n).is_file()), None)
        if found is not None:
            sidecar = " ".join(found.read_text(errors="replace").split())
            break
    return path.name + (f" ({', '.join(cards)})" if cards else ""), sidecar
