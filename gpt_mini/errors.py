"""
The errors a user can fix, and how a stage script shows them: one sentence, no traceback.

Library code raises a UserError (a bad data file, a checkpoint that cannot be used, a loss that
became NaN, a disk that filled up during a save); cli.parse installs the one place that turns it
into `error: <sentence>` and exit status 1. Anything else is a bug and keeps its traceback.
"""

import errno
import os
import shutil
import sys


class UserError(Exception):
    """Something the user can fix. The message is one sentence that names the file (and line) at fault."""


def print_user_errors_as_one_sentence():
    """From now on, an uncaught UserError prints `error: <sentence>` to stderr (exit status 1)."""
    previous = sys.excepthook
    if getattr(previous, "prints_user_errors", False):
        return  # installed already

    def hook(kind, value, traceback):
        if isinstance(value, UserError):
            print(f"error: {value}", file=sys.stderr)
        else:
            previous(kind, value, traceback)
    hook.prints_user_errors = True
    sys.excepthook = hook


def write_failed(path, error, kept, needed_bytes=None):
    """The UserError for a file that could not be written: why (a full disk said as such), and what is kept.

    torch.save reports a full disk as a RuntimeError without an errno, so a failure with less free space
    than the file needs is called a full disk too."""
    folder = os.path.dirname(path) or "."
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    full = getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (
        needed_bytes is not None and free is not None and free < needed_bytes)
    if full:
        why = "the disk is full" + (f": {free / 1e6:.1f} MB free" if free is not None else "")
        if needed_bytes:
            why += f", about {needed_bytes / 1e6:.1f} MB needed"
    else:
        why = getattr(error, "strerror", None) or f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    return UserError(f"could not write {path} ({why}); {kept}")
