"""Units: a closed pint registry (units.txt), unit names and quantities such as '80 GB'.

Parsed quantities are remembered across runs (a small JSON file in the cache
directory, keyed by units.txt), so a command whose quantities were all seen
before starts without importing pint. The unit check of formulas is unitcheck.py.
"""
from __future__ import annotations

import functools
from pathlib import Path

from .errors import Location, UnitError

_DEFINITIONS = Path(__file__).with_name("units.txt")
# Bytes per unit for display, where a figure is shown in a fixed unit (one home; pint is not needed).
MIB, GIB, GB = 2 ** 20, 2 ** 30, 1e9
BOOLEAN = "boolean"      # the "unit" of a condition
ANY = None               # the unit of a literal zero: it fits any dimension


@functools.lru_cache(maxsize=1)
def registry():
    """The registry, built on first use (pint's import and parsing take a moment)."""
    import pint

    ureg = pint.UnitRegistry(None, autoconvert_offset_to_baseunit=False, cache_folder=None)
    ureg.load_definitions(str(_DEFINITIONS))
    return ureg


@functools.lru_cache(maxsize=4096)
def _parse_unit_cached(text: str):
    return registry().parse_units(text)


def parse_unit(text, where: Location | None = None):
    """A unit from text such as 'byte / token', 'GiB', 'TFLOPS' or '1'."""
    text = "dimensionless" if str(text).strip() in ("1", "") else str(text)
    try:
        return _parse_unit_cached(text)
    except Exception:
        raise UnitError(f"unknown unit '{text}'", where,
                        hint="units are defined in engine/units.txt: byte, GB, GiB, FLOP, TFLOPS, s, ms, token, ...")\
            from None


def parse_quantity(value, unit, where: Location | None = None, field: str = "value") -> float:
    """The magnitude, in `unit`, of a catalog or scenario value ('80 GB', '3.35 TB/s', 42)."""
    if isinstance(value, str) and isinstance(unit, str):
        memo = _memo()
        k = f"{unit}\x1f{value.strip()}"
        if k not in memo:
            memo[k] = _parse_quantity(value, unit, where, field)
            _memo_dirty.append(k)
        return memo[k]
    return _parse_quantity(value, unit, where, field)


_memo_dirty: list = []
MEMO_LIMIT = 20_000   # why: user-typed quantities accumulate; past this the memo stops growing


@functools.lru_cache(maxsize=1)
def _memo() -> dict:
    """Quantities parsed in earlier runs (valid ones only), saved at exit when new ones were parsed."""
    import atexit

    from . import cache

    name = cache.key("quantities", [_DEFINITIONS])
    memo = cache.read(name)
    memo = {k: v for k, v in memo.items() if isinstance(v, float)} \
        if isinstance(memo, dict) and len(memo) < MEMO_LIMIT else {}
    atexit.register(lambda: _memo_dirty and cache.write(name, memo))
    return memo


def _parse_quantity(value, unit, where, field) -> float:
    ureg = registry()
    target = parse_unit(unit, where) if not hasattr(unit, "dimensionality") else unit
    if isinstance(value, bool) or value is None:
        raise UnitError(f"{field} must be a quantity, got {value!r}", where,
                        expected=f"a number with a unit, such as '{_example(target)}'")
    if isinstance(value, (int, float)):
        if target.dimensionless:
            return float(value)
        raise UnitError(f"{field} has no unit", where, found=repr(value),
                        expected=f"a quantity in {describe(target)} or a compatible unit, such as '{_example(target)}'")
    text = str(value).strip().replace(",", "")
    try:
        quantity = ureg.Quantity(text)
    except Exception:
        raise UnitError(f"{field} is not a quantity: '{value}'", where,
                        expected=f"a number with a unit, such as '{_example(target)}'") from None
    if not hasattr(quantity, "to"):
        quantity = ureg.Quantity(quantity)
    if quantity.dimensionality != ureg.Quantity(1, target).dimensionality:
        raise UnitError(f"{field} '{value}' has the wrong dimension", where,
                        found=f"{describe(quantity.units)} ({_dim(quantity.units)})",
                        expected=f"{describe(target)} ({_dim(target)})")
    return float(quantity.to(target).magnitude)


def _example(unit) -> str:
    examples = {"[information]": "80 GB", "[time]": "20 us", "[compute]": "1.5e12 FLOP",
                "[compute] / [time]": "989.5 TFLOPS", "[information] / [time]": "3.35 TB/s"}
    return examples.get(_dim(unit), f"1 {describe(unit)}")


def _dim(unit) -> str:
    dims = registry().Quantity(1, unit).dimensionality
    return str(dims) if dims else "dimensionless"


def describe(unit) -> str:
    """A unit as people read it: 'byte / token', 'GiB', '1'."""
    if unit is BOOLEAN:
        return "boolean"
    if unit is ANY:
        return "any unit (zero)"
    text = f"{unit}"
    return "1" if text in ("", "dimensionless") else text
