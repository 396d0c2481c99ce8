"""`llm-sizer sweep`: the grid evaluated in one vectorized pass equals each point sized on its own;
its files (CSV and Markdown as goldens, the workbook's charts); bad --vary is one clear error."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from engine import cli
from engine import scenario as scn
from engine import sweep
from engine.errors import EngineError, RequirementError, ScenarioError
from engine.render import sweep_excel, sweep_text, terminal
from engine.sizing import evaluate_scenario

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
# small, and it reaches every status: TP 3 is refused (8 KV heads), the L4 does not fit 131,072 tokens
GRID = ["max_model_len=8192:131072:x4", "tensor_parallel_size=1,2,3"]


def _run(graph, catalog, varies, given=None, outputs=()):
    return sweep.run(graph, catalog, {"model": MODEL, **(given or {})}, [sweep.parse_vary(v) for v in varies],
                     outputs)


def _point_by_point(graph, catalog, sw, given, point):
    keys = {"model": MODEL, **given, **{k: _typed(k, v[point]) for k, v in sw.inputs.items()}}
    sc = scn.resolve(catalog, keys)
    try:
        result = evaluate_scenario(graph, catalog, sc)
    except RequirementError as exc:
        return "refused", exc.in_scenario(model=sc.model.id).message, None
    v = terminal.verdict(result, sc)
    return ("fits" if v["fits"] else "does not fit"), v["failed_condition"], result


def _typed(key, value):
    return scn.coerce(key, value.item() if hasattr(value, "item") else value)


@pytest.mark.parametrize("varies, given", [
    (GRID, {}),
    (["gpu=h100-sxm,l4", "batch_size=1:64:x4"], {"max_model_len": 32768}),
    (["gpu_memory_utilization=0.8:0.95:+0.05"], {"gpu": "l40s", "kv_cache_dtype": "fp8"}),
])
def test_vectorized_equals_each_point(graph, catalog, varies, given):
    sw = _run(graph, catalog, varies, given)
    assert len(sw) == np.prod([len(v.values) for v in sw.varies])
    for p in range(len(sw)):
        status, why, result = _point_by_point(graph, catalog, sw, given, p)
        assert sw.status[p] == status, p
        if status == "refused":
            assert sw.reason[p] == why
            assert all(np.isnan(sw.values[o][p]) for o in sw.outputs)
            continue
        assert sw.reason[p] == ("" if status == "fits" else f"fails {why}")
        for o in sw.outputs:
            assert sw.values[o][p] == pytest.approx(float(np.asarray(result[o])), rel=1e-12), (p, o)


def test_grid_reaches_every_status(graph, catalog):
    sw = _run(graph, catalog, ["gpu=h100-sxm,l4", "tensor_parallel_size=1,3"], {"max_model_len": 131072})
    assert set(sw.status) == {"fits", "does not fit", "refused"}
    assert "does not divide the 32 attention heads of meta-llama/Llama-3.1-8B-Instruct" in sw.reason[1]


def test_every_rule_applies_whatever_the_outputs(graph, catalog):
    """TP 3 breaks the attention-heads rule, which no formula behind kv_cache_bytes_per_token checks:
    the point is still refused, for the reason `size` gives."""
    sw = _run(graph, catalog, ["tensor_parallel_size=1,3"], {}, ["kv_cache_bytes_per_token"])
    assert list(sw.status) == ["fits", "refused"] and "32 attention heads" in sw.reason[1]


@pytest.fixture(scope="module")
def l4_files(graph, catalog, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    written = sweep.write_files(out, _run(graph, catalog, GRID, {"gpu": "l4"}))
    assert [p.rsplit("/", 1)[1] for p in written] == ["sweep.csv", "sweep.xlsx", "sweep.md"]
    return out


def test_csv_golden(l4_files, file_regression):
    file_regression.check((l4_files / "sweep.csv").read_text(), basename="sweep_l4", extension=".csv")


def test_markdown_golden(l4_files, file_regression):
    file_regression.check((l4_files / "sweep.md").read_text(), basename="sweep_l4", extension=".md")


def test_workbook_charts(graph, catalog):
    sw = _run(graph, catalog, GRID)
    dump = sweep_excel.dump(sweep_excel.build(sw))
    assert dump["Sweep"]["rows"] == 1 + len(sw)
    charts = dump["Charts"]["charts"]
    assert [c["title"] for c in charts] == [f"{o} vs max_model_len" for o in sweep_excel.chart_outputs(sw)]
    assert len(charts) >= 6
    for chart in charts:
        assert chart["type"] == "ScatterChart" and chart["x_title"] == "max_model_len (token)"
        assert chart["x_log"] == 4.0          # an x4 range on a log axis of its own factor
        assert chart["y_title"].split(" ")[0] in sw.outputs
        assert len(chart["series"]) == 3      # one per tensor_parallel_size
    assert {c["y_title"] for c in charts} >= {"ttft (ms)", "total_memory_per_gpu (GiB)"}


def test_categorical_first_key_is_a_bar_chart(graph, catalog):
    sw = _run(graph, catalog, ["gpu=h100-sxm,a100-80gb-sxm"], {"max_model_len": 8192}, ["ttft"])
    [chart] = sweep_excel.dump(sweep_excel.build(sw))["Charts"]["charts"]
    assert chart["type"] == "BarChart" and chart["x_title"] == "gpu" and chart["y_title"] == "ttft (ms)"


@pytest.mark.parametrize("text, values", [
    ("max_model_len=4096:131072:x2", [4096 * 2 ** i for i in range(6)]),
    ("batch-size=1:10:+3", [1, 4, 7, 10]),
    ("gpu_memory_utilization=0.8:0.95:+0.05", [0.8, 0.85, 0.9, 0.95]),
    ("tensor_parallel_size=8,1,2", [8, 1, 2]),
    ("kv_cache_dtype=auto,fp8", ["auto", "fp8"]),
])
def test_parse_vary(text, values):
    v = sweep.parse_vary(text)
    assert v.values == pytest.approx(values) if v.numeric else v.values == values


def _cli(*args):
    return CliRunner().invoke(cli.main, ["sweep", "--no-files", *args])


@pytest.mark.parametrize("varies, given, outputs, message", [
    (["max_model_lenn=4096:8192:x2"], {}, (), "did you mean 'max_model_len'?"),
    (["max_model_len=4k:128k:x2"], {}, (), "start '4k' is not a number"),
    (["max_model_len=8192:4096:x2"], {}, (), "the range is empty"),
    (["batch_size=1:64:x1"], {}, (), "a geometric range needs start > 0 and a factor above 1"),
    (["batch_size=1:2000000:+1"], {}, (), "more than the 1,000,000 points"),
    (["batch_size=1:1000:+1", "max_model_len=1:2000:+1"], {}, (), "2,000,000 points, more than 1,000,000"),
    (["tensor_parallel_size=0,1,2"], {}, (), "--tensor-parallel-size must be at least 1"),
    (["gpu_memory_utilization=0.5,1.5"], {}, (), "--gpu-memory-utilization must be at most 1"),
    (["batch_size=1:4:x1.5"], {}, (), "--batch-size takes whole numbers"),
    (["gpu=1:4:x2"], {}, (), "gpu is not numeric, so it takes a list"),
    (["gpu=h100-sxm,not-a-gpu"], {}, (), "not-a-gpu"),
    (["tensor_parallel_size=1,2,1"], {}, (), "1 is listed twice"),
    (["batch_size=1", "block_size=16", "max_num_seqs=8"], {}, (), "--vary is given 3 times"),
    (["batch_size=1,2", "batch-size=4,8"], {}, (), "--vary batch_size is given twice"),
    (["batch_size=1,2"], {"batch_size": 4}, (), "--batch-size is set and also varied"),
    (["batch_size=1,2"], {}, ("tfft",), "did you mean 'ttft'?"),
    (["batch_size"], {}, (), "expected KEY=start:stop:xK"),
    (["max_model_len=4096:262144:x2"], {}, (), "--vary max_model_len=4096:262144:x2: --max-model-len 262144 exceeds"),
    (["block_size=8,24"], {}, (), "--vary block_size=8,24: --block-size 24 is refused by vLLM"),
    ([], {}, (), "nothing to sweep"),
])
def test_bad_vary_is_one_clear_error(graph, catalog, varies, given, outputs, message):
    with pytest.raises(EngineError) as exc:
        sweep.run(graph, catalog, given, [sweep.parse_vary(v) for v in varies], outputs)
    assert message in str(exc.value) and len(str(exc.value)) < 2000 and exc.value.exit_code == 2


def test_bad_vary_on_the_command_line():
    out = _cli("--vary", "max_model_len=4096:131072:y2")
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert out.output.startswith("--vary max_model_len=4096:131072:y2: '4096:131072:y2' is not a range")


def test_cli_json_and_exit_codes():
    out = _cli("--vary", "tensor_parallel_size=1,3", "--max-model-len", "8192", "--json", "--output", "kv_cache_tokens")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert [p["status"] for p in doc["points"]] == ["fits", "refused"]
    assert doc["units"] == {"kv_cache_tokens": "token"} and doc["vary"][0]["values"] == [1, 3]
    assert doc["points"][1]["results"]["kv_cache_tokens"] is None
    assert "tensor_parallel_size" not in doc["scenario"] and doc["scenario"]["max_model_len"] == 8192
    none_fit = _cli("--vary", "max_model_len=65536,131072", "--gpu", "l4")
    assert none_fit.exit_code == 1 and "0 fit, 2 do not fit" in none_fit.output


def test_terminal_table_is_compact(graph, catalog):
    sw = _run(graph, catalog, ["batch_size=1:100:+1"])
    text = sweep_text.terminal(sw, [])
    assert len(text.splitlines()) < sweep_text.TERMINAL_ROWS + 10
    assert "100 points: 100 fit" in text and "(60 not shown)" in text


def test_scenario_file_list_points_to_vary(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("batch_size: [1, 2]\n")
    with pytest.raises(ScenarioError, match="--vary batch_size=a,b,c"):
        sweep.given_keys(str(f), {})
