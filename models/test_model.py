"""Test-only model: one generator, loads `{epoch}_net_G{model_suffix}.pth`, no discriminator."""
from __future__ import annotations

from models.base_model import BaseModel
from util.errors import UserError


class TestModel(BaseModel):
    input_visual_names = ("real",)
    result_visuals = {"input": "real", "generated": "fake", "target": None}

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        if is_train:
            raise UserError("--model test is for test.py only; train with --model pix2pix or --model cycle_gan")
        parser.set_defaults(dataset_mode="single")
        parser.add_argument("--model_suffix", type=str, default="",
                            help="loads {epoch}_net_G{model_suffix}.pth, e.g. _A for a cycle_gan G_A")
        return parser

    def __init__(self, opt):
        if opt.isTrain:
            raise UserError("--model test is for test.py only; train with --model pix2pix or --model cycle_gan")
        super().__init__(opt)
        self.loss_names = []
        self.visual_names = ["real", "fake"]
        self.model_names = ["G" + opt.model_suffix]

    def build(self) -> None:
        net = self.place(self.build_generator())
        self.netG = net
        setattr(self, "net" + self.model_names[0], net)

    def visual_side(self, name: str) -> int:
        """The single dataset describes its item A (the generator input) on side 0."""
        return 0 if name == "real" else 1

    def set_input(self, input: dict) -> None:
        self.real = input["A"].to(self.device)
        self.image_paths = input["A_paths"]
        self.check_input(self.real, self.opt.input_nc, "the generator input")

    def forward(self) -> None:
        self.fake = self.netG(self.real)

    def optimize_parameters(self) -> None:
        raise UserError("--model test cannot be trained")
