"""--name stays inside --checkpoints_dir; the refusal's example is a usable name."""
import pytest

from options.base_options import check_run_name
from util.errors import UserError


@pytest.mark.parametrize("name, example", [("../../esc_train", "'esc_train'"), ("..", "'my_run'"),
                                           ("a/..", "'my_run'"), (".", "'my_run'"), ("/abs/run", "'run'")])
def test_a_name_outside_the_folder_is_refused_with_a_usable_example(name, example):
    """Independent check of issue 19: `--name ..` was refused with the hint 'give a plain name such as '..''."""
    with pytest.raises(UserError, match=f"a plain name such as {example}"):
        check_run_name(name)


def test_plain_names_and_sub_folders_pass():
    for name in ("run", "group/run", "bands_1-2"):
        check_run_name(name)
