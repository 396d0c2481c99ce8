"""The workbook is live: after inputs change, a spreadsheet engine recomputes every result cell
to the value the Python engine computes for the same change."""
from __future__ import annotations

import numpy as np
import pytest
import sympy

from engine import evaluate as ev
from engine import output, printers_excel
from engine import scenario as scn
from engine.sizing import evaluate_scenario
from engine.render import excel

SCENARIOS = {
    "dense": ({"model": "meta-llama/Llama-3.1-8B-Instruct"}, {"max_model_len": 32768, "gpu_memory_utilization": 0.8}),
    "moe_tp2": ({"model": "mistralai/Mixtral-8x7B-Instruct-v0.1", "tensor_parallel_size": 2},
                {"tp": 4, "max_num_seqs": 64}),
    "tensor_parallel": ({"model": "meta-llama/Llama-3.1-70B-Instruct", "tensor_parallel_size": 4},
                        {"tp": 8, "block_size": 32}),
    "fp8_kv": ({"model": "meta-llama/Llama-3.1-8B-Instruct", "kv_cache_dtype": "fp8"},
               {"kv_dtype_bytes": 2, "enforce_eager": 1}),
}


def _workbook(graph, catalog, keys):
    sc = scn.resolve(catalog, keys)
    result = evaluate_scenario(graph, catalog, sc)
    return result, sc, excel.build(result, sc, catalog)


def _recalculate(data: bytes, tmp_path, changes: dict) -> dict:
    """Change named input cells, let the `formulas` spreadsheet engine recompute, read every formula."""
    import formulas
    from openpyxl import load_workbook

    path = tmp_path / "book.xlsx"
    path.write_bytes(data)
    wb = load_workbook(path)
    rows = {wb["Inputs"].cell(r, 1).value: r for r in range(2, wb["Inputs"].max_row + 1)}
    model = formulas.ExcelModel().loads(str(path)).finish()
    solution = model.calculate(inputs={f"'[book.xlsx]INPUTS'!B{rows[k]}": v for k, v in changes.items()})
    calc = wb["Calculation"]
    return {calc.cell(r, 1).value: solution[f"'[book.xlsx]CALCULATION'!B{r}"].value[0][0]
            for r in range(2, calc.max_row + 1)}


@pytest.mark.parametrize("case", sorted(SCENARIOS))
def test_excel_recalculation_equals_engine(graph, catalog, tmp_path, case):
    keys, changes = SCENARIOS[case]
    result, sc, data = _workbook(graph, catalog, keys)
    changed = ev.evaluate(graph, {**scn.bindings(graph, catalog, sc), **changes})
    excel_values = _recalculate(data, tmp_path, changes)
    assert len(excel_values) == len(graph.formulas)
    moved = 0
    for name, value in excel_values.items():
        want = float(np.asarray(changed[name]))
        assert float(value) == pytest.approx(want, rel=1e-9, abs=1e-9), name
        moved += float(np.asarray(result[name])) != want
    assert moved >= 5, "the changed inputs must move results"


def test_workbook_dump(graph, catalog, data_regression):
    _, _, data = _workbook(graph, catalog, SCENARIOS["moe_tp2"][0])
    dump = excel.dump(data)
    assert dump["full_calc_on_load"] and set(dump["sheets"]) == {"Inputs", "Calculation", "Breakdown", "Latency", "Catalog"}
    assert dump["sheets"]["Breakdown"]["charts"][0]["grouping"] == "stacked"
    data_regression.check(dump, basename="workbook_moe_tp2")


@pytest.mark.parametrize("text, expected", [
    ("-x ** 2", "=-(POWER(x, 2))"),           # Excel would read =-x^2 as (-x)^2
    ("x - y / (z + 1)", "=x - (y/(z + 1))"),
    ("x // y", "=INT(x/y)"),
    ("ceiling(x / 4)", "=(-INT(-(x/4)))"),
    ("x % y", "=MOD(x, y)"),
    ("where(x > y and not (z == 1), Max(x, z), Min(y, 2))", "=IF(AND((x>y), (z<>1)), MAX(x, z), MIN(2, y))"),
    ("log(x) * 0.5", "=0.5*LN(x)"),
    ("x * y ** -1 * z ** 3", "=x*POWER(z, 3)/y"),
])
def test_excel_printer(text, expected):
    from engine import expressions

    names = {n: sympy.Symbol(n, positive=True) for n in "xyz"}
    assert printers_excel.excel(expressions.parse(text, names)) == expected


def test_excel_printer_fails_loudly():
    with pytest.raises(printers_excel.ExcelPrintError):
        printers_excel.excel(sympy.sin(sympy.Symbol("a")))
    with pytest.raises(printers_excel.ExcelPrintError):
        printers_excel.excel(sympy.Symbol("A1"))      # a cell reference, not a name
    with pytest.raises(printers_excel.ExcelPrintError):
        printers_excel.excel(sympy.Symbol("c"))       # R1C1 notation


def test_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "book.xlsx"
    target.write_bytes(b"good")

    def fail(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr("os.fsync", fail)
    with pytest.raises(OSError):
        output.write_atomic(target, b"half a workbook")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["book.xlsx"]
