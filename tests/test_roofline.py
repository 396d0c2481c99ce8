"""The roofline against first principles, against the seeds' calibration rules, and against vLLM."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from engine import accuracy, fitting
from engine.cli import main

GOALS = {"itl": 5.0, "ttft": 10.0, "e2e": 5.0}


def test_latency_accuracy_goals(graph, catalog):
    """In-sample: the two synchronous rows the constants were fitted on (one model, TP=1, H100)."""
    report = accuracy.latency_accuracy(graph, catalog)
    assert len(report["cases"]) == 2
    for key, goal in GOALS.items():
        assert report["mean_abs_error_pct"][key] <= goal, report["mean_abs_error_pct"]


def test_calibration_reproduces_the_recorded_fit(graph, catalog):
    fresh = fitting.fit_latency(graph, catalog, "h100-sxm")
    recorded = catalog.fits["roofline_h100-sxm"]
    for key, value in fresh["constants"].items():
        assert value == pytest.approx(recorded["constants"][key], abs=2e-3), key
    assert fresh["dataset"]["prefix_cache_hit_fraction"] == pytest.approx(
        recorded["dataset"]["prefix_cache_hit_fraction"], abs=0.02)
    assert any("too slow" in line for line in fresh["verdict"])


def test_prefill_flops_are_two_per_non_embedding_weight_for_short_prompts(size):
    """Kaplan et al. (2020): a forward pass costs about 2 N FLOPs per token, N the non-embedding parameters."""
    result, _ = size(model="meta-llama/Llama-3.1-8B-Instruct", input_tokens=128, output_tokens=1)
    non_embedding = float(result["total_params"]) - float(result["embedding_params"]) - float(result["lm_head_params"])
    assert float(result["prefill_flops"]) == pytest.approx(2 * 128 * non_embedding, rel=0.02)


def test_bounds(size):
    small, _ = size(batch_size=1, input_tokens=4096)
    assert float(small["prefill_compute_bound"]) == 1 and float(small["decode_compute_bound"]) == 0
    huge, _ = size(batch_size=1024, input_tokens=128, output_tokens=128)
    assert float(huge["decode_compute_bound"]) == 1


def test_tensor_parallel_speeds_up_decode(size):
    one, _ = size(model="meta-llama/Llama-3.1-70B-Instruct", tensor_parallel_size=2, batch_size=1)
    four, _ = size(model="meta-llama/Llama-3.1-70B-Instruct", tensor_parallel_size=4, batch_size=1)
    assert float(four["inter_token_latency"]) < float(one["inter_token_latency"]) * 0.6


def test_moe_decode_reads_only_touched_experts(size):
    b1, _ = size(model="mistralai/Mixtral-8x7B-Instruct-v0.1", tensor_parallel_size=2, batch_size=1)
    assert float(b1["expert_read_fraction"]) == 0.25
    assert float(b1["decode_bytes_per_step"]) < 0.4 * float(b1["weight_memory_per_gpu"])


def test_e2e_is_ttft_plus_decode_steps(size):
    r, _ = size(batch_size=4, input_tokens=2000, output_tokens=300)
    assert float(r["e2e_latency"]) == pytest.approx(float(r["ttft"]) + 299 * float(r["inter_token_latency"]))
    assert float(r["output_throughput"]) == pytest.approx(4 / float(r["inter_token_latency"]))


def test_hidden_size_kv_flops_variant(size):
    ours, _ = size(model="meta-llama/Llama-2-7b-hf", input_tokens=1000)
    seed, _ = size(variant="hidden_size_kv", model="meta-llama/Llama-2-7b-hf", input_tokens=1000)
    assert float(seed["prefill_flops"]) < 0.5 * float(ours["prefill_flops"])


def test_bad_calibration_value_is_a_located_error(tmp_path):
    """002's troubleshooting case: 'BwEffConstant must be a valid positive number, got 0'."""
    (tmp_path / "cal.yaml").write_text(
        "schema: 1\ncalibration:\n  gpus:\n    h100-sxm:\n      BwEffConstant: 0\n      mfuPrefill: 0.65\n"
        "      mfuDecode: 0.12\n      tpScalingExponent: 0.8\n      decodeTpScalingExponent: 1.0\n"
        "      TOverheadMicros: 50\n      prefillOverheadMicros: 100\n      mixedPrefillOverheadMicros: 50\n"
        "      vectorPeakFraction: 0.1\n      allReduceLatency: 20\n      perLayerOverhead: 5\n"
        "      mfuPrefillMultiplier: 1\n      mfuDecodeMultiplier: 1\n      prefillBwFactor: 1\n"
        "      decodeBwFactor: 1.5\n")
    result = CliRunner().invoke(main, ["check", "--catalogs", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "cal.yaml:5:22: BwEffConstant must be between 0.3 and 1.0 for h100-sxm, got 0" in result.output
    assert "decodeBwFactor must be between 0.5 and 1.0 for h100-sxm, got 1.5" in result.output


def test_json_has_latency_names():
    import json

    data = json.loads(CliRunner().invoke(main, ["size", "--json"]).output)["results"]
    for name, unit in [("ttft", "s"), ("inter_token_latency", "s"), ("e2e_latency", "s"),
                       ("output_throughput", "token / s")]:
        assert data[name]["unit"] == unit and data[name]["value"] > 0
