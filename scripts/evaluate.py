"""Score a test.py results folder: L1, PSNR, SSIM, CC, point-source photometry, and two no-model references.

    python scripts/evaluate.py --results_dir results/NAME/test_latest

Prints a table and writes metrics.json in the results folder. The references: the baseline (the first
input band, resampled) and the flat image (one constant level per channel: by default the median of the
evaluated real targets, which slightly favours it; `--flat_level V` sets it, e.g. the training targets'
median). These are scored on the 8-bit pictures.

The results of a FITS model (--dataset_mode fits_aligned) are also scored in the band's own unit
(metrics.json's `physical` block): the generated FITS against the real cube plane, with three
references fitted on the training cubes: the flat image (training median), the best-correlated input
band scaled by the training medians, and a least-squares linear fit of the target on the input bands.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation.evaluation import evaluate_folder, flat_description, format_table, write_metrics  # noqa: E402
from evaluation.photometry import PhotometryConfig  # noqa: E402
from evaluation.physical_eval import evaluate_physical, physical_skipped  # noqa: E402
from evaluation.results import load_results  # noqa: E402
from util.cli import ArgumentParser  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = PhotometryConfig()
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results_dir", required=True,
                        help="test.py output folder (holds images/X_fake_B.png and images/X_real_B.png)")
    parser.add_argument("--baseline_panel", type=int, default=None,
                        help="input panel used as the no-model baseline (default: the first one present)")
    parser.add_argument("--flat_level", default="auto",
                        help="level of the flat-image reference in [0, 1] (31/255 = 0.1216), or auto = the median "
                             "of the evaluated real targets' pixels per channel (slightly favours the reference)")
    parser.add_argument("--reference_band", type=int, default=None,
                        help="FITS results: the input plane of the 'input resampled' reference (default: the input "
                             "band that correlates best with the target on the training cubes)")
    parser.add_argument("--k_sigma", type=float, default=defaults.k_sigma, help="detection threshold in noise sigmas")
    parser.add_argument("--aperture", type=float, default=defaults.aperture_radius, help="aperture radius, px")
    parser.add_argument("--match_radius", type=float, default=defaults.match_radius,
                        help="a generated source within this many px of a real one is not false")
    return parser.parse_args(argv)


def parse_flat_level(text: str) -> float | None:
    """'auto' -> None (median of the evaluated targets); otherwise a level in [0, 1]."""
    if text == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise UserError(f"--flat_level must be auto or a number in [0, 1], got {text!r}") from None


def strip_rows(scores: dict) -> dict:
    """Headline figures only: per-image rows and star lists stay out of the physical block."""
    return {key: value for key, value in scores.items() if key not in ("images", "star_fluxes", "deterministic")}


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.k_sigma <= 0 or args.aperture <= 0 or args.match_radius < 0:
        raise UserError("--k_sigma and --aperture must be positive and --match_radius not negative")
    cfg = PhotometryConfig(k_sigma=args.k_sigma, aperture_radius=args.aperture, match_radius=args.match_radius)
    result = evaluate_folder(args.results_dir, baseline_panel=args.baseline_panel, cfg=cfg,
                             flat_level=parse_flat_level(args.flat_level))
    rows = [(f"model ({result['n_images']} images)", result)]
    if "baseline" in result:
        rows.append((f"baseline ({result['baseline']['input']})", result["baseline"]))
    rows.append((f"flat image ({flat_description(result['flat'])})", result["flat"]))
    print(format_table(rows))
    run = load_results(args.results_dir).run
    skipped = physical_skipped(args.results_dir, run)
    if skipped:
        print(f"note: {skipped}", file=sys.stderr)
        result["physical"] = {"skipped": skipped}
    if run.kind == "planes" and len(run.target) == 1:
        physical = evaluate_physical(args.results_dir, args.reference_band)
        for note in physical["notes"]:  # the FITS files disagree with an edited manifest: they are used
            print(f"note: {note}", file=sys.stderr)
        result["physical"] = {**physical, "model": strip_rows(physical["model"]),
                              "references": [strip_rows(ref) for ref in physical["references"]]}
        unit = f" ({physical['unit']})" if physical["unit"] else ""
        print(f"\nin the band's unit{unit}:")
        print(format_table([("model", physical["model"])] + [(ref["label"], ref) for ref in physical["references"]]))
    print(f"wrote {write_metrics(result, args.results_dir)}")
    return result


if __name__ == "__main__":
    main()
