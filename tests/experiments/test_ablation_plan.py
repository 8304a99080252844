"""The ablation plan: budgets, variant parsing, panel channels and the commands it builds."""
import numpy as np
import pytest
from PIL import Image

from experiments import ablation
from util.errors import UserError


def test_presets_are_consistent():
    for name in ablation.BUDGETS:
        budget = ablation.make_budget(name)
        assert budget.size % ablation.NETG_MULTIPLE[budget.netG] == 0


@pytest.mark.parametrize("overrides, words", [
    ({"size": 100}, "multiple of 64"), ({"crop_size": 128}, "larger than the images"),
    ({"netG": "unet_9"}, "unknown --netG"), ({"n_epochs": 0}, "at least 1"), ({"ngf": 0}, "--ngf"),
])
def test_bad_budget_overrides_are_user_errors(overrides, words):
    with pytest.raises(UserError, match=words):
        ablation.make_budget("tiny", **overrides)


def test_unknown_budget():
    with pytest.raises(UserError, match="unknown --budget"):
        ablation.make_budget("huge")


def test_parse_variants_orders_by_band_count_and_rejects_nonsense():
    assert ablation.parse_variants("1,2,3;1;1,2") == [(1,), (1, 2), (1, 2, 3)]
    for text in ("a", "0", "1,1", "1;;2"):
        with pytest.raises(UserError):
            ablation.parse_variants(text)


def test_panel_channel_counts_reads_grey_and_colour_panels(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 255, (16, 16, 1), dtype=np.uint8).repeat(3, axis=2)
    colour = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    (tmp_path / "train").mkdir()
    Image.fromarray(np.concatenate([grey, colour, grey, colour], axis=1)).save(tmp_path / "train" / "a.png")
    assert ablation.panel_channel_counts(tmp_path) == [1, 3, 1, 3]
    with pytest.raises(UserError, match="no images"):
        ablation.panel_channel_counts(tmp_path, phase="test")


def test_commands_share_model_options_and_match_channels(tmp_path):
    budget = ablation.make_budget("tiny")
    train = ablation.train_command("py", tmp_path, "bands_1-3", tmp_path / "ck", (1, 3), [1, 3, 1, 3], budget, 24)
    test = ablation.test_command("py", tmp_path, "bands_1-3", tmp_path / "ck", tmp_path / "res", (1, 3),
                                 [1, 3, 1, 3], budget)

    def option(command, name):
        return command[command.index(name) + 1]

    for command in (train, test):
        assert option(command, "--input_panels") == "1,3"
        assert option(command, "--panel_nc") == "3,3"
        assert option(command, "--input_nc") == "6" and option(command, "--output_nc") == "1"
        assert option(command, "--direction") == "BtoA" and option(command, "--netG") == "unet_64"
    assert "--eval" in test and option(test, "--crop_size") == str(budget.size)
    with pytest.raises(UserError, match="panel 4 does not exist"):
        ablation.model_args((4,), [1, 3, 1, 3], budget)


def test_log_and_display_frequencies_are_multiples_of_the_batch(tmp_path):
    budget = ablation.make_budget("small", batch_size=3)
    command = ablation.train_command("py", tmp_path, "b", tmp_path, (1,), [1, 3], budget, 301)
    for name in ("--print_freq", "--display_freq"):
        value = int(command[command.index(name) + 1])
        assert value > 0 and value % 3 == 0


def test_a_seed_reaches_the_training_command(tmp_path):
    budget = ablation.make_budget("tiny")
    seeded = ablation.train_command("py", tmp_path, "b", tmp_path, (1,), [1, 3], budget, 10, seed=7)
    assert seeded[seeded.index("--seed") + 1] == "7"
    assert "--seed" not in ablation.train_command("py", tmp_path, "b", tmp_path, (1,), [1, 3], budget, 10)


def test_labels_name_the_bands():
    names = {1: "GLIMPSE360", 2: "Planck-HFI143"}
    assert ablation.variant_label((1, 2), names) == "2 bands (GLIMPSE360 + Planck-HFI143)"
    assert ablation.variant_name((1, 2)) == "bands_1-2"
