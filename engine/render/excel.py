"""The sizing as a live Excel workbook: named inputs, formulas printed from the same sympy
expressions the engine evaluates, the catalog rows used, and a memory chart.

Sheets: Inputs (one defined name per input), Calculation (one defined name per formula, in
dependency order), Breakdown (GiB per component and a stacked bar chart), Catalog (the records
used). Excel and LibreOffice recalculate everything on load; the engine's own values sit beside
each formula for comparison.
"""
from __future__ import annotations

import io

import numpy as np

from ..compiled import ExcelPrintError, valid_name
from ..evaluate import Result, derive
from ..units import GIB

BREAKDOWN = [("Weights", "weight_memory_per_gpu"), ("Activation peak", "activation_peak_memory"),
             ("Non-torch memory", "non_torch_memory"), ("CUDA context", "cuda_context_memory"),
             ("CUDA graphs", "cuda_graph_memory"),
             ("KV cache", "available_kv_cache_memory")]
HEADER = {"bold": True}


def _number_format(unit: str) -> str:
    if unit.startswith("byte") or unit.startswith("token") or unit.startswith("block") or unit.startswith("parameter"):
        return "#,##0"
    return "0.00##"


def _scalar(v):
    return float(np.asarray(v, dtype=float).reshape(-1)[0])


def build(result: Result, sc, catalog) -> bytes:
    """The workbook's bytes (written atomically by the caller)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    graph = result.graph
    wb = Workbook()
    wb.calculation.fullCalcOnLoad = True
    inputs = wb.active
    inputs.title = "Inputs"
    used_inputs = [n for n in graph.inputs if n in result.values]
    _inputs_sheet(wb, inputs, graph, result, used_inputs, Font(**HEADER))
    _calculation_sheet(wb, graph, result, Font(**HEADER))
    _breakdown_sheet(wb, result, sc, Font(**HEADER))
    if "ttft" in result:
        from .. import latency

        _latency_sheet(wb, Font(**HEADER), latency.sweep(result))
    _catalog_sheet(wb, sc, catalog, Font(**HEADER))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _define(wb, name: str, sheet: str, cell: str):
    from openpyxl.workbook.defined_name import DefinedName

    if not valid_name(name):
        raise ExcelPrintError(f"'{name}' cannot be an Excel defined name")
    ref = f"'{sheet}'!${cell[0]}${cell[1:]}"
    dn = DefinedName(name, attr_text=ref)
    try:
        wb.defined_names[name] = dn        # openpyxl >= 3.1
    except TypeError:  # pragma: no cover - older openpyxl
        wb.defined_names.append(dn)


def _inputs_sheet(wb, ws, graph, result, names, bold):
    from openpyxl.worksheet.datavalidation import DataValidation

    ws.append(["input", "value", "unit", "doc", "from"])
    for c in ws[1]:
        c.font = bold
    for row, name in enumerate(names, start=2):
        decl = graph.inputs[name]
        fp = decl.fixed_point     # solved by llm-sizer; an edit elsewhere leaves it stale: say how to re-solve it
        origin = (f"solved by llm-sizer so that {fp['of']} equals it; after editing the load, Goal Seek "
                  f"{fp['of']} - {name} to 0 by changing this cell") if fp else decl.source_path or ""
        ws.append([name, _scalar(result[name]), decl.unit_text, decl.doc, origin])
        ws.cell(row, 2).number_format = _number_format(decl.unit_text)
        _define(wb, name, ws.title, f"B{row}")
        dv = _validation(decl, DataValidation)
        if dv is not None:
            ws.add_data_validation(dv)
            dv.add(f"B{row}")
    ws.column_dimensions["A"].width = 34
    ws.column_dimensions["B"].width = 18
    ws.column_dimensions["D"].width = 80


def _validation(decl, DataValidation):
    """A choice where the value is one (0/1 flags), bounds where the formulas declare them."""
    if decl.integer and decl.min == 0 and decl.max == 1:
        return DataValidation(type="list", formula1='"0,1"', allow_blank=False,
                              error=f"{decl.name} is 0 or 1", showErrorMessage=True)
    if decl.min is None and decl.max is None and not decl.integer:
        return None
    kind = "whole" if decl.integer else "decimal"
    lo = decl.min if decl.min is not None else -1e300
    hi = decl.max if decl.max is not None else 1e300
    return DataValidation(type=kind, operator="between", formula1=str(lo), formula2=str(hi),
                          error=f"{decl.name}: {decl.doc}", showErrorMessage=True)


def _calculation_sheet(wb, graph, result, bold):
    ws = wb.create_sheet("Calculation")
    ws.append(["formula", "value (Excel)", "unit", "engine value", "doc", "expression", "numbers", "sources"])
    for c in ws[1]:
        c.font = bold
    for row, name in enumerate([n for n in graph.order(result.variant) if n in result.values], start=2):
        f = graph.formulas[name]
        code = graph.code(name, result.variant)
        if name not in result.evaluated:     # pinned (a framework's stand-in): its value, as sized
            ws.append([name, _scalar(result[name]), f.unit_text, _scalar(result[name]), f.doc, "given", "", ""])
            _define(wb, name, ws.title, f"B{row}")
            continue
        if code.excel is None:
            raise ExcelPrintError(f"formula '{name}' has no Excel form (its expression or a name in it)")
        d = derive(result, name, {n: True for n in graph.formulas})
        ws.append([name, code.excel, f.unit_text, _scalar(result[name]), f.doc,
                   code.text, d.substituted, "; ".join(map(str, f.sources))])
        for col in (2, 4):
            ws.cell(row, col).number_format = _number_format(f.unit_text)
        _define(wb, name, ws.title, f"B{row}")
    for col, width in zip("ABCDEFGH", (34, 20, 16, 20, 70, 60, 50, 40)):
        ws.column_dimensions[col].width = width


def _breakdown_sheet(wb, result, sc, bold):
    from openpyxl.chart import BarChart, Reference

    from .terminal import MINIMUM, uses_vllm_budget, verdict

    ws = wb.create_sheet("Breakdown")
    ws.append(["memory per GPU", "GiB", "GB"])
    for c in ws[1]:
        c.font = bold
    names = sc.framework["memory_model"]["verdict"]
    vllm_budget = uses_vllm_budget(sc)
    rows = BREAKDOWN if vllm_budget else MINIMUM
    for label, name in rows:
        ws.append([label, f"={name}/{GIB}", f"={name}/1000000000"])
    end = len(rows) + 1
    ws.append(["in use per GPU (budget + context + graphs)" if vllm_budget else "needed per GPU (framework-overhead minimum)",
               f"=SUM(B2:B{end})", f"=SUM(C2:C{end})"])
    ws.append(["GPU total (runtime)", f"=gpu_memory_total/{GIB}", "=gpu_memory_total/1000000000"])
    ws.append(["memory shortfall per GPU", f"={names['shortfall']}/{GIB}", f"={names['shortfall']}/1000000000"])
    for row in ws.iter_rows(min_row=2, min_col=2, max_col=3):
        for c in row:
            c.number_format = "0.00"
    # The verdict, live: Excel recomputes it from the same formulas when an input changes.
    ws.append([])
    ws.append(["verdict", f'=IF({names["fits"]}=1,"fits","does NOT fit")',
               f"engine: {'fits' if verdict(result, sc)['fits'] else 'does NOT fit'}"])
    for condition in names["conditions"]:
        ws.append([condition, f"={condition}"])
    ws.append(["variant", result.variant or "none (the default formulas)"])
    ws.column_dimensions["A"].width = 30
    chart = BarChart()
    chart.type, chart.grouping, chart.overlap = "bar", "stacked", 100
    chart.title, chart.y_axis.title = "Memory per GPU", "GiB"
    for r in range(2, end + 1):
        chart.add_data(Reference(ws, min_col=2, min_row=r), titles_from_data=False)
        chart.series[-1].tx = _series_title(ws, r)
    chart.set_categories(Reference(ws, min_col=1, min_row=2))
    ws.add_chart(chart, "E2")


LATENCY = [("Time to first token (ms)", "=ttft*1000"), ("Inter-token latency (ms)", "=inter_token_latency*1000"),
           ("End-to-end latency (ms)", "=e2e_latency*1000")]


def _latency_sheet(wb, bold, sweep: dict):
    from openpyxl.chart import LineChart, Reference

    ws = wb.create_sheet("Latency")
    ws.append(["latency (roofline, live)", "value"])
    for c in ws[1]:
        c.font = bold
    for label, formula in LATENCY:
        ws.append([label, formula])
    ws.append(["Output throughput (tokens/s)", "=output_throughput"])
    for row in ws.iter_rows(min_row=2, min_col=2, max_col=2):
        row[0].number_format = "#,##0.00"
    ws.column_dimensions["A"].width = 32
    # the sweep is computed by llm-sizer (one vectorized evaluation), not live: say so in the sheet
    top = ws.max_row + 2
    ws.cell(top, 1, f"vs {sweep['axis']} (computed by llm-sizer for this scenario; not live)").font = bold
    header = [sweep["axis"], "TTFT (ms)", "inter-token (ms)", "E2E (s)", "output tokens/s"]
    for col, label in enumerate(header, 1):
        ws.cell(top + 1, col, label).font = bold
    for i, x in enumerate(sweep["x"]):
        values = [x, sweep["ttft"][i] * 1e3, sweep["inter_token_latency"][i] * 1e3, sweep["e2e_latency"][i],
                  sweep["output_throughput"][i]]
        for col, v in enumerate(values, 1):
            ws.cell(top + 2 + i, col, v).number_format = "#,##0.00" if col > 1 or isinstance(x, float) else "0"
    last = top + 1 + len(sweep["x"])
    for n, (col, title, axis) in enumerate(zip((2, 3, 4), sweep["titles"], header[1:4])):
        chart = LineChart()      # one chart per quantity: each its own axis, TTFT no longer dwarfed by E2E
        chart.title, chart.y_axis.title, chart.x_axis.title = title, axis, sweep["axis"]
        chart.add_data(Reference(ws, min_col=col, min_row=top + 1, max_row=last), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=top + 2, max_row=last))
        ws.add_chart(chart, f"H{2 + 16 * n}")


def _series_title(ws, row):
    from openpyxl.chart.series import SeriesLabel
    from openpyxl.chart.data_source import StrRef

    return SeriesLabel(strRef=StrRef(f"'{ws.title}'!$A${row}"))


def _catalog_sheet(wb, sc, catalog, bold):
    ws = wb.create_sheet("Catalog")
    sections = [
        (f"model {sc.model.id}", {**sc.model.arch, "config source": sc.model.source or ""}),
        (f"gpu {sc.gpu_id}", {k: v for k, v in sc.gpu.items() if k not in ("sources", "notes")}),
        (f"quantization {sc.quant_id}", sc.quant),
        (f"framework {sc.framework_id}", {k: v for k, v in sc.framework.items() if k != "engine_defaults"}),
        ("fit vllm_memory", catalog.fits.get("vllm_memory", {}).get("constants", {})),
    ]
    for title, record in sections:
        ws.append([title])
        ws.cell(ws.max_row, 1).font = bold
        for key, value in record.items():
            ws.append([key, value if isinstance(value, (int, float, str)) else str(value)])
        ws.append([])
    sources = sc.gpu.get("sources", {})
    ws.append(["sources"])
    ws.cell(ws.max_row, 1).font = bold
    for key, value in sources.items():
        ws.append([f"gpu {key}", str(value)])
    ws.column_dimensions["A"].width = 36
    ws.column_dimensions["B"].width = 90


def dump(data: bytes) -> dict:
    """A canonical, comparable view of a workbook: cells, formulas, names, validations, charts."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data))
    out = {"defined_names": {n: wb.defined_names[n].attr_text for n in sorted(wb.defined_names)},
           "full_calc_on_load": bool(wb.calculation.fullCalcOnLoad), "sheets": {}}
    for ws in wb.worksheets:
        cells = {}
        for row in ws.iter_rows():
            for c in row:
                if c.value is not None:
                    v = c.value
                    cells[c.coordinate] = round(v, 6) if isinstance(v, float) else v
        sheet = {"cells": cells}
        if ws.data_validations.dataValidation:
            sheet["validations"] = sorted(f"{dv.sqref} {dv.type} {dv.formula1} {dv.formula2}"
                                          for dv in ws.data_validations.dataValidation)
        if ws._charts:
            sheet["charts"] = [{"type": type(ch).__name__, "grouping": ch.grouping,
                                "series": [s.val.numRef.f for s in ch.series]} for ch in ws._charts]
        out["sheets"][ws.title] = sheet
    return out
