"""A report folder written safely: the marker, the checks before any work, the atomic swap.

A report is built in a temporary folder beside ``out_dir`` (``.OUT.tmp-PID-*``, holding
the :data:`MARKER`) and swapped into place in one step at the end
(:class:`StagedFolder`), so a failure leaves nothing half-written. An existing folder is
replaced only with ``force`` and only when it is a report of ours (the marker, and nothing
but report files, :func:`foreign_entries`); ``out_dir`` may never be or hold the input
data, the current folder, home or the root (:func:`check_out_dir`, which the CLI calls
before fitting). Temporary folders left by a process that died are removed, and a report
set aside by a crash in the middle of the swap is restored, on the next run
(:func:`clean_stale`). A conflict found only at the swap keeps the new report beside the
target and raises :class:`ReportConflictError`.

Nothing here knows what a report contains: :mod:`ppl_mixtures.present.report` fills the
folder. (About 430 lines: every refusal's message says what was expected, what came and
what to do, and they are the point of the module; the rename primitives are in
:mod:`ppl_mixtures.present.folder_swap`.)
"""

from __future__ import annotations

import datetime as _dt
import glob
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from ppl_mixtures.present.folder_swap import OLD, aside_name, exchange, move_new

__all__ = [
    "MARKER",
    "REPORT_ENTRIES",
    "ReportConflictError",
    "StagedFolder",
    "check_out_dir",
    "clean_stale",
    "foreign_entries",
    "package_version",
    "target_state",
]

logger = logging.getLogger(__name__)


def package_version() -> str:
    """The installed ppl-mixtures version ("not installed" when it is not)."""
    try:
        return metadata.version("ppl-mixtures")
    except metadata.PackageNotFoundError:
        return "not installed"


# --------------------------------------------------------------------------- the folder
#: Written into every report folder; ``force`` replaces only folders that hold it.
MARKER = ".ppl-mixtures-report"
#: Everything a report folder holds at its top level (anything else is the user's).
REPORT_ENTRIES = frozenset({"report.md", "results.json", "figures", "posteriors", MARKER})
_TMP, _NEW = "tmp", "new"


def _marker_text(command: str | None, state: str) -> str:
    """The marker's JSON: who wrote the folder, when, with which command and process."""
    return (
        json.dumps(
            {
                "generator": "ppl-mixtures",
                "version": package_version(),
                "command": command,
                "state": state,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            },
            indent=1,
        )
        + "\n"
    )


def _marker(folder: Path) -> dict[str, Any] | None:
    """The folder's marker (a dict), or None when it has none of ours."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(marker, dict) and marker.get("generator") == "ppl-mixtures"
    return marker if ok else None


def _has_marker(folder: Path) -> bool:
    return _marker(folder) is not None


def _is_legacy_report(folder: Path, entries: set[str]) -> bool:
    """A report written before the marker existed: report files only, our results.json."""
    if not {"report.md", "results.json"} <= entries:
        return False
    try:
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(results, dict) and {"title", "datasets", "versions"} <= set(results)


def foreign_entries(folder: str | os.PathLike) -> list[str]:
    """What in ``folder`` is not part of a ppl-mixtures report ([] for a report of ours).

    A report of ours holds the :data:`MARKER` file (or, written before it existed, our
    ``results.json``) and nothing at its top level but :data:`REPORT_ENTRIES`. With no
    marker and no report files, every entry is foreign.
    """
    folder = Path(folder)
    entries = {p.name for p in folder.iterdir()}
    extra = sorted(entries - REPORT_ENTRIES)
    if extra:
        return extra
    if _has_marker(folder) or _is_legacy_report(folder, entries):
        return []
    return sorted(entries)


def _protected(out: Path) -> str | None:
    """Why ``out`` may never be a report folder (the cwd, an ancestor of it, home, root)."""
    if out == Path(out.anchor):
        return "the file system's root"
    try:
        if out == Path.home().resolve():
            return "your home folder"
    except RuntimeError:  # no home
        pass
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        return "the current folder" if out == cwd else "a folder holding the current folder"
    return None


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` that exists (it may be a file)."""
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path(path.anchor or ".")


def _writable(folder: Path) -> str | None:
    """None when a folder can be created in ``folder``, else the OS's reason."""
    try:
        probe = tempfile.mkdtemp(prefix=".ppl-mixtures-probe-", dir=folder)
    except OSError as err:
        return err.strerror or type(err).__name__
    os.rmdir(probe)
    return None


def check_out_dir(
    out_dir: str | os.PathLike,
    force: bool,
    *,
    name: str = "out_dir",
    force_hint: str = "Pass --force (force=True)",
    inputs: Sequence[str | os.PathLike] = (),
) -> None:
    """Raise when a report could not be written to ``out_dir``, before any work is done.

    ``out_dir`` must be a new or empty folder, or with ``force`` a report of ours (see
    :func:`foreign_entries`): ``force`` never replaces a folder holding anything else.
    It may never be, or hold, the current folder, the home folder, the root, or any of
    the ``inputs`` (the data files being read). The folder it goes in must be writable.
    The CLI calls this before fitting (``name="--out"``), so a refusal costs no work.

    Raises
    ------
    FileExistsError
        ``out_dir`` is a file, or holds files (not a report, or no ``force``).
    NotADirectoryError
        A parent of ``out_dir`` is a file.
    ValueError
        ``out_dir`` is (or holds) the current/home/root folder or an input file.
    PermissionError
        The folder cannot be created there.
    """
    out = Path(out_dir)
    full = out.resolve()
    why = _protected(full)
    if why is not None:
        raise ValueError(
            f"{name}: expected a folder of its own for the report, got "
            f"{str(out)!r}, which is {why}. Choose a new folder, e.g. "
            f"{name} report."
        )
    for given in inputs:
        data = Path(given).resolve()
        if full == data or full in data.parents:
            raise ValueError(
                f"{name}: expected a folder that does not hold the input data, "
                f"got {str(out)!r}, which holds {str(given)!r}. Choose a new "
                f"folder, e.g. {name} {out.name or 'report'}_report."
            )
    if out.is_symlink():
        raise FileExistsError(
            f"{name}: expected a folder, got the symbolic link "
            f"{str(out)!r}. Choose another {name} path."
        )
    if out.exists() and not out.is_dir():
        raise FileExistsError(
            f"{name}: expected a folder, got the file {str(out)!r}. Choose another {name} path."
        )
    where = _existing_ancestor(out) if not out.exists() else out.parent
    if not where.is_dir():
        raise NotADirectoryError(
            f"{name}: expected a folder path, got {str(out)!r}, but "
            f"{str(where)!r} is a file. Choose another {name} path."
        )
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise FileExistsError(
                f"{name}: expected a new or empty folder, got {str(out)!r} "
                f"which already holds files. {force_hint} to replace it, or "
                f"choose another {name}."
            )
        foreign = foreign_entries(out)
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise FileExistsError(
                f"{name}: expected a ppl-mixtures report folder to replace "
                f"(force replaces only those), got {str(out)!r}, which "
                f"holds other files ({shown}). Choose another {name}, or "
                f"move those files away yourself."
            )
    reason = _writable(where)
    if reason is not None:
        raise PermissionError(
            f"{name}: expected a place where the report folder can be "
            f"created, got {str(out)!r}, but {str(where)!r} refuses "
            f"({reason}). Choose a folder you can write to."
        )


# --------------------------------------------------------------------------- temp folders
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        pass
    return True


def clean_stale(out_dir: str | os.PathLike) -> list[Path]:
    """Remove our temporary folders beside ``out_dir`` left by processes that died.

    ``.OUT.tmp-PID-*`` (a report being built) and ``.OUT.old-PID-*`` (a replaced report
    set aside) whose PID is no longer running and which hold our :data:`MARKER` (or are
    empty; a ``.tmp`` marker must also name this host, as a PID means nothing on another
    machine sharing the folder) are removed, except that an ``.old`` folder is moved back
    to ``out_dir`` when ``out_dir`` is missing (the run died between setting the old report
    aside and moving the new one in). Returns the folders removed or restored.
    """
    out = Path(out_dir)
    done: list[Path] = []
    if out.name in ("", ".", ".."):
        return done
    try:
        for kind in (OLD, _TMP):
            head = f".{out.name}.{kind}-"
            for folder in sorted(out.parent.glob(glob.escape(head) + "*")):
                pid_text = folder.name[len(head) :].split("-", 1)[0]
                if (
                    not pid_text.isdigit()
                    or _pid_alive(int(pid_text))
                    or not folder.is_dir()
                    or folder.is_symlink()
                    or not _stale_and_ours(folder, kind)
                ):
                    continue
                if kind == OLD and not os.path.lexists(out):
                    os.rename(folder, out)
                    logger.warning("restored the report %s left aside by process %s", out, pid_text)
                else:
                    shutil.rmtree(folder, ignore_errors=True)
                done.append(folder)
    except OSError as err:  # an unreadable parent: check_out_dir says what is wrong
        logger.info("could not look for stale temporary folders beside %s: %s", out, err)
    return done


def _stale_and_ours(folder: Path, kind: str) -> bool:
    """Our marker inside (a ``.tmp`` one written on this host), or an empty folder."""
    marker = _marker(folder)
    if marker is None:
        return not any(folder.iterdir())
    return kind != _TMP or marker.get("host", socket.gethostname()) == socket.gethostname()


class ReportConflictError(FileExistsError):
    """The report folder changed while the report was being made; the new report was kept
    elsewhere (``kept``, also named in the message)."""

    def __init__(self, message: str, kept: Path) -> None:
        super().__init__(message)
        self.kept = kept


def target_state(out: Path) -> str:
    """What is at ``out`` now: "absent", "empty", "report" (ours) or "foreign"."""
    if not os.path.lexists(out):
        return "absent"
    if out.is_symlink() or not out.is_dir():
        return "foreign"
    if not any(out.iterdir()):
        return "empty"
    return "foreign" if foreign_entries(out) else "report"


class StagedFolder:
    """A temporary folder beside ``out_dir`` that becomes ``out_dir`` in one step.

    Creating one removes stale temporary folders of dead processes (:func:`clean_stale`),
    checks ``out_dir`` (:func:`check_out_dir`), creates the missing parents and the
    temporary folder ``.OUT.tmp-PID-*`` (``folder``) with the :data:`MARKER` in state
    "building". Fill ``folder``, then :meth:`install` it, or :meth:`discard` it.

    Parameters
    ----------
    out_dir : str or path-like
    force : bool
        Replace an existing report folder of ours (checked now and again at the swap);
        never a folder holding anything else.
    inputs : sequence of paths
        Data files being read: ``out_dir`` may not be or hold them.
    command : str, optional
        Recorded in the marker.
    name, force_hint : str
        How messages name ``out_dir`` and ``force`` (the CLI: ``"--out"``, ``"Add --force"``).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        force: bool = False,
        inputs: Sequence[str | os.PathLike] = (),
        command: str | None = None,
        name: str = "out_dir",
        force_hint: str = "Pass --force (force=True)",
    ) -> None:
        out = Path(out_dir)
        clean_stale(out)
        check_out_dir(out, force, name=name, force_hint=force_hint, inputs=inputs)
        self.out, self.force, self.name = out, force, name
        self.installed = False
        self._created = [p for p in reversed(out.absolute().parents) if not p.exists()]
        out.parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=aside_name(out, _TMP), dir=out.parent))
        (self.folder / MARKER).write_text(_marker_text(command, "building"), encoding="utf-8")

    def install(self, command: str | None = None) -> Path:
        """Mark the folder complete and swap it into place; return ``out_dir``.

        The target is checked again at the swap. Absent: the folder is renamed in (never
        over a folder that appeared meanwhile). Empty, or a report of ours with ``force``:
        exchanged in one atomic step (:func:`exchange`), then the old one is removed.
        Anything else (someone else's files, or a report without ``force``): nothing is
        replaced, the new report is kept as ``OUT.new-DATE-TIME`` beside it and
        :class:`ReportConflictError` says where.
        """
        (self.folder / MARKER).write_text(_marker_text(command, "complete"), encoding="utf-8")
        state = target_state(self.out)
        if state == "absent":
            try:
                move_new(self.folder, self.out)
                self.installed = True
                return self.out
            except FileExistsError:  # appeared since the check a moment ago
                state = target_state(self.out)
        if state == "empty" or (state == "report" and self.force):
            old = exchange(self.folder, self.out)
            shutil.rmtree(old, ignore_errors=True)
            self.installed = True
            return self.out
        kept = self._keep()
        what = (
            "a ppl-mixtures report, and force was not given"
            if state == "report"
            else "not a ppl-mixtures report"
        )
        raise ReportConflictError(
            f"{self.name}: expected to put the report at {str(self.out)!r}, but that folder "
            f"appeared or changed while the report was being made and is {what}; nothing "
            f"was replaced. The new report is kept in {str(kept)!r}: move it where you "
            f"want it.",
            kept,
        )

    def _keep(self) -> Path:
        """Move the finished folder to a visible ``OUT.new-DATE-TIME`` beside ``out``."""
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = self.out.parent / f"{self.out.name}.{_NEW}-{stamp}"
        for attempt in range(100):
            kept = base if attempt == 0 else base.with_name(f"{base.name}-{attempt}")
            try:
                move_new(self.folder, kept)
            except FileExistsError:
                continue
            self.folder = kept
            self.installed = True  # kept: discard() must not remove it
            return kept
        raise FileExistsError(
            f"{self.name}: could not find a free name beside "
            f"{str(self.out)!r} to keep the new report; it is in "
            f"{str(self.folder)!r}."
        )

    def discard(self) -> None:
        """Remove the temporary folder and the parent folders this stage created (nothing
        once the folder is installed or kept)."""
        if self.installed:
            return
        shutil.rmtree(self.folder, ignore_errors=True)
        for parent in reversed(self._created):  # deepest first
            try:
                parent.rmdir()
            except OSError:
                break
