"""Several scenarios side by side in one live workbook (`llm-sizer workbook --compare A.yaml B.yaml`).

The single-scenario workbook's layout, one column per scenario: Inputs (one row per input, a value
per scenario), Calculation (one row per formula, a live Excel formula per scenario), Compare (the
key figures and a memory chart, live), Scenarios (the keys each was sized with). A defined name can
point at one cell only, so the formulas here refer to cells: the same printed expression with each
name replaced by its row in that scenario's column (`=MAX(1, INT(Inputs!C5/Inputs!C9))`). The
references are relative, so copying a scenario's column to the next one adds a scenario to edit.
"""
from __future__ import annotations

import io
import re

from ..compiled import ExcelPrintError
from ..units import GB, GIB
from .excel import BREAKDOWN, HEADER, _number_format, _scalar, _validation

MAX_SCENARIOS = 20      # why: wider than twenty columns a side-by-side is no longer read side by side
_NAME = re.compile(r"(?<![A-Za-z0-9_.!$'])([A-Za-z_][A-Za-z0-9_]*)(?![A-Za-z0-9_(!])")
_EXCEL_WORDS = {"TRUE", "FALSE"}
KEY_FIGURES = [("In use per GPU (GiB)", "total_memory_per_gpu", GIB), ("KV-cache tokens", "kv_cache_tokens", 1),
               ("Max concurrency at max_model_len", "max_concurrency", 1), ("TTFT (ms)", "ttft", 1e-3),
               ("Inter-token latency (ms)", "inter_token_latency", 1e-3), ("End-to-end latency (s)", "e2e_latency", 1),
               ("Output throughput (tokens/s)", "output_throughput", 1)]


def build(results: list, scenarios: list, labels: list) -> bytes:
    """The workbook's bytes: one column per (result, scenario), headed by its label."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    bold = Font(**HEADER)
    graph = results[0].graph
    wb = Workbook()
    wb.calculation.fullCalcOnLoad = True
    inputs = wb.active
    inputs.title = "Inputs"
    input_rows = _inputs_sheet(inputs, graph, results, labels, bold)
    calc_rows = _calculation_sheet(wb.create_sheet("Calculation"), graph, results, labels, input_rows, bold)
    _compare_sheet(wb.create_sheet("Compare"), results, scenarios, labels, (input_rows, calc_rows), bold)
    _scenarios_sheet(wb.create_sheet("Scenarios"), scenarios, labels, bold)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def column(j: int) -> str:
    """The letter of scenario j's column (B, C, ...) on Inputs and Calculation."""
    from openpyxl.utils import get_column_letter

    return get_column_letter(2 + j)


def _header(ws, cells, bold):
    ws.append(cells)
    for c in ws[ws.max_row]:
        c.font = bold


def _inputs_sheet(ws, graph, results, labels, bold) -> dict:
    """Input name -> row; a scenario that does not use an input leaves its cell empty."""
    from openpyxl.worksheet.datavalidation import DataValidation

    n = len(results)
    _header(ws, ["input", *labels, "unit", "doc", "from"], bold)
    names = [name for name in graph.inputs if any(name in r.values for r in results)]
    rows = {}
    for row, name in enumerate(names, start=2):
        decl = graph.inputs[name]
        ws.append([name, *[_scalar(r[name]) if name in r.values else None for r in results],
                   decl.unit_text, decl.doc, decl.source_path or ""])
        for j in range(n):
            ws[f"{column(j)}{row}"].number_format = _number_format(decl.unit_text)
        dv = _validation(decl, DataValidation)
        if dv is not None:
            ws.add_data_validation(dv)
            dv.add(f"B{row}:{column(n - 1)}{row}")
        rows[name] = row
    ws.column_dimensions["A"].width = 34
    for j in range(n):
        ws.column_dimensions[column(j)].width = 18
    ws.freeze_panes = "B2"
    return rows


def _calculation_sheet(ws, graph, results, labels, input_rows, bold) -> dict:
    """Formula name -> row: per scenario, the live formula (cell references), then the engine's values."""
    n = len(results)
    variant = results[0].variant
    names = [name for name in graph.order(variant) if any(name in r.values for r in results)]
    rows = {name: row for row, name in enumerate(names, start=2)}
    _header(ws, ["formula", *[f"{lab} (Excel)" for lab in labels], "unit", *[f"{lab} (engine)" for lab in labels],
                 "doc", "expression"], bold)
    for name in names:
        f, code = graph.formulas[name], graph.code(name, variant)
        if code.excel is None:
            raise ExcelPrintError(f"formula '{name}' has no Excel form (its expression or a name in it)")
        live = [referenced(code.excel, j, input_rows, rows) if name in r.values else None
                for j, r in enumerate(results)]
        engine = [_scalar(r[name]) if name in r.values else None for r in results]
        ws.append([name, *live, f.unit_text, *engine, f.doc, code.text])
        for col in range(2, 2 * n + 3):
            ws.cell(rows[name], col).number_format = _number_format(f.unit_text)
    ws.column_dimensions["A"].width = 34
    ws.freeze_panes = "B2"
    return rows


def referenced(excel: str, j: int, input_rows: dict, formula_rows: dict) -> str:
    """A printed formula with each name replaced by its cell in scenario j's column."""
    col = column(j)

    def ref(m):
        name = m.group(1)
        if name in formula_rows:
            return f"{col}{formula_rows[name]}"
        if name in input_rows:
            return f"Inputs!{col}{input_rows[name]}"
        if name in _EXCEL_WORDS:
            return name
        raise ExcelPrintError(f"'{name}' in {excel} is neither an input nor a formula of the workbook")
    return _NAME.sub(ref, excel)


def _compare_sheet(ws, results, scenarios, labels, rows, bold):
    """The figures people compare, each a live reference to the Calculation sheet, and a memory chart."""
    from openpyxl.chart import BarChart, Reference

    _header(ws, ["", *labels], bold)
    ws.append(["model", *[sc.model.id for sc in scenarios]])
    ws.append(["GPU", *[sc.gpu.get("name", sc.gpu_id) for sc in scenarios]])
    verdicts = [sc.framework["memory_model"]["verdict"]["fits"] for sc in scenarios]
    ws.append(["verdict", *[_live(j, rows, name, 'IF({ref}=1,"fits","does NOT fit")')
                            for j, name in enumerate(verdicts)]])
    first = ws.max_row + 1
    for label, name in BREAKDOWN:
        ws.append([f"{label} (GiB)", *[_live(j, rows, name, f"{{ref}}/{GIB}", r) for j, r in enumerate(results)]])
    last = ws.max_row
    for label, name, divisor in KEY_FIGURES:
        ws.append([label, *[_live(j, rows, name, f"{{ref}}/{_number(divisor)}" if divisor != 1 else "{ref}", r)
                            for j, r in enumerate(results)]])
    ws.append(["GPU total (GB)", *[_live(j, rows, "gpu_memory_total", f"{{ref}}/{_number(GB)}", r)
                                   for j, r in enumerate(results)]])
    for row in ws.iter_rows(min_row=first, min_col=2):
        for c in row:
            c.number_format = "#,##0.00"
    ws.column_dimensions["A"].width = 34
    chart = BarChart()
    chart.type, chart.grouping, chart.overlap = "col", "stacked", 100
    chart.title, chart.y_axis.title, chart.x_axis.title = "Memory per GPU", "GiB", "scenario"
    chart.add_data(Reference(ws, min_col=1, max_col=1 + len(results), min_row=first, max_row=last),
                   from_rows=True, titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=2, max_col=1 + len(results), min_row=1))
    chart.x_axis.delete = chart.y_axis.delete = False     # openpyxl 3.1 hides axes unless told
    ws.add_chart(chart, f"{column(len(results) + 1)}2")


def _number(v) -> str:
    """A constant as Excel reads it exactly: 1073741824, 0.001."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _live(j, rows, name, template, result=None):
    """`template` around scenario j's cell of `name` (an input or a formula), or empty where that
    scenario has no such figure."""
    if result is not None and name not in result.values:
        return None
    input_rows, calc_rows = rows
    ref = f"Calculation!{column(j)}{calc_rows[name]}" if name in calc_rows else f"Inputs!{column(j)}{input_rows[name]}"
    return "=" + template.replace("{ref}", ref)


def _scenarios_sheet(ws, scenarios, labels, bold):
    _header(ws, ["scenario key", *labels], bold)
    publics = [sc.public() for sc in scenarios]
    for key in dict.fromkeys(k for p in publics for k in p):
        ws.append([key, *[_plain(p.get(key)) for p in publics]])
    ws.append([])
    ws.append(["notes", *["\n".join(sc.notes) for sc in scenarios]])
    ws.column_dimensions["A"].width = 30


def _plain(v):
    """A scenario value a cell can hold: numbers and text as they are, lists (never here) as text."""
    return v if v is None or isinstance(v, (int, float, str)) else str(v)
