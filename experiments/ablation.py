"""The band ablation's plan: budgets, variants, and the train.py / test.py command lines.

Pure functions only (no files touched), so the plan can be tested without training anything;
scripts/run_ablation.py runs it stage by stage.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from util.errors import UserError

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SURVEYS = tuple(str(Path("data/sky_samples") / name)
                        for name in ("DSS2Red", "GLIMPSE360", "Planck-HFI143", "FermiColor"))
DEFAULT_VARIANTS = ((1,), (1, 2), (1, 2, 3))


@dataclass(frozen=True)
class Budget:
    """Everything that sets the cost of a run; every variant gets the same."""
    n_samples: int  # sky positions (real) or training images (synthetic)
    n_test: int  # synthetic only: test images (the real split is by sky region)
    size: int  # image side, px
    netG: str
    ngf: int
    ndf: int
    crop_size: int
    n_epochs: int
    n_epochs_decay: int
    batch_size: int = 1
    lr: float = 0.0002  # Adam's learning rate (upstream's default for batch 1)
    model: str = "pix2pix"  # or "regression" (no discriminator: ndf unused)
    prior: str = "none"  # FITS cubes: "linear_fit" = the generator corrects the linear colour fit


BUDGETS = {
    # for tests: seconds
    "tiny": Budget(n_samples=24, n_test=4, size=64, netG="unet_64", ngf=8, ndf=8, crop_size=64,
                   n_epochs=1, n_epochs_decay=0),
    # the default: the whole `make demo` in well under 15 minutes on 2 CPU cores
    "small": Budget(n_samples=400, n_test=100, size=64, netG="unet_64", ngf=32, ndf=32, crop_size=64,
                    n_epochs=8, n_epochs_decay=4, batch_size=4),
    # about an hour on 2 CPU cores, minutes on a GPU
    "medium": Budget(n_samples=1200, n_test=100, size=128, netG="unet_128", ngf=64, ndf=64, crop_size=128,
                     n_epochs=15, n_epochs_decay=15),
    # upstream's sizes: for a GPU
    "large": Budget(n_samples=4000, n_test=300, size=256, netG="unet_256", ngf=64, ndf=64, crop_size=256,
                    n_epochs=50, n_epochs_decay=50),
}
NETG_MULTIPLE = {"unet_256": 256, "unet_128": 128, "unet_64": 64, "resnet_9blocks": 4, "resnet_6blocks": 4,
                 "fullres_4blocks": 1, "fullres_6blocks": 1, "fullres_8blocks": 1}

# 51.5 arcsec per pixel: the native scale of the order-3 HiPS tiles in data/sky_samples
NATIVE_DEG_PER_PX = 51.5 / 3600.0


def make_budget(name: str, **overrides) -> Budget:
    """A preset of the HiPS and synthetic ablations with some fields replaced (None = keep)."""
    return make_budget_from(BUDGETS, name, min_n_test=1, **overrides)


def make_budget_from(presets: dict[str, Budget], name: str, min_n_test: int, **overrides) -> Budget:
    """A preset of `presets` with some fields replaced (None = keep), checked for consistency; `min_n_test`
    is 0 where the dataset's split, not n_test, makes the test set."""
    if name not in presets:
        raise UserError(f"unknown --budget {name!r}; choose one of {', '.join(presets)}")
    budget = replace(presets[name], **{k: v for k, v in overrides.items() if v is not None})
    for key in ("n_samples", "size", "ngf", "ndf", "crop_size", "batch_size"):
        if getattr(budget, key) < 1:
            raise UserError(f"--{key} must be at least 1, got {getattr(budget, key)}")
    if not 0 < budget.lr <= 1:
        raise UserError(f"--lr must be in (0, 1], got {budget.lr}")
    if budget.n_epochs < 1 or budget.n_epochs_decay < 0 or budget.n_test < min_n_test:
        raise UserError("--n_epochs and --n_test must be at least 1 and --n_epochs_decay not negative")
    if budget.crop_size > budget.size:
        raise UserError(f"--crop_size {budget.crop_size} is larger than the images (--size {budget.size})")
    multiple = NETG_MULTIPLE.get(budget.netG)
    if multiple is None:
        raise UserError(f"unknown --netG {budget.netG!r}; choose one of {', '.join(NETG_MULTIPLE)}")
    for key in ("crop_size", "size"):
        if getattr(budget, key) % multiple:
            raise UserError(f"--netG {budget.netG} needs --{key} to be a multiple of {multiple}, "
                            f"got {getattr(budget, key)}")
    return budget


def parse_variants(text: str) -> list[tuple[int, ...]]:
    """'1;1,2;1,2,3' -> [(1,), (1, 2), (1, 2, 3)], ordered by band count."""
    variants = []
    for part in text.split(";"):
        try:
            panels = tuple(int(p) for p in part.split(",") if p.strip())
        except ValueError:
            raise UserError(f"--variants must look like '1;1,2;1,2,3', got {text!r}") from None
        if not panels or min(panels) < 1 or len(set(panels)) != len(panels):
            raise UserError(f"bad input panel list {part!r} in --variants (panel numbers 1, 2, ... once each)")
        variants.append(panels)
    return sorted(dict.fromkeys(variants), key=len)


def variant_name(panels: tuple[int, ...]) -> str:
    return "bands_" + "-".join(map(str, panels))


def variant_label(panels: tuple[int, ...], band_names: dict[int, str]) -> str:
    count = f"{len(panels)} band" + ("s" if len(panels) > 1 else "")
    return f"{count} ({' + '.join(band_names.get(p, f'panel {p}') for p in panels)})"


def panel_channel_counts(dataset_dir: Path, phase: str = "train", n_probe: int = 5) -> list[int]:
    """Channels of each panel as the data really holds them: 1 when its RGB channels are equal in every
    probed image (a grey band), else 3. Panel count = width / height."""
    files = sorted(p for p in (dataset_dir / phase).glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise UserError(f"no images in {dataset_dir / phase}: the dataset stage wrote nothing")
    colour = None
    for path in files[:n_probe]:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
        height, width, _ = pixels.shape
        if width % height:
            raise UserError(f"{path} is {width}x{height}: not square panels side by side")
        panels = pixels.reshape(height, width // height, height, 3).transpose(1, 0, 2, 3)
        is_colour = [bool(np.any(p[..., 0] != p[..., 1]) or np.any(p[..., 0] != p[..., 2])) for p in panels]
        colour = is_colour if colour is None else [a or b for a, b in zip(colour, is_colour)]
    return [3 if c else 1 for c in colour]


def model_args(panels: tuple[int, ...], channels: list[int], budget: Budget) -> list[str]:
    """Options train.py and test.py must share so that the test loads what training saved."""
    if max(panels) >= len(channels):
        raise UserError(f"input panel {max(panels)} does not exist: the dataset has panels 0..{len(channels) - 1}")
    panel_nc = [channels[p] for p in panels]
    return ["--model", "pix2pix", "--direction", "BtoA",
            "--input_panels", ",".join(map(str, panels)), "--panel_nc", ",".join(map(str, panel_nc)),
            "--input_nc", str(sum(panel_nc)), "--output_nc", str(channels[0]),
            "--netG", budget.netG, "--ngf", str(budget.ngf), "--ndf", str(budget.ndf)]


def train_command(python: str, dataroot: Path, name: str, checkpoints: Path, panels: tuple[int, ...],
                  channels: list[int], budget: Budget, n_train: int, extra: list[str] = (),
                  seed: int | None = None) -> list[str]:
    """train.py's command line; a `seed` makes the training repeatable (same weights from the same data)."""
    epochs = budget.n_epochs + budget.n_epochs_decay
    samples = max(1, n_train) * epochs
    # --save_epoch_freq beyond the last epoch: only the final `latest_*` files, not a second copy as `{epoch}_*`

    def every(n_samples: int) -> str:
        # train.py counts samples in steps of batch_size: a frequency must be a multiple of it to fire
        return str(max(1, -(-n_samples // budget.batch_size)) * budget.batch_size)

    return [python, str(REPO / "train.py"), "--dataroot", str(dataroot), "--name", name,
            "--checkpoints_dir", str(checkpoints), *model_args(panels, channels, budget),
            "--load_size", str(budget.size), "--crop_size", str(budget.crop_size),
            "--batch_size", str(budget.batch_size), "--lr", f"{budget.lr:g}",
            "--n_epochs", str(budget.n_epochs), "--n_epochs_decay", str(budget.n_epochs_decay),
            "--save_epoch_freq", str(epochs + 1), "--print_freq", every(samples // 100),
            "--display_freq", every(n_train), "--display_id", "0", "--num_threads", "0",
            *(["--seed", str(seed)] if seed is not None else []), *extra]


def test_command(python: str, dataroot: Path, name: str, checkpoints: Path, results: Path,
                 panels: tuple[int, ...], channels: list[int], budget: Budget, extra: list[str] = ()) -> list[str]:
    """Whole test images (no crop; the U-Net is fully convolutional), dropout off (--eval) so that
    the comparison between variants is not blurred by random dropout masks."""
    return [python, str(REPO / "test.py"), "--dataroot", str(dataroot), "--name", name,
            "--checkpoints_dir", str(checkpoints), "--results_dir", str(results),
            *model_args(panels, channels, budget), "--load_size", str(budget.size), "--crop_size", str(budget.size),
            "--phase", "test", "--eval", "--num_test", "100000", "--display_id", "0", *extra]


def budget_dict(budget: Budget) -> dict:
    return asdict(budget)
