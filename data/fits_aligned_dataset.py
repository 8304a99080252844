"""Float32 FITS cubes (aladin_data.py --fits) as aligned training data: chosen planes in, chosen planes out.

Items: A = the target planes (the generator's output with the default --direction BtoA),
B = the input planes, both normalised per band (--fits_norm) with NaN filled by 0;
A_mask / B_mask = True where the plane had data (the L1 loss ignores the rest);
A_paths / B_paths = the cube; crop_box = (x, y, w, h) of the cutout and flip, which test.py
needs to give the generated band the WCS of its pixels. Arrays are in picture orientation
(row 0 = top = the last FITS row), like the PNG panels of the same targets.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from data import training_inputs
from data.base_dataset import BaseDataset, CubeBands, DatasetDescription, check_preprocess, get_params
from data.colour_fit import MAX_PIXELS, JointSampler, least_squares
from data.fits_norm import (NORM_MODES, PlaneSampler, check_mode, fit_cube_norm, load_norm,
                            norm_path, parse_cuts, save_norm)
from data.panels import parse_index_list
from data.sky.fits_io import is_fits_name, plane_labels, read_cube, require_wcs
from util.errors import UserError
from util.progress import progress, write

FITS_PREPROCESS = ("crop", "none")
SAMPLED_PIXELS = 2_000_000  # per plane over the whole training set, for the percentiles
PRIORS = ("none", "linear_fit", "normalised_fit")
# cubes are held in memory (normalised, read once) while they take less than this; beyond, read per item
CACHE_BYTES = 2 * 1024 ** 3


class FitsAlignedDataset(BaseDataset):
    """Reads DATAROOT/PHASE/*.fits; the normalisation lives in checkpoints/NAME/fits_norm.json."""

    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        parser.add_argument("--target_planes", type=str, default="0",
                            help="comma-separated cube planes (0-based) the generator produces")
        parser.add_argument("--input_planes", type=str, default="",
                            help="comma-separated cube planes (0-based) fed to the generator; default: all others")
        parser.add_argument("--fits_norm", type=str, default="asinh", choices=NORM_MODES,
                            help="per-band normalisation fitted on the training set (saved as fits_norm.json)")
        parser.add_argument("--fits_cuts", type=str, default="auto",
                            help="low,high percentiles of the normalisation; auto = 0.5,99.5 linear, 0.5,100 asinh")
        parser.add_argument("--prior", type=str, default="none", choices=PRIORS,
                            help="the generator predicts the correction to a per-pixel linear fit of the target on the "
                                 "input bands, fitted on the training cubes and saved in net_G: linear_fit in the band's "
                                 "unit, normalised_fit on the normalised values (asinh: a colour relation in magnitudes)")
        parser.add_argument("--allow_no_wcs", action="store_true",
                            help="accept cubes without a sky WCS (results are then written without one)")
        training_inputs.add_option(parser)
        # resampling would change pixel values and the WCS; the target is the generator's output;
        # one target plane by default (as --target_planes 0)
        parser.set_defaults(preprocess="crop", direction="BtoA", output_nc=1)
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        if opt.preprocess not in FITS_PREPROCESS:
            raise UserError(f"--dataset_mode fits_aligned takes --preprocess crop or none, not {opt.preprocess!r}: "
                            f"resampling would change the physical values and the WCS")
        if opt.direction != "BtoA":
            raise UserError("--dataset_mode fits_aligned: --target_planes are the generator's output, so "
                            "--direction must be BtoA (its default in this mode)")
        self.norm_mode = check_mode(opt.fits_norm)
        self.cuts = parse_cuts(opt.fits_cuts, self.norm_mode)
        paths = list_cubes(opt.dataroot, opt.phase, opt.max_dataset_size)
        self.first_path = paths[0]
        first = read_cube(self.first_path)
        self.n_planes = first.planes.shape[0]
        self.labels = plane_labels(first.header, self.n_planes)
        self.target_planes, self.input_planes = choose_planes(opt.target_planes, opt.input_planes, self.n_planes)
        check_channel_counts(opt, self.target_planes, self.input_planes)
        self.panel_indices = (list(self.target_planes), list(self.input_planes))
        self.panel_channels = ([1] * len(self.target_planes), [1] * len(self.input_planes))
        self.norm_file = norm_path(opt.checkpoints_dir, opt.name)
        fit_here = opt.isTrain and not (getattr(opt, "continue_train", False) and self.norm_file.is_file())
        self.cache: dict[str, np.ndarray] | None = {} if opt.isTrain else None
        joint = JointSampler((*self.target_planes, *self.input_planes), MAX_PIXELS // len(paths)) \
            if fit_here and opt.prior != "none" else None
        self.cube_paths, samplers = self._scan(paths, need_target=opt.isTrain, fit=fit_here, joint=joint)
        self.norm_fitted = fit_here
        self.prior_fit: dict | None = None
        if fit_here:  # written by save_run_files when the run starts: a failed start keeps the run's file
            self.norm = fit_cube_norm(samplers, self.norm_mode, self.cuts, self.labels, len(self.cube_paths))
            print(f"fitted the {self.norm_mode} normalisation of {self.n_planes} planes on "
                  f"{len(self.cube_paths)} cubes (for {self.norm_file})")
            if joint is not None:
                self.prior_fit = self._fit_prior(joint.values())
        else:
            self.norm = load_norm(self.norm_file)
            if self.norm.mode != self.norm_mode or tuple(self.norm.cuts) != tuple(self.cuts):
                print(f"note: using the {self.norm.mode} normalisation (cuts {self.norm.cuts}) the model was "
                      f"trained with, from {self.norm_file}")
        self._check_norm()
        self.input_notes = () if opt.isTrain else training_inputs.check_new_cubes(
            opt, self.cube_paths, self.labels, self.input_planes)

    # ------------------------------------------------------------------ construction
    def _scan(self, paths: list[str], need_target: bool, fit: bool,
              joint: JointSampler | None = None) -> tuple[list[str], list[PlaneSampler]]:
        """One read of every cube: WCS, plane count, size; drop all-NaN cutouts; sample pixels to fit on
        (per plane for the normalisation, jointly for the colour prior); keep the planes in memory for
        training while they fit in CACHE_BYTES."""
        samplers = [PlaneSampler(max(1000, SAMPLED_PIXELS // len(paths))) for _ in range(self.n_planes)]
        kept: list[str] = []
        skipped: list[str] = []
        for path in progress(paths, desc="checking FITS cubes", unit="cube", leave=False, enabled=len(paths) >= 50):
            cube = read_cube(path)
            self._check_cube(path, cube)
            empty = _empty_side(cube.planes, self.input_planes, self.target_planes if need_target else [])
            if empty:
                skipped.append(path)
                write(f"skipping {path}: every {empty} pixel is NaN (no data)")
                continue
            kept.append(path)
            if fit:
                for sampler, plane in zip(samplers, cube.planes):
                    sampler.add(plane)
            if joint is not None:
                joint.add(cube.planes)
            if self.cache is not None:
                if (len(self.cache) + 1) * cube.planes.nbytes <= CACHE_BYTES:
                    self.cache[path] = cube.planes
                else:
                    self.cache = None
        if not kept:
            raise UserError(f"every cube in {os.path.dirname(paths[0])} is all-NaN in its "
                            f"{'target or ' if need_target else ''}input planes; nothing to use")
        if skipped:
            print(f"skipped {len(skipped)} of {len(paths)} cubes without data")
        return kept, samplers

    def _check_cube(self, path: str, cube) -> None:
        n = cube.planes.shape[0]
        if n != self.n_planes:
            raise UserError(f"{path} has {n} planes but {self.first_path} has {self.n_planes}; "
                            f"all cubes need the same bands")
        require_wcs(cube.header, path, self.opt.allow_no_wcs)
        height, width = cube.planes.shape[1:]
        check_preprocess(self.opt, (width, height), f"cube {path}")

    def _fit_prior(self, values: np.ndarray) -> dict:
        """The colour prior's values: the least-squares fit of each target plane on the input planes (in
        the band's unit, or on normalised values with --prior normalised_fit) and every plane's
        normalisation, in the plain form models.ColourPrior takes."""
        n_targets = len(self.target_planes)
        if len(values) < len(self.input_planes) + 1:
            raise UserError(f"--prior {self.opt.prior}: too few training pixels where every band has data to fit it")
        normalised = self.opt.prior == "normalised_fit"
        if normalised:
            planes = (*self.target_planes, *self.input_planes)
            values = np.stack([self.norm.plane(p).normalize(values[:, i]).astype(np.float64)
                               for i, p in enumerate(planes)], axis=1)
        fits = [least_squares(values[:, n_targets:], values[:, t]) for t in range(n_targets)]
        for (coefficients, intercept), target in zip(fits, self.target_planes):
            terms = " ".join(f"{c:+.4g} x {self.labels[p][0]}" for c, p in zip(coefficients, self.input_planes))
            print(f"colour prior for {self.labels[target][0]}{' (normalised values)' if normalised else ''}: "
                  f"{intercept:.4g} {terms} (fitted on {len(values)} training pixels)")
        return {"in": [self.norm.plane(p).affine_form() for p in self.input_planes],
                "out": [self.norm.plane(p).affine_form() for p in self.target_planes],
                "coefficients": [list(map(float, c)) for c, _ in fits], "intercept": [i for _, i in fits],
                "space": "normalised" if normalised else "physical"}

    def _check_norm(self) -> None:
        if len(self.norm.planes) != self.n_planes:
            raise UserError(f"{self.norm_file} describes {len(self.norm.planes)} planes but the cubes have "
                            f"{self.n_planes}; use cubes built like the training ones")
        for index in (*self.target_planes, *self.input_planes):
            self.norm.plane(index)  # raises for a band that had no training data

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return len(self.cube_paths)

    def _normalised_picture(self, path: str) -> np.ndarray:
        """Every plane normalised (NaN where no data), in picture orientation; from memory after the first use."""
        cached = self.cache.get(path) if self.cache is not None else None
        if isinstance(cached, NormalisedCube):
            return cached.values
        if cached is None:
            cube = read_cube(path)
            self._check_cube(path, cube)
            cached = cube.planes
        needed = sorted({*self.target_planes, *self.input_planes})
        values = np.full(cached.shape, np.nan, dtype=np.float32)
        for i in needed:
            values[i] = self.norm.plane(i).normalize(cached[i])
        values = np.ascontiguousarray(values[:, ::-1, :])  # FITS row 1 is the bottom of the picture
        if self.cache is not None:
            self.cache[path] = NormalisedCube(values)
        return values

    def __getitem__(self, index: int) -> dict:
        path = self.cube_paths[index]
        picture = self._normalised_picture(path)
        height, width = picture.shape[1:]
        params = get_params(self.opt, (width, height))  # drawn in every mode, as the image datasets do
        if "crop" in self.opt.preprocess:  # the cube is at least crop_size on each side (checked)
            (x, y), size_x, size_y = params["crop_pos"], self.opt.crop_size, self.opt.crop_size
        else:
            x, y, size_x, size_y = 0, 0, width, height
        picture = picture[:, y:y + size_y, x:x + size_x]
        flip = bool(params["flip"]) and not self.opt.no_flip
        if flip:
            picture = picture[:, :, ::-1]
        a, a_mask = self._side(picture, self.target_planes)
        b, b_mask = self._side(picture, self.input_planes)
        return {"A": a, "B": b, "A_mask": a_mask, "B_mask": b_mask, "A_paths": path, "B_paths": path,
                "crop_box": torch.tensor([x, y, size_x, size_y]), "flip": torch.tensor(flip)}

    def _side(self, picture: np.ndarray, planes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        normalized = np.ascontiguousarray(picture[planes])  # a copy: filling it leaves the cache alone
        valid = np.isfinite(normalized)
        normalized[~valid] = 0.0
        return torch.from_numpy(normalized), torch.from_numpy(valid)

    def save_run_files(self) -> None:
        """The normalisation fitted here, saved with the checkpoints (test.py reads it back)."""
        if self.norm_fitted:
            save_norm(self.norm, self.norm_file)
            training_inputs.save_training_inputs(self.opt, self.cube_paths, self.labels, self.input_planes)

    # ------------------------------------------------------------------ what test.py needs
    def describe(self) -> DatasetDescription:
        """Cube planes with their band names, and the normalisation that turns the generator's
        output back into physical values (test.py writes the generated planes as FITS with it)."""
        return DatasetDescription(
            mode=self.opt.dataset_mode, kind="planes", panel_channels=self.panel_channels,
            panel_indices=self.panel_indices, bands={i: name for i, (name, _) in enumerate(self.labels)},
            cube=CubeBands(self.norm, self.norm_file, list(self.labels), list(self.target_planes),
                           list(self.input_planes)), prior=self.prior_fit,
            notes=tuple(self.input_notes))


class NormalisedCube:
    """A cached cube after normalisation (tells it apart from a raw cube in the same cache)."""
    __slots__ = ("values",)

    def __init__(self, values: np.ndarray):
        self.values = values


def list_cubes(dataroot: str, phase: str, max_dataset_size: float) -> list[str]:
    if not os.path.isdir(dataroot):
        raise UserError(f"--dataroot folder not found: {dataroot}")
    folder = os.path.join(dataroot, phase)
    if not os.path.isdir(folder):
        raise UserError(f"no '{phase}' folder in --dataroot {dataroot} (FITS cubes are read from DATAROOT/PHASE; "
                        f"set --phase)")
    paths = sorted(os.path.join(folder, name) for name in os.listdir(folder) if is_fits_name(name))
    if not paths:
        raise UserError(f"no FITS cubes in {folder} (build them with aladin_data.py --fits)")
    return paths[: int(min(len(paths), max_dataset_size))]


def choose_planes(target_text: str, input_text: str, n_planes: int) -> tuple[list[int], list[int]]:
    """Target and input plane numbers (0-based); inputs default to every plane that is not a target."""
    targets = parse_index_list(target_text, "--target_planes")
    if not targets:
        raise UserError("--target_planes is empty; name at least one cube plane for the generator to produce")
    inputs = parse_index_list(input_text, "--input_planes") or [i for i in range(n_planes) if i not in targets]
    for option, planes in (("--target_planes", targets), ("--input_planes", inputs)):
        for plane in planes:
            if not 0 <= plane < n_planes:
                raise UserError(f"{option}: plane {plane} is out of range, the cubes have {n_planes} planes "
                                f"(0..{n_planes - 1})")
        if len(set(planes)) != len(planes):
            raise UserError(f"{option} lists a plane twice")
    if not inputs:
        raise UserError(f"no input planes: the cubes have {n_planes} planes and all are targets")
    both = sorted(set(targets) & set(inputs))
    if both:
        raise UserError(f"plane {both[0]} is both a target and an input; the generator would see its answer")
    return targets, inputs


def check_channel_counts(opt, targets: list[int], inputs: list[int]) -> None:
    """One channel per plane; catch disagreeing --input_nc/--output_nc before the network does."""
    if opt.input_nc != len(inputs):
        raise UserError(f"--input_planes {','.join(map(str, inputs))} gives {len(inputs)} input channels but "
                        f"--input_nc is {opt.input_nc}")
    if opt.output_nc != len(targets):
        raise UserError(f"--target_planes {','.join(map(str, targets))} gives {len(targets)} output channels but "
                        f"--output_nc is {opt.output_nc}")


def _empty_side(planes: np.ndarray, inputs: list[int], targets: list[int]) -> str:
    """'input' / 'target' when those planes hold no finite pixel, '' when both have data."""
    if not np.isfinite(planes[inputs]).any():
        return "input"
    if targets and not np.isfinite(planes[targets]).any():
        return "target"
    return ""
