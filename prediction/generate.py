"""A trained generator for sky prediction: rebuilt from what training saved, run one window at a time.

The options come from checkpoints/NAME/train_opt.txt (upstream's `key: value [default: x]` lines),
replayed through the project's own option parser, so types, defaults and the model's and dataset's
option passes are the ones training used. Options the user gives on top override; one that changes
what the network is or reads (an ARCHITECTURE key) and differs from the checkpoint is refused.

A generator without dropout (the regression recipe) takes its passes from the eight flips and
rotations of the input instead (test-time augmentation): each pass sees the sky turned, and the
output is turned back, so every pass is still one seamless map.

Every module stays in eval mode (BatchNorm uses its running statistics) and every window goes through
the network alone, so a tile's bytes never depend on the other tiles of its batch. Stochastic passes
(--uncertainty) apply dropout masks drawn from a hash of (seed, pass, layer, channel, base cell, global
feature position): tiles that overlap see the same mask on the same sky, so every pass is one seamless
sample of the map and a tile's result does not depend on the shard, batch or resume it was computed in.
"""
from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from util.errors import UserError

OPTIONS_FILE = "train_opt.txt"
SUPPORTED_MODELS = ("pix2pix", "regression")
# what the generator is and what it reads: replayed from the checkpoint, never contradicted
ARCHITECTURE = ("model", "dataset_mode", "netG", "ngf", "norm", "input_nc", "output_nc", "no_dropout",
                "output_head", "prior", "direction", "n_panels", "input_panels", "panel_nc", "target_planes",
                "input_planes", "fits_norm", "fits_cuts")
# replayed too: they decide the pixel scale the network saw (see prediction.inputs.training_data)
REPLAYED = ARCHITECTURE + ("dataroot", "preprocess", "load_size", "crop_size", "init_type", "init_gain")


def default_generator_threads(environ: dict[str, str] | None = None, cpus: int | None = None) -> int:
    """The generator's CPU threads when --threads is not given: every core this process may use but one,
    which the render thread (or the render processes) keeps. torch's own default takes them all, and its
    threads then wait on each other whenever rendering holds one of their cores: on 2 cores the pipelined
    run went at 0.73 of its slower stage."""
    environ = os.environ if environ is None else environ
    asked = environ.get("OMP_NUM_THREADS", "").strip()
    if asked.isdigit() and int(asked) > 0:
        cpus = int(asked)
    elif cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus - 1)


def asked_generator_threads(asked: int) -> int:
    """--threads as given, or (0) the default."""
    return asked or default_generator_threads()


@contextlib.contextmanager
def generator_threads(threads: int):
    """torch's CPU threads set to `threads` for a run, and given back after (a caller in a notebook or a test
    keeps its own). A tile's bytes depend on this count (convolution kernels split their sums by it: the
    fullres generators differ in the last bits between 1 and 2 threads), so region runs record it and every
    shard, resume and Dask worker of the folder uses the recorded count."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


def read_saved_options(path: Path) -> dict[str, str]:
    """key -> value text of an options file written by BaseOptions.print_options."""
    if not path.is_file():
        raise UserError(f"{path.parent} has no {OPTIONS_FILE} (the options training saves); "
                        f"not a checkpoint folder of train.py")
    saved = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if ": " not in line or line.startswith("---"):
            continue
        key, _, value = line.partition(": ")
        saved[key.strip()] = value.split("\t[default:")[0].strip()
    if "model" not in saved or "netG" not in saved:
        raise UserError(f"{path} lists no model options (model, netG); not an options file of train.py")
    return saved


def replay_argv(saved: dict[str, str], parser) -> list[str]:
    """The command line that gives the parser the saved values of the REPLAYED options."""
    actions = {a.dest: a for a in parser._actions if a.option_strings}
    argv: list[str] = []
    for key in REPLAYED:
        if key not in saved or key not in actions:
            continue
        action = actions[key]
        flag = action.option_strings[0]
        if action.nargs == 0:  # store_true
            if saved[key] == "True":
                argv.append(flag)
        elif saved[key] != "None":
            argv += [flag, saved[key]]
    return argv


@dataclass
class LoadedModel:
    opt: object
    net: torch.nn.Module
    device: torch.device
    saved: dict[str, str]
    weights: Path


def load_model(name: str, checkpoints_dir: str, user_argv: list[str] | None = None,
               gpu_ids: str = "0") -> LoadedModel:
    """Rebuild NAME's generator from its saved options (+ user_argv) and load its weights, in eval mode,
    on the device of the run context (--gpu_ids)."""
    from engine.context import open_run
    from engine.setup import prepare_model
    from models.base_model import checkpoint_prefix
    from models.checkpoint import network_path
    from options.test_options import TestOptions

    folder = Path(checkpoints_dir).expanduser() / name
    if not folder.is_dir():
        raise UserError(f"no checkpoint folder {folder} (--name {name}, --checkpoints_dir {checkpoints_dir})")
    saved = read_saved_options(folder / OPTIONS_FILE)
    if saved["model"] not in SUPPORTED_MODELS:
        raise UserError(f"{folder} holds a --model {saved['model']} checkpoint; predict_sky.py runs the "
                        f"generator of a {' or '.join(SUPPORTED_MODELS)} model")
    user_argv = list(user_argv or [])
    fixed = ["--name", name, "--checkpoints_dir", str(Path(checkpoints_dir).expanduser()), "--gpu_ids", gpu_ids,
             "--dataroot", saved.get("dataroot", "."), "--model", saved["model"]]
    parser = TestOptions().parser_for(saved["model"], saved.get("dataset_mode", "aligned"))
    opt = TestOptions().parse(fixed + replay_argv(saved, parser) + user_argv)
    given = {a.split("=", 1)[0].lstrip("-") for a in user_argv if a.startswith("--")}
    for key in ARCHITECTURE:
        if key in given and key in saved and str(getattr(opt, key)) != saved[key]:
            raise UserError(f"--{key} {getattr(opt, key)} contradicts the checkpoint "
                            f"({folder / OPTIONS_FILE}: {key} {saved[key]})")
    with open_run(opt) as ctx:
        if ctx.is_distributed:
            raise UserError("predict_sky.py runs in one process; start it without torchrun (use --shard)")
        with contextlib.redirect_stdout(io.StringIO()):  # the network listing: not for this tool's log
            model = prepare_model(opt, ctx)
    model.eval()
    return LoadedModel(opt, model.netG, ctx.device, saved, network_path(folder, checkpoint_prefix(opt), "G"))


# ---- hashed dropout --------------------------------------------------------------------------
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (uint64 arithmetic wraps, as intended)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def combine_key(*values: int) -> int:
    """One 64-bit key from several integers (platform independent, unlike hash())."""
    z = np.zeros(1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for value in values:
            z = _mix(z ^ (np.asarray([value], dtype=np.int64).astype(np.uint64) + _GOLDEN))
    return int(z[0])


def hashed_uniform(key: int, channels: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) numbers (channels, len(rows), len(cols)) from a key and global positions."""
    with np.errstate(over="ignore"):
        base = _mix(np.asarray([key], dtype=np.uint64) * _GOLDEN)
        c = _mix(base + np.arange(channels, dtype=np.uint64) * _GOLDEN)[:, None, None]
        r = _mix(np.asarray(rows, dtype=np.int64).astype(np.uint64) * _GOLDEN + np.uint64(1))[None, :, None]
        k = _mix(np.asarray(cols, dtype=np.int64).astype(np.uint64) * _MIX1 + np.uint64(2))[None, None, :]
        z = _mix(c ^ r ^ _mix(k ^ c))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


@dataclass(frozen=True)
class TileKey:
    """Where a network input lies: base cell and the global pixel (row, col) of its first pixel."""

    base: int
    row0: int
    col0: int


MAX_TURNS = 8  # the dihedral group of the square: 4 rotations, each with and without a flip


def turn(x: torch.Tensor, index: int) -> torch.Tensor:
    """Element `index` (0..7) of the square's symmetry group on the last two axes (0 = identity)."""
    x = torch.rot90(x, index % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if index >= 4 else x


def turn_back(x: torch.Tensor, index: int) -> torch.Tensor:
    """The inverse of turn(., index)."""
    if index >= 4:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, -(index % 4), dims=(-2, -1))


class Generator:
    """Batched forward passes: deterministic (eval), stochastic with hashed dropout masks, or, for a
    generator without dropout, the input's flips and rotations.

    Inputs are (B, C, S, S) in tile orientation; the network sees them with rows reversed (that turns
    the HiPS tile's mirror image of the sky into the sky as seen, north up to within 45 degrees).
    """

    def __init__(self, loaded: LoadedModel, seed: int = 0):
        from models.precision import Precision

        self.net = loaded.net
        self.device = loaded.device
        self.precision = Precision(getattr(loaded.opt, "amp", "none") or "none", self.device)
        self.channels_last = bool(getattr(loaded.opt, "channels_last", False))
        self.seed = int(seed)
        self.dropouts = [m for m in self.net.modules() if isinstance(m, torch.nn.Dropout)]
        self._masks: list[torch.Tensor] | None = None
        for index, module in enumerate(self.dropouts):
            module.register_forward_hook(self._hook(index))

    @property
    def stochastic(self) -> bool:
        return bool(self.dropouts)

    @property
    def max_passes(self) -> int | None:
        """Distinct passes it can make: unlimited with dropout, the 8 turns without."""
        return None if self.stochastic else MAX_TURNS

    @property
    def pass_kind(self) -> str:
        return "stochastic passes (dropout on)" if self.stochastic else "flips and rotations of the input"

    def _hook(self, index: int):
        def apply(module, inputs, output):
            if self._masks is None:
                return output
            return output * self._masks[index].to(output.dtype)
        return apply

    def _make_masks(self, keys: list[TileKey], pass_index: int, size: int) -> list[torch.Tensor]:
        """One mask per dropout layer for the batch: shape from a probe of the feature sizes."""
        masks = []
        for index, (module, shape) in enumerate(zip(self.dropouts, self._feature_shapes(size))):
            channels, height, width = shape
            factor = size // height
            per_sample = []
            for key in keys:
                aligned = key.row0 % factor == 0 and key.col0 % factor == 0
                rows = np.arange(height) + (key.row0 // factor if aligned else 0)
                cols = np.arange(width) + (key.col0 // factor if aligned else 0)
                layer_key = combine_key(self.seed, pass_index, index, key.base,
                                        *(() if aligned else (key.row0, key.col0)))
                keep = hashed_uniform(layer_key, channels, rows, cols) >= module.p
                # the network sees rows reversed: reverse the tile-frame mask the same way
                per_sample.append(keep[:, ::-1, :] / (1.0 - module.p))
            masks.append(torch.from_numpy(np.ascontiguousarray(np.stack(per_sample), dtype=np.float32))
                         .to(self.device))
        return masks

    def _feature_shapes(self, size: int) -> list[tuple[int, int, int]]:
        if getattr(self, "_shape_cache", (None,))[0] != size:
            shapes: list[tuple[int, int, int]] = []
            handles = [m.register_forward_hook(lambda mod, i, o: shapes.append(tuple(o.shape[1:])))
                       for m in self.dropouts]
            first = next(self.net.parameters())
            with torch.no_grad():
                self.net(torch.zeros(1, first.shape[1] if first.dim() == 4 else 1, size, size, device=self.device))
            for handle in handles:
                handle.remove()
            self._shape_cache = (size, shapes)
        return self._shape_cache[1]

    def run(self, batch: np.ndarray, keys: list[TileKey] | None = None, passes: int = 0) -> np.ndarray:
        """(P, B, C_out, S, S) outputs in tile orientation: P = 1 deterministic pass when passes == 0; with
        passes > 0, pass p draws dropout masks (seed, p), or without dropout sees the input turned by turn(., p).

        Every window goes through the network alone (a batch of one). Convolution kernels split their
        work by the batch size (oneDNN's threads on a CPU, cuDNN's algorithm choice on a GPU), so the
        same window in batches of 2, 3 or 4 differed in its last bits: a tile's bytes then depended on
        --batch_size, the shard and the resume it was computed in. Windows of 768 px keep a device busy
        on their own (measured on 2 CPU cores: 4 windows one by one as fast as in one batch).
        """
        if keys is None:
            keys = [TileKey(0, 0, 0)] * len(batch)
        return np.concatenate([self._run_one(batch[b:b + 1], keys[b:b + 1], passes)
                               for b in range(len(batch))], axis=1)

    def _run_one(self, window: np.ndarray, keys: list[TileKey], passes: int) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(window[:, :, ::-1, :])).to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        outputs = []
        turning = passes > 0 and not self.stochastic
        for p in range(max(1, passes)):
            self._masks = self._make_masks(keys, p, window.shape[-1]) if passes > 0 and self.stochastic else None
            try:
                with torch.no_grad(), self.precision.autocast():
                    y = turn_back(self.net(turn(x, p)), p) if turning else self.net(x)
            finally:
                self._masks = None
            outputs.append(y.float().cpu().numpy()[:, :, ::-1, :])
        return np.stack(outputs)
