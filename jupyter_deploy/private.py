"""Files and folders only their owner may read: the token, HAProxy's sockets, payload logs.

Three things matter, and each is easy to get wrong with ``mkdir``/``open``:

- created private, not tightened afterwards (a reader could open it in between): folders
  ``0700``, files ``0600``, whatever the process umask;
- never followed through a symlink or reused when someone else owns it: in a shared
  ``/tmp`` another user can create our path first and wait for us to write into it;
- checked on reuse: a folder of ours that is wider than ``0700`` (made by an older
  version) is tightened; a *file* that others could read is refused, since what it holds
  may have leaked already.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import UnsafePathError

DIR_MODE = 0o700
FILE_MODE = 0o600


def _owned(path: Path, info: os.stat_result, want_dir: bool) -> None:
    kind_ok = stat.S_ISDIR(info.st_mode) if want_dir else stat.S_ISREG(info.st_mode)
    if not kind_ok or info.st_uid != os.getuid():
        kind = "directory" if want_dir else "file"
        raise UnsafePathError(
            f"{path} is not a {kind} owned by you; remove it (someone may have planted "
            "it) and try again."
        )


def make_dir(path: Path) -> Path:
    """``path`` as this user's private folder (parents made as usual), created if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        info = os.lstat(path)
        _owned(path, info, want_dir=True)
        if info.st_mode & 0o077:
            path.chmod(DIR_MODE)
    else:
        path.chmod(DIR_MODE)  # mkdir's mode is masked by the umask; chmod is not
    return path


def check_file(path: Path) -> None:
    """Refuse ``path`` unless it is this user's own regular file, readable by no one else."""
    info = os.lstat(path)
    _owned(path, info, want_dir=False)
    if info.st_mode & 0o077:
        raise UnsafePathError(
            f"{path} is readable by other users; run chmod go= {path} (or delete it) and try again."
        )


def create_file(path: Path, text: str) -> bool:
    """Write ``text`` to a new owner-only file; False (and untouched) if it exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return True


def append_text(path: Path, text: str) -> None:
    """Append to an owner-only file, creating it ``0600``; never through a symlink."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
    fd = os.open(path, flags, FILE_MODE)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)  # a file from before logs were private
        fh.write(text)
