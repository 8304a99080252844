"""Regression: the generator alone, trained with an L1 loss; no discriminator, no adversarial term.

For float data in physical units (`--dataset_mode fits_aligned`), where the value of every pixel is
the answer and an adversarial loss has nothing to add but stars the inputs do not support. Its
defaults are the recipe measured best on real fields (docs/ablation.md): a full-resolution
generator without normalisation layers or dropout, with a linear output head.

    python train.py --dataroot CUBES --name ks --model regression --input_planes 1,2 --input_nc 2 \\
        --prior linear_fit --crop_size 32

pix2pix with `--lambda_GAN 0` trains the same generator objective but still trains D every step;
the two are compared on the same seeds in the demo's report.
"""
from __future__ import annotations

from models import networks
from models.base_model import BaseModel
from models.masked_loss import masked_l1


class RegressionModel(BaseModel):
    input_visual_names = ("real_A",)

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        parser.set_defaults(dataset_mode="fits_aligned", netG="fullres_4blocks", ngf=32, norm="none",
                            output_head="linear", no_dropout=True)
        if is_train:
            parser.add_argument("--lambda_L1", type=float, default=1.0, help="weight of the L1 loss")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = ["G_L1"]
        self.visual_names = ["real_A", "fake_B", "real_B"]
        self.model_names = ["G"]

    def build(self) -> None:
        self.netG = self.place(self.build_generator())
        if self.isTrain:
            self.optimizer_G = networks.make_adam(self.netG.parameters(), self.opt.lr, self.opt.beta1, self.device)
            self.optimizers = [self.optimizer_G]

    def set_input(self, input: dict) -> None:
        """With BtoA (the FITS default) the generator reads data['B'] (the input bands) and targets data['A']."""
        self.real_A, self.real_B, self.image_paths, self.target_mask = self.read_pair(
            input, "the generator input (real_A)", "the target (real_B)")

    def forward(self) -> None:
        self.fake_B = self.netG(self.real_A)

    def backward_G(self) -> None:
        with self.precision.autocast():
            if self.target_mask is None:
                self.loss_G_L1 = (self.fake_B - self.real_B).abs().mean() * self.opt.lambda_L1
            else:  # pixels without data (NaN in a FITS cube) do not count
                self.loss_G_L1 = masked_l1(self.fake_B, self.real_B, self.target_mask) * self.opt.lambda_L1
        self.precision.backward(self.loss_G_L1)

    def optimize_parameters(self) -> None:
        with self.precision.autocast():
            self.forward()
        self.optimizer_G.zero_grad(set_to_none=True)
        self.backward_G()
        self.precision.step(self.optimizer_G)
        self.precision.end_step()
