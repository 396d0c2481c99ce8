"""`workbook --compare`: scenarios side by side stay live. After inputs change in each column, a
spreadsheet engine recomputes every formula cell of that column to the Python engine's value."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from engine import cli, compare
from engine import evaluate as ev
from engine import scenario as scn
from engine.render import excel_compare

from .conftest import FIXTURES

# a dense model on two GPUs with different KV formats, and an MoE at TP=2 (other inputs used)
FILES = [str(FIXTURES / "compare" / name) for name in ("h100.yaml", "l40s_fp8.yaml", "mixtral_tp2.yaml")]
CHANGES = [{"tp": 2, "max_model_len": 16384}, {"gpu_memory_utilization": 0.85, "kv_dtype_bytes": 2},
           {"tp": 4, "max_num_seqs": 64}]


@pytest.fixture(scope="module")
def files():
    return FILES


def _recalculate(data: bytes, tmp_path, changes: list) -> tuple[dict, object]:
    """Change input cells of each column, recompute with the `formulas` engine; (solution, workbook)."""
    import formulas
    from openpyxl import load_workbook

    path = tmp_path / "book.xlsx"
    path.write_bytes(data)
    wb = load_workbook(path)
    rows = {wb["Inputs"].cell(r, 1).value: r for r in range(2, wb["Inputs"].max_row + 1)}
    cells = {f"'[book.xlsx]INPUTS'!{excel_compare.column(j)}{rows[k]}": v
             for j, change in enumerate(changes) for k, v in change.items()}
    return formulas.ExcelModel().loads(str(path)).finish().calculate(inputs=cells), wb


def test_compare_recalculation_equals_engine(graph, catalog, files, tmp_path):
    data, results, scenarios = compare.workbook(graph, catalog, files, {})
    solution, wb = _recalculate(data, tmp_path, CHANGES)
    calc = wb["Calculation"]
    for j, (result, sc) in enumerate(zip(results, scenarios)):
        names = list(result.evaluated)
        changed = ev.evaluate(graph, {**scn.bindings(graph, catalog, sc, graph.inputs_for(names)), **CHANGES[j]},
                              names)
        checked = moved = 0
        for row in range(2, calc.max_row + 1):
            name = calc.cell(row, 1).value
            cell = calc[f"{excel_compare.column(j)}{row}"].value
            if name not in result.values:
                assert cell is None, (j, name)       # a formula this scenario's framework does not use
                continue
            got = solution[f"'[book.xlsx]CALCULATION'!{excel_compare.column(j)}{row}"].value[0][0]
            want = float(np.asarray(changed[name]))
            assert float(got) == pytest.approx(want, rel=1e-9, abs=1e-9), (j, name)
            checked += 1
            moved += float(np.asarray(result[name])) != want
        assert checked == len(names) and moved >= 5, (j, checked, moved)
    verdict_row = next(r for r in range(1, 10) if wb["Compare"].cell(r, 1).value == "verdict")
    assert [solution[f"'[book.xlsx]COMPARE'!{c}{verdict_row}"].value[0][0] for c in "BCD"] == ["fits"] * 3


def test_compare_layout(graph, catalog, files):
    from openpyxl import load_workbook
    import io

    data, results, _ = compare.workbook(graph, catalog, files, {"batch_size": 4})
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Inputs", "Calculation", "Compare", "Scenarios"] and wb.calculation.fullCalcOnLoad
    assert [c.value for c in wb["Inputs"][1][:4]] == ["input", "h100", "l40s_fp8", "mixtral_tp2"]
    inputs = {wb["Inputs"].cell(r, 1).value: r for r in range(2, wb["Inputs"].max_row + 1)}
    assert [wb["Inputs"].cell(inputs["batch_size"], c).value for c in (2, 3, 4)] == [4, 4, 4]   # options apply to all
    tp = wb["Calculation"]["C2"].value
    assert tp.startswith("=") and "Inputs!C" in tp and "Inputs!B" not in tp      # column C refers to column C
    [chart] = wb["Compare"]._charts
    assert chart.grouping == "stacked" and len(chart.series) == 6


@pytest.mark.parametrize("args, message", [
    (["--compare", "only.yaml"], "--compare needs two scenarios or more"),
    (["a.yaml", "b.yaml"], "unexpected argument 'a.yaml'"),
    (["--compare", "default", "no-such-scenario"], "no scenario file or named scenario 'no-such-scenario'"),
])
def test_compare_errors(args, message, tmp_path):
    out = CliRunner().invoke(cli.main, ["workbook", "-o", str(tmp_path / "c.xlsx"), *args])
    assert out.exit_code == 2 and message in out.output and "Traceback" not in out.output, out.output


def test_compare_cli_names_each_scenario(files, tmp_path):
    out = CliRunner().invoke(cli.main, ["workbook", "--compare", *files[:2], "-o", str(tmp_path / "c.xlsx")])
    assert out.exit_code == 0, out.output
    assert "h100: meta-llama/Llama-3.1-8B-Instruct on 1 x NVIDIA H100" in out.output and "l40s_fp8:" in out.output
    assert (tmp_path / "c.xlsx").stat().st_size > 0
