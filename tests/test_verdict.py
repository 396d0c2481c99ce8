"""One verdict: `fits` is the AND of its named conditions, `memory_shortfall` is 0 exactly when it fits,
and text, JSON, workbook and report say the same; a deployment that does not fit exits 1 without latency."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.cli import main

GIB = 2 ** 30


def run(*args):
    return CliRunner().invoke(main, list(args))


def sized(*args):
    result = run("size", "--json", *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


def value(data, name):
    return data["results"][name]["value"]


def test_utilization_that_overcommits_the_gpu_does_not_fit():
    """0.99 x 79.19 GiB plus CUDA context and graphs is more than the H100 holds (issue 8)."""
    result = run("size", "--no-files", "--gpu-memory-utilization", "0.99", "--max-model-len", "8192")
    assert result.exit_code == 1
    assert "Verdict: does NOT fit - short by 0.64 GiB per GPU: in use per GPU 79.83 GiB exceeds" in result.output
    assert "Latency" not in result.output and "vllm serve" not in result.output
    code, data = sized("--gpu-memory-utilization", "0.99", "--max-model-len", "8192")
    assert code == 1 and data["verdict"]["fits"] is False
    assert data["verdict"]["failed_condition"] == "fits_gpu_memory"
    assert value(data, "memory_headroom") < 0
    assert data["verdict"]["memory_shortfall"] == pytest.approx(-value(data, "memory_headroom"))
    assert value(data, "fits") == 0 and value(data, "failed_condition") == 1


def test_workload_larger_than_the_kv_cache_does_not_fit():
    result = run("size", "--no-files", "--batch-size", "100000", "--max-model-len", "8192")
    assert result.exit_code == 1 and "Verdict: fits" not in result.output
    assert "the workload needs 153,600,000 tokens of KV cache" in result.output
    code, data = sized("--batch-size", "100000", "--max-model-len", "8192")
    assert data["verdict"]["failed_condition"] == "fits_workload"
    assert data["verdict"]["conditions"] == {"fits_gpu_memory": True, "fits_one_request": True, "fits_workload": False}
    assert data["verdict"]["memory_shortfall"] == value(data, "workload_kv_cache_shortfall") > 18000 * GIB


def test_one_request_longer_than_the_kv_cache_names_a_length_that_fits():
    result = run("size", "--no-files", "--model", "meta-llama/Llama-3.1-70B-Instruct", "--tensor-parallel-size", "2")
    assert result.exit_code == 1
    assert "fewer than one request of max_model_len 131,072" in result.output and "would fit" in result.output
    assert "# no command: the deployment does not fit" in result.output


@pytest.mark.parametrize("args", [
    [], ["--gpu-memory-utilization", "0.99"], ["--batch-size", "100000"], ["--batch-size", "180"],
    ["--model", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "l4"], ["--gpu-memory-utilization", "0.95"],
    ["--max-model-len", "8192", "--batch-size", "288"], ["--enforce-eager", "--gpu-memory-utilization", "0.98"],
])
def test_fits_exactly_when_nothing_is_short(args):
    code, data = sized(*args)
    fits = data["verdict"]["fits"]
    assert code == (0 if fits else 1)
    assert fits == (value(data, "memory_shortfall") == 0) == all(data["verdict"]["conditions"].values())
    assert fits == (value(data, "fits") == 1)


def test_workload_exactly_at_the_kv_cache_boundary():
    """443,312 KV tokens hold 288 requests of 1,536 tokens (442,368) but not 289 (443,904)."""
    assert sized("--max-model-len", "8192", "--batch-size", "288")[1]["verdict"]["fits"] is True
    code, data = sized("--max-model-len", "8192", "--batch-size", "289")
    assert code == 1 and data["verdict"]["failed_condition"] == "fits_workload"
    # 592 tokens short, less what is left over below one block (16 tokens of 131,072 bytes)
    assert (592 - 16) * 131072 < data["verdict"]["memory_shortfall"] <= 592 * 131072


def test_variant_propagates_to_blocks_tokens_and_concurrency():
    base = sized("--max-model-len", "8192")[1]
    seed = sized("--max-model-len", "8192", "--variant", "hidden_size_kv")[1]
    assert value(seed, "kv_cache_bytes_per_token") == 4 * value(base, "kv_cache_bytes_per_token")
    for name in ("kv_block_bytes", "num_gpu_blocks", "kv_cache_tokens", "max_concurrency"):
        assert value(seed, name) != value(base, name), name
    assert value(seed, "kv_cache_tokens") == pytest.approx(value(base, "kv_cache_tokens") / 4, rel=0.01)
    assert seed["variant"] == "hidden_size_kv" and base["variant"] is None


def test_variant_is_named_in_every_output(tmp_path):
    from engine.render import excel

    result = run("size", "--max-model-len", "8192", "--variant", "hidden_size_kv", "--out", str(tmp_path))
    assert result.exit_code == 0
    assert "framework vllm [variant hidden_size_kv]" in result.output.splitlines()[0]
    assert "[variant hidden_size_kv]" in (tmp_path / "sizing.md").read_text().splitlines()[0]
    cells = excel.dump((tmp_path / "sizing.xlsx").read_bytes())["sheets"]["Breakdown"]["cells"]
    assert "hidden_size_kv" in [v for k, v in cells.items() if k.startswith("B")]


def test_report_and_workbook_carry_the_same_verdict(tmp_path):
    from engine.render import excel

    result = run("size", "--gpu-memory-utilization", "0.99", "--max-model-len", "8192", "--out", str(tmp_path))
    assert result.exit_code == 1 and "Wrote" in result.output
    report = (tmp_path / "sizing.md").read_text()
    assert "**Verdict: does NOT fit** (fails `fits_gpu_memory`; `memory_shortfall` = 0.64 GiB per GPU)" in report
    assert "Latency" not in report
    cells = excel.dump((tmp_path / "sizing.xlsx").read_bytes())["sheets"]["Breakdown"]["cells"]
    verdict_row = next(k[1:] for k, v in cells.items() if v == "verdict")
    assert cells["B" + verdict_row] == '=IF(fits=1,"fits","does NOT fit")'
    assert cells["C" + verdict_row] == "engine: does NOT fit"


def test_workbook_of_a_deployment_that_does_not_fit_is_written_and_exits_1(tmp_path):
    """The workbook is live (a user edits it until it fits), so it is written; the exit code says the verdict."""
    from click.testing import CliRunner

    from engine.cli import main

    out = tmp_path / "w.xlsx"
    result = CliRunner().invoke(main, ["workbook", "--model", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "l4",
                                       "-o", str(out)])
    assert result.exit_code == 1 and out.is_file()
    assert "Verdict: does NOT fit - short by" in result.output
