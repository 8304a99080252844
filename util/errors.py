"""User-facing errors: one clear line on stderr, no traceback, a non-zero exit."""
from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A mistake the user can fix (bad option, bad file). Shown as one line, never as a traceback."""


def exit_on_user_error(main: Callable[..., T]) -> Callable[..., T]:
    """Wrap a command-line entry point so UserError and Ctrl-C end it cleanly (exit 2 / 130)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper
