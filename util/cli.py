"""The one argparse base of every command line (train.py, test.py, aladin_data.py, scripts/).

argparse prints its usage and exits on a bad command line; here a bad command line is a
CommandLineError (a UserError), so the entry point's exit_on_user_error shows it as the same
one `error: ...` line, exit 2, as every other user mistake.
"""
from __future__ import annotations

import argparse

from util.errors import UserError


class CommandLineError(UserError):
    """A bad command line (argparse's own message, one line)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises CommandLineError instead of printing usage and exiting."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise CommandLineError(message)
