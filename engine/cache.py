"""The user's cache of compiled rules: JSON files named by a hash of what they were built from.

Nothing here is ever required: an unwritable or damaged cache only means a slower start.
Files are data (JSON), never code.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

FORMAT = 1   # bump when the layout of a cached file changes


def directory() -> Path | None:
    """$LLM_SIZER_CACHE_DIR, else $XDG_CACHE_HOME/llm-sizer, else ~/.cache/llm-sizer; None if set to ''."""
    env = os.environ.get("LLM_SIZER_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "llm-sizer"


def key(kind: str, files) -> str:
    """`kind` plus a hash of every file's path and bytes (a change to any one makes a new key)."""
    return key_of(kind, [(Path(f), Path(f).read_bytes()) for f in files])


def key_of(kind: str, contents) -> str:
    """The same for (path, bytes) pairs already read."""
    h = hashlib.sha256(f"{kind}:{FORMAT}".encode())
    for path, data in contents:
        h.update(str(Path(path).resolve()).encode() + b"\0" + data + b"\0")
    return f"{kind}-{h.hexdigest()[:32]}"


def read(name: str):
    """The cached JSON value, or None when absent, unreadable or damaged."""
    d = directory()
    if d is None:
        return None
    try:
        return json.loads((d / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write(name: str, value) -> None:
    """Store `value` atomically; a cache that cannot be written is skipped silently."""
    from . import output

    d = directory()
    if d is None:
        return
    try:
        output.write_atomic(d / f"{name}.json", json.dumps(value, separators=(",", ":")))
    except Exception:   # noqa: BLE001 - the cache is an optimisation, never a reason to fail
        pass
