"""Options: upstream names and defaults, model/dataset passes, 2022 flags, the option listing."""
import pytest
import torch

from options.record import options_text
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.cli import CommandLineError
from util.errors import UserError

BASE_DEFAULTS = dict(name="experiment_name", checkpoints_dir="./checkpoints", input_nc=3, output_nc=3, ngf=64,
                     ndf=64, netD="basic", netG="resnet_9blocks", n_layers_D=3, norm="instance", init_type="normal",
                     init_gain=0.02, no_dropout=False, dataset_mode="unaligned", direction="AtoB",
                     serial_batches=False, num_threads=4, batch_size=1, load_size=286, crop_size=256,
                     max_dataset_size=float("inf"), preprocess="resize_and_crop", no_flip=False, display_winsize=256,
                     epoch="latest", load_iter=0, verbose=False, suffix="", use_wandb=False,
                     wandb_project_name="CycleGAN-and-pix2pix", display_id=0, display_server="http://localhost",
                     display_env="main", display_port=8097, display_ncols=4)
TRAIN_DEFAULTS = dict(display_freq=400, update_html_freq=1000, print_freq=100, no_html=False, save_latest_freq=5000,
                      save_epoch_freq=5, save_by_iter=False, continue_train=False, epoch_count=1, phase="train",
                      n_epochs=100, n_epochs_decay=100, beta1=0.5, lr=0.0002, gan_mode="lsgan", pool_size=50,
                      lr_policy="linear", lr_decay_iters=50)
TEST_DEFAULTS = dict(results_dir="./results/", aspect_ratio=1.0, phase="test", eval=False, num_test=50)


def defaults_of(options):
    options.gather_options(["--dataroot", "x", "--model", "pix2pix"])
    return {action.dest: action.default for action in options._new_parser()._actions}


def test_first_pass_defaults_are_upstreams():
    train = defaults_of(TrainOptions())
    assert {k: train[k] for k in BASE_DEFAULTS} == BASE_DEFAULTS
    assert {k: train[k] for k in TRAIN_DEFAULTS} == TRAIN_DEFAULTS
    assert train["model"] == "cycle_gan"
    test = defaults_of(TestOptions())
    assert {k: test[k] for k in TEST_DEFAULTS} == TEST_DEFAULTS
    assert test["model"] == "test"


def test_pix2pix_changes_its_defaults_and_adds_lambda_l1(tmp_path):
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "pix2pix"])
    assert (opt.norm, opt.netG, opt.dataset_mode, opt.pool_size, opt.gan_mode) == \
        ("batch", "unet_256", "aligned", 0, "vanilla")
    assert opt.lambda_L1 == 100.0
    assert (opt.n_panels, opt.input_panels) == (0, "")  # third pass: the aligned dataset's options
    explicit = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "pix2pix", "--norm", "instance"])
    assert explicit.norm == "instance"


def test_2022_flags_are_accepted_and_gpu_ids_minus_one_means_cpu(tmp_path):
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "pix2pix", "--gpu_ids", "-1",
                                 "--display_id", "0", "--display_port", "8098", "--display_server", "http://h",
                                 "--display_env", "e", "--display_ncols", "3"])
    assert opt.gpu_ids == []
    assert (opt.display_id, opt.display_port, opt.display_ncols) == (0, 8098, 3)
    default = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "pix2pix"])
    assert default.gpu_ids == [0]
    assert not hasattr(default, "device")  # the engine picks the device when the run starts


def test_parsing_changes_nothing_in_the_process_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    benchmark, deterministic = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    torch.backends.cudnn.benchmark = not benchmark  # a value parsing would have to overwrite
    try:
        for options in (TrainOptions, TestOptions):
            options().parse(["--dataroot", str(tmp_path), "--model", "pix2pix", "--name", "exp",
                             "--checkpoints_dir", str(tmp_path / "ck"), "--deterministic"])
        assert torch.backends.cudnn.benchmark is (not benchmark)
        assert torch.backends.cudnn.deterministic is deterministic
        assert not torch.are_deterministic_algorithms_enabled()
        assert list(tmp_path.iterdir()) == []  # no checkpoints/NAME/train_opt.txt at parse time
    finally:
        torch.backends.cudnn.benchmark = benchmark


def test_bad_command_lines_are_one_line_user_errors(tmp_path):
    base = ["--dataroot", str(tmp_path), "--model", "pix2pix"]
    with pytest.raises(CommandLineError, match="unrecognized arguments: --bogus"):
        TrainOptions().parse(base + ["--bogus"])
    with pytest.raises(CommandLineError, match="invalid choice"):
        TrainOptions().parse(base + ["--netG", "unet_512"])
    with pytest.raises(CommandLineError, match="dataroot"):
        TrainOptions().parse(["--model", "pix2pix"])
    with pytest.raises(UserError, match=r"unknown --model 'no_such' \(available: .*pix2pix.*, test"):
        TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "no_such"])
    with pytest.raises(UserError, match="test.py only"):
        TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "test"])
    with pytest.raises(UserError, match="gpu_ids"):
        TrainOptions().parse(base + ["--gpu_ids", "first"])
    with pytest.raises(CommandLineError, match="load_iter"):
        TrainOptions().parse(base + ["--load_iter", "five"])


def test_suffix_is_formatted_with_the_options(tmp_path):
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "pix2pix", "--name", "run",
                                 "--suffix", "{netG}_in{input_nc}", "--input_nc", "9"])
    assert opt.name == "run_unet_256_in9"
    with pytest.raises(UserError, match="suffix"):
        TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "pix2pix", "--suffix", "{nope}"])


def test_help_lists_the_models_and_datasets_options(capsys):
    with pytest.raises(SystemExit) as done:
        TrainOptions().parse(["--model", "pix2pix", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "--lambda_L1" in text and "--input_panels" in text and "--gpu_ids" in text
    with pytest.raises(SystemExit):
        TestOptions().parse(["-h"])  # the default --model test
    assert "--model_suffix" in capsys.readouterr().out


def test_train_options_listing_marks_changed_values(tmp_path):
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "pix2pix", "--checkpoints_dir",
                                str(tmp_path / "ck"), "--name", "exp", "--lr", "0.001", "--gpu_ids", "-1"])
    saved = options_text(opt)
    assert saved.startswith("----------------- Options ---------------")
    lines = {line.split(":")[0].strip(): line for line in saved.splitlines() if ":" in line}
    assert lines["lr"].rstrip().endswith("[default: 0.0002]")
    assert "[default" not in lines["n_epochs"]
    assert lines["gpu_ids"].split()[1] == "-1"
    assert opt.lr == 0.001


def test_test_opt_txt_records_the_values_test_py_runs_with(tmp_path):
    opt = TestOptions().parse(["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path / "ck"),
                               "--num_threads", "8", "--batch_size", "4", "--crop_size", "64", "--gpu_ids", "-1"])
    assert (opt.num_threads, opt.batch_size, opt.serial_batches, opt.no_flip, opt.display_id) == (0, 1, True, True, -1)
    assert opt.load_size == 64  # follows --crop_size when not given, so resize + crop is a no-op
    saved = options_text(opt)
    lines = {line.split(":")[0].strip(): (line.split(":", 1)[1].split() or [""])[0]
             for line in saved.splitlines() if ":" in line}
    assert (lines["num_threads"], lines["batch_size"], lines["serial_batches"], lines["no_flip"]) == \
        ("0", "1", "True", "True")
    assert lines["load_size"] == "64"
    assert not opt.isTrain and opt.model == "test" and opt.dataset_mode == "single"
