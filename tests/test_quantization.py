"""quantization_config details: bits and weights per scale, zero points, skipped decoder-layer blocks (issue 9 item 6).
Bits per weight are derived by hand in each test from the format's layout (formulas/quantization.yaml)."""
from __future__ import annotations

import json

import pytest

QWEN05 = "Qwen/Qwen2.5-0.5B-Instruct"
ATTN_05B = 896 * 896 + 896 + 2 * (896 * 128 + 128) + 896 * 896     # q (bias), k, v (bias), o
MLP_05B = 3 * 896 * 4864                                           # gate, up, down


def _config_with(catalog, tmp_path, model, qc):
    cfg = dict(catalog.model(model).config, quantization_config=qc)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def test_fp8_block_scales_from_weight_block_size(size, catalog):
    """zai-org/GLM-5.1-FP8 (verbatim via ai-dynamo/aiconfigurator, see its record): weight_block_size [128, 128]
    -> one fp32 scale per 16,384 weights: 8 + 32 / 16384 = 8.001953125 bits."""
    arch = catalog.model("zai-org/GLM-5.1-FP8").arch
    assert arch["quant_group_size"] == 128 * 128
    result, _ = size(model="zai-org/GLM-5.1-FP8", gpu="h200-sxm", tensor_parallel_size=8, max_model_len=8192)
    assert float(result["linear_bits"]) == pytest.approx(8.001953125, rel=1e-12)
    assert float(result["expert_bits"]) == pytest.approx(8.001953125, rel=1e-12)


@pytest.mark.parametrize("qc, bits", [
    # AutoAWQ's quantization_config (https://github.com/casper-hansen/AutoAWQ awq/models/base.py save_quantized):
    # 4 bits, fp16 scale + 4-bit zero per 128 -> 4 + 20/128
    ({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}, 4.15625),
    # GPTQ symmetric (sym true, group 128): no zero point -> 4 + 16/128
    ({"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True, "desc_act": False}, 4.125),
    # GPTQ asymmetric, group 32: 4 + (16 + 4)/32
    ({"quant_method": "gptq", "bits": 4, "group_size": 32, "sym": False, "desc_act": False}, 4.625),
    # GPTQ 8-bit, group 64, asymmetric: 8 + (16 + 8)/64
    ({"quant_method": "gptq", "bits": 8, "group_size": 64, "sym": False}, 8.375),
    # compressed-tensors W4A16 (RedHatAI's w4a16 layout): num_bits 4, group 128, symmetric -> 4 + 16/128
    ({"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"group_0": {
        "targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group",
                                           "group_size": 128}}}, "ignore": ["lm_head"]}, 4.125),
    # compressed-tensors per channel: no group size -> the format's 8 bits
    ({"quant_method": "compressed-tensors", "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
        "num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel"}}}}, 8),
])
def test_group_size_and_zero_points_give_bits_per_weight(size, catalog, tmp_path, qc, bits):
    path = _config_with(catalog, tmp_path, "meta-llama/Llama-3.1-8B-Instruct", qc)
    result, _ = size(model=path, gpu="h100-sxm", max_model_len=8192)
    assert float(result["linear_bits"]) == pytest.approx(bits, rel=1e-12)


def test_bnb_skip_list_keeps_whole_layer_blocks_unquantized(size, catalog, tmp_path):
    """Unsloth's dynamic 4-bit lists whole blocks by their parent name (lm_head, model.layers.N.mlp /
    .self_attn: the form vLLM's is_layer_skipped_bnb matches, see unslothai/unsloth-zoo saving_utils tests).
    Two MLP blocks and one attention block of Qwen2.5-0.5B stay 16-bit: 2 x 13,074,432 + 1,836,160 parameters
    at 16 - 4.127 bits more than NF4 with double quant."""
    qc = {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
          "bnb_4bit_use_double_quant": True, "bnb_4bit_compute_dtype": "bfloat16",
          "llm_int8_skip_modules": ["lm_head", "model.layers.0.mlp", "model.layers.2.mlp",
                                    "model.layers.0.self_attn", "multi_modal_projector"]}
    path = _config_with(catalog, tmp_path, QWEN05, qc)
    skipped, _ = size(model=path, gpu="rtx-4090", max_model_len=8192, unsloth=True)   # the double-quantized absmax kept
    plain, _ = size(model=QWEN05, gpu="rtx-4090", max_model_len=8192, quantization="bnb-nf4", unsloth=True)
    params = 2 * MLP_05B + ATTN_05B
    assert float(skipped["skipped_linear_params"]) == params
    extra = float(skipped["weight_memory_per_gpu"]) - float(plain["weight_memory_per_gpu"])
    assert extra == pytest.approx(params * (16 - 4.127) / 8, rel=1e-9)


def test_wildcard_skip_lists_count_no_layer_blocks(catalog):
    """openai/gpt-oss-120b's modules_to_not_convert ("model.layers.*.self_attn", router, embeddings, lm_head):
    MXFP4 quantizes only the experts anyway, so a wildcard names no numbered layer block."""
    arch = catalog.model("openai/gpt-oss-120b").arch
    assert arch["quant_skipped_attention_layers"] == 0 and arch["quant_skipped_mlp_layers"] == 0


def test_unquantized_models_read_nothing(catalog):
    arch = catalog.model("meta-llama/Llama-3.1-8B-Instruct").arch
    assert (arch["quant_weight_bits"], arch["quant_group_size"], arch["quant_zero_point"]) == (0, 0, 0)


def test_inflight_bitsandbytes_quantizes_the_vision_tower(size):
    """vLLM quantizing a 16-bit Qwen2.5-VL-3B at load reaches the vision blocks too (they take quant_config):
    the RLDecisionAgent run (LoRA slots of rank 64 included) logged 2.5988 GiB; with the tower left in bf16 it
    would be 3.41 GiB."""
    keys = dict(model="Qwen/Qwen2.5-VL-3B-Instruct", gpu="rtx-4090-d", max_model_len=16384, enable_lora=True,
                max_lora_rank=64)
    inflight, _ = size(quantization="bnb-4bit-inflight", **keys)
    prequantized, _ = size(quantization="bnb-nf4", **keys)
    gib = 2 ** 30
    assert float(inflight["vision_weight_memory"]) < 0.35 * float(prequantized["vision_weight_memory"])
    assert float(inflight["weight_memory_per_gpu"]) / gib == pytest.approx(2.5988, rel=0.02)
    assert float(prequantized["weight_memory_per_gpu"]) / gib > 3.3
