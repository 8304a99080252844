"""Evaluation and reports: metrics, photometry, verdicts and the band-ablation report, read from
the results manifest that test.py writes (torch-free)."""
