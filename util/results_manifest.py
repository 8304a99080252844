"""results/NAME/{phase}_{epoch}/manifest.json: which file test.py wrote for what, and from what.

test.py writes it beside index.html; evaluation reads it (and only it) instead of guessing roles
from file-name suffixes of 8-bit pictures. Paths of written files are relative to the results
folder (the folder can move); `source` is the data file as the dataset named it.

    {"format": "skytrans-results", "version": 1,
     "run": {"name": "sky", "model": "pix2pix", "epoch": "latest", "phase": "test", "direction": "BtoA",
             "dataset_mode": "aligned", "dataroot": "datasets/sky", "kind": "panels",
             "input": [1, 2, 3], "target": [0], "bands": {"0": "DSS2Red", "1": "GLIMPSE360"},
             "units": {}, "norm_file": null},
     "items": [{"stem": "sky0",
                "inputs": [{"file": "images/sky0_real_A_p1.png", "panel": 1, "band": "GLIMPSE360"}],
                "generated": {"png": "images/sky0_fake_B.png", "fits": null},
                "target": {"png": "images/sky0_real_B.png", "source": "datasets/sky/test/sky0.png",
                           "planes": null, "crop_box": null, "flip": null},
                "other": {}}]}

`kind` says what the numbers in input/target/panel count: "panels" of A|B|C|D images (panel 0 is
the target band) or "planes" of float FITS cubes. For cubes, generated.fits is the float output in
physical units, and target.source/planes/crop_box [x, y, w, h]/flip say where the real values are
(crop in picture rows, row 0 = top; flip = mirrored left-right), with the normalisation in norm_file.
A model without a real target (--model test) has target null; visuals without a role (cycle_gan's
reconstructions) are listed under other, label -> file.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from util.errors import UserError
from util.fileio import atomic_write_text

MANIFEST = "manifest.json"
FORMAT = "skytrans-results"
VERSION = 1


@dataclass
class InputFile:
    file: str
    panel: int | None = None
    band: str | None = None


@dataclass
class Generated:
    png: str
    fits: str | None = None


@dataclass
class Target:
    png: str
    source: str | None = None
    planes: list[int] | None = None
    crop_box: list[int] | None = None
    flip: bool | None = None


@dataclass
class Item:
    stem: str
    inputs: list[InputFile] = field(default_factory=list)
    generated: Generated | None = None
    target: Target | None = None
    other: dict[str, str] = field(default_factory=dict)


@dataclass
class RunInfo:
    name: str | None = None
    model: str | None = None
    epoch: str | None = None
    phase: str | None = None
    direction: str | None = None
    dataset_mode: str | None = None
    dataroot: str | None = None
    kind: str = "panels"
    input: list[int] = field(default_factory=list)
    target: list[int] = field(default_factory=list)
    bands: dict[int, str] = field(default_factory=dict)
    units: dict[int, str] = field(default_factory=dict)
    norm_file: str | None = None
    notes: list[str] = field(default_factory=list)  # e.g. inputs accepted although unlike training


@dataclass
class ResultsManifest:
    run: RunInfo
    items: list[Item] = field(default_factory=list)
    version: int = VERSION

    def to_json(self) -> str:
        body = asdict(self)
        body.pop("version")
        for key in ("bands", "units"):
            body["run"][key] = {str(k): v for k, v in body["run"][key].items()}
        return json.dumps({"format": FORMAT, "version": self.version, **body}, indent=1) + "\n"


def _numbered(mapping: dict[str, Any]) -> dict[int, str]:
    return {int(key): str(value) for key, value in (mapping or {}).items()}


def from_dict(body: dict[str, Any]) -> ResultsManifest:
    """The manifest from its JSON object; another format or a newer version is a UserError."""
    if body.get("format") != FORMAT:
        raise UserError(f"not a results manifest of this program (format {body.get('format')!r})")
    if body.get("version") != VERSION:
        raise UserError(f"results manifest version {body.get('version')} is not the version {VERSION} this "
                        f"program reads; run test.py again")
    run = dict(body["run"])
    run["bands"], run["units"] = _numbered(run.get("bands")), _numbered(run.get("units"))
    items = []
    for raw in body["items"]:
        items.append(Item(stem=raw["stem"], inputs=[InputFile(**entry) for entry in raw.get("inputs", [])],
                          generated=Generated(**raw["generated"]) if raw.get("generated") else None,
                          target=Target(**raw["target"]) if raw.get("target") else None,
                          other=dict(raw.get("other", {}))))
    return ResultsManifest(run=RunInfo(**run), items=items, version=VERSION)


def write_manifest(results_dir: str | os.PathLike, manifest: ResultsManifest) -> Path:
    return atomic_write_text(Path(results_dir) / MANIFEST, manifest.to_json())


def read_manifest(results_dir: str | os.PathLike) -> ResultsManifest | None:
    """The folder's manifest, or None when it has none (a results folder of upstream's layout)."""
    path = Path(results_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        return from_dict(body)
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path} is not a readable results manifest: {err}") from None
