"""The plan's outputs: the terminal table, CSV, an XLSX with a cost-vs-latency chart, and Markdown.

Every figure is a formula's value from engine.plan; here they are only put in columns, with latencies
shown in ms and memory in GiB (display units, engine.units).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from ..units import GIB

# column title, unit shown, how a candidate gives it (scenario key or result name), display scale
COLUMNS = [
    ("GPU", "", "gpu", None), ("GPUs", "", "num_gpus", 1), ("TP", "", "tensor_parallel_size", None),
    ("PP", "", "pipeline_parallel_size", None), ("util", "", "gpu_memory_utilization", None), ("weights", "", "weights", None),
    ("KV cache", "", "kv_cache_dtype", None), ("context", "tokens", "max_model_len", None),
    ("cost", "USD/hour", "cost_per_hour", 1), ("cost", "USD/M output tokens", "cost_per_million_output_tokens", 1),
    ("TTFT", "ms", "ttft", 1e3), ("ITL", "ms", "inter_token_latency", 1e3), ("E2E", "s", "e2e_latency", 1),
    ("throughput", "tokens/s", "output_throughput", 1), ("KV-cache tokens", "", "kv_cache_tokens", 1),
    ("weights/GPU", "GiB", "weight_memory_per_gpu", 1 / GIB), ("Pareto front", "", "pareto", None),
]
TERMINAL = {"GPUs": "{:,.0f}", "context": "{:,}", "USD/hour": "{:,.2f}", "USD/M output tokens": "{:,.3f}",
            "TTFT": "{:,.1f}", "ITL": "{:,.2f}", "throughput": "{:,.0f}"}


def rows(p) -> list[list]:
    """One row per candidate, best first, in the columns above (numbers unformatted)."""
    out = []
    for rank, c in enumerate(p.candidates, 1):
        s, r = c["scenario"], c["results"]
        row = [rank]
        for _, _, key, scale in COLUMNS:
            if key == "weights":
                row.append(c["weights"])
            elif key == "kv_cache_dtype":
                row.append(c["kv_dtype"])
            elif key == "pareto":
                row.append("yes" if c["pareto"] else "")
            elif key == "pipeline_parallel_size":
                row.append(s.get(key, 1))
            elif key == "gpu_memory_utilization":
                row.append(s.get(key, p.requirements.utilizations[0]))
            elif scale is None:
                row.append(s[key])
            else:
                row.append(r[key]["value"] * scale)
        out.append(row)
    return out


def header() -> list[str]:
    return ["rank"] + [f"{title} ({unit})" if unit else title for title, unit, _, _ in COLUMNS]


# -- terminal --------------------------------------------------------------------------------------

def terminal(p, command: str | None) -> str:
    from .terminal import table

    out = [headline(p), summary(p), ""]
    shown = ["GPU", "GPUs", "TP", "PP", "util", "weights", "KV cache", "context", "USD/hour", "USD/M output tokens",
             "TTFT", "ITL", "throughput"]
    head = ["#", "GPU", "GPUs", "TP", "PP", "util", "weights", "KV cache", "context", "$/hour", "$/M tok", "TTFT ms",
            "ITL ms", "tok/s", "front"]
    body = []
    for row in rows(p):
        cells = [str(row[0])]
        for (title, unit, _, _), value in zip(COLUMNS, row[1:]):
            name = unit if title == "cost" else title
            if name in shown:
                cells.append(TERMINAL.get(name, "{}").format(value))
        cells.append("*" if row[-1] else "")
        body.append(cells)
    if body:
        out += [table(body, head), "* on the Pareto front of cost per hour vs ITL: no candidate as cheap or cheaper "
                "has a lower ITL", ""]
    if p.infeasible:
        out.append("Not feasible:")
        out += [f"  {x['family']}: {x['reason']}" for x in p.infeasible]
    out += ([""] if p.infeasible else []) + [f"Note: {n}" for n in p.notes()]
    if command:
        out += ["", "Command for #1:", "  " + command]
    return "\n".join(line.rstrip() for line in "\n".join(out).splitlines())


def headline(p) -> str:
    req, w = p.requirements, p.requirements.workload
    load = (f"{w['concurrency']:,} concurrent users" if "concurrency" in w else
            f"{w['request_rate']:g} requests/s" if "request_rate" in w else "one offline batch")
    lens = " or ".join(f"{n:,}" for n in req.max_model_len)
    tokens = (f", {w['input_tokens']:,g} + {w['output_tokens']:,g} tokens per request"
              if "input_tokens" in w and "output_tokens" in w else "")
    return f"Plan for {p.model_id}: max_model_len {lens}, {load}{tokens}; {req.conditions()}"


def summary(p) -> str:
    req = p.requirements
    axes = " x ".join(_count(n, what) for n, what in (
        (len(req.gpus), "GPU"), (len(req.parallel), "TP/PP layout"), (len(req.utilizations), "memory utilization"),
        (len(req.quantizations), "weight format"),
        (len(req.kv_cache_dtypes), "KV-cache dtype"), (len(req.max_model_len), "context length")))
    best = f", the {len(p.candidates)} cheapest below" if p.candidates else ""
    return f"{p.evaluated:,} candidates ({axes}) evaluated in one vectorized pass: {p.feasible:,} feasible{best}."


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


# -- files -----------------------------------------------------------------------------------------

def csv_text(p) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header())
    writer.writerows([[_plain(v) for v in row] for row in rows(p)])
    return buf.getvalue()


def _plain(v):
    return f"{v:.6g}" if isinstance(v, float) else v


def xlsx(p) -> bytes:
    """The plan as a sheet, and a scatter chart of cost per hour vs ITL with the Pareto front as its own series."""
    from openpyxl import Workbook
    from openpyxl.chart import Reference, ScatterChart, Series
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "Plan"
    ws.append([headline(p)])
    ws.append([summary(p)])
    ws.append(header())
    for cell in ws[3]:
        cell.font = Font(bold=True)
    data = rows(p)
    for row in data:
        ws.append(row)
    first, last = 4, 3 + len(data)
    col = {h: i + 1 for i, h in enumerate(header())}
    front = [r for r in data if r[-1]]
    fx, fy = len(header()) + 2, len(header()) + 3     # the front's own columns, so its series is a contiguous range
    ws.cell(3, fx, "Pareto front: ITL (ms)").font = Font(bold=True)
    ws.cell(3, fy, "Pareto front: cost (USD/hour)").font = Font(bold=True)
    for k, r in enumerate(front):
        ws.cell(first + k, fx, r[col["ITL (ms)"] - 1])
        ws.cell(first + k, fy, r[col["cost (USD/hour)"] - 1])
    if data:
        chart = ScatterChart()
        chart.title = "Cost per hour vs inter-token latency"
        chart.style = 13
        chart.x_axis.title = "ITL (ms)"
        chart.y_axis.title = "USD / hour"
        for title, xcol, ycol, n in (("feasible candidates", col["ITL (ms)"], col["cost (USD/hour)"], len(data)),
                                      ("Pareto front", fx, fy, len(front))):
            s = Series(Reference(ws, min_col=ycol, min_row=first, max_row=first + n - 1),
                       Reference(ws, min_col=xcol, min_row=first, max_row=first + n - 1), title=title)
            s.marker.symbol = "circle" if title != "Pareto front" else "diamond"
            s.graphicalProperties.line.noFill = True
            chart.series.append(s)
        ws.add_chart(chart, ws.cell(last + 3, 2).coordinate)
    _infeasible_sheet(wb.create_sheet("Not feasible"), p, Font)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _infeasible_sheet(ws, p, Font):
    ws.append(["family", "reason"])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for x in p.infeasible:
        ws.append([x["family"], x["reason"]])


def markdown(p, command: str | None) -> str:
    from . import markdown as md

    return md.render("plan.md.j2", headline=headline(p), summary=summary(p), header=header(), rows=rows(p),
                     infeasible=p.infeasible, notes=p.notes(), command=command)


def write(p, out_dir, command: str | None) -> list[str]:
    """plan.csv, plan.xlsx and plan.md in out_dir, each written atomically."""
    from .. import output

    files = {"plan.csv": csv_text(p), "plan.xlsx": xlsx(p), "plan.md": markdown(p, command)}
    written = []
    for name, data in files.items():
        written.append(str(output.write_atomic(Path(out_dir) / name, data)))
    return written
