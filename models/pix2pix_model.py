"""Pix2Pix: conditional GAN, G(A) -> B, judged by a PatchGAN on cat(input, output), plus L1."""
from __future__ import annotations

import torch

from models import networks
from models.base_model import BaseModel
from models.masked_loss import masked_l1


class Pix2PixModel(BaseModel):
    input_visual_names = ("real_A",)

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        """Upstream's pix2pix defaults: U-Net 256, batch norm, aligned data, vanilla GAN, no pool."""
        parser.set_defaults(norm="batch", netG="unet_256", dataset_mode="aligned")
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode="vanilla")
            parser.add_argument("--lambda_L1", type=float, default=100.0, help="weight for the L1 loss")
            parser.add_argument("--lambda_GAN", type=float, default=1.0,
                                help="weight of the adversarial loss in G's objective (0 = L1 only; D still trains, "
                                     "so its losses stay comparable; --model regression skips D altogether)")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = ["G_GAN", "G_L1", "D_real", "D_fake"]
        if self.isTrain and opt.gan_mode == "wgangp":
            self.loss_names.append("D_GP")  # upstream never wired the penalty in; we do
        self.visual_names = ["real_A", "fake_B", "real_B"]
        self.model_names = ["G", "D"] if self.isTrain else ["G"]

    def build(self) -> None:
        opt = self.opt
        self.netG = self.place(self.build_generator())
        if not self.isTrain:
            return
        self.netD = self.place(networks.define_D(opt.input_nc + opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D,
                                                 opt.norm, opt.init_type, opt.init_gain))
        self.criterionGAN = networks.GANLoss(opt.gan_mode).to(self.device)
        self.criterionL1 = torch.nn.L1Loss()
        self.optimizer_G = networks.make_adam(self.netG.parameters(), opt.lr, opt.beta1, self.device)
        self.optimizer_D = networks.make_adam(self.netD.parameters(), opt.lr, opt.beta1, self.device)
        self.optimizers = [self.optimizer_G, self.optimizer_D]

    def set_input(self, input: dict) -> None:
        """With BtoA the generator reads data['B'] (the input panels) and targets data['A']."""
        self.real_A, self.real_B, self.image_paths, self.target_mask = self.read_pair(
            input, "the generator input (real_A)", "the target (real_B)")

    def forward(self) -> None:
        self.fake_B = self.netG(self.real_A)

    def backward_D(self) -> None:
        with self.precision.autocast():  # --amp; the gradient penalty below stays in fp32
            fake_AB = torch.cat((self.real_A, self.fake_B), 1)
            self.loss_D_fake = self.criterionGAN(self.netD(fake_AB.detach()), False)
            real_AB = torch.cat((self.real_A, self.real_B), 1)
            self.loss_D_real = self.criterionGAN(self.netD(real_AB), True)
            self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5
        if self.opt.gan_mode == "wgangp":
            self.loss_D_GP, _ = networks.cal_gradient_penalty(self.netD, real_AB, fake_AB.detach(), self.device)
            self.loss_D = self.loss_D + self.loss_D_GP
        self.precision.backward(self.loss_D)

    def backward_G(self) -> None:
        with self.precision.autocast():
            fake_AB = torch.cat((self.real_A, self.fake_B), 1)
            self.loss_G_GAN = self.criterionGAN(self.netD(fake_AB), True) * self.opt.lambda_GAN
            if getattr(self, "target_mask", None) is None:
                self.loss_G_L1 = self.criterionL1(self.fake_B, self.real_B) * self.opt.lambda_L1
            else:  # pixels without data (NaN in a FITS cube) do not count
                self.loss_G_L1 = masked_l1(self.fake_B, self.real_B, self.target_mask) * self.opt.lambda_L1
            self.loss_G = self.loss_G_GAN + self.loss_G_L1
        self.precision.backward(self.loss_G)

    def optimize_parameters(self) -> None:
        """Upstream order: G forward, D step (D trainable), then G step (D frozen)."""
        with self.precision.autocast():
            self.forward()
        self.set_requires_grad(self.netD, True)
        self.optimizer_D.zero_grad()
        self.backward_D()
        self.precision.step(self.optimizer_D)
        self.set_requires_grad(self.netD, False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.precision.step(self.optimizer_G)
        self.precision.end_step()
