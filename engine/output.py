"""Atomic writes: a failed run never leaves a half-written file over a good one.

A written file behaves as `open(path, "w")` would have made it: its mode follows the
umask (or stays what it was when a file is replaced), and a symlink is written
through to its target, never replaced by a plain file.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import Location, OutputError, display_path


def _umask() -> int:
    mask = os.umask(0)    # the only portable way to read it is to set it
    os.umask(mask)
    return mask


def _refused(exc: OSError, path: Path, what: str) -> OutputError:
    shown = display_path(path)
    hint = (f"choose another place with -o/--out, or make {display_path(path.parent)} writable"
            if isinstance(exc, PermissionError) else "choose another place with -o/--out")
    return OutputError(f"cannot write {what}: {exc.strerror or exc}", Location(shown), hint=hint)


def write_atomic(path, data: str | bytes) -> Path:
    """Write to a temporary file beside the target, then rename it into place."""
    shown = Path(path)
    if shown.is_dir():
        raise OutputError("cannot write the file: a folder of that name exists", Location(display_path(shown)),
                          hint="give a file name, not a folder")
    if shown.exists() and not shown.is_file():     # /dev/stdout, a pipe: nothing to replace
        return _write_through(shown, shown, data)
    target = Path(os.path.realpath(path))     # through symlinks: the link stays, its target changes
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o666 & ~_umask()
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _refused(exc, shown, "the file") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)      # mkstemp makes 0600 whatever the umask
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _refused(exc, shown, "the file") from None
        raise
    return shown


def _write_through(shown: Path, target: Path, data) -> Path:
    try:
        with open(target, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as exc:
        raise _refused(exc, shown, "the file") from None
    return shown


def append_csv(path, columns: list, rows: list[dict]) -> Path:
    """Append rows to a CSV (header written when the file is new), atomically."""
    import csv
    import io

    path = Path(path)
    try:
        existing = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise OutputError(f"cannot read the CSV to append to: {getattr(exc, 'strerror', None) or exc}",
                          Location(display_path(path)), hint="give a new file, or a readable UTF-8 CSV") from None
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    if not existing:
        writer.writeheader()
    writer.writerows(rows)
    return write_atomic(path, existing + buf.getvalue())
