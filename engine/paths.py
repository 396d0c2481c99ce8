"""Where the built-in rules and facts are: the checkout's top level, or engine/_data in a wheel."""
from __future__ import annotations

import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent
ENV = {"formulas": "LLM_SIZER_FORMULAS", "catalogs": "LLM_SIZER_CATALOGS"}


def builtin(kind: str) -> Path:
    """formulas/, catalogs/ or templates/ as shipped."""
    for base in (_HERE / "_data", _HERE.parent):
        if (base / kind).is_dir():
            return base / kind
    raise FileNotFoundError(f"llm-sizer's {kind}/ directory is missing from the installation")


def user_catalogs() -> Path:
    """The user's own catalog directory: $XDG_CONFIG_HOME/llm-sizer/catalogs (~/.config/...)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "llm-sizer" / "catalogs"


def writable_catalogs(extra=()) -> Path:
    """Where `calibrate --write` puts a fit: the last --catalogs directory, else the first of
    $LLM_SIZER_CATALOGS, else the user's catalog directory; never the installed package."""
    env = [p for p in os.environ.get(ENV["catalogs"], "").split(os.pathsep) if p]
    return Path(extra[-1]) if extra else Path(env[0]) if env else user_catalogs()


def search_path(kind: str, extra=()) -> list[Path]:
    """Built-in directory, the user's catalogs (if any), then the environment variable's
    directories, then the command line's."""
    dirs = [builtin(kind)]
    if kind == "catalogs" and user_catalogs().is_dir():
        dirs.append(user_catalogs())
    env = os.environ.get(ENV[kind], "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path(p) for p in extra]
    return dirs
