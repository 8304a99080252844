"""Experiments: plans, stages and runs of the band ablations (scripts/run_ablation.py). They run the
builder, train.py and test.py as child processes and hand the results to evaluation for scores and
reports; nothing below imports them."""
