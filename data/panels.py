"""Panel layout of multi-band aligned images: A|B|C|D..., panel 0 is the target band."""
from __future__ import annotations

from typing import Sequence

from util.errors import UserError


def parse_index_list(text: str, option: str) -> list[int]:
    """'1,3' -> [1, 3]; '' -> []."""
    if not text.strip():
        return []
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"{option} must be comma-separated integers, got {text!r}") from None


def panel_channels(opt, n_input_panels: int) -> tuple[list[int], list[int]]:
    """Channels of each panel on the A side (target, panel 0) and the B side (input panels).

    A pure function of the options so that datasets, models and visualizers agree without
    reading any image. With BtoA the B side feeds the generator (input_nc) and A is the
    output (output_nc); with AtoB the roles swap.
    """
    a_nc, b_nc = (opt.output_nc, opt.input_nc) if opt.direction == "BtoA" else (opt.input_nc, opt.output_nc)
    n_b = n_input_panels
    explicit = parse_index_list(getattr(opt, "panel_nc", "") or "", "--panel_nc")
    if explicit:
        if len(explicit) != n_b or sum(explicit) != b_nc:
            raise UserError(
                f"--panel_nc {opt.panel_nc} must list one channel count per input panel "
                f"({n_b}) summing to {b_nc}")
        return [a_nc], explicit
    if b_nc % n_b:
        raise UserError(
            f"{b_nc} channels cannot be split evenly over {n_b} input panels; "
            f"give each panel's channels with --panel_nc (e.g. 3,1,3)")
    per_panel = b_nc // n_b
    if per_panel not in (1, 3):
        raise UserError(
            f"{b_nc} channels over {n_b} input panels gives {per_panel} per panel, "
            f"but a panel has 1 (grey) or 3 (colour) channels; check --input_nc / --input_panels")
    return [a_nc], [per_panel] * n_b


def split_channels(tensor, sizes: Sequence[int], dim: int = -3) -> list:
    """Cut a channel-stacked tensor back into its panels (dim -3 is C for CHW and NCHW)."""
    if sum(sizes) != tensor.shape[dim]:
        raise ValueError(f"panel channels {list(sizes)} do not add up to {tensor.shape[dim]}")
    return list(tensor.split(list(sizes), dim=dim))
