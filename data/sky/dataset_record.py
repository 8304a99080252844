"""DIR/dataset.json: the settings a dataset was built with, so that a re-run into the same --out either
adds to it or is refused.

Files of another --size, --fov or --surveys beside the earlier ones would make training die mid-epoch,
so a re-run whose settings differ is refused in one line unless --overwrite, which first removes what
the builder wrote there as its manifests list it (their PNG and FITS files, the manifests, dataset.json;
a file no manifest lists is left in place, and the run names it). The
target list is not a setting: a re-run with more targets appends to the dataset.
A folder built before dataset.json existed is checked against its manifest (size, surveys, cubes).
"""
from __future__ import annotations

import json
from pathlib import Path

from util.errors import UserError
from util.fileio import atomic_write_text

from .manifest import read_manifest

RECORD = "dataset.json"
RECORD_VERSION = 1
OUTPUT_FOLDERS = ("train", "val", "test")


def target_selection(spec, config) -> str:
    """The part of the target choice that is a setting: --sample N names its list by index, so another N
    or coverage gives other positions under the same names; lists of names and positions may grow."""
    if spec.sample:
        return f"--sample {spec.sample} ({spec.sample_mode}, min_coverage {config.min_coverage:g})"
    if config.inputs_only:
        return "inputs only (test/)"
    if spec.position is not None or spec.single_name is not None:
        return "one position (test/)"
    return "a list (split by sky cell)"


def settings_of(config, spec, engines, split_order: int) -> dict:
    """What decides the files' content and which split a target joins (JSON-ready, compared on re-runs)."""
    return {
        "surveys": [f"{e.name} ({e.tile_format}, {e.channels} ch)" for e in engines],
        "size": config.size, "fov": config.fov, "projection": config.projection, "fits": config.fits,
        "stretch": config.stretch.name, "cuts": [config.stretch.low_percentile, config.stretch.high_percentile],
        "black_is_blank": config.black_is_blank, "backend": config.backend, "resample": config.resample,
        "split": [round(f, 9) for f in config.split], "split_order": split_order,
        "split_guard": config.split_guard, "seed": config.seed, "targets": target_selection(spec, config),
    }


def _legacy_settings(out: Path) -> dict | None:
    """size, survey names and cubes of a dataset written before dataset.json (its manifest rows)."""
    rows = read_manifest(out / "manifest.csv")
    for shard in sorted(out.glob("manifest.shard*of*.csv")):
        rows = rows or read_manifest(shard)
    if not rows:
        return None
    row = rows[0]
    return {"size": int(row.get("size") or 0), "surveys": row.get("surveys", "").split(";"), "fits": "fits" in row}


def holds_targets(out: Path) -> bool:
    """Whether `out` holds a written target (a PNG in train/ val/ test/, listed or not)."""
    return any(next((out / folder).glob("*.png"), None) for folder in OUTPUT_FOLDERS if (out / folder).is_dir())


def _show(value) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def differences(old: dict, new: dict) -> list[str]:
    return [f"{key} {_show(old.get(key))}, now {_show(new.get(key))}" for key in new if old.get(key) != new.get(key)]


def check_dataset(out: Path, settings: dict, overwrite: bool) -> bool:
    """True when --overwrite must first clear an existing dataset in `out`; UserError when `out` holds a
    dataset made with other settings and --overwrite is not given."""
    record = out / RECORD
    if not holds_targets(out):
        return False  # nothing built there yet (or a run that wrote no target)
    if record.is_file():
        try:
            old = json.loads(record.read_text(encoding="utf-8")).get("settings", {})
        except (ValueError, OSError, AttributeError) as err:
            raise UserError(f"--out {out}: {RECORD} is unreadable ({err}); --overwrite replaces the dataset") from None
        changed = differences(old, settings)
    else:
        legacy = _legacy_settings(out)
        if legacy is None:
            return overwrite  # PNG files without a manifest: nothing to compare them with
        now = {"size": settings["size"], "fits": settings["fits"],
               "surveys": [name.rsplit(" (", 1)[0] for name in settings["surveys"]]}
        changed = differences(legacy, now)
    if overwrite:
        return True
    if changed:
        shown = "; ".join(changed[:3]) + (f" (+{len(changed) - 3} more)" if len(changed) > 3 else "")
        raise UserError(f"--out {out} holds a dataset built with other settings ({shown}); use another --out, "
                        f"or --overwrite to replace it")
    return False


def listed_files(out: Path) -> set[str]:
    """The target files (PNG, FITS) this builder wrote in `out`, as its manifests list them."""
    names: set[str] = set()
    for manifest in (out / "manifest.csv", *out.glob("manifest.shard*of*.csv")):
        for row in read_manifest(manifest):
            for key in ("file", "fits"):
                parts = Path(row.get(key) or "").parts
                if len(parts) == 2 and parts[0] in OUTPUT_FOLDERS and parts[1] not in ("", ".", ".."):
                    names.add("/".join(parts))
    return names


def check_target_names(out: Path, names: list[str], replacing: bool) -> None:
    """UserError, before anything is written or removed, when a file this run would write is already there and
    no manifest lists it: a user's file of the builder's name. Only a resumed run (dataset.json there, no
    --overwrite) takes such files for its own: a killed run's last targets, written before their rows."""
    existing = sorted(name for name in names if (out / name).is_file())
    if not existing:
        return
    foreign = sorted(set(existing) - listed_files(out))
    if foreign and (replacing or not (out / RECORD).is_file()):
        shown = ", ".join(foreign[:3]) + (f" (+{len(foreign) - 3} more)" if len(foreign) > 3 else "")
        raise UserError(f"--out {out} holds {len(foreign)} file(s) that this builder did not write but would write "
                        f"again under the same names ({shown}); move them, or use another --out")


def clear_dataset(out: Path) -> tuple[int, list[str]]:
    """Remove what the builder wrote in `out` as its own records list it: the files its manifests name,
    their temps, the manifests and dataset.json. Returns the number removed and the files of train/
    val/ test/ left in place because no manifest lists them (a user's own, or a killed run's last few)."""
    listed = listed_files(out)
    removed, kept = 0, []
    candidates = [out / RECORD, out / "manifest.csv", *out.glob("manifest.shard*of*.csv"), *out.glob(".manifest*.tmp")]
    for folder in OUTPUT_FOLDERS:
        if not (out / folder).is_dir():
            continue
        for path in sorted((out / folder).iterdir()):
            name = f"{folder}/{path.name}"
            if name in listed or (path.name.startswith(".") and path.suffix == ".tmp"
                                  and any(path.name.startswith(f".{Path(n).name}.") for n in listed)):
                candidates.append(path)
            elif path.is_file():
                kept.append(name)
    for path in candidates:
        if path.is_file():
            path.unlink()
            removed += 1
    return removed, kept


def write_record(out: Path, settings: dict, sources: list[str], split: dict | None = None) -> None:
    """dataset.json, written before the first target so that a killed run leaves it too.

    `split`: the block split a small field got (split_blocks.BlockSplit.as_record), which predict_sky --truth
    follows; a HEALPix split needs no more than `split_order` in the settings (the cells come from the
    manifest's positions), so its record stays as it was."""
    record = {"format": RECORD_VERSION, "made_by": "aladin_data.py", "settings": settings, "sources": list(sources)}
    if split is not None:
        record["split"] = split
    atomic_write_text(out / RECORD, json.dumps(record, indent=1) + "\n")


def recorded_split(out: Path) -> dict | None:
    """The block split in out/dataset.json; None for a HEALPix split (or no readable record)."""
    try:
        split = json.loads((out / RECORD).read_text(encoding="utf-8")).get("split")
    except (OSError, ValueError, AttributeError):
        return None
    return split if isinstance(split, dict) else None


def recorded_settings(out: Path) -> dict:
    """The settings in out/dataset.json ({} when absent or unreadable)."""
    try:
        return dict(json.loads((out / RECORD).read_text(encoding="utf-8")).get("settings", {}))
    except (OSError, ValueError, AttributeError):
        return {}
