"""Generate a missing band with a trained model: one position, or a sky region as a HiPS.

    python scripts/predict_sky.py --name NAME --surveys IN1 IN2 ... --region "RA DEC RADIUS" --out OUT
    python scripts/predict_sky.py --name NAME --surveys IN1 IN2 ... --target "NGC 6523" --out OUT
    python scripts/predict_sky.py --finish --name NAME --out OUT      # after --shard I/N jobs

docs/fill-a-gap.md has the full story (options, uncertainty, shards, figures).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from util.errors import exit_on_user_error  # noqa: E402


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    from prediction.options import parse_config

    config = parse_config(argv)
    if config.finish:
        from prediction.region import finish

        return finish(config)
    if config.region is not None:
        from prediction.region import run_region

        return run_region(config)
    from prediction.position import run_position

    return run_position(config)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
