"""`llm-sizer plan`: ranking, Pareto front, reasons, the JSON contract (reproduced by `size`), files, errors.

A small plan (Qwen3-14B, 40 attention heads, on 4 GPUs with fixed fixture prices) keeps it fast and stable:
tests/fixtures/plan/prices.yaml replaces the catalog's prices.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from engine.cli import main
from tests.conftest import FIXTURES

PRICES = str(FIXTURES / "plan")
BASE = ["plan", "--catalogs", PRICES, "--model", "Qwen/Qwen3-14B", "--gpus", "h100-sxm,l40s,rtx-4090,l4",
        "--max-gpus", "16", "--max-model-len", "32768", "--concurrency", "16"]
ARGS = BASE + ["--max-itl", "25 ms"]


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def everything():
    """Every feasible candidate of the small plan, best first (in-process)."""
    from engine import plan, sizing

    g, c = sizing.load((), (PRICES,))
    options = {"max_model_len": ("32768",), "concurrency": "16", "max_itl": "25 ms", "max_gpus": 16,
               "gpus": "h100-sxm,l40s,rtx-4090,l4"}
    return plan.plan(g, c, plan.requirements(c, "Qwen/Qwen3-14B", options), top=None)


def _figure(c, name):
    return c["results"][name]["value"]


def test_ranked_by_cost_then_cost_per_token_then_itl(everything):
    keys = [(_figure(c, "cost_per_hour"), _figure(c, "cost_per_million_output_tokens"),
             _figure(c, "inter_token_latency")) for c in everything.candidates]
    assert len(keys) == everything.feasible > 10
    assert keys == sorted(keys)
    for c in everything.candidates:      # feasible: fits, under the limit, priced
        assert _figure(c, "fits") == 1 and _figure(c, "inter_token_latency") < 0.025
        assert c["scenario"]["gpu"] != "l4"
        assert math.isclose(_figure(c, "cost_per_hour"), _figure(c, "num_gpus") *
                            {"h100-sxm": 2.0, "l40s": 1.0, "rtx-4090": 0.5}[c["scenario"]["gpu"]])


def test_pareto_front_is_what_no_candidate_beats(everything):
    cost = np.array([_figure(c, "cost_per_hour") for c in everything.candidates])
    itl = np.array([_figure(c, "inter_token_latency") for c in everything.candidates])
    marked = np.array([c["pareto"] for c in everything.candidates])
    for i in range(len(cost)):
        twins = (cost == cost[i]) & (itl == itl[i])
        if twins.sum() > 1:
            continue      # an exact tie: only the first of them is marked, by construction
        beaten = ((cost <= cost[i]) & (itl <= itl[i]) & ~twins).any()
        assert marked[i] == (not beaten), i
    assert 1 < marked.sum() < len(marked)


def test_infeasible_families_say_why(everything):
    from engine import plan, sizing

    reasons = {x["family"]: x["reason"] for x in everything.infeasible}
    assert reasons["TP=16, PP=1 (every GPU)"].startswith(
        "refused: --tensor-parallel-size 16 does not divide the 40 attention heads of Qwen/Qwen3-14B")
    assert reasons["l4"] == "no price: the test fixture gives it none"
    assert not any(f.startswith(("h100-sxm", "l40s", "rtx-4090")) for f in reasons)   # each has feasible candidates
    g, c = sizing.load((), (PRICES,))
    options = {"max_model_len": ("32768",), "concurrency": "16", "gpus": "rtx-4090"}
    slow = plan.plan(g, c, plan.requirements(c, "Qwen/Qwen3-14B", {**options, "max_itl": "15 ms", "max_gpus": 2}))
    assert slow.feasible == 0 and slow.infeasible
    assert all(x["reason"].startswith("too slow: ") and "limit < 15 ms" in x["reason"] and "% over" in x["reason"]
               for x in slow.infeasible if "bfloat16 KV" in x["family"] or "fp8 KV" in x["family"])
    small = plan.plan(g, c, plan.requirements(c, "Qwen/Qwen3-14B", {**options, "max_itl": "25 ms", "max_gpus": 1}))
    short = {x["family"]: x["reason"] for x in small.infeasible}
    assert short["rtx-4090 none weights, bfloat16 KV cache"].startswith("does not fit: short by ")


def test_a_lower_utilization_is_a_fallback_where_the_default_does_not_fit():
    """2 x RTX 4090, TP=2: at vLLM's default 0.9 the CUDA context and graphs do not fit beside the budget; 0.85 does,
    and is shown (and put in the command) only there - where 0.9 fits, no lower one is listed."""
    from engine import plan, sizing

    g, c = sizing.load((), (PRICES,))
    options = {"max_model_len": ("32768",), "concurrency": "16", "max_itl": "25 ms", "gpus": "rtx-4090,h100-sxm",
               "quantization": "fp8", "kv_cache_dtype": "fp8", "max_gpus": 2}
    p = plan.plan(g, c, plan.requirements(c, "Qwen/Qwen3-14B", options), top=None)
    rtx = [x for x in p.candidates if x["scenario"]["gpu"] == "rtx-4090" and x["scenario"]["tensor_parallel_size"] == 2]
    assert [x["scenario"].get("gpu_memory_utilization") for x in rtx] == [0.85]
    assert all("gpu_memory_utilization" not in x["scenario"] for x in p.candidates if x["scenario"]["gpu"] == "h100-sxm")
    deployments = [(x["scenario"]["gpu"], x["scenario"]["tensor_parallel_size"], x["scenario"].get("pipeline_parallel_size", 1))
                   for x in p.candidates]
    assert len(deployments) == len(set(deployments))                   # one utilization per deployment
    assert any("--gpu-memory-utilization 0.85" in n for n in p.notes())


def test_too_slow_reports_the_best_candidate_of_the_family():
    """The ITL a 'too slow' reason quotes is the family's fastest that fits: tightening the limit just past it
    makes exactly that candidate feasible."""
    from engine import plan, sizing

    g, c = sizing.load((), (PRICES,))
    options = {"max_model_len": ("32768",), "concurrency": "16", "max_itl": "15 ms", "gpus": "rtx-4090",
               "quantization": "fp8", "kv_cache_dtype": "fp8", "max_gpus": 2}
    p = plan.plan(g, c, plan.requirements(c, "Qwen/Qwen3-14B", options))
    quoted = float(p.infeasible[0]["reason"].split("ITL ")[1].split(" ms")[0])
    relaxed = plan.plan(g, c, plan.requirements(c, "Qwen/Qwen3-14B", {**options, "max_itl": f"{quoted + 0.1} ms"}))
    assert p.feasible == 0 and relaxed.feasible >= 1
    assert min(round(_figure(x, "inter_token_latency") * 1e3, 1) for x in relaxed.candidates) == quoted


def test_json_contract_and_size_reproduces_each_candidate(tmp_path):
    result = run(*ARGS, "--json", "--top", "4")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["requirements", "candidates", "infeasible"]
    assert data["requirements"]["max_itl"] == {"value": 0.025, "unit": "s", "given": "25 ms"}
    assert len(data["candidates"]) == 4 and all(list(c) == ["scenario", "results"] for c in data["candidates"])
    assert all(set(x) == {"family", "reason"} for x in data["infeasible"])
    for k, cand in enumerate(data["candidates"][:3]):
        path = tmp_path / f"candidate{k}.yaml"
        path.write_text(yaml.safe_dump(cand["scenario"]))
        sized = run("size", "--catalogs", PRICES, "--scenario", str(path), "--json", "--no-files")
        assert sized.exit_code == 0, sized.stderr
        results = json.loads(sized.stdout)["results"]
        for name, figure in cand["results"].items():
            assert results[name]["unit"] == figure["unit"]
            assert math.isclose(results[name]["value"], figure["value"], rel_tol=1e-9, abs_tol=1e-12), name


def test_price_override_plans_a_gpu_without_a_price():
    result = run(*BASE, "--price", "l4=0.25", "--json", "--top", "0")
    data = json.loads(result.stdout)
    l4 = [c for c in data["candidates"] if c["scenario"]["gpu"] == "l4"]
    assert l4 and all(c["scenario"]["price_per_gpu_hour"] == 0.25 for c in l4)
    assert all(math.isclose(c["results"]["cost_per_hour"]["value"], 0.25 * c["results"]["num_gpus"]["value"])
               for c in l4)
    assert "l4" not in {x["family"] for x in data["infeasible"]}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan")
    result = run(*ARGS, "--top", "5", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    return out, result.stdout


def test_terminal_golden(files, file_regression):
    file_regression.check(files[1].replace(str(files[0]), "OUT"), basename="plan_terminal", extension=".txt")


def test_csv_golden(files, file_regression):
    file_regression.check((files[0] / "plan.csv").read_text(), basename="plan", extension=".csv")


def test_markdown_golden(files, file_regression):
    file_regression.check((files[0] / "plan.md").read_text(), basename="plan", extension=".md")


def test_xlsx_golden(files, data_regression):
    """Cells, and the chart: cost per hour against ITL, the Pareto front a series of its own."""
    from openpyxl import load_workbook

    wb = load_workbook(files[0] / "plan.xlsx")
    dump = {}
    for ws in wb.worksheets:
        cells = {c.coordinate: round(c.value, 6) if isinstance(c.value, float) else c.value
                 for row in ws.iter_rows() for c in row if c.value is not None}
        charts = [{"type": type(ch).__name__, "series": [{"x": s.xVal.numRef.f, "y": s.yVal.numRef.f}
                                                         for s in ch.series]} for ch in ws._charts]
        dump[ws.title] = {"cells": cells, "charts": charts}
    assert [s["y"] for s in dump["Plan"]["charts"][0]["series"]][1].startswith("'Plan'!$U$")
    data_regression.check(dump, basename="plan_xlsx")


@pytest.mark.parametrize("args, code, words", [
    (["--gpus", "h100-sxn"], 2, ["--gpus: unknown GPU 'h100-sxn'", "did you mean 'h100-sxm'?"]),
    (["--max-itl", "1 ms"], 1, ["no deployment in the catalog meets ITL < 1 ms", "closest: "]),
    (["--max-itl", "30"], 2, ["--max-itl"]),
    (["--max-itl", "30 GB"], 2, ["--max-itl '30 GB' has the wrong dimension"]),
    (["--min-throughput", "fast"], 2, ["--min-throughput is not a quantity"]),
    (["--price", "l40s=cheap"], 2, ["--price l40s"]),
    (["--concurrency", "4", "--request-rate", "2"], 2, ["give --concurrency or --request-rate, not both"]),
])
def test_bad_requests_get_one_clear_error(args, code, words):
    result = run(*ARGS, *args)
    assert result.exit_code == code
    assert "Traceback" not in result.stderr and len(result.stderr) < 2000
    for w in words:
        assert w in result.stderr, result.stderr


def test_every_gpu_has_a_price_record(catalog):
    """A price with its provider, source and date, or a reason why none is public: never a silent gap."""
    from engine import units

    for gid in catalog.gpus:
        rec = catalog.prices[gid]
        if rec["usd_per_gpu_hour"] is None:
            assert rec["why_none"]
            continue
        assert rec["provider"] and rec["source"].split()[0].startswith("http") and rec["date"].startswith("2026-")
        assert 0.05 < units.parse_quantity(rec["usd_per_gpu_hour"], "USD / gpu / hour") < 20


def test_size_leaves_cost_out_without_a_price_and_takes_one_given():
    without = json.loads(run("size", "--gpu", "l4", "--model", "Qwen/Qwen3-4B", "--json").stdout)["results"]
    assert "cost_per_hour" not in without and "kv_cache_tokens" in without
    given = json.loads(run("size", "--gpu", "l4", "--model", "Qwen/Qwen3-4B", "--price-per-gpu-hour", "0.8",
                           "--json").stdout)["results"]
    assert given["cost_per_hour"] == {"value": 0.8, "unit": "USD / hour"}


def test_search_space_is_catalog_data(tmp_path):
    """What plan tries is catalogs/frameworks.yaml's vllm.plan_search: a user catalog narrows it, and a record
    without it is refused by name."""
    frameworks = yaml.safe_load((FIXTURES.parent.parent / "catalogs" / "frameworks.yaml").read_text())
    frameworks["frameworks"]["vllm"]["plan_search"]["tensor_parallel_sizes"] = [1, 2]
    frameworks["frameworks"]["vllm"]["plan_search"]["kv_cache_dtypes"] = ["fp8"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "frameworks.yaml").write_text(yaml.safe_dump(frameworks))
    out = run(*BASE[:3], "--catalogs", str(mine), *BASE[3:], "--json")
    assert out.exit_code in (0, 1), out.output
    cands = json.loads(out.output)["candidates"]
    assert cands and {c["scenario"]["tensor_parallel_size"] for c in cands} <= {1, 2}
    assert {c["scenario"]["kv_cache_dtype"] for c in cands} == {"fp8"}
    for broken, words in ((1.5, "holds 1.5"), ("high", "holds 'high'")):
        frameworks["frameworks"]["vllm"]["plan_search"]["gpu_memory_utilizations"] = [0.9, broken]
        (mine / "frameworks.yaml").write_text(yaml.safe_dump(frameworks))
        bad = CliRunner().invoke(main, [*BASE[:3], "--catalogs", str(mine), *BASE[3:]])
        assert bad.exit_code == 2 and words in bad.output and "Traceback" not in bad.output
    del frameworks["frameworks"]["vllm"]["plan_search"]
    (mine / "frameworks.yaml").write_text(yaml.safe_dump(frameworks))
    bad = CliRunner().invoke(main, [*BASE[:3], "--catalogs", str(mine), *BASE[3:]])
    assert bad.exit_code == 2 and "frameworks.vllm.plan_search needs" in bad.output and "Traceback" not in bad.output
