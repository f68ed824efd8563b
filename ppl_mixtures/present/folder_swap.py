"""Moving a finished folder into place in one step (Linux ``renameat2``, with a fallback).

:func:`move_new` never replaces a folder that appeared in the meantime
(``RENAME_NOREPLACE``); :func:`exchange` swaps a new folder with an existing one in one
atomic step (``RENAME_EXCHANGE``), or else with two renames that put the old folder back
if the second fails (a crash between them leaves it aside as ``.OUT.old-PID-*``, where
:func:`ppl_mixtures.present.report_folder.clean_stale` restores it).
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

__all__ = ["OLD", "aside_name", "exchange", "move_new"]

#: The kind of an old report set aside by the fallback swap (``.OUT.old-PID-*``).
OLD = "old"
_AT_FDCWD = -100
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


def aside_name(out: Path, kind: str) -> str:
    """``.OUT.tmp-PID-`` / ``.OUT.old-PID-``: our temporary folders beside ``out``."""
    return f".{out.name}.{kind}-{os.getpid()}-"


@cache
def _renameat2() -> Callable[..., int] | None:
    """libc's ``renameat2`` (Linux, glibc >= 2.28), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


def _rename_flags(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``; False when the system cannot do it (then fall back).

    Raises the OSError of a real failure (e.g. FileExistsError for RENAME_NOREPLACE).
    """
    func = _renameat2()
    if func is None:
        return False
    if func(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False  # kernel or file system without this flag
    raise OSError(code, os.strerror(code), str(dst))


def move_new(src: Path, dst: Path) -> None:
    """Move the folder ``src`` to ``dst``, which must not exist (FileExistsError if it does,
    even when it appears in the meantime: RENAME_NOREPLACE where the system has it)."""
    if _rename_flags(src, dst, _RENAME_NOREPLACE):
        return
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "File exists", str(dst))
    os.rename(src, dst)


def exchange(new: Path, out: Path) -> Path:
    """Put the folder ``new`` at ``out`` and return where ``out``'s old content went.

    One atomic ``renameat2(RENAME_EXCHANGE)`` where the system has it (the old folder is
    then at ``new``). Otherwise the old folder is renamed aside (``.OUT.old-PID-*``) and
    ``new`` renamed in; if the second rename fails the old folder is renamed back, and a
    crash between the two leaves it aside, where :func:`clean_stale` restores it.
    """
    if _rename_flags(new, out, _RENAME_EXCHANGE):
        return new
    aside = Path(tempfile.mkdtemp(prefix=aside_name(out, OLD), dir=out.parent))
    os.rmdir(aside)  # a free, unique name (mkdtemp's random part) for the rename
    os.rename(out, aside)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(aside, out)
        raise
    return aside
