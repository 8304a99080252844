"""A starting point for a new model: copy this file to models/<name>_model.py, rename the class
to <Name>Model (the registry matches `--model <name>` to it, ignoring case and underscores), and
fill in the four marked places. As it stands it is a working model: one generator trained with
an L1 regression loss (x --lambda_regression) from A to B on aligned data.

    python train.py --dataroot DATA --name my_try --model template --netG unet_64 --crop_size 64
"""
from __future__ import annotations

import torch

from models import networks
from models.base_model import BaseModel


class TemplateModel(BaseModel):
    #: names of visuals on the generator-input side (split per panel for multi-band inputs)
    input_visual_names = ("data_A",)

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        """(1) Options of this model and new defaults for existing ones (second parsing pass)."""
        parser.set_defaults(dataset_mode="aligned")
        if is_train:
            parser.add_argument("--lambda_regression", type=float, default=1.0, help="weight for the regression loss")
        return parser

    def __init__(self, opt):
        """(2) Names only, no networks yet: losses logged as loss_<name>, visuals, networks as net<name>."""
        super().__init__(opt)
        self.loss_names = ["G"]
        self.visual_names = ["data_A", "data_B", "output"]
        self.model_names = ["G"]  # saved as {epoch}_net_G.pth

    def build(self) -> None:
        """(3) Networks, criteria and optimizers; setup() calls this, then loads weights if asked."""
        opt = self.opt
        self.netG = self.place(networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm,
                                                 not opt.no_dropout, opt.init_type, opt.init_gain))
        if self.isTrain:
            self.criterionLoss = torch.nn.L1Loss()
            self.optimizer = torch.optim.Adam(self.netG.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
            self.optimizers = [self.optimizer]  # each gets an LR scheduler and is saved for resume

    def set_input(self, input: dict) -> None:
        """(4) Unpack a batch from the data loader; --direction says which side is the input."""
        self.data_A, self.data_B, self.image_paths, _ = self.read_pair(
            input, "the generator input (data_A)", "the target (data_B)")

    def forward(self) -> None:
        self.output = self.netG(self.data_A)

    def backward(self) -> None:
        self.loss_G = self.criterionLoss(self.output, self.data_B) * self.opt.lambda_regression
        self.loss_G.backward()

    def optimize_parameters(self) -> None:
        """One training step: forward, gradients, update."""
        self.forward()
        self.optimizer.zero_grad()
        self.backward()
        self.optimizer.step()
