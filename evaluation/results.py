"""What evaluation reads of a run: test.py's results manifest and the training's loss history.

A results folder of this program holds manifest.json (util.results_manifest); one written before
manifests existed (upstream's layout: images/X_fake_B.png, X_real_B.png, X_real_A[_pN].png) goes
through `legacy_manifest`, the one adapter that rebuilds the same structure from the file-name
suffixes. Likewise the loss history is checkpoints/NAME/loss_log.jsonl, and only an older run
without it has its loss_log.txt parsed (`parse_loss_log`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from util.errors import UserError
from util.loss_history import LOSS_LOG, LossRecord, read_history
from util.results_manifest import Generated, InputFile, Item, ResultsManifest, RunInfo, Target, read_manifest

FAKE_SUFFIX = "_fake_B.png"
REAL_SUFFIX = "_real_B.png"
_PANEL_RE = re.compile(r"_real_A(?:_p(\d+))?\.png$")
_LOG_LINE = re.compile(r"\(epoch: (\d+), iters: (\d+), time: [^,]*, data: [^)]*\)(.*)")
_LOG_LOSS = re.compile(r"([A-Za-z_][\w]*): (-?(?:\d+\.?\d*|nan|inf))")


def natural_key(text: str) -> list:
    """'img10' after 'img9'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def load_results(results_dir: str | os.PathLike) -> ResultsManifest:
    """The manifest of a test.py results folder; an upstream-layout folder through legacy_manifest.
    File paths in it are relative to `results_dir`."""
    folder = Path(results_dir)
    if not folder.exists():
        raise UserError(f"results folder {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder")
    return read_manifest(folder) or legacy_manifest(folder)


def legacy_manifest(results_dir: str | os.PathLike) -> ResultsManifest:
    """The one adapter for results folders without a manifest: stems X with both X_fake_B.png and
    X_real_B.png (in images/ or the folder itself), inputs X_real_A_pN.png (a lone X_real_A.png
    counts as panel 1). Nothing else is known: no bands, no source files, no FITS."""
    root = Path(results_dir)
    folder = root / "images" if (root / "images").is_dir() else root
    fakes = {p.name[: -len(FAKE_SUFFIX)] for p in folder.glob(f"*{FAKE_SUFFIX}")}
    reals = {p.name[: -len(REAL_SUFFIX)] for p in folder.glob(f"*{REAL_SUFFIX}")}
    stems = fakes & reals
    if not stems:
        if not any(folder.iterdir()):
            raise UserError(f"{folder} is empty: run test.py first (it writes images/X_fake_B.png)")
        raise UserError(f"no manifest.json and no matching X{FAKE_SUFFIX} / X{REAL_SUFFIX} pairs in {folder} "
                        f"({len(fakes)} generated, {len(reals)} real images)")
    relative = os.path.relpath(folder, root)
    prefix = "" if relative == "." else f"{relative}/"
    inputs = {stem: [] for stem in stems}
    for path in folder.glob("*_real_A*.png"):
        match = _PANEL_RE.search(path.name)
        stem = path.name[: match.start()] if match else None
        if stem in inputs:
            inputs[stem].append(InputFile(prefix + path.name, int(match.group(1) or 1)))
    items = [Item(stem=stem, inputs=sorted(inputs[stem], key=lambda f: f.panel),
                  generated=Generated(f"{prefix}{stem}{FAKE_SUFFIX}"), target=Target(f"{prefix}{stem}{REAL_SUFFIX}"))
             for stem in sorted(stems, key=natural_key)]
    return ResultsManifest(run=RunInfo(), items=items)


def parse_loss_log(text: str) -> list[LossRecord]:
    """Loss lines of upstream's loss_log.txt, both eras ('(epoch: ...) G_GAN: 1.0' and
    '[Rank 0] (epoch: ...) , G_GAN: 1.0'), for runs that have no loss_log.jsonl."""
    records = []
    for line in text.splitlines():
        match = _LOG_LINE.search(line)
        if match:
            losses = {name: float(value) for name, value in _LOG_LOSS.findall(match.group(3))}
            records.append(LossRecord(int(match.group(1)), int(match.group(2)), losses))
    return records


def loss_history(run_dir: str | os.PathLike) -> list[LossRecord]:
    """The loss records of checkpoints/NAME: loss_log.jsonl, or an older run's parsed loss_log.txt."""
    folder = Path(run_dir)
    records = read_history(folder / LOSS_LOG)
    if records or not (folder / "loss_log.txt").is_file():
        return records
    return parse_loss_log((folder / "loss_log.txt").read_text(encoding="utf-8", errors="replace"))
