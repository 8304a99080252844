"""Where a run writes (checkpoints/NAME, results/NAME): checked before the run starts, and an
operating-system write error during the run turned into one line that says what to do.

A read-only or not-a-folder --checkpoints_dir is found before the dataset is scanned, and
nothing is created for a run that cannot start. A full disk in the middle of training is one
line too; the checkpoint saves are all-or-none (engine.training.save_checkpoint), so the last
complete checkpoint is what a resume finds.
"""
from __future__ import annotations

import errno
from contextlib import contextmanager
from typing import Callable, Iterator

from util.errors import UserError

# errors a user fixes on the storage side: space, permissions, a file where a folder should be
STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                  errno.ENOTDIR, errno.EISDIR}


def storage_error_line(err: OSError, consequence: str) -> str:
    """'No space left on device (/ck/sky/x.pth); <consequence>'."""
    where = f" ({err.filename})" if err.filename else ""
    advice = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space (quota exceeded)",
              errno.EFBIG: "free some space"}.get(err.errno, "fix the folder's permissions or choose another one")
    return f"{err.strerror or err}{where}; {consequence}; {advice}"


@contextmanager
def storage_errors_as_user_errors(consequence: str | Callable[[], str]) -> Iterator[None]:
    """Turn a storage OSError (full disk, read-only, permissions) raised in the block into a UserError line.
    A callable consequence is asked when the error happens (what is kept may have changed meanwhile)."""
    try:
        yield
    except OSError as err:
        if err.errno not in STORAGE_ERRORS:
            raise
        raise UserError(storage_error_line(err, consequence() if callable(consequence) else consequence)) from None
