"""A sweep's table as text: the columns in their shown units (GiB for bytes, ms for seconds), the CSV,
the terminal's compact table and what the Markdown summary shows. JSON keeps the declared units."""
from __future__ import annotations

import numpy as np

from ..units import GIB

# declared unit -> (unit shown in the files and the terminal, what divides the declared value)
DISPLAY_UNITS = {"byte": ("GiB", GIB), "s": ("ms", 1e-3)}


def shown_unit(unit: str) -> tuple[str, float]:
    """The unit a column is shown in (GiB for bytes, ms for seconds) and what divides the declared value."""
    return DISPLAY_UNITS.get(unit, (unit, 1.0))


def column_title(name: str, unit: str) -> str:
    shown = shown_unit(unit)[0]
    return name if shown in ("1", "") else f"{name} ({shown})"


def table(sw) -> tuple[list, list]:
    """(header, columns): the varied keys, status, each output in its shown unit, then the reason a
    point fails; one value per point (floats, NaN where there is none)."""
    header = [v.key for v in sw.varies] + ["status"]
    columns = [sw.inputs[v.key] for v in sw.varies] + [sw.status]
    for o in sw.outputs:
        _, divisor = shown_unit(sw.units[o])
        header.append(column_title(o, sw.units[o]))
        columns.append(sw.values[o] / divisor)
    return header + ["reason"], columns + [sw.reason]


def csv_number(v) -> str:
    """A number for the CSV: whole numbers in full, others to 7 significant digits, never an exponent."""
    if isinstance(v, str):
        return v
    v = float(v)
    if v != v:
        return ""
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return np.format_float_positional(v, precision=7, unique=False, fractional=False, trim="-")


def shown_number(v) -> str:
    """A number for the terminal and the Markdown table: two decimals, thousands separated."""
    if isinstance(v, str):
        return v
    v = float(v)
    if v != v:
        return "-"
    return f"{v:,.0f}" if v.is_integer() else f"{v:,.2f}"


def rows(sw, formatter, limit: int | None = None) -> tuple[list, list, int]:
    """(header, rows as strings, rows left out): every point, or the first and last limit/2 of them."""
    header, columns = table(sw)
    n = len(sw)
    picked = range(n) if limit is None or n <= limit else \
        list(range(limit // 2)) + list(range(n - limit // 2, n))
    return header, [[formatter(col[i]) for col in columns] for i in picked], n - len(picked)


def csv_text(sw) -> str:
    import csv
    import io

    header, columns = table(sw)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    formatted = [[csv_number(v) for v in col.tolist()] for col in columns]
    writer.writerows(zip(*formatted))
    return buf.getvalue()


OVERLOAD = "load beyond capacity"
STATUSES = ("fits", "does not fit", OVERLOAD, "refused")   # the first is the only one that fits


def summary(sw, limit: int) -> dict:
    """What the Markdown summary shows, formatted: counts per status and reason, each output's range
    over the points that fit (and where it is reached), and the table."""
    counts = {s: int(np.sum(sw.status == s)) for s in STATUSES}
    reasons = {}
    for s in STATUSES[1:]:
        picked = sw.reason[sw.status == s]
        texts, n = np.unique(picked.astype(str), return_counts=True) if picked.size else ([], [])
        reasons[s] = [(t, int(k)) for t, k in sorted(zip(texts, n), key=lambda x: -x[1])]
    fits = sw.status == "fits"
    ranges = []
    for o in sw.outputs:
        shown, divisor = shown_unit(sw.units[o])
        vals = np.where(fits, sw.values[o], np.nan)
        if not np.any(np.isfinite(vals)):
            continue
        lo, hi = int(np.nanargmin(vals)), int(np.nanargmax(vals))
        same = vals[lo] == vals[hi]
        at = lambda i: "every point that fits" if same else \
            ", ".join(f"{k}={shown_number(sw.inputs[k][i])}" for k in sw.inputs)  # noqa: E731
        ranges.append({"name": o, "unit": "" if shown in ("1", "") else shown,
                       "min": shown_number(vals[lo] / divisor), "min_at": at(lo),
                       "max": shown_number(vals[hi] / divisor), "max_at": at(hi)})
    header, table_rows, left_out = rows(sw, shown_number, limit)
    return {"varies": [{"key": v.key, "spec": v.spec, "count": len(v.values),
                        "shown": ", ".join(shown_number(x) for x in v.values[:12])
                        + (f", ... ({len(v.values):,} values)" if len(v.values) > 12 else "")} for v in sw.varies],
            "points": f"{len(sw):,}", "counts": counts, "reasons": reasons, "ranges": ranges,
            "conditions": sw.conditions, "scenario": sw.scenario, "notes": sw.notes,
            "header": header, "align": ["---"] * (len(sw.varies) + 1) + ["---:"] * len(sw.outputs) + ["---"],
            "rows": table_rows, "left_out": f"{left_out:,}" if left_out else ""}


TERMINAL_ROWS = 40     # why: a screenful; the files hold every point


def terminal(sw, written: list) -> str:
    """The compact table (the first and last points of a long sweep), the counts, the files."""
    from .terminal import table as text_table

    header, table_rows, left_out = rows(sw, shown_number, TERMINAL_ROWS)
    reasons = list(dict.fromkeys(r[-1] for r in table_rows if r[-1]))     # long: footnotes under the table
    for r in table_rows:
        r[-1] = f"[{reasons.index(r[-1]) + 1}]" if r[-1] else ""
    if left_out:
        table_rows.insert(TERMINAL_ROWS // 2, ["..."] + [""] * (len(header) - 1))
    counts = {s: int(np.sum(sw.status == s)) for s in STATUSES}
    beyond = f", {counts[OVERLOAD]:,} beyond the sustainable load" if counts[OVERLOAD] else ""
    out = [text_table(table_rows, header)] + [f"[{i}] {text}" for i, text in enumerate(reasons, 1)] + ["",
           f"{len(sw):,} points: {counts['fits']:,} fit, {counts['does not fit']:,} do not fit{beyond}, "
           f"{counts['refused']:,} refused" + (f" ({left_out:,} not shown)" if left_out else "")]
    out += [f"Note: {note}" for note in sw.notes]
    if written:
        out += ["", f"Wrote {', '.join(written)}"]
    return "\n".join(out)
