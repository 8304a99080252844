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
    #: what test.py's results manifest calls the generator input, its output and the real target
    result_visuals = {"input": "data_A", "generated": "output", "target": "data_B"}

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
        self.netG = self.place(self.build_generator())  # --netG, --output_head (and --prior for FITS cubes)
        if self.isTrain:
            self.criterionLoss = torch.nn.L1Loss()
            self.optimizer = networks.make_adam(self.netG.parameters(), opt.lr, opt.beta1, self.device)
            self.optimizers = [self.optimizer]  # each gets an LR scheduler and is saved for resume

    def set_input(self, input: dict) -> None:
        """(4) Unpack a batch from the data loader; --direction says which side is the input."""
        self.data_A, self.data_B, self.image_paths, _ = self.read_pair(
            input, "the generator input (data_A)", "the target (data_B)")

    def forward(self) -> None:
        self.output = self.netG(self.data_A)

    def backward(self) -> None:
        """The loss under autocast (--amp), its gradient through self.precision (fp16 loss scaling)."""
        with self.precision.autocast():
            self.loss_G = self.criterionLoss(self.output, self.data_B) * self.opt.lambda_regression
        self.precision.backward(self.loss_G)

    def optimize_parameters(self) -> None:
        """One training step in the skeleton every model follows (pix2pix runs it for D, then G):
        forward under autocast; per optimizer zero_grad, backward, precision.step (which skips a
        step whose fp16 gradients overflowed); precision.end_step() once at the end. Calling
        optimizer.step() or loss.backward() directly would silently ignore --amp."""
        with self.precision.autocast():
            self.forward()
        self.optimizer.zero_grad()
        self.backward()
        self.precision.step(self.optimizer)
        self.precision.end_step()
