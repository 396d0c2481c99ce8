"""Errors a user can cause, rendered compiler-style: ``path:line:col: what is wrong``.

Every class also inherits a builtin (ValueError, ...) so generic handlers keep
working. The CLI prints these without a traceback; anything else is a bug.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file, optionally a line and column (1-based)."""

    path: str
    line: int | None = None
    col: int | None = None
    source_line: str | None = None  # the offending line, for the caret display

    def __str__(self) -> str:
        parts = [self.path]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)

    def shifted(self, col_offset: int, width: int = 1) -> "Location":
        """The same line, pointing `col_offset` characters further right."""
        col = (self.col or 1) + col_offset
        return Location(self.path, self.line, col, self.source_line)


# Why: a message quotes what the user wrote; a 200 kB expression or value must not come back whole.
MAX_ECHO = 120          # characters of an offending value or line shown
MAX_MESSAGE = 2000      # one rendered error stays under this (2 kB)
MAX_LISTED = 1800       # an ErrorList shows errors until this many characters, then counts the rest


def shorten(text, limit: int = MAX_ECHO) -> str:
    """`text` cut to `limit` characters, with '...' and the full length when cut."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


def _window(line: str, col: int, width: int) -> tuple[str, int, int]:
    """The part of a long source line around `col` (1-based), the column in it, and the caret width."""
    width = max(1, min(width, MAX_ECHO))
    if len(line) <= MAX_ECHO:
        return line, col, width
    start = max(0, min(col - 1 - MAX_ECHO // 3, len(line) - MAX_ECHO))
    piece = line[start:start + MAX_ECHO]
    prefix = "..." if start else ""
    suffix = "..." if start + MAX_ECHO < len(line) else ""
    return prefix + piece + suffix, col - start + len(prefix), min(width, MAX_ECHO - (col - 1 - start))


_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill(template: str, fields: dict) -> str:
    """`{name}` in a declared message replaced by fields[name] (plain names only: no attribute access,
    unlike str.format); unknown names stay as written."""
    return _FIELD.sub(lambda m: shorten(fields[m.group(1)]) if m.group(1) in fields else m.group(0), template)


def display_path(path: str | Path) -> str:
    """Paths relative to the working directory when possible: outputs hold no absolute paths."""
    return _display_path(str(path), os.getcwd())


@functools.lru_cache(maxsize=1024)   # why: every cached location is displayed; a few files, many lines
def _display_path(path: str, cwd: str) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path(cwd).resolve()))
    except ValueError:
        return str(p)


class EngineError(Exception):
    """A problem with user input: a file, a scenario, a value. Rendered without traceback."""

    exit_code = 2

    def __init__(self, message: str, location: Location | None = None, *,
                 found: str | None = None, expected: str | None = None,
                 hint: str | None = None, width: int = 1):
        super().__init__(message)
        self.message = message
        self.location = location
        self.found = found
        self.expected = expected
        self.hint = hint
        self.width = max(1, width)

    def sort_key(self) -> tuple:
        loc = self.location
        if loc is None:
            return ("", 0, 0, self.message)
        return (loc.path, loc.line or 0, loc.col or 0, self.message)

    def __str__(self) -> str:
        where = shorten(self.location, 200) if self.location else None
        head = f"{where}: {shorten(self.message, 400)}" if where else shorten(self.message, 400)
        lines = [head]
        loc = self.location
        if loc and loc.source_line is not None and loc.col is not None:
            line, col, width = _window(loc.source_line.rstrip("\n"), loc.col, self.width)
            lines.append("    " + line)
            lines.append("    " + " " * max(0, col - 1) + "^" * max(1, width))
        if self.found is not None:
            lines.append(f"  found: {shorten(self.found, 240)}")
        if self.expected is not None:
            lines.append(f"  expected: {shorten(self.expected, 240)}")
        if self.hint:
            lines.append(f"  hint: {shorten(self.hint, 240)}")
        return "\n".join(lines)


class YamlError(EngineError, ValueError):
    """Malformed YAML, duplicate keys, YAML 1.1 traps."""


class SchemaError(EngineError, ValueError):
    """A declaration with a missing, unknown or ill-typed field."""


class ExpressionError(EngineError, ValueError):
    """An expression outside the safe grammar, or naming an unknown symbol."""


class UnitError(EngineError, ValueError):
    """Units that do not agree."""


class CycleError(EngineError, ValueError):
    """Formulas that depend on themselves."""


class CatalogError(EngineError, ValueError):
    """A catalog record that is missing a field or holds a bad value."""


class ScenarioError(EngineError, ValueError):
    """A scenario key or value that cannot be used."""


class ProfileError(EngineError, ValueError):
    """A measured profile that cannot be read."""


class OutputError(EngineError, OSError):
    """An output file or folder that cannot be written."""


class RequirementError(EngineError, ValueError):
    """A `requires`, `min` or `max` condition violated by the values given."""

    template: str | None = None      # a declared `message:` and the values that fill it
    fields: dict = {}

    def in_scenario(self, **context) -> "RequirementError":
        """The declared message re-filled with words of the scenario the formulas do not know ({model})."""
        if self.template:
            self.message = fill(self.template, {**self.fields, **context})
        return self


class CheckFailure(EngineError, AssertionError):
    """A worked example in a `checks:` block that does not hold."""

    exit_code = 1


@dataclass
class ErrorList(Exception):
    """All the declaration problems of one run, reported together, sorted."""

    errors: list[EngineError] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return max((e.exit_code for e in self.errors), default=2)

    def __str__(self) -> str:
        ordered = sorted(self.errors, key=EngineError.sort_key)
        n = len(ordered)
        shown, size = [], 0
        for e in ordered:
            text = str(e)
            if shown and size + len(text) > MAX_LISTED:
                break
            shown.append(text)
            size += len(text) + 1
        more = f" ({n - len(shown)} more not shown: fix these and run again)" if len(shown) < n else ""
        return "\n".join(shown) + f"\n{n} problem{'s' if n != 1 else ''} found{more}"

    def raise_if_any(self) -> None:
        if self.errors:
            raise self

    def add(self, error: EngineError) -> None:
        self.errors.append(error)

    def extend(self, errors) -> None:
        self.errors.extend(errors)
