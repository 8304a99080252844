"""CycleGAN: unpaired translation between domain A (the generator input) and domain B.

Two generators (G_A: A -> B, G_B: B -> A) and two PatchGAN discriminators (D_A judges domain B,
D_B judges domain A), as upstream. The cycle losses ||G_B(G_A(a)) - a|| and ||G_A(G_B(b)) - b||
replace pix2pix's paired L1, so surveys that never overlap on the sky can still be translated.
Domain A may hold several bands (input_nc 9 for three colour panels); domain B is output_nc.

Identity loss ||G_A(b) - b|| feeds a domain-B image to G_A, so it only exists when
input_nc == output_nc. --lambda_identity defaults to upstream's 0.5 when the counts agree and to
0 (with a note) when they differ; asking for it explicitly with different counts is a UserError.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import torch

from models import networks
from models.base_model import BaseModel
from models.checkpoint import atomic_save_torch, read_torch_file
from models.image_pool import ImagePool
from util.errors import UserError

DEFAULT_LAMBDA_IDENTITY = 0.5


def resolve_lambda_identity(requested: float | None, input_nc: int, output_nc: int) -> tuple[float, str]:
    """(lambda_identity to use, a note for the user or '') from --lambda_identity and the channel counts."""
    if requested is None:
        if input_nc == output_nc:
            return DEFAULT_LAMBDA_IDENTITY, ""
        return 0.0, (f"note: identity loss off (input_nc {input_nc} != output_nc {output_nc}; it feeds "
                     f"domain-B images to G_A, so it needs equal channel counts)")
    if requested < 0:
        raise UserError(f"--lambda_identity must be >= 0, got {requested}")
    if requested > 0 and input_nc != output_nc:
        raise UserError(f"--lambda_identity {requested} needs --input_nc == --output_nc (got {input_nc} and "
                        f"{output_nc}); pass --lambda_identity 0 for different channel counts")
    return float(requested), ""


def image_pools_path(save_dir: str | Path, prefix: str | int) -> Path:
    """Beside `{prefix}_train_state.pth`: the fake-image histories an exact resume needs."""
    return Path(save_dir) / f"{prefix}_image_pools.pth"


class CycleGANModel(BaseModel):
    #: visuals in domain A (the generator input side), split into panels like real_A
    input_visual_names = ("real_A", "fake_A", "rec_A", "idt_B")

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        """Upstream's defaults: no dropout in G; training adds the cycle and identity weights."""
        parser.set_defaults(no_dropout=True)
        if is_train:
            parser.add_argument("--lambda_A", type=float, default=10.0, help="weight for cycle loss (A -> B -> A)")
            parser.add_argument("--lambda_B", type=float, default=10.0, help="weight for cycle loss (B -> A -> B)")
            parser.add_argument("--lambda_identity", type=float, default=None,
                                help=f"weight of the identity loss, relative to lambda_A/B (default "
                                     f"{DEFAULT_LAMBDA_IDENTITY}; 0 when input_nc != output_nc, where it cannot apply)")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        if self.isTrain:
            opt.lambda_identity, note = resolve_lambda_identity(opt.lambda_identity, opt.input_nc, opt.output_nc)
            if note:
                print(note)
        self.loss_names = ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"]
        visual_names_A = ["real_A", "fake_B", "rec_A"]
        visual_names_B = ["real_B", "fake_A", "rec_B"]
        if self.isTrain and opt.lambda_identity > 0.0:
            visual_names_A.append("idt_B")
            visual_names_B.append("idt_A")
        self.visual_names = visual_names_A + visual_names_B
        self.model_names = ["G_A", "G_B", "D_A", "D_B"] if self.isTrain else ["G_A", "G_B"]

    def build(self) -> None:
        opt = self.opt
        self.netG_A = self.place(self.build_generator())
        self.netG_B = self.place(self.build_generator(opt.output_nc, opt.input_nc))
        if not self.isTrain:
            return
        self.netD_A = self.place(networks.define_D(opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.norm,
                                                   opt.init_type, opt.init_gain))
        self.netD_B = self.place(networks.define_D(opt.input_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.norm,
                                                   opt.init_type, opt.init_gain))
        if opt.pool_size < 0:
            raise UserError(f"--pool_size must be >= 0, got {opt.pool_size}")
        self.fake_A_pool = ImagePool(opt.pool_size)
        self.fake_B_pool = ImagePool(opt.pool_size)
        self.criterionGAN = networks.GANLoss(opt.gan_mode).to(self.device)
        self.criterionCycle = torch.nn.L1Loss()
        self.criterionIdt = torch.nn.L1Loss()
        self.optimizer_G = networks.make_adam(itertools.chain(self.netG_A.parameters(), self.netG_B.parameters()),
                                              opt.lr, opt.beta1, self.device)
        self.optimizer_D = networks.make_adam(itertools.chain(self.netD_A.parameters(), self.netD_B.parameters()),
                                              opt.lr, opt.beta1, self.device)
        self.optimizers = [self.optimizer_G, self.optimizer_D]

    def set_input(self, input: dict) -> None:
        """With BtoA the roles of the two folders swap: real_A comes from data['B']."""
        self.real_A, self.real_B, self.image_paths, _ = self.read_pair(
            input, "domain A (real_A, the G_A input)", "domain B (real_B, the G_A output side)")

    def forward(self) -> None:
        self.fake_B = self.netG_A(self.real_A)  # G_A(A)
        self.rec_A = self.netG_B(self.fake_B)   # G_B(G_A(A))
        self.fake_A = self.netG_B(self.real_B)  # G_B(B)
        self.rec_B = self.netG_A(self.fake_A)   # G_A(G_B(B))

    # ------------------------------------------------------------------ losses
    def backward_D_basic(self, netD, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """0.5 * (GAN(D(real), real) + GAN(D(fake), fake)); backward; returns the loss."""
        with self.precision.autocast():  # --amp; the gradient penalty below stays in fp32
            loss_D_real = self.criterionGAN(netD(real), True)
            loss_D_fake = self.criterionGAN(netD(fake.detach()), False)
            loss_D = (loss_D_real + loss_D_fake) * 0.5
        if self.opt.gan_mode == "wgangp":
            penalty, _ = networks.cal_gradient_penalty(netD, real, fake.detach(), self.device)
            loss_D = loss_D + penalty
        self.precision.backward(loss_D)
        return loss_D

    def backward_D_A(self) -> None:
        fake_B = self.fake_B_pool.query(self.fake_B)
        self.loss_D_A = self.backward_D_basic(self.netD_A, self.real_B, fake_B)

    def backward_D_B(self) -> None:
        fake_A = self.fake_A_pool.query(self.fake_A)
        self.loss_D_B = self.backward_D_basic(self.netD_B, self.real_A, fake_A)

    def backward_G(self) -> None:
        lambda_idt, lambda_A, lambda_B = self.opt.lambda_identity, self.opt.lambda_A, self.opt.lambda_B
        with self.precision.autocast():
            if lambda_idt > 0:
                self.idt_A = self.netG_A(self.real_B)  # G_A should leave a domain-B image unchanged
                self.loss_idt_A = self.criterionIdt(self.idt_A, self.real_B) * lambda_B * lambda_idt
                self.idt_B = self.netG_B(self.real_A)
                self.loss_idt_B = self.criterionIdt(self.idt_B, self.real_A) * lambda_A * lambda_idt
            else:
                self.loss_idt_A = self.loss_idt_B = 0.0
            self.loss_G_A = self.criterionGAN(self.netD_A(self.fake_B), True)
            self.loss_G_B = self.criterionGAN(self.netD_B(self.fake_A), True)
            self.loss_cycle_A = self.criterionCycle(self.rec_A, self.real_A) * lambda_A
            self.loss_cycle_B = self.criterionCycle(self.rec_B, self.real_B) * lambda_B
            self.loss_G = (self.loss_G_A + self.loss_G_B + self.loss_cycle_A + self.loss_cycle_B
                           + self.loss_idt_A + self.loss_idt_B)
        self.precision.backward(self.loss_G)

    def optimize_parameters(self) -> None:
        """Upstream order: forward, G step with both Ds frozen, then the D step from the pools."""
        with self.precision.autocast():
            self.forward()
        self.set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.precision.step(self.optimizer_G)
        self.set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad()
        self.backward_D_A()
        self.backward_D_B()
        self.precision.step(self.optimizer_D)
        self.precision.end_step()

    # ------------------------------------------------------------------ exact resume
    def save_train_state(self, prefix: str | int, progress: dict[str, Any],
                         rng_ranks: list[dict[str, Any]] | None = None, group=None) -> None:
        """Also keep the image pools: without them a resumed run's D sees a different history.
        They carry the iteration count, so pools from another save (a kill between the two
        writes) are recognised and dropped instead of silently mixed in."""
        pools = {"total_iters": int(progress["total_iters"]),
                 "fake_A_pool": self.fake_A_pool.state_dict(), "fake_B_pool": self.fake_B_pool.state_dict()}
        atomic_save_torch(pools, image_pools_path(self.save_dir, prefix), group)
        super().save_train_state(prefix, progress, rng_ranks, group)

    def load_train_state(self, prefix: str | int) -> dict[str, Any] | None:
        state = super().load_train_state(prefix)
        path = image_pools_path(self.save_dir, prefix)
        if state is None or not path.is_file():
            return state  # weights-only resume: empty pools, as upstream
        pools = read_torch_file(path)
        if not isinstance(pools, dict) or pools.get("total_iters") != state["progress"]["total_iters"]:
            print(f"note: {path} is not from the same save as the training state; starting with empty image pools")
            return state
        try:
            self.fake_A_pool.load_state_dict(pools["fake_A_pool"], self.device)
            self.fake_B_pool.load_state_dict(pools["fake_B_pool"], self.device)
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{path} does not fit these options (other --pool_size?): {err}") from None
        return state
