"""The memory model against the seeds' figures and against real vLLM startups."""
from __future__ import annotations

import numpy as np
import pytest

from engine import accuracy, fitting
from engine.errors import RequirementError, ScenarioError

GIB = 2 ** 30

# Goals of the memory-model issue: mean absolute % error on vLLM 0.19 H100 startups.
GOALS_0_19 = {"weights_memory": 0.5, "kv_cache_memory": 1.0, "kv_cache_tokens": 1.0, "max_concurrency": 1.5}


def test_accuracy_goals_on_vllm_0_19(graph, catalog):
    group = accuracy.accuracy(graph, catalog, "0.19")["groups"]["H100 vLLM 0.19"]
    assert group["n"] == 18
    for field, goal in GOALS_0_19.items():
        assert group["mean_abs_error_pct"][field] <= goal, (field, group["mean_abs_error_pct"])


def test_accuracy_on_vllm_0_11(graph, catalog):
    """Not fitted on 0.11. Weights transfer exactly; the three CodeLlama-34B runs at 4,096 batched tokens were
    5.7 % off in KV memory while the activation peak summed its phases with a near-zero MLP multiple; with the
    forward pass and the sampler as separate phases (formulas/activations.yaml) they are within 1 %."""
    report = accuracy.accuracy(graph, catalog, "0.11")
    assert len(report["cases"]) == 6
    assert report["mean_abs_error_pct"]["weights_memory"] <= 0.5
    assert report["mean_abs_error_pct"]["kv_cache_memory"] <= 1.5
    assert report["mean_abs_error_pct"]["kv_cache_tokens"] <= 1.5


def test_fit_uses_every_single_stage_startup(catalog):
    """No cherry-picking: the memory fit is made on every 0.19 startup but the PP one (whose log is rank 0's), and
    the engine-aware activation and non-torch fits on every single-stage startup of any release that logged them."""
    used = set(catalog.fits["vllm_memory"]["fitted_on"]["profiles"])
    single = lambda p: p["scenario"].get("pipeline_parallel_size", 1) == 1 and "activation_peak" in p["measured"]  # noqa: E731
    of_0_19 = {pid for pid, p in catalog.profiles.items() if str(p.get("vllm_version")).startswith("0.19") and single(p)}
    every = {pid for pid, p in catalog.profiles.items() if "not_sized" not in p and "measured" in p and single(p)}
    assert len(of_0_19) == 17 and len(every - of_0_19) == 8   # the V0 startups print both figures
    assert used == every
    assert catalog.fits["vllm_memory"]["fitted_on"]["every_version"]["profiles"] == len(every)


def test_fit_is_reproducible(graph, catalog):
    """`llm-sizer calibrate memory` recomputes exactly what the catalog records."""
    fresh = fitting.fit_vllm_memory(graph, catalog, "0.19")
    assert fresh["constants"] == catalog.fits["vllm_memory"]["constants"]
    assert fresh["framework_overhead"] == catalog.fits["vllm_memory"]["framework_overhead"]


def test_fit_goes_through_the_formula(graph, catalog):
    """The columns of a fit are the formula's own terms: non-torch memory by its where() branches gives the
    mean of each group; a constant no startup varies is named, not silently copied."""
    data = [c for c in accuracy.cases(catalog, "0.19")
            if "activation_peak" in c.measured and c.scenario.values["pipeline_parallel_size"] == 1]
    measured = np.array([c.measured["non_torch_memory"] for c in data])
    fit = fitting.fit_linear(graph, catalog, data, "non_torch_memory", measured, "fit.vllm_memory.constants.")
    single = [c.scenario.values["tensor_parallel_size"] == 1 for c in data]
    assert fit["values"]["non_torch_single_gpu"] == pytest.approx(measured[single].mean(), rel=1e-9)
    assert fit["values"]["non_torch_tensor_parallel"] == pytest.approx(measured[~np.array(single)].mean(), rel=1e-9)
    # no H100 startup is on PCIe: the PCIe figure keeps its value (from the two PCIe TP=2 startups, vllm_memory.yaml checks)
    # nor under V0: its single-GPU figure is fitted on the V0 startups (fit_vllm_memory pools releases)
    assert sorted(fit["not_identifiable"]) == ["non_torch_pipeline_parallel", "non_torch_single_gpu_v0",
                                               "non_torch_tensor_parallel_pcie"]
    assert fit["values"]["non_torch_pipeline_parallel"] == fit["values"]["non_torch_single_gpu"]
    notes = fitting.fit_vllm_memory(graph, catalog, "0.19")["not_identifiable"]
    assert [n.split(":")[0] for n in notes] == ["non_torch_pipeline_parallel", "non_torch_tensor_parallel_pcie",
                                                "batch_scaling"]


# -- 000: HyperNova-60B, TP=2 on 2 x RTX 5090 ------------------------------------------------

HYPERNOVA = dict(model="MultiverseComputingCAI/HyperNova-60B", gpu="rtx-5090", tensor_parallel_size=2,
                 max_model_len=131072, max_num_seqs=8, max_num_batched_tokens=65536, gpu_memory_utilization=0.9)


def test_hypernova_kv_bytes_per_token(size):
    result, _ = size(**HYPERNOVA)
    assert float(result["kv_heads_per_gpu"]) == 4
    assert float(result["kv_cache_bytes_per_token"]) == 32768


def test_hypernova_seed_overhead_variant(size):
    """000's simple calculator: 3 x 65,544 tokens x 2,048 x 2 bytes = 0.805 GB, beside the corrected figure."""
    seed, _ = size(variant="simple_calculator", **HYPERNOVA)
    ours, _ = size(**HYPERNOVA)
    assert float(seed["vllm_overhead_memory"]) == 805404672
    assert float(ours["vllm_overhead_memory"]) > 3 * float(seed["vllm_overhead_memory"])


def test_hypernova_weights_against_measurement(size):
    """000 measured 16.9066 GiB per GPU; the architecture as 000 states it (80 experts) gives 4.4 % more."""
    result, _ = size(**HYPERNOVA)
    predicted = float(result["weight_memory_per_gpu"]) / GIB
    assert predicted == pytest.approx(17.66, abs=0.01)
    assert abs(predicted - 16.9066) / 16.9066 < 0.05


def test_hypernova_kv_memory_against_measurement(size):
    """000 measured 7.69 GiB of KV memory per GPU. With the H100 (NVLink) non-torch figure, 2.10 GiB, the model said
    5.73 GiB (-25 %); RTX 5090s have no NVLink (peer_fabric 0), so the PCIe figure, 0.82 GiB, applies. Its profiling
    run is 65,536 tokens, past one fused-MoE chunk (32,768): the MoE intermediates stop growing there, so the forward
    pass's peak is 2.37 GiB, not the 4.15 GiB of 65,536 tokens, and the model says 7.38 GiB (-4.0 %). It is within 5 %
    because two errors partly cancel: the weights are 0.75 GiB high (the recorded 80-expert mismatch,
    test_hypernova_weights_against_measurement) and the activation peak is lower than what the log leaves for it."""
    result, _ = size(**HYPERNOVA)
    assert float(result["non_torch_memory"]) / GIB == pytest.approx(0.8204, abs=1e-4)
    # one 32,768-token chunk: 2 x (top-4 x 2,880) / TP 2 x 2 bytes a token
    assert float(result["activation_moe_bytes"]) == 32768 * 2 * 4 * 2880 / 2 * 2
    kv = float(result["available_kv_cache_memory"]) / GIB
    assert kv == pytest.approx(7.38, abs=0.01)
    assert abs(kv - 7.69) / 7.69 < 0.05


def test_non_torch_memory_follows_the_interconnect(size):
    """The same TP=2 deployment: NVLink H100 SXM keeps the fitted 2.10 GiB, the PCIe H100 (no bridge) the PCIe figure."""
    keys = dict(model="Qwen/Qwen2.5-7B-Instruct", tensor_parallel_size=2, max_model_len=8192)
    nvlink, _ = size(gpu="h100-sxm", **keys)
    pcie, _ = size(gpu="h100-pcie", **keys)
    assert float(nvlink["non_torch_memory"]) / GIB == pytest.approx(2.1033, abs=1e-4)
    assert float(pcie["non_torch_memory"]) / GIB == pytest.approx(0.8204, abs=1e-4)


def test_hypernova_is_hybrid_two_groups(size):
    result, _ = size(**HYPERNOVA)
    assert float(result["num_kv_cache_groups"]) == 2 and float(result["layers_per_kv_group"]) == 16


# -- verdicts, fallbacks and refusals ------------------------------------------------------------

def test_does_not_fit_gives_shortfall_never_negative(size):
    result, _ = size(model="meta-llama/Llama-3.1-70B-Instruct", gpu="l4", tensor_parallel_size=1, max_model_len=8192)
    assert float(result["fits"]) == 0
    assert float(result["available_kv_cache_memory"]) == 0 and float(result["kv_cache_tokens"]) == 0
    assert float(result["memory_shortfall"]) > 100 * GIB


def test_bf16_on_t4_falls_back_to_fp16(size):
    result, sc = size(model="meta-llama/Llama-3.2-1B-Instruct", gpu="Tesla T4")
    assert sc.dtype == "float16" and any("float16" in n for n in sc.notes)


def test_explicit_bf16_on_v100_is_refused(size):
    with pytest.raises(ScenarioError, match="does not support bfloat16"):
        size(model="meta-llama/Llama-3.2-1B-Instruct", gpu="v100-32gb", dtype="bfloat16")


def test_fp8_on_a100_uses_weight_only_marlin(size):
    result, sc = size(model="RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic", gpu="a100-80gb", tensor_parallel_size=2)
    assert any("Marlin" in n for n in sc.notes)
    assert float(result["weight_memory_per_gpu"]) / GIB == pytest.approx(33.8, abs=0.2)


def test_tp_must_divide_attention_heads(size):
    with pytest.raises(RequirementError, match="num_attention_heads % tp == 0"):
        size(model="meta-llama/Llama-3.1-8B-Instruct", tensor_parallel_size=3)


def test_negative_batch_size_refused(size):
    with pytest.raises(RequirementError, match="--batch-size must be at least 1"):
        size(batch_size=-4)


def test_fp8_kv_halves_bytes_per_token(size):
    bf16, _ = size(model="meta-llama/Llama-3.1-8B-Instruct")
    fp8, _ = size(model="meta-llama/Llama-3.1-8B-Instruct", kv_cache_dtype="fp8")
    assert float(bf16["kv_cache_bytes_per_token"]) == 2 * float(fp8["kv_cache_bytes_per_token"]) == 131072


def test_moe_weights_count_every_expert(size):
    """004's active-only formula (variant) understates Mixtral's resident weights by 3.6x."""
    ours, _ = size(model="mistralai/Mixtral-8x7B-Instruct-v0.1", tensor_parallel_size=2)
    seed, _ = size(variant="active_params_weights", model="mistralai/Mixtral-8x7B-Instruct-v0.1", tensor_parallel_size=2)
    assert float(ours["weight_memory_per_gpu"]) / float(seed["weight_memory_per_gpu"]) == pytest.approx(3.63, abs=0.02)


def test_gqa_replication_beyond_kv_heads(size):
    r8, _ = size(model="meta-llama/Llama-3.1-70B-Instruct", tensor_parallel_size=8)
    with pytest.raises(RequirementError):
        size(model="meta-llama/Llama-3.1-70B-Instruct", tensor_parallel_size=6)
    assert float(r8["kv_heads_per_gpu"]) == 1
