"""The roofline against first principles, the offline-batch contract, and measured latencies."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from engine import evaluate as ev
from engine import latency as lat
from engine import scenario as scn
from engine.cli import main

from .conftest import ROOT

GROUPS = [("h100-sxm", "vllm"), ("a100-40gb-sxm", "vllm"), ("h100-sxm", "tensorrt-llm"),
          ("a100-40gb-sxm", "tensorrt-llm"), ("mi300x", "vllm")]
# Left-out E2E of the main sweep above the 10 % goal, bounded at the figure reached (README "Latency"):
# ROCm vLLM 0.6.1 on MI300X: its decode step runs 2-3x slower at long contexts once batch x query heads per GPU
# exceeds 512, where vLLM's paged attention switches to its V1 kernel (vllm/attention/ops/paged_attn.py), which
# the roofline does not model: 13.43 %.
MAIN_SWEEP_LEFT_OUT_E2E = {("mi300x", "vllm"): 13.5}
# Held-out datasets (held_out: in the record, no fit uses them), scored by the recorded fit, bounded at the figure
# measured (README "Latency"): fp8 weights on ROCm vLLM 0.6.1 ran 2.4-4.2x slower than the fp16 checkpoint at batch
# 1-16, which constants fitted on fp16 do not predict (not tuned to it): E2E 55.80 % of 30 rows. The KV-cache-dtype
# study (vLLM 0.5, fp16 weights): its fp16-KV rows as the main sweep (A100 4.00 %, H100 5.70 %); with an fp8 KV cache
# vLLM ran no faster on H100 and 1.2-5.4x slower on A100, where the roofline reads half the KV bytes (A100 48.63 %,
# H100 9.29 %). Value: (bound, rows scored).
HELD_OUT_E2E = {("mi300x", "vllm", "argonne_fp8_checkpoint"): (56.0, 30),
                ("a100-40gb-sxm", "vllm", "argonne_kv_cache_fp16"): (4.1, 71),
                ("a100-40gb-sxm", "vllm", "argonne_kv_cache_fp8"): (48.7, 70),
                ("h100-sxm", "vllm", "argonne_kv_cache_fp16"): (5.8, 148),
                ("h100-sxm", "vllm", "argonne_kv_cache_fp8"): (9.3, 148)}


def _start(catalog, gpu):
    gpus = catalog.calibration["gpus"]
    return {k: v for k, v in gpus.get(gpu, gpus["default"]).items() if k != "source"}


@pytest.mark.parametrize("gpu, framework", GROUPS)
def test_calibration_reproduces_the_recorded_fit(graph, catalog, gpu, framework):
    """Every recorded fit comes back from its data (catalogs/latency/) and its starting values: the refit predicts
    every measured row as the recorded constants do. Constants are not compared one by one: the fixed and per-layer
    step costs trade off along a flat valley (A100 vLLM: 435 us + 54 us/layer fits as well as 696 + 42)."""
    data = lat.rows(graph, catalog, gpu, framework)
    recorded = catalog.fits[f"roofline_{gpu}_{framework}"]
    assert recorded["fitted_on"]["rows"] == len(data)
    fresh = lat.fit(graph, catalog, data, _start(catalog, gpu))
    now, then = lat.predict(graph, data, fresh), lat.predict(graph, data, recorded["constants"])
    for column, seconds in now.items():
        measured = np.isfinite(data.measured[column])
        assert seconds[measured] == pytest.approx(then[column][measured], rel=0.02), column
    lo, hi = lat.bounds(catalog, {gpu}, lat.FITTED)
    assert ((np.array([fresh[k] for k in lat.FITTED]) >= lo) & (np.array([fresh[k] for k in lat.FITTED]) <= hi)).all()


@pytest.mark.parametrize("gpu, framework", GROUPS)
def test_recorded_in_sample_errors_hold(graph, catalog, gpu, framework):
    """The catalog's fit predicts its rows with the error it recorded (so the fit file is what the engine uses)."""
    data = lat.rows(graph, catalog, gpu, framework)
    errors = lat.relative_errors(graph, data)
    recorded = catalog.fits[f"roofline_{gpu}_{framework}"]["fit_error"]
    for ds, cols in recorded.items():
        now = lat.mean_abs_pct(errors, data.dataset == ds)
        for col, text in cols.items():
            assert now[col]["pct"] == pytest.approx(float(text.split(" %")[0]), abs=0.3), (ds, col)


def _scenario(graph, catalog, **keys):
    sc = scn.resolve(catalog, {k: scn.coerce(k, v) for k, v in keys.items()})
    names = graph.inputs_for(["batch_e2e_latency", "batch_output_throughput"])
    return scn.bindings(graph, catalog, sc, names)


def test_offline_batch_contract(graph, catalog):
    """A batch of B prompts: the prefill is ceil(B L_in / max_num_batched_tokens) steps, E2E is that plus
    L_out - 1 mean decode steps, throughput is the batch over one step."""
    b = _scenario(graph, catalog, model="meta-llama/Llama-3.1-8B-Instruct", batch_size=16, input_tokens=1000,
                  output_tokens=300, max_num_batched_tokens=4096)
    r = ev.evaluate(graph, b, ["batch_e2e_latency", "batch_output_throughput", "prefill_chunks", "prefill_step_tokens"])
    assert float(r["prefill_chunks"]) == 4 and float(r["prefill_step_tokens"]) == 4000
    assert float(r["batch_e2e_latency"]) == pytest.approx(float(r["batch_ttft"]) + 299 * float(r["batch_inter_token_latency"]))
    assert float(r["batch_output_throughput"]) == pytest.approx(16 / float(r["batch_inter_token_latency"]))
    one = ev.evaluate(graph, {**b, "batch_size": 1}, ["batch_ttft"])
    assert float(r["batch_ttft"]) > 10 * float(one["batch_ttft"])       # 16 prompts cost more than one, in fewer steps


def test_mean_decode_step_is_the_step_at_the_mean_context(graph, catalog):
    """The closed form: the mean over the L_out - 1 steps, each at its own context, is the step at the mean."""
    b = _scenario(graph, catalog, model="meta-llama/Llama-2-7b-hf", batch_size=32, input_tokens=512, output_tokens=256)
    mean = float(ev.evaluate(graph, b, ["batch_inter_token_latency"])["batch_inter_token_latency"])
    steps = 512 + np.arange(1, 256)                          # step j attends the prompt and j outputs
    each = ev.evaluate(graph, {**b, "decode_context_tokens": steps.astype(float)}, ["batch_inter_token_latency"])
    assert mean == pytest.approx(float(np.mean(each["batch_inter_token_latency"])), rel=1e-3)


def test_a_batch_the_kv_cache_cannot_hold_runs_in_waves(graph, catalog):
    """Llama-2-70B at TP 4 on A100-40GB: vLLM's cache holds ~13k tokens, so 16 requests of 1,024 + 1,024 tokens run
    as many at a time as fit whole, each such wave a prefill and L_out - 1 steps; on 80 GB cards the batch fits at once."""
    keys = dict(model="meta-llama/Llama-2-70b-hf", tensor_parallel_size=4, max_model_len=4096, batch_size=16,
                input_tokens=1024, output_tokens=1024)
    targets = ["batch_e2e_latency", "batch_waves", "wave_batch_size", "requests_per_wave", "kv_cache_tokens"]
    small = ev.evaluate(graph, _scenario(graph, catalog, gpu="a100-40gb-sxm", **keys), targets)
    per_wave = float(small["kv_cache_tokens"]) // 2048
    assert float(small["wave_batch_size"]) == float(small["requests_per_wave"]) == per_wave
    assert float(small["batch_waves"]) == pytest.approx(16 / per_wave) and per_wave < 16
    assert float(small["batch_e2e_latency"]) == pytest.approx(float(small["batch_waves"]) * (
        float(small["batch_ttft"]) + 1023 * float(small["batch_inter_token_latency"])))
    big = ev.evaluate(graph, _scenario(graph, catalog, gpu="a100-80gb-sxm", **keys), targets)
    assert float(big["batch_waves"]) == 1 and float(big["wave_batch_size"]) == 16


def test_gqa_kv_is_reread_per_query_head_where_the_cache_misses(graph, catalog):
    """Llama-3.1-8B has 4 query heads per KV head: a kernel reading the KV once per query head moves 4x its bytes."""
    b = _scenario(graph, catalog, model="meta-llama/Llama-3.1-8B-Instruct", batch_size=16, input_tokens=1024,
                  output_tokens=1024)
    at = lambda f: ev.evaluate(graph, {**b, "kv_reread_fraction": f}, ["decode_kv_read_bytes", "decode_kv_bytes"])  # noqa: E731
    none, every = at(0.0), at(1.0)
    assert float(none["decode_kv_read_bytes"]) == pytest.approx(float(none["decode_kv_bytes"]))
    assert float(every["decode_kv_read_bytes"]) == pytest.approx(4 * float(every["decode_kv_bytes"]))


def test_gemm_efficiency_rises_with_tokens(size):
    small, _ = size(batch_size=1)
    big, _ = size(batch_size=256)
    assert float(small["decode_gemm_efficiency"]) < float(big["decode_gemm_efficiency"]) < float(
        big["gemm_peak_fraction"])


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


def test_tensor_parallel_speeds_up_decode_and_pays_two_all_reduces_per_layer(size):
    one, _ = size(model="meta-llama/Llama-3.1-70B-Instruct", tensor_parallel_size=2, batch_size=1)
    four, _ = size(model="meta-llama/Llama-3.1-70B-Instruct", tensor_parallel_size=4, batch_size=1)
    assert float(four["inter_token_latency"]) < float(one["inter_token_latency"]) * 0.7
    assert float(four["all_reduce_latency_per_step"]) == pytest.approx(
        2 * 80 * float(four["all_reduce_latency"]) * 1e-6)


def test_moe_experts_read_and_compute_at_their_own_tokens(size):
    b1, _ = size(model="mistralai/Mixtral-8x7B-Instruct-v0.1", tensor_parallel_size=2, batch_size=1)
    assert float(b1["expert_read_fraction"]) == 0.25
    assert float(b1["decode_bytes_per_step"]) < 0.4 * float(b1["weight_memory_per_gpu"])
    b64, _ = size(model="mistralai/Mixtral-8x7B-Instruct-v0.1", tensor_parallel_size=2, batch_size=64)
    assert float(b64["decode_expert_gemm_efficiency"]) < float(b64["decode_gemm_efficiency"])   # 64 x 2/8 tokens each


def test_hidden_size_kv_flops_variant(size):
    ours, _ = size(model="meta-llama/Llama-2-7b-hf", input_tokens=1000)
    seed, _ = size(variant="hidden_size_kv", model="meta-llama/Llama-2-7b-hf", input_tokens=1000)
    assert float(seed["prefill_flops"]) < 0.5 * float(ours["prefill_flops"])


def test_bad_calibration_value_is_a_located_error(tmp_path):
    """002's troubleshooting case: 'BwEffConstant must be a valid positive number, got 0'."""
    (tmp_path / "cal.yaml").write_text(
        "schema: 1\ncalibration:\n  gpus:\n    h100-sxm:\n      BwEffConstant: 0\n      gemmPeakFraction: 0.65\n"
        "      gemmHalfSaturationTokens: 64\n      attentionPeakFraction: 0.5\n      attentionBwFraction: 1.5\n"
        "      perSequenceMicros: 0\n      TOverheadMicros: 50\n      perLayerOverhead: 5\n"
        "      prefillOverheadMicros: 100\n      allReduceLatency: 20\n")
    result = CliRunner().invoke(main, ["check", "--catalogs", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "cal.yaml:5:22: BwEffConstant must be between 0.3 and 1.0 for h100-sxm, got 0" in result.output
    assert "attentionBwFraction must be between 0.05 and 1.0 for h100-sxm, got 1.5" in result.output


def test_a_gpu_floor_widens_only_its_own_range(catalog, tmp_path):
    """ranges.gemmPeakFraction.min_by_gpu: MI300X (ROCm vLLM 0.6.1 ran its GEMMs at ~7 % of peak) may go below the
    0.2 floor the other GPUs keep, in a fit and in a calibration record."""
    assert lat.bounds(catalog, {"mi300x"}, ["gemmPeakFraction"])[0][0] == 0.05
    assert lat.bounds(catalog, {"h100-sxm"}, ["gemmPeakFraction"])[0][0] == 0.2
    assert lat.bounds(catalog, {"mi300x", "h100-sxm"}, ["gemmPeakFraction"])[0][0] == 0.2
    fields = ("      BwEffConstant: 0.7\n      gemmPeakFraction: 0.1\n      gemmHalfSaturationTokens: 64\n"
              "      attentionPeakFraction: 0.5\n      attentionBwFraction: 0.5\n      attentionKvRereadFraction: 0.5\n"
              "      perSequenceMicros: 0\n      TOverheadMicros: 50\n      perLayerOverhead: 5\n"
              "      prefillOverheadMicros: 100\n      allReduceLatency: 20\n")
    (tmp_path / "cal.yaml").write_text(f"schema: 1\ncalibration:\n  gpus:\n    mi300x:\n{fields}    h100-sxm:\n{fields}")
    result = CliRunner().invoke(main, ["check", "--catalogs", str(tmp_path)])
    assert result.exit_code == 2 and "gemmPeakFraction must be between 0.2 and 1.0 for h100-sxm, got 0.1" in result.output
    assert "for mi300x" not in result.output


def test_a_gpu_without_measurements_borrows_the_fit_of_its_chip(catalog, size, tmp_path):
    """H200 is an H100's die with more HBM: it is sized with the H100's fitted roofline constants (and says so), not
    the guide's defaults; a GPU with a fit of its own keeps it. calibrated_as must name a GPU that has its own."""
    from engine import scenario as scn

    _, h200 = size(model="Qwen/Qwen3-8B", gpu="h200-sxm")
    _, h100 = size(model="Qwen/Qwen3-8B", gpu="h100-sxm")
    assert scn.calibration(catalog, h200) == scn.calibration(catalog, h100)
    assert scn.calibration(catalog, h200)[1]["BwEffConstant"] == catalog.fits["roofline_h100-sxm_vllm"]["constants"]["BwEffConstant"]
    assert any(n.startswith("latency uses h100-sxm's roofline calibration: same Hopper") for n in h200.notes)
    assert not any("default constants" in n for n in h200.notes)
    _, mi325x = size(model="Qwen/Qwen3-8B", gpu="mi325x")
    assert scn.calibration(catalog, mi325x)[1]["gemmPeakFraction"] == catalog.fits["roofline_mi300x_vllm"]["constants"]["gemmPeakFraction"]
    import yaml

    record = {**yaml.safe_load((ROOT / "catalogs" / "gpus.yaml").read_text())["gpus"]["rtx-4090-d"],
              "calibrated_as": "h200-sxm", "calibrated_as_why": "h200-sxm borrows too"}
    (tmp_path / "g.yaml").write_text(yaml.safe_dump({"schema": 1, "gpus": {"rtx-4090-d": record}}))
    bad = CliRunner().invoke(main, ["check", "--catalogs", str(tmp_path)])
    assert bad.exit_code == 2 and "gpus.rtx-4090-d.calibrated_as must name another GPU with a calibration of its own" in bad.output


def test_accuracy_latency_reports_every_dataset_in_and_out_of_sample():
    import json

    out = CliRunner().invoke(main, ["accuracy", "--latency", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    seen = {(d["gpu"], d["framework"], d["dataset"]) for d in report["datasets"]}
    assert ("h100-sxm", "vllm", "argonne_main_sweep") in seen and ("a100-40gb-sxm", "tensorrt-llm",
                                                                   "argonne_in_out_heatmap") in seen
    held = {(d["gpu"], d["framework"], d["dataset"]): d for d in report["datasets"] if d["held_out"]}
    assert set(held) == set(HELD_OUT_E2E)
    for key, d in held.items():     # scored out of sample by the recorded fit only; never in-sample
        bound, n = HELD_OUT_E2E[key]
        assert d["fitted"] and not d["in_sample"] and d["left_out"]["e2e"]["n"] == d["rows"] == n, key
        assert d["left_out"]["e2e"]["pct"] <= bound, key
    for d in report["datasets"]:
        assert d["fitted"] and (d["held_out"] or d["in_sample"]["e2e"]["n"] == d["left_out"]["e2e"]["n"] == d["rows"])
    # out of sample, every GPU and framework, figures as reached (README "Latency"): a worse model fails here
    left_out = {(d["gpu"], d["framework"], d["dataset"]): d["left_out"] for d in report["datasets"] if not d["held_out"]}
    assert left_out["h100-sxm", "vllm", "argonne_main_sweep"]["e2e"]["n"] == 300
    for (gpu, framework, dataset), figures in left_out.items():
        if dataset != "argonne_fig21_22":
            assert figures["e2e"]["pct"] <= MAIN_SWEEP_LEFT_OUT_E2E.get((gpu, framework), 10.0), (
                gpu, framework, dataset)        # the goal, or the figure reached
        else:       # three rows, two models left out of each refit: H100 vLLM's decode step is at 11.2 %
            assert figures["ttft"]["pct"] <= 15.0 and max(figures["itl"]["pct"], figures["e2e"]["pct"]) <= 12.0, (
                gpu, framework)


def test_a_held_out_record_is_never_fitted(graph, catalog):
    """A latency_data record with held_out: (a reason) stays out of the rows a fit uses and comes back only when asked
    for; the recorded MI300X fit was made without the fp8 checkpoint's rows."""
    fitted, held = lat.rows(graph, catalog, "mi300x", "vllm"), lat.rows(graph, catalog, "mi300x", "vllm", held_out=True)
    assert set(held.dataset) == {"argonne_fp8_checkpoint"} and "argonne_fp8_checkpoint" not in set(fitted.dataset)
    assert set(held.model) == {"neuralmagic/Meta-Llama-3-8B-Instruct-FP8"}
    assert catalog.fits["roofline_mi300x_vllm"]["fitted_on"]["rows"] == len(fitted)
    assert not set(held.record) & set(catalog.fits["roofline_mi300x_vllm"]["fitted_on"]["records"])
    # a record's kv_cache_dtype reaches its scenario: the KV-cache-dtype study's fp8 rows read one byte an element
    kv = lat.rows(graph, catalog, "a100-40gb-sxm", "vllm", held_out=True)
    assert set(kv.dataset) == {"argonne_kv_cache_fp16", "argonne_kv_cache_fp8"}
    assert set(kv.bindings["kv_dtype_bytes"][kv.dataset == "argonne_kv_cache_fp8"]) == {1.0}
    assert set(kv.bindings["kv_dtype_bytes"][kv.dataset == "argonne_kv_cache_fp16"]) == {2.0}
    assert not set(kv.record) & set(catalog.fits["roofline_a100-40gb-sxm_vllm"]["fitted_on"]["records"])


def test_json_has_latency_names():
    import json

    data = json.loads(CliRunner().invoke(main, ["size", "--json"]).output)["results"]
    for name, unit in [("ttft", "s"), ("inter_token_latency", "s"), ("e2e_latency", "s"),
                       ("output_throughput", "token / s")]:
        assert data[name]["unit"] == unit and data[name]["value"] > 0
