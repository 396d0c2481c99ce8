"""Markdown reports from jinja2 templates (templates/), StrictUndefined: a missing value is an error."""
from __future__ import annotations

import functools
import re

from .. import paths
from ..evaluate import format_number
from ..units import GB, GIB


@functools.lru_cache(maxsize=1)
def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(paths.builtin("templates"))),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    env.filters.update({name: _or_not_measured(f) for name, f in {
        "num": lambda v, d=2: f"{v:,.{d}f}",
        "signed": lambda v, d=2: f"{v:+,.{d}f}",
        "pct": lambda v, d=1: f"{v:+.{d}f}%",
        "int": lambda v: f"{int(round(v)):,}",
        "exact": format_number,
        "share": lambda v, d=0: f"{v:.{d}%}",             # a fraction as a percentage: 0.9 -> 90%
        "gib": lambda v, d=2: f"{v / GIB:,.{d}f}",        # bytes, shown in GiB / GB
        "gb": lambda v, d=2: f"{v / GB:,.{d}f}",
        "ms": lambda v, d=1: f"{v * 1e3:.{d}f}",          # seconds shown in ms; no separator (a Mermaid list)
        "seconds": lambda v, d=2: f"{v:.{d}f}",
        "count": lambda v: f"{v:,.0f}",
    }.items()})
    env.filters["code_path"] = lambda origin: re.sub(r"^from (\S+)$", r"from `\1`", origin)   # paths as code
    env.filters["heading"] = lambda depth: "#" * (depth + 1)     # a derivation step (loop.depth from 1): ## ...
    return env


NOT_MEASURED = "not measured"


def _or_not_measured(f):
    """None is a figure the profile does not measure; a missing key still fails (StrictUndefined)."""
    return lambda v, *args: NOT_MEASURED if v is None else f(v, *args)


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
