"""run_ablation's hint when the dataset stage leaves a split empty: 'more samples' only when the samples are
the cause (issue 22: a 6' field was told to use more samples, while its sky split could not give test sky)."""
from pathlib import Path

from experiments.field_plan import empty_split_hint

LOG = Path("runs/x/logs/dataset.log")


def test_more_samples_only_when_the_quota_rounds_to_nothing():
    assert "more samples (--n_samples)" in empty_split_hint("test", 4, "0.8,0.1,0.1", LOG)  # 4 x 10% -> 0
    assert "samples" not in empty_split_hint("test", 40, "0.8,0.1,0.1", LOG)  # 4 asked, none placed
    placed_none = empty_split_hint("test", 40, "0.8,0.1,0.1", LOG)
    assert "none of the 4 asked" in placed_none and str(LOG) in placed_none and "--size" in placed_none
    assert empty_split_hint("test", 40, "1,0,0", LOG) == "--split 1,0,0 gives test no sky"
