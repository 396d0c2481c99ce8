"""A sweep as a workbook: the table of every point (as in sweep.csv) and one line chart per output
against the first varied key, one series per value of the second.

The values are llm-sizer's, not live formulas: a sweep is many scenarios, each a workbook of its own
(`llm-sizer workbook`). Charts plot the points that fit; a refused or non-fitting point is a gap.
"""
from __future__ import annotations

import io

import numpy as np

from .sweep_text import column_title, shown_unit, table

MAX_TABLE_ROWS = 100_000   # why: openpyxl writes ~50k rows/s; past this the full table is in sweep.csv
MAX_CHART_POINTS = 500     # why: a chart line of more points is unreadable; longer sweeps are strided
MAX_SERIES = 10            # why: a legend of more than ten lines is unreadable; more values are strided
LOG_SPAN = 100             # why: a range of two decades or more reads better on a log axis


def build(sw) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    bold = Font(bold=True)
    wb = Workbook()
    ws = wb.active
    ws.title = "Sweep"
    _table_sheet(ws, sw, bold)
    _charts_sheet(wb.create_sheet("Charts"), sw, bold)
    _scenario_sheet(wb.create_sheet("Scenario"), sw, bold)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _cell(v):
    if isinstance(v, str):
        return v
    v = float(v)
    return None if v != v else v


def _table_sheet(ws, sw, bold):
    header, columns = table(sw)
    ws.append(header)
    for c in ws[1]:
        c.font = bold
    n = min(len(sw), MAX_TABLE_ROWS)
    lists = [col[:n].tolist() for col in columns]
    for row in zip(*lists):
        ws.append([_cell(v) for v in row])
    if len(sw) > n:
        ws.append([f"... {len(sw) - n:,} more points: the whole table is in sweep.csv"])
    ws.freeze_panes = "A2"
    for i, title in enumerate(header, 1):
        ws.column_dimensions[ws.cell(1, i).column_letter].width = max(12, min(len(title) + 2, 60))


def _strided(count: int, limit: int) -> np.ndarray:
    """Indices of at most `limit` of `count` values, evenly spread, the first and last kept."""
    if count <= limit:
        return np.arange(count)
    return np.unique(np.round(np.linspace(0, count - 1, limit)).astype(int))


def chart_outputs(sw) -> list:
    """Outputs worth a chart: numeric ones with a value at a point that fits (not 0/1 flags)."""
    fits = sw.status == "fits"
    out = []
    for o in sw.outputs:
        vals = sw.values[o][fits]
        vals = vals[np.isfinite(vals)]
        if vals.size and not np.all(np.isin(vals, (0.0, 1.0))):
            out.append(o)
    return out


def _charts_sheet(ws, sw, bold):
    """Per output: a block of data (first key down, second across) and its chart beside it."""
    first = sw.varies[0]
    second = sw.varies[1] if len(sw.varies) > 1 else None
    rows = _strided(len(first.values), MAX_CHART_POINTS)
    cols = _strided(len(second.values), MAX_SERIES) if second else np.arange(1)
    # points are ordered first key slowest: point (i, j) is i * len(second) + j
    width = len(second.values) if second else 1
    fits = sw.status == "fits"
    top = 1
    for n, o in enumerate(chart_outputs(sw)):
        shown, divisor = shown_unit(sw.units[o])
        grid = np.where(fits, sw.values[o], np.nan).reshape(len(first.values), width) / divisor
        ws.cell(top, 1, f"{column_title(o, sw.units[o])} at the points that fit").font = bold
        ws.cell(top + 1, 1, first.key).font = bold
        for c, j in enumerate(cols, 2):
            label = f"{second.key}={_label(second.values[j])}" if second else column_title(o, sw.units[o])
            ws.cell(top + 1, c, label).font = bold
        for r, i in enumerate(rows, top + 2):
            ws.cell(r, 1, _cell(first.values[i]) if first.numeric else first.values[i])
            for c, j in enumerate(cols, 2):
                ws.cell(r, c, _cell(grid[i, j]))
        last = top + 1 + len(rows)
        chart = _chart(ws, sw, o, first, top, last, len(cols), grid[np.ix_(rows, cols)])
        ws.add_chart(chart, f"{ws.cell(1, len(cols) + 3).column_letter}{1 + 18 * n}")
        top = last + 3
    ws.column_dimensions["A"].width = 24


def _label(v) -> str:
    return v if isinstance(v, str) else f"{v:g}"


def _chart(ws, sw, o, first, top, last, series, values):
    """A line per series against the first key: a scatter with lines when it is numeric (so the axis
    can be logarithmic), bars by category when it is not."""
    from openpyxl.chart import BarChart, Reference, ScatterChart, Series

    shown, _ = shown_unit(sw.units[o])
    x_ref = Reference(ws, min_col=1, min_row=top + 2, max_row=last)
    if first.numeric:
        chart = ScatterChart()
        chart.style = 13
        for c in range(2, 2 + series):
            s = Series(Reference(ws, min_col=c, min_row=top + 2, max_row=last), x_ref,
                       title_from_data=False)
            s.tx = _title_ref(ws, top + 1, c)
            s.marker.symbol = "circle"
            chart.series.append(s)
        base = _log_base(first)
        if base:
            chart.x_axis.scaling.logBase = base
        chart.x_axis.scaling.min = float(min(first.values))
        chart.x_axis.scaling.max = float(max(first.values))
    else:
        chart = BarChart()
        chart.type, chart.grouping = "col", "clustered"
        chart.add_data(Reference(ws, min_col=2, max_col=1 + series, min_row=top + 1, max_row=last),
                       titles_from_data=True)
        chart.set_categories(x_ref)
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() >= LOG_SPAN:
        chart.y_axis.scaling.logBase = 10
    unit = _input_unit(sw, first.key)
    chart.title = f"{o} vs {first.key}"
    chart.x_axis.title = first.key + (f" ({unit})" if unit else "")
    chart.y_axis.title = column_title(o, sw.units[o]) if shown not in ("1", "") else o
    chart.x_axis.delete = chart.y_axis.delete = False     # openpyxl 3.1 hides axes unless told
    chart.height, chart.width = 8.5, 16
    return chart


def _log_base(vary) -> float | None:
    """A geometric range is plotted on a log axis of its own factor (x2: 4096, 8192, ... evenly spaced);
    another numeric range spanning two decades on a log10 axis."""
    if vary.ratio and float(vary.ratio).is_integer():
        return float(vary.ratio)
    lo, hi = min(vary.values), max(vary.values)
    return 10.0 if lo > 0 and hi / lo >= LOG_SPAN else None


def _input_unit(sw, key: str) -> str:
    return sw.key_units.get(key, "")


def _title_ref(ws, row, col):
    from openpyxl.chart.data_source import StrRef
    from openpyxl.chart.series import SeriesLabel
    from openpyxl.utils import get_column_letter

    return SeriesLabel(strRef=StrRef(f"'{ws.title}'!${get_column_letter(col)}${row}"))


def _scenario_sheet(ws, sw, bold):
    ws.append(["scenario key", "value"])
    for c in ws[1]:
        c.font = bold
    for v in sw.varies:
        ws.append([v.key, f"varied: {v.spec}"])
    for key, value in sw.scenario.items():
        ws.append([key, value if isinstance(value, (int, float, str)) or value is None else str(value)])
    if sw.notes:
        ws.append([])
        ws.append(["notes"])
        ws.cell(ws.max_row, 1).font = bold
        for note in sw.notes:
            ws.append([note])
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 60


def dump(data: bytes) -> dict:
    """The charts of a sweep workbook, comparable: type, title, axis titles and scaling, series."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data))
    out = {}
    for ws in wb.worksheets:
        charts = []
        for ch in ws._charts:
            charts.append({"type": type(ch).__name__, "title": _text(ch.title),
                           "x_title": _text(ch.x_axis.title), "y_title": _text(ch.y_axis.title),
                           "x_log": ch.x_axis.scaling.logBase, "y_log": ch.y_axis.scaling.logBase,
                           "series": [_series(s) for s in ch.series]})
        out[ws.title] = {"rows": ws.max_row, "columns": ws.max_column, "charts": charts}
    return out


def _series(s) -> dict:
    out = {"title": s.tx.strRef.f if s.tx and s.tx.strRef else None, "y": (s.yVal or s.val).numRef.f}
    x = s.xVal or s.cat
    if x is not None:
        out["x"] = (x.numRef or x.strRef).f
    return out


def _text(title) -> str | None:
    """The plain text of a chart or axis title as openpyxl reads it back."""
    if title is None or title.tx is None or title.tx.rich is None:
        return None
    return "".join(r.t for p in title.tx.rich.p for r in (p.r or []))
