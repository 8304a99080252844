"""BaseModel: the upstream model API (setup, set_input, optimize_parameters, test, save/load)
plus exact-resume state, per-panel visuals for multi-band inputs, and the --amp step skeleton.

A model knows no dataset and no run: a batch is a dict, the panel layout comes through
set_visual_panels, and the engine wraps the built networks (DDP, --compile) through
wrap_networks and decides who prints."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import torch
from torch import nn

from models import checkpoint, networks, schedule
from models.physical_networks import ColourPrior
from models.loss_watch import LossWatch
from models.precision import Precision
from util.errors import UserError
from util.fileio import FileGroup

class VisualPart(NamedTuple):
    """One picture of get_current_visuals(): its label, the visual it comes from, the file panel
    (or cube plane) it shows when known, and the tensor."""
    label: str
    name: str
    panel: int | None
    tensor: torch.Tensor


def split_channels(tensor: torch.Tensor, sizes: Sequence[int], dim: int = -3) -> list[torch.Tensor]:
    """Cut a channel-stacked tensor back into its panels (dim -3 is C for CHW and NCHW)."""
    if sum(sizes) != tensor.shape[dim]:
        raise ValueError(f"panel channels {list(sizes)} do not add up to {tensor.shape[dim]}")
    return list(tensor.split(list(sizes), dim=dim))


def checkpoint_prefix(opt) -> str:
    """`iter_{N}` when --load_iter > 0, else --epoch (e.g. 'latest', '5')."""
    load_iter = int(getattr(opt, "load_iter", 0) or 0)
    return f"iter_{load_iter}" if load_iter > 0 else str(opt.epoch)


class BaseModel(ABC):
    """Subclasses fill loss_names, model_names, visual_names in __init__ (cheap) and build their
    networks, criteria and optimizers in `build()`, which `setup()` calls."""

    #: visuals that show the generator's input side (split per input panel); the others show the output side.
    input_visual_names: tuple[str, ...] = ("real_A",)
    #: which visual plays which role in test.py's results manifest (None: the model has none)
    result_visuals: dict[str, str | None] = {"input": "real_A", "generated": "fake_B", "target": "real_B"}

    def __init__(self, opt):
        self.opt = opt
        self.isTrain: bool = bool(opt.isTrain)
        self.device: torch.device = getattr(opt, "device", None) or torch.device("cpu")
        self.save_dir = Path(opt.checkpoints_dir) / opt.name
        self.loss_names: list[str] = []
        self.model_names: list[str] = []
        self.visual_names: list[str] = []
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedulers: list[Any] = []
        self.image_paths: list[str] = []
        self.metric = 0.0  # fed to the plateau scheduler
        self.resume_state: dict[str, Any] | None = None
        self._saved_sha256: dict[str, dict[str, str]] = {}
        self._panel_channels: tuple[list[int], list[int]] | None = None
        self._panel_indices: tuple[list[int], list[int]] | None = None
        #: --amp: autocast for forward passes, loss scaling (fp16) for backward/step
        self.precision = Precision(getattr(opt, "amp", "none") or "none", self.device)
        self.loss_watch = LossWatch()  # non-finite losses, read back only at the engine's check points
        #: --prior linear_fit: the fit and normalisations the data layer computed (None: from the checkpoint)
        self.prior_fit: dict | None = None

    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        """Second option pass: add model options or change defaults."""
        return parser

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def build(self) -> None:
        """Define networks (via self.place), criteria and, when training, optimizers."""

    @abstractmethod
    def set_input(self, input: dict) -> None:
        """Unpack a data-loader batch onto the device."""

    @abstractmethod
    def forward(self) -> None:
        """Run the generator(s)."""

    @abstractmethod
    def optimize_parameters(self) -> None:
        """One training step."""

    # ------------------------------------------------------------------ life cycle
    def build_generator(self, input_nc: int | None = None, output_nc: int | None = None) -> nn.Module:
        """The generator of the options, on the CPU: architecture, output head (--output_head) and, with
        --prior linear_fit or normalised_fit (float FITS data), the colour prior around it. The prior's values come from
        `prior_fit` (set by the engine from the training data before setup) or, when testing or resuming,
        from the checkpoint the model then loads."""
        opt = self.opt
        input_nc = opt.input_nc if input_nc is None else input_nc
        output_nc = opt.output_nc if output_nc is None else output_nc
        net = networks.define_G(input_nc, output_nc, opt.ngf, opt.netG, opt.norm, not opt.no_dropout,
                                opt.init_type, opt.init_gain, getattr(opt, "output_head", "tanh"))
        if getattr(opt, "prior", "none") != "none":
            net = ColourPrior(net, input_nc, output_nc)
            if self.prior_fit is not None:
                net.set_fit(self.prior_fit)
        return net

    def place(self, net: nn.Module) -> nn.Module:
        """Move a freshly built network to the model's device (NHWC with --channels_last)."""
        if getattr(self.opt, "channels_last", False):
            return net.to(self.device, memory_format=torch.channels_last)
        return net.to(self.device)

    def wrap_networks(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Replace every network by wrap(network): the engine's DDP and --compile wrappers.
        Checkpoints still hold the bare module's keys (models.checkpoint strips the wrappers)."""
        for name in self.model_names:
            setattr(self, "net" + name, wrap(getattr(self, "net" + name)))

    def networks(self) -> Iterable[tuple[str, nn.Module]]:
        for name in self.model_names:
            yield name, getattr(self, "net" + name)

    def setup(self, opt) -> None:
        """Build networks, then load weights (testing or --continue_train) and create schedulers;
        with --continue_train also restore optimizer/scheduler/RNG state when the file exists."""
        self.build()
        if self.isTrain:
            self.schedulers = [networks.get_scheduler(optimizer, opt) for optimizer in self.optimizers]
        if not self.isTrain or opt.continue_train:
            prefix = checkpoint_prefix(opt)
            self.load_networks(prefix)
            if self.isTrain:
                self.resume_state = self.load_train_state(prefix)

    def eval(self) -> None:
        """Eval mode for every network (BatchNorm running stats, no dropout): test.py --eval."""
        for _, net in self.networks():
            net.eval()

    def test(self) -> None:
        with torch.no_grad(), self.precision.autocast():
            self.forward()
            self.compute_visuals()

    def compute_visuals(self) -> None:
        """Hook for extra visuals; nothing by default."""

    def get_image_paths(self) -> list[str]:
        return self.image_paths

    def update_learning_rate(self) -> tuple[float, float]:
        """Step every scheduler once (called at the end of each epoch); (old, new) learning rate
        of the first optimizer, which the engine prints."""
        old_lr = self.optimizers[0].param_groups[0]["lr"]
        for scheduler in self.schedulers:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(self.metric)
            else:
                scheduler.step()
        return old_lr, self.optimizers[0].param_groups[0]["lr"]

    # ------------------------------------------------------------------ losses
    def get_current_losses(self) -> "OrderedDict[str, float]":
        """The losses of the last step as floats (the tensors are read back in one device sync)."""
        values = [getattr(self, "loss_" + name) for name in self.loss_names]
        tensors = [v.detach().reshape(()).double() for v in values if isinstance(v, torch.Tensor)]  # exact
        read = iter(torch.stack(tensors).tolist() if tensors else [])
        return OrderedDict((name, next(read) if isinstance(v, torch.Tensor) else float(v))
                           for name, v in zip(self.loss_names, values))

    def track_non_finite_losses(self, iteration: int) -> None:
        """Note this step's losses for the non-finite check without reading them back (LossWatch)."""
        self.loss_watch.track(self.loss_names, [getattr(self, "loss_" + n, None) for n in self.loss_names], iteration)

    def first_non_finite_losses(self) -> tuple[int, dict[str, float]] | None:
        """(iteration, its non-finite losses) of the first tracked step that diverged, or None (one sync)."""
        return self.loss_watch.first()

    def non_finite_losses(self) -> list[str]:
        """Names of losses that are NaN or infinite (one device sync for all of them)."""
        values = [getattr(self, "loss_" + name, None) for name in self.loss_names]
        tensors = [v.detach().reshape(()).float() for v in values if isinstance(v, torch.Tensor)]
        if tensors and bool(torch.isfinite(torch.stack(tensors)).all()):
            return []
        return [name for name, value in zip(self.loss_names, values)
                if not torch.isfinite(torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value)).all()]

    # ------------------------------------------------------------------ input checks
    def read_pair(self, input: dict, source_name: str, target_name: str):
        """(source, target, paths, target_mask) of a paired batch, on the model's device and checked.

        --direction picks the side: with BtoA the source is data['B'] (the input panels) and the
        target data['A']. target_mask marks target pixels with data (FITS cubes), else None."""
        a_to_b = self.opt.direction == "AtoB"
        source = input["A" if a_to_b else "B"].to(self.device)
        target = input["B" if a_to_b else "A"].to(self.device)
        self.check_input(source, self.opt.input_nc, source_name)
        self.check_input(target, self.opt.output_nc, target_name)
        mask = input.get("B_mask" if a_to_b else "A_mask")
        return source, target, input["A_paths" if a_to_b else "B_paths"], None if mask is None else mask.to(self.device)

    def check_input(self, tensor: torch.Tensor, expected_nc: int, what: str) -> None:
        """Catch data/model disagreements with a clear message instead of a conv shape error."""
        if tensor.dim() != 4:
            raise UserError(f"{what}: expected a batch of images (N, C, H, W), got shape {tuple(tensor.shape)}")
        if tensor.shape[1] != expected_nc:
            raise UserError(f"{what} has {tensor.shape[1]} channels but the network expects {expected_nc}; "
                            f"check --input_nc/--output_nc against the data's panels (and --direction)")
        multiple = networks.input_size_multiple(self.opt.netG)
        height, width = tensor.shape[-2:]
        if height % multiple or width % multiple:
            raise UserError(f"--netG {self.opt.netG} needs image sides that are multiples of {multiple}, "
                            f"got {height}x{width}; change --crop_size/--preprocess or the generator")

    # ------------------------------------------------------------------ visuals
    def set_visual_panels(self, channels: tuple[Sequence[int], Sequence[int]] | None,
                          indices: tuple[Sequence[int], Sequence[int]] | None = None) -> None:
        """Tell the model how stacked channels map to file panels (A side, B side), so every
        input panel becomes its own picture. indices default to A=[0], B=[1..n]."""
        if channels is None:
            self._panel_channels = self._panel_indices = None
            return
        a_side, b_side = list(channels[0]), list(channels[1])
        self._panel_channels = (a_side, b_side)
        if indices is None:
            indices = (list(range(len(a_side))), list(range(len(a_side), len(a_side) + len(b_side))))
        self._panel_indices = (list(indices[0]), list(indices[1]))

    def visual_side(self, name: str) -> int:
        """0 = A side (panel 0), 1 = B side. The generator input is B with BtoA, A with AtoB."""
        input_side = 1 if getattr(self.opt, "direction", "AtoB") == "BtoA" else 0
        return input_side if name in self.input_visual_names else 1 - input_side

    def split_visual(self, name: str, tensor: torch.Tensor) -> list[VisualPart]:
        """One part per file panel of a channel-stacked visual; a single-panel visual stays whole."""
        if self._panel_channels is None or not isinstance(tensor, torch.Tensor) or tensor.dim() < 3:
            return [VisualPart(name, name, None, tensor)]
        side = self.visual_side(name)
        sizes, indices = self._panel_channels[side], self._panel_indices[side]
        if sum(sizes) != tensor.shape[-3]:
            return [VisualPart(name, name, None, tensor)]
        if len(sizes) == 1:
            return [VisualPart(name, name, indices[0], tensor)]
        return [VisualPart(f"{name}_p{index}", name, index, part)
                for index, part in zip(indices, split_channels(tensor, sizes))]

    def visual_parts(self) -> list[VisualPart]:
        """The current visuals, one part per picture (what get_current_visuals labels)."""
        return [part for name in self.visual_names if isinstance(name, str) and hasattr(self, name)
                for part in self.split_visual(name, getattr(self, name))]

    def get_current_visuals(self) -> "OrderedDict[str, torch.Tensor]":
        return OrderedDict((part.label, part.tensor) for part in self.visual_parts())

    def generated_output(self) -> torch.Tensor | None:
        """The generator's output of the last forward (the `generated` result visual), or None."""
        name = self.result_visuals.get("generated")
        return getattr(self, name, None) if name else None

    # ------------------------------------------------------------------ checkpoints
    def save_networks(self, prefix: str | int, group: FileGroup | None = None) -> None:
        """`{save_dir}/{prefix}_net_{name}.pth`, upstream format, atomic (all or none with the
        other files of `group`, which the engine uses for a checkpoint's whole set)."""
        self._saved_sha256[str(prefix)] = {
            name: checkpoint.save_network(net, checkpoint.network_path(self.save_dir, prefix, name), group)
            for name, net in self.networks()}

    def load_networks(self, prefix: str | int) -> None:
        hint = f"--netG {self.opt.netG} --netD {getattr(self.opt, 'netD', '?')} --norm {self.opt.norm} " \
               f"--input_nc {self.opt.input_nc} --output_nc {self.opt.output_nc} --ngf {self.opt.ngf}"
        for name, net in self.networks():
            path = checkpoint.network_path(self.save_dir, prefix, name)
            print(f"loading the model from {path}")
            checkpoint.load_network(net, path, options_hint=hint)

    def save_train_state(self, prefix: str | int, progress: dict[str, Any],
                         rng_ranks: list[dict[str, Any]] | None = None, group: FileGroup | None = None) -> None:
        """Call right after save_networks(prefix) (with the same `group`): the state records those
        files' hashes. `rng_ranks`: every rank's random streams (the engine gathers them under
        DDP); None = this process's."""
        checkpoint.save_train_state(checkpoint.train_state_path(self.save_dir, prefix), self.optimizers,
                                    self.schedulers, progress, self._saved_sha256.get(str(prefix)),
                                    extra={"grad_scaler": self.precision.state_dict()}, rng_ranks=rng_ranks,
                                    schedule=schedule.schedule_of(self.opt), group=group)

    def load_train_state(self, prefix: str | int) -> dict[str, Any] | None:
        """Restore optimizers/schedulers; None (weights-only resume, as upstream) without the file
        or when the network files are not the ones saved with it (a save killed half-way)."""
        path = checkpoint.train_state_path(self.save_dir, prefix)
        if not path.is_file():
            print(f"note: {path} not found; resuming from the weights only (fresh optimizers, "
                  f"--epoch_count {self.opt.epoch_count}), as upstream does")
            return None
        state = checkpoint.read_train_state(path)
        files = {name: checkpoint.network_path(self.save_dir, prefix, name) for name in self.model_names}
        changed = checkpoint.changed_networks(state, files)
        if changed:
            print(f"warning: {path} was saved with other network files than {', '.join(str(files[n]) for n in changed)} "
                  f"(a save was interrupted?); resuming from the weights only, --epoch_count {self.opt.epoch_count}")
            return None
        saved, wanted = schedule.saved_schedule(state), schedule.schedule_of(self.opt)
        changed = saved is not None and saved != wanted
        restored = checkpoint.apply_train_state(state, self.optimizers, self.schedulers, path,
                                                restore_schedulers=not changed)
        if changed:  # another --n_epochs/--n_epochs_decay/--lr/--lr_policy: the options' schedule, not the saved one
            epoch = schedule.resumed_epoch(restored["progress"])
            self.schedulers = schedule.rebuild_schedulers(self.optimizers, self.opt, epoch, schedule.steps_taken(state))
            print(f"note: the learning-rate schedule changed since the save ({schedule.describe_change(saved, wanted)}); "
                  f"rebuilt for these options: learning rate {self.optimizers[0].param_groups[0]['lr']:.7f} "
                  f"at epoch {epoch}")
        self.precision.load_state_dict(state.get("extra", {}).get("grad_scaler"))
        return restored

    def non_finite_weights(self) -> list[str]:
        """Parameters and buffers (BatchNorm statistics...) of every network, and the optimizers'
        state, holding a NaN or an infinity, named like 'G model.1.running_var'. Checked before a
        save, since finite losses do not prove finite weights."""
        tensors: dict[str, torch.Tensor] = {}
        for name, net in self.networks():
            for key, value in checkpoint.bare_module(net).state_dict().items():
                tensors[f"{name} {key}"] = value
        for index, optimizer in enumerate(self.optimizers):
            for param_index, (param, state) in enumerate(optimizer.state.items()):
                for key, value in state.items():
                    if isinstance(value, torch.Tensor):
                        tensors[f"optimizer {index} param {param_index} {key}"] = value
        return checkpoint.non_finite_entries(tensors)

    def print_networks(self, verbose: bool) -> None:
        print("---------- Networks initialized -------------")
        for name, net in self.networks():
            if verbose:
                print(net)
            count = sum(p.numel() for p in net.parameters())
            print(f"[Network {name}] Total number of parameters : {count / 1e6:.3f} M")
        print("-----------------------------------------------")

    @staticmethod
    def set_requires_grad(nets: nn.Module | Sequence[nn.Module | None], requires_grad: bool = False) -> None:
        """Freeze or unfreeze networks. A frozen DDP network (pix2pix's D during the G step) must
        not prepare a gradient reduction in its forward: none of its parameters get a gradient."""
        for net in nets if isinstance(nets, (list, tuple)) else [nets]:
            if net is not None:
                if isinstance(net, nn.parallel.DistributedDataParallel):
                    net.require_backward_grad_sync = requires_grad
                for param in net.parameters():
                    param.requires_grad = requires_grad
