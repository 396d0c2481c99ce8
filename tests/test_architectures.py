"""Real config.json files, one per model family, read through catalogs/architectures.yaml.

Each fixture in tests/fixtures/configs/ has a .source file naming where its bytes come from. Parameter counts are
checked against the published figure within 0.5 %; KV bytes per token (bf16 cache, one GPU) are derived by hand
below from the config's own numbers, so a wrong class default, spelling or layer pattern fails here.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import catalog as cat
from engine import evaluate as ev
from engine.errors import CatalogError

CONFIGS = Path(__file__).resolve().parent / "fixtures" / "configs"
ONE_GPU_BF16 = {"tp": 1, "pp": 1, "kv_dtype_bytes": 2}

# file: (published parameters, where that figure is published, KV bytes per token by hand)
FAMILIES = {
    "llama-3.1-8b": (8_030_261_248, "HF safetensors metadata of meta-llama/Llama-3.1-8B",
                     2 * 8 * 128 * 2 * 32),          # K and V x 8 KV heads x 128 channels x 2 bytes x 32 layers
    "qwen2.5-7b-instruct": (7_615_616_512, "HF safetensors metadata of Qwen/Qwen2.5-7B-Instruct",
                            2 * 4 * 128 * 2 * 28),   # 4 KV heads, 28 layers; head_dim = 3584 / 28 heads
    "qwen3-8b": (8_190_735_360, "HF safetensors metadata of Qwen/Qwen3-8B (8.19B)",
                 2 * 8 * 128 * 2 * 36),
    "qwen3-30b-a3b": (30_532_122_624, "HF safetensors metadata of Qwen/Qwen3-30B-A3B (30.5B)",
                      2 * 4 * 128 * 2 * 48),         # head_dim 128 stated (hidden 2048 / 32 heads would be 64)
    "mixtral-8x7b-v0.1": (46_702_792_704, "HF safetensors metadata of mistralai/Mixtral-8x7B-v0.1",
                          2 * 8 * 128 * 2 * 32),
    "mistral-nemo-instruct-2407": (12_247_782_400, "HF safetensors metadata of mistralai/Mistral-Nemo-Instruct-2407",
                                   2 * 8 * 128 * 2 * 40),   # head_dim 128 stated (5120 / 32 would be 160)
    "deepseek-v2-lite": (15_706_484_224, "HF safetensors metadata of deepseek-ai/DeepSeek-V2-Lite (15.7B)",
                         (512 + 64) * 2 * 27),       # MLA: latent 512 + rotary key 64, not per head, 27 layers
    "deepseek-v3": (671_000_000_000, "deepseek-ai/DeepSeek-V3 README: '671B of the Main Model weights' "
                    "(685B with the 14B MTP module, which the checkpoint adds and vLLM loads only for MTP)",
                    (512 + 64) * 2 * 61),
    "gemma-3-4b-it": (4_300_079_472, "HF safetensors metadata of google/gemma-3-4b-it (4.3B, with the SigLIP tower)",
                      2 * 4 * 256 * 2 * 34),         # Gemma3TextConfig defaults: 4 KV heads, head_dim 256
    "llama-4-scout-17b-16e-instruct": (108_641_793_536, "HF safetensors metadata of "
                                       "meta-llama/Llama-4-Scout-17B-16E-Instruct (109B)",
                                       2 * 8 * 128 * 2 * 48),   # every layer caches K/V, chunked or not
    # the same model with its vision_config: 34-layer tower, pixel-shuffle adapter and projector counted (issue 9 item 3)
    "llama-4-scout-17b-16e-instruct-fp8-dynamic": (108_641_793_536, "HF safetensors metadata of "
                                                   "meta-llama/Llama-4-Scout-17B-16E-Instruct (its BF16 base)",
                                                   2 * 8 * 128 * 2 * 48),
    # Hybrid models (issue 9 item 2): only the softmax-attention layers cache K/V per token
    "qwen3.5-27b": (27_000_000_000, "Qwen/Qwen3.5-27B model card: 'Parameters: 27B' (rounded to 1B; with its vision "
                    "encoder)", 2 * 4 * 256 * 2 * 16),      # 16 full-attention layers of 64 (layer_types), 4 KV heads x 256
    "qwen3.5-35b-a3b": (35_000_000_000, "Qwen/Qwen3.5-35B-A3B model card: '35B in total' (rounded to 1B)",
                        2 * 2 * 256 * 2 * 10),   # 10 full-attention layers of 40, 2 KV heads x 256
    "nemotron-h-56b-base-8k": (56_000_000_000, "nvidia/Nemotron-H-56B-Base-8K model card: 'This model has 56B model "
                               "parameters' (rounded to 1B)", 2 * 8 * 128 * 2 * 10),   # 10 '*' blocks of 118
    "nemotron-3-nano-30b-a3b-bf16": (31_600_000_000, "https://replicate.com/nvidia/nemotron-3-nano-30b-a3b/readme: "
                                     "'31.6 billion total parameters'", 2 * 2 * 128 * 2 * 6),   # 6 '*' blocks of 52
}
# Published figures given only to the nearest billion: the count must fall within that rounding (and 0.5 % of it
# when that is wider), since a tighter figure is not published.
ROUNDED_TO = {"qwen3.5-27b": 500_000_000, "qwen3.5-35b-a3b": 500_000_000, "nemotron-h-56b-base-8k": 500_000_000}
# Known shortfalls, each asserted so that fixing it fails here and moves the file up to FAMILIES' 0.5 %.
KNOWN_GAPS = {
    # ai-dynamo/aiconfigurator's copy keeps text_config only: the vision tower (34 layers, adapter, projector: 871.9M)
    # cannot be counted from it, -0.80 %. The inference-sim copy with its vision_config is exact (FAMILIES).
    "llama-4-scout-17b-16e-instruct": (-0.0085, -0.0075),
}


def _value(graph, model, target, scenario=ONE_GPU_BF16):
    bindings = {}
    for name in graph.inputs_for([target]):
        decl = graph.inputs[name]
        source = decl.source_path or ""
        bindings[name] = (model.arch[source.split(".", 1)[1]] if source.startswith("model.")
                          else scenario.get(name, decl.default))
    return float(ev.evaluate(graph, bindings, [target])[target])


@pytest.fixture(scope="module")
def models(catalog):
    return {name: cat.import_config(CONFIGS / f"{name}.json", catalog) for name in FAMILIES}


def test_every_fixture_names_its_source():
    for path in CONFIGS.glob("*.json"):
        source = path.with_suffix(".source").read_text()
        assert "https://" in source and "/work" not in source and "/home" not in source, path.name
    assert {p.stem for p in CONFIGS.glob("*.json")} == set(FAMILIES)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_parameters_within_half_a_percent_of_published(graph, models, name):
    published, where, _ = FAMILIES[name]
    total = _value(graph, models[name], "total_params")
    if name in KNOWN_GAPS:
        low, high = KNOWN_GAPS[name]
        assert low <= total / published - 1 <= high, "the known gap changed: update KNOWN_GAPS or remove it"
        return
    allowed = max(0.005 * published, ROUNDED_TO.get(name, 0))
    assert abs(total - published) <= allowed, f"{total:,.0f} vs {published:,} ({where})"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_kv_bytes_per_token_exact(graph, models, name):
    assert _value(graph, models[name], "kv_cache_bytes_per_token") == FAMILIES[name][2]


def test_gemma3_text_config_relies_on_class_defaults(graph, models):
    """google/gemma-3-4b-it states neither heads nor vocabulary: Gemma3TextConfig's defaults supply them."""
    raw = json.loads((CONFIGS / "gemma-3-4b-it.json").read_text())
    assert "num_attention_heads" not in raw["text_config"] and "vocab_size" not in raw["text_config"]
    arch = models["gemma-3-4b-it"].arch
    assert (arch["num_attention_heads"], arch["num_key_value_heads"], arch["vocab_size"]) == (8, 4, 262208)
    assert arch["tie_word_embeddings"] == 1 and arch["local_rope_cache"] == 1
    assert arch["vision_num_channels"] == 3          # SiglipVisionConfig default
    # sliding_window_pattern 6 (a class default too): layers 6, 12, ..., 30 are global - 5 of 34
    assert _value(graph, models["gemma-3-4b-it"], "num_full_attention_layers") == 5
    assert _value(graph, models["gemma-3-4b-it"], "num_sliding_layers") == 29


def test_llama4_layer_patterns_from_the_config(graph, models):
    """Llama-4-Scout lists no_rope_layers (1 = RoPE = chunked); its MoE has one shared expert (modeling fact)."""
    scout = models["llama-4-scout-17b-16e-instruct"]
    assert _value(graph, scout, "num_full_attention_layers") == 12
    assert _value(graph, scout, "shared_expert_intermediate_size") == 8192
    assert _value(graph, scout, "intermediate_size") == 16384      # intermediate_size_mlp, the dense width


def test_deepseek_dense_prefix_and_shared_experts(graph, models):
    v3 = models["deepseek-v3"]
    assert _value(graph, v3, "num_moe_layers") == 61 - 3          # first_k_dense_replace 3
    assert _value(graph, v3, "shared_expert_intermediate_size") == 2048
    lite = models["deepseek-v2-lite"]
    assert lite.arch["q_lora_rank"] == 0, "an explicit null is not replaced by the class default 1536"


def test_explicit_null_window_means_none(graph, models):
    """Mistral-Nemo says sliding_window: null; MistralConfig's default 4096 must not apply."""
    assert models["mistral-nemo-instruct-2407"].arch["sliding_window"] == 0
    assert _value(graph, models["mistral-nemo-instruct-2407"], "num_sliding_layers") == 0


def test_cohere_ties_embeddings_by_default(tmp_path, catalog, graph):
    """CohereConfig.tie_word_embeddings defaults to True: a Command-R config that omits it has no lm_head."""
    cfg = {"model_type": "cohere", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "vocab_size": 1000, "intermediate_size": 128}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    model = cat.import_config(path, catalog)
    assert model.arch["tie_word_embeddings"] == 1
    assert _value(graph, model, "lm_head_params") == 0


def test_unknown_model_type_must_state_its_dimensions(tmp_path, catalog):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "brand_new", "hidden_size": 64, "num_hidden_layers": 2,
                                "vocab_size": 100}))
    with pytest.raises(CatalogError, match="no num_attention_heads") as info:
        cat.import_config(path, catalog)
    assert "brand_new" in str(info.value.hint) and "architectures.yaml" in str(info.value.hint)


def test_no_model_type_name_in_the_importer():
    """Facts about families live in catalogs/architectures.yaml; engine/catalog.py names none of them."""
    source = (Path(cat.__file__)).read_text()
    types = cat.load([Path(cat.__file__).parent.parent / "catalogs"]).model_types
    named = [t for t in types if t != "any" and (f'"{t}"' in source or f"'{t}'" in source)]
    assert named == []


# Records whose config still holds values recalled rather than read from a public copy (no verbatim copy found yet);
# replacing one with a verbatim config removes it from here.
STILL_RECALLED = {"meta-llama--Llama-3.2-1B-Instruct", "microsoft--phi-2", "mistralai--Mistral-7B-Instruct-v0.2",
                  "moonshotai--Kimi-K2-Instruct-0905", "zai-org--GLM-4.5-Air",
                  # the dev data's models (catalogs/profiles/vllm_wild.yaml) reconstructed in issue 9
                  "Qwen--Qwen3-4B-Instruct-2507", "Qwen--Qwen2.5-0.5B-Instruct", "Qwen--Qwen2.5-VL-7B-Instruct",
                  "deepseek-ai--DeepSeek-R1-0528-Qwen3-8B", "TechxGenus--Meta-Llama-3-70B-Instruct-AWQ"}


def test_model_records_cite_public_locations():
    """A reader can follow every source: URLs, never a path on the machine that wrote the record."""
    recalled = set()
    for path in sorted((Path(cat.__file__).parent.parent / "catalogs" / "models").glob("*.yaml")):
        text = path.read_text()
        for machine_path in ("/home/", "/work/", "file:/", "/tmp/"):
            assert machine_path not in text, f"{path.name} cites {machine_path}"
        if "recalled" in text.lower() or "from recall" in text.lower():
            recalled.add(path.stem)
    assert recalled == STILL_RECALLED


def test_every_record_config_source_is_a_url(catalog):
    for model in catalog.models.values():
        assert "https://" in str(model.source), model.id


# -- hybrid and linear-attention models (issue 9 item 2) ---------------------------------------------------------
# Per-sequence state of every recurrent layer on one GPU, derived by hand from each config (vLLM's state shapes,
# mamba_utils.py; conv state in the model dtype, bf16 = 2 bytes; SSM / delta state in float32 when config.json asks
# for it, else bf16), and the attention block size vLLM raises so that one attention page holds one state page:
# 16 x ceil(state bytes of a layer / (16 x attention bytes of a token in a layer)).
HYBRID = {
    # Gated DeltaNet, 48 of 64 layers: conv (2 x 16 key heads x 128 + 48 value heads x 128) x (4 - 1) x 2 B = 61,440;
    # delta 48 x 128 x 128 x 4 B (mamba_ssm_dtype float32) = 3,145,728; 3,207,168 B a layer;
    # attention 2 x 4 x 256 x 2 = 4,096 B a token a layer: 16 x ceil(3,207,168 / 65,536) = 16 x 49 = 784
    "qwen3.5-27b": {"layers": (16, 48), "state": (2 * 16 * 128 + 48 * 128) * 3 * 2 * 48 + 48 * 128 * 128 * 4 * 48,
                    "block": 784},
    # 30 of 40 layers: conv (4,096 + 32 x 128) x 3 x 2 = 49,152; delta 32 x 128 x 128 x 4 = 2,097,152; 2,146,304 a layer;
    # attention 2 x 2 x 256 x 2 = 2,048 B: 16 x ceil(2,146,304 / 32,768) = 16 x 66 = 1,056
    "qwen3.5-35b-a3b": {"layers": (10, 30), "state": (49_152 + 2_097_152) * 30, "block": 1056},
    # Mamba-2, 54 'M' blocks: d_i = 256 heads x 64 = 16,384; conv (16,384 + 2 x 8 groups x 256) x 3 x 2 = 122,880;
    # ssm 256 x 64 x 256 x 2 B (no mamba_ssm_cache_dtype stated: bf16) = 8,388,608; 8,511,488 a layer;
    # attention 2 x 8 x 128 x 2 = 4,096 B: 16 x ceil(8,511,488 / 65,536) = 16 x 130 = 2,080
    "nemotron-h-56b-base-8k": {"layers": (10, 54), "state": (122_880 + 8_388_608) * 54, "block": 2080},
    # 23 'M' blocks: d_i = 64 x 64 = 4,096; conv (4,096 + 2 x 8 x 128) x 3 x 2 = 36,864; ssm 64 x 64 x 128 x 4 B
    # (mamba_ssm_cache_dtype float32) = 2,097,152; 2,134,016 a layer; attention 2 x 2 x 128 x 2 = 1,024 B:
    # 16 x ceil(2,134,016 / 16,384) = 16 x 131 = 2,096
    "nemotron-3-nano-30b-a3b-bf16": {"layers": (6, 23), "state": (36_864 + 2_097_152) * 23, "block": 2096},
}


@pytest.mark.parametrize("name", sorted(HYBRID))
def test_hybrid_layers_state_and_block_size(graph, models, name):
    model, want = models[name], HYBRID[name]
    scenario = {**ONE_GPU_BF16, "dtype_bytes": 2, "block_size": 16}
    assert (_value(graph, model, "num_attention_layers"), _value(graph, model, "num_recurrent_layers")) == want["layers"]
    assert _value(graph, model, "recurrent_state_bytes_per_sequence", scenario) == want["state"]
    assert _value(graph, model, "kv_block_size", scenario) == want["block"]


def test_hybrid_state_splits_across_tp(graph, models):
    """Nemotron-3-Nano at TP=2: 8 groups split 4 a GPU; conv (2,048 + 2 x 4 x 128) x 3 x 2 = 18,432; ssm 32 heads x 64
    x 128 x 4 = 1,048,576; 1 KV head of 2 a GPU: 2 x 1 x 128 x 2 x 6 = 3,072 B a token."""
    model, tp2 = models["nemotron-3-nano-30b-a3b-bf16"], {"tp": 2, "pp": 1, "kv_dtype_bytes": 2, "dtype_bytes": 2}
    assert _value(graph, model, "recurrent_state_bytes_per_sequence", tp2) == (18_432 + 1_048_576) * 23
    assert _value(graph, model, "kv_cache_bytes_per_token", tp2) == 3_072


def test_not_hybrid_models_keep_every_layer_as_attention(graph, models):
    for name in ("llama-3.1-8b", "gemma-3-4b-it", "deepseek-v3"):
        layers = models[name].arch["num_hidden_layers"]
        assert _value(graph, models[name], "num_attention_layers") == layers
        assert _value(graph, models[name], "recurrent_state_bytes_per_sequence", {**ONE_GPU_BF16, "dtype_bytes": 2}) == 0


def _config(tmp_path, catalog, cfg):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return cat.import_config(path, catalog)


def test_jamba_class_defaults_are_jamba_v01(tmp_path, catalog, graph):
    """JambaConfig's defaults are Jamba-v0.1 (ai21labs/Jamba-v0.1: 'a total of 52B parameters', rounded); its config
    states mamba_dt_rank 256 (= 4,096 / 16, the "auto" value). No verbatim config.json copy was found, so the class
    defaults stand in and the figure is checked within its rounding.
    Attention where i % 8 == 4: 4 of 32 layers; Mamba-1 in the other 28; experts where i % 2 == 1: 16 MoE layers."""
    model = _config(tmp_path, catalog, {"model_type": "jamba"})
    assert (_value(graph, model, "num_attention_layers"), _value(graph, model, "num_recurrent_layers"),
            _value(graph, model, "num_moe_layers")) == (4, 28, 16)
    assert abs(_value(graph, model, "total_params") - 52e9) <= 0.5e9
    # 4 attention layers x 2 x 8 KV heads x 128 x 2 B
    assert _value(graph, model, "kv_cache_bytes_per_token") == 4 * 2 * 8 * 128 * 2
    # Mamba-1: conv 8,192 x 3 x 2 = 49,152; ssm 8,192 x 16 x 2 = 262,144; 28 layers
    assert _value(graph, model, "recurrent_state_bytes_per_sequence", {**ONE_GPU_BF16, "dtype_bytes": 2}) == \
        (49_152 + 262_144) * 28


def test_minimax_text_01_lightning_attention(tmp_path, catalog, graph):
    """MiniMax-Text-01's dimensions (hidden 6,144, 80 layers, 64 heads of 128, 8 KV heads, 32 experts of 9,216,
    vocabulary 200,064; every 8th layer softmax attention in attn_type_list), written here from its model card and
    paper, not a verbatim config.json: published 456B total."""
    cfg = {"model_type": "minimax_text_01", "hidden_size": 6144, "num_hidden_layers": 80, "num_attention_heads": 64,
           "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 9216, "num_local_experts": 32,
           "num_experts_per_tok": 2, "vocab_size": 200064, "tie_word_embeddings": False,
           "attn_type_list": ([0] * 7 + [1]) * 10}
    model = _config(tmp_path, catalog, cfg)
    assert (_value(graph, model, "num_attention_layers"), _value(graph, model, "num_recurrent_layers")) == (10, 70)
    assert abs(_value(graph, model, "total_params") / 456e9 - 1) <= 0.005
    assert _value(graph, model, "kv_cache_bytes_per_token") == 10 * 2 * 8 * 128 * 2
    # lightning state: 64 heads x 128 x 128 x 2 B (model dtype) = 2,097,152 a layer, 70 layers
    assert _value(graph, model, "recurrent_state_bytes_per_sequence", {**ONE_GPU_BF16, "dtype_bytes": 2}) == \
        64 * 128 * 128 * 2 * 70


def test_granite_hybrid_lists_mamba_and_attention(tmp_path, catalog, graph):
    """GraniteMoeHybrid lists layer_types; mamba_d_head omitted = expand x hidden / heads (2 x 512 / 8 = 128)."""
    cfg = {"model_type": "granitemoehybrid", "hidden_size": 512, "num_hidden_layers": 4, "num_attention_heads": 8,
           "num_key_value_heads": 2, "vocab_size": 1000, "num_local_experts": 0,
           "layer_types": ["mamba", "mamba", "mamba", "attention"], "mamba_n_heads": 8, "mamba_n_groups": 1,
           "mamba_d_state": 64}
    model = _config(tmp_path, catalog, cfg)
    assert _value(graph, model, "kv_cache_bytes_per_token") == 1 * 2 * 2 * 64 * 2     # head_dim 512 / 8 = 64
    # conv (1,024 + 2 x 1 x 64) x 3 x 2 = 6,912; ssm 8 x 128 x 64 x 2 = 131,072; 3 layers
    assert _value(graph, model, "recurrent_state_bytes_per_sequence", {**ONE_GPU_BF16, "dtype_bytes": 2}) == \
        (6_912 + 131_072) * 3


def test_unknown_layer_kind_is_refused(tmp_path, catalog):
    with pytest.raises(CatalogError, match="layer kind 'X'"):
        _config(tmp_path, catalog, {"model_type": "nemotron_h", "hybrid_override_pattern": "M*X",
                                    "num_hidden_layers": 3})


# -- vision towers as each family builds them (issue 9 item 3) ---------------------------------------------------
def _siglip_like_layer(h, ff):
    """q, k, v, o with biases (4 h^2 + 4 h), fc1 and fc2 with biases (2 h ff + ff + h), two LayerNorms (4 h)."""
    return 4 * h * h + 4 * h + 2 * h * ff + ff + h + 4 * h


VISION = {
    # SigLIP 27 x (1,152, 4,304); patch conv 3 x 14^2 x 1,152 + bias; (896 / 14)^2 = 4,096 positions; post_layernorm;
    # Gemma3MultiModalProjector: 1,152 x 2,560 matrix + RMSNorm 1,152
    "gemma-3-4b-it": 27 * _siglip_like_layer(1152, 4304) + 3 * 196 * 1152 + 1152 + 4096 * 1152 + 2 * 1152
    + 1152 * 2560 + 1152,
    # Llama4VisionModel 34 x (1,408, 5,632) layers as SigLIP's; unfold-conv patch 3 x 14^2 x 1,408 (no bias); class
    # embedding + (576 + 1) positions; LayerNorm pre and post; adapter fc1 5,632 x 4,096 and fc2 4,096 x 4,096;
    # projector 4,096 x 5,120
    "llama-4-scout-17b-16e-instruct-fp8-dynamic": 34 * _siglip_like_layer(1408, 5632) + 3 * 196 * 1408 + 1408
    + 577 * 1408 + 2 * 2 * 1408 + 5632 * 4096 + 4096 * 4096 + 4096 * 5120,
    # Qwen3.5's tower (Qwen3-VL): 27 SigLIP-like layers; Conv3d 3 x 2 x 16^2 x 1,152 + bias; 2,304 positions; merger
    # LayerNorm 2 x 1,152, 4,608 x 4,608 + 4,608, 4,608 x 5,120 + 5,120
    "qwen3.5-27b": 27 * _siglip_like_layer(1152, 4304) + 3 * 2 * 256 * 1152 + 1152 + 2304 * 1152 + 2 * 1152
    + 4608 * 4608 + 4608 + 4608 * 5120 + 5120,
}
VISION_RECORDS = {
    # Qwen2.5-VL-7B: 32 blocks of RMSNorms (2 h), qkv + proj with biases (4 h^2 + 4 h), gated MLP with biases
    # (3 h ff + 2 ff + h), h = 1,280, ff = 3,420; Conv3d 3 x 2 x 14^2 x 1,280; merger RMSNorm 1,280, 5,120^2 + 5,120,
    # 5,120 x 3,584 + 3,584. With Qwen2.5-7B's 7,615,616,512: 8,292,166,656, HF's '8.29B'.
    "Qwen/Qwen2.5-VL-7B-Instruct": 32 * (4 * 1280**2 + 3 * 1280 * 3420 + 7 * 1280 + 2 * 3420) + 3 * 2 * 196 * 1280
    + 1280 + 5120**2 + 5120 + 5120 * 3584 + 3584,
    # Pixtral 24 x (RMSNorms 2 h, q/k/v/o 4 h^2, gated MLP 3 h ff, no biases), h = 1,024, ff = 4,096; patch conv
    # 3 x 14^2 x 1,024; ln_pre; Mistral3 projector: RMSNorm 1,024, merger 4,096 x 1,024, 1,024 x 5,120, 5,120 x 5,120
    "RedHatAI/Mistral-Small-3.1-24B-Instruct-2503-quantized.w8a8": 24 * (4 * 1024**2 + 3 * 1024 * 4096 + 2 * 1024)
    + 3 * 196 * 1024 + 1024 + 1024 + 4096 * 1024 + 1024 * 5120 + 5120 * 5120,
}


@pytest.mark.parametrize("name", sorted(VISION))
def test_vision_tower_as_the_family_builds_it(graph, catalog, name):
    model = cat.import_config(CONFIGS / f"{name}.json", catalog)
    assert _value(graph, model, "vision_params") == VISION[name]


@pytest.mark.parametrize("model_id", sorted(VISION_RECORDS))
def test_vision_tower_of_catalog_records(graph, catalog, model_id):
    assert _value(graph, catalog.models[model_id], "vision_params") == VISION_RECORDS[model_id]


def test_size_shows_the_state_and_the_enlarged_blocks():
    """Qwen3.5-27B at 32,768 tokens: blocks of 784 tokens (HYBRID); a request takes ceil(32,768 / 784) = 42 attention
    blocks + 3 state blocks, so concurrency = blocks / 45 and tokens = concurrency x 32,768."""
    from click.testing import CliRunner

    from engine.cli import main

    out = CliRunner().invoke(main, ["size", "--no-files", "--model", str(CONFIGS / "qwen3.5-27b.json"), "--gpu",
                                    "h100-sxm", "--max-model-len", "32768"]).output
    line = next(l for l in out.splitlines() if l.startswith("KV cache:"))
    assert "65,536 bytes/token/GPU + 153,944,064 bytes/sequence/GPU of recurrent state" in line
    blocks = int(line.split(", ")[1].split(" blocks of 784 tokens")[0].replace(",", ""))
    concurrency = blocks / 45
    assert f"= {int(concurrency * 32768):,} tokens" in line and f"{concurrency:.2f}x" in line


def test_qwen3_next_class_defaults_are_the_80b_a3b(tmp_path, catalog, graph):
    """Qwen3NextConfig's defaults are Qwen3-Next-80B-A3B's dimensions (model card: '80B in total and 3B activated',
    rounded); no verbatim config.json copy was found, so the defaults stand in. Without layer_types,
    full_attention_interval 4 makes layers 3, 7, ..., 47 full attention: 12 of 48, 36 Gated DeltaNet."""
    model = _config(tmp_path, catalog, {"model_type": "qwen3_next"})
    assert (_value(graph, model, "num_attention_layers"), _value(graph, model, "num_recurrent_layers")) == (12, 36)
    assert abs(_value(graph, model, "total_params") - 80e9) <= 0.5e9
    assert _value(graph, model, "kv_cache_bytes_per_token") == 12 * 2 * 2 * 256 * 2     # 2 KV heads x 256
    # conv (2 x 16 x 128 + 32 x 128) x 3 x 2 = 49,152; delta 32 x 128 x 128 x 2 B (no float32 asked) = 1,048,576
    assert _value(graph, model, "recurrent_state_bytes_per_sequence", {**ONE_GPU_BF16, "dtype_bytes": 2}) == \
        (49_152 + 1_048_576) * 36
