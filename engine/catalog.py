"""The facts: GPUs, models, number formats, frameworks, fitted constants; validated on load.

Models are Hugging Face `config.json` contents. `architecture()` reads the many
spellings transformers uses (n_layer, num_local_experts, text_config, ...) into
one flat record of numbers that formulas read as `model.<field>`; the counting
itself (parameters, bytes) is done by formulas, never here.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from . import units, yamlsafe
from .errors import CatalogError, EngineError, ErrorList, Location
from .yamlsafe import YDict

UNGATED_MLP = {"phi", "gpt2", "gpt_neox", "gptj", "opt", "bloom", "falcon", "mpt", "starcoder2", "gpt_bigcode"}
# transformers' config classes that default to tied embeddings when config.json omits the key
TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text", "gpt2", "opt", "bloom"}
QKV_BIAS = {"qwen2", "qwen2_moe", "phi", "gpt_neox", "gpt2", "starcoder2"}
# config.json keys architecture() does arithmetic on: each must be a number >= 0 when present.
CONFIG_NUMBERS = (
    "num_hidden_layers", "n_layer", "num_layers", "hidden_size", "n_embd", "d_model", "num_attention_heads",
    "n_head", "num_key_value_heads", "multi_query_group_num", "head_dim", "vocab_size", "padded_vocab_size",
    "max_position_embeddings", "n_positions", "seq_length", "partial_rotary_factor", "intermediate_size",
    "intermediate_size_mlp", "ffn_hidden_size", "n_inner", "num_local_experts", "num_experts", "n_routed_experts",
    "moe_num_experts", "moe_intermediate_size", "expert_intermediate_size", "shared_expert_intermediate_size",
    "n_shared_experts", "first_k_dense_replace", "interleave_moe_layer_step", "decoder_sparse_step",
    "moe_layer_freq", "num_experts_per_tok", "moe_topk", "experts_per_token", "kv_lora_rank", "q_lora_rank",
    "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "sliding_window", "attention_chunk_size",
    "sliding_window_pattern", "depth", "embed_dim", "patch_size", "num_channels")
CONFIG_LISTS = ("layer_types", "mlp_only_layers", "no_rope_layers")
# Why: above 2**53 a float no longer holds every integer; no model dimension comes near it.
MAX_CONFIG_NUMBER = 2 ** 53
MAX_CONFIG_BYTES = 5_000_000     # config.json files are a few kB; anything this large is not one
GPU_FIELDS = {"name", "device_names", "memory_total_runtime", "memory_bandwidth", "interconnect_bandwidth",
              "tflops_dense", "supported_dtypes", "sources"}


@dataclass
class Model:
    id: str
    config: dict
    arch: dict
    aliases: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    location: Location | None = None
    source: str | None = None


@dataclass
class Catalog:
    gpus: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    dtypes: dict = field(default_factory=dict)
    kv_cache_dtypes: dict = field(default_factory=dict)
    formats: dict = field(default_factory=dict)
    frameworks: dict = field(default_factory=dict)
    fits: dict = field(default_factory=dict)
    scenarios: dict = field(default_factory=dict)
    profiles: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    files: list = field(default_factory=list)

    def scenarios_default(self) -> dict:
        if "default" not in self.scenarios:
            raise CatalogError("no default scenario in the catalogs", None,
                               hint="add scenarios: {default: {model: ..., gpu: ...}} to a catalog file")
        return self.scenarios["default"]

    # -- lookups with helpful errors -------------------------------------------------
    def gpu(self, key: str, where=None):
        k = str(key).strip()
        for gid, g in self.gpus.items():
            names = [gid, str(g.get("name", "")), *g.get("aliases", []), *g.get("device_names", [])]
            if k.lower() in (n.lower() for n in names):
                return gid, g
        raise _unknown("GPU", k, [*self.gpus, *(n for g in self.gpus.values() for n in g.get("device_names", []))],
                       where, "llm-sizer catalog gpus lists them; add your own with --catalogs DIR")

    def model(self, key: str, where=None) -> Model:
        k = str(key).strip()
        for m in self.models.values():
            if k == m.id or k.lower() == m.id.lower() or k.lower() in m.aliases:
                return m
        path = Path(k)
        try:
            is_dir = path.is_dir()
        except OSError:     # a name too long to be a path: not one
            is_dir = False
        if path.suffix == ".json" or path.name == "config.json" or is_dir:
            return import_config(path / "config.json" if is_dir else path)
        raise _unknown("model", k, [m.id for m in self.models.values()], where,
                       "give a catalog id, or the path of a Hugging Face config.json")

    def resolve(self, table: str, key: str, where=None):
        entries = getattr(self, table)
        k = str(key).strip().lower()
        for name, rec in entries.items():
            if k == name.lower() or k in [str(a).lower() for a in rec.get("aliases", [])] \
                    or k in [str(a).lower() for a in rec.get("vllm", [])]:
                return name, rec
        raise _unknown(table.replace("_", " ").rstrip("s"), key, list(entries), where, None)


def _unknown(kind, key, choices, where, hint) -> CatalogError:
    import difflib

    close = difflib.get_close_matches(str(key), [str(c) for c in choices], n=1, cutoff=0.5)
    return CatalogError(f"unknown {kind} '{key}'", where,
                        hint=f"did you mean '{close[0]}'?" if close else hint)


def load(dirs) -> Catalog:
    """Read every catalog directory; later directories override earlier records of the same id."""
    cat, errors = Catalog(), ErrorList()
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            errors.add(CatalogError(f"catalog directory not found: {d}", Location(yamlsafe.display_path(d))))
            continue
        for path in sorted(d.rglob("*.yaml")):
            try:
                _read(cat, yamlsafe.load(path), errors)
                cat.files.append(yamlsafe.display_path(path))
            except EngineError as exc:
                errors.add(exc)
    errors.raise_if_any()
    return cat


def _read(cat: Catalog, doc, errors: ErrorList):
    if not isinstance(doc, YDict):
        raise CatalogError("a catalog file must be a mapping", None)
    if "id" in doc and "config" in doc:
        m = _model_record(doc, errors)
        if m:
            cat.models[m.id] = m
        return
    known = {f.name for f in fields(Catalog)} - {"models", "files"}
    for key, block in doc.items():
        if key in ("schema",):
            continue
        if key not in known:
            errors.add(CatalogError(f"unknown catalog section '{key}'", doc.where(key, of_key=True),
                                    expected=", ".join(sorted(known))))
            continue
        if not isinstance(block, YDict):
            errors.add(CatalogError(f"{key}: must be a mapping of ids to records", doc.where(key)))
            continue
        for rid, rec in block.items():
            if key == "gpus":
                _check_gpu(rid, rec, block, errors)
            getattr(cat, key)[rid] = rec
        if key == "calibration":
            _check_calibration(cat.calibration, errors)


def _check_gpu(gid, rec, block: YDict, errors: ErrorList):
    if not isinstance(rec, YDict):
        errors.add(CatalogError(f"gpus.{gid} must be a mapping", block.where(gid)))
        return
    for f in sorted(GPU_FIELDS - set(rec)):
        errors.add(CatalogError(f"gpus.{gid} is missing '{f}'", rec.where(), hint=f"add '{f}:' with its source"))
    for f, unit in (("memory_total_runtime", "byte"), ("memory_bandwidth", "byte/s"),
                    ("interconnect_bandwidth", "byte/s")):
        if f in rec:
            try:
                value = units.parse_quantity(rec[f], unit, rec.where(f), field=f"gpus.{gid}.{f}")
                if value <= 0:
                    raise CatalogError(f"gpus.{gid}.{f} must be positive", rec.where(f), found=str(rec[f]))
            except EngineError as exc:
                errors.add(exc)


def _check_calibration(cal: dict, errors: ErrorList):
    """Every calibrated value present, a number, and inside its physical range."""
    ranges, gpus = cal.get("ranges") or {}, cal.get("gpus") or {}
    for gid, rec in gpus.items():
        if not isinstance(rec, YDict):
            errors.add(CatalogError(f"calibration.gpus.{gid} must be a mapping", gpus.where(gid)))
            continue
        for name, r in ranges.items():
            value = rec.get(name)
            where = rec.where(name) if name in rec else rec.where()
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                errors.add(CatalogError(f"{name} must be a valid number for {gid}, got {value!r}", where,
                                        expected=f"{r['min']} to {r['max']} ({r['doc']})",
                                        hint="add every field of the calibration (see the h100-sxm record)"))
            elif not r["min"] <= value <= r["max"]:
                errors.add(CatalogError(f"{name} must be between {r['min']} and {r['max']} for {gid}, got {value}",
                                        where, expected=r["doc"], hint="fix the value or recalibrate: "
                                        "llm-sizer calibrate latency"))
        for name in rec:
            if name not in ranges and name not in ("source", "fit"):
                errors.add(CatalogError(f"unknown calibration field '{name}' for {gid}", rec.where(name, of_key=True),
                                        expected=", ".join(ranges)))


def _model_record(doc: YDict, errors: ErrorList) -> Model | None:
    cfg = doc.get("config")
    if not isinstance(cfg, dict):
        errors.add(CatalogError("config: must be the config.json mapping", doc.where("config")))
        return None
    try:
        arch = architecture(cfg, doc.where("config"))
    except EngineError as exc:
        errors.add(exc)
        return None
    aliases = [str(a).lower() for a in (doc.get("aliases") or [])]
    return Model(str(doc["id"]), cfg, arch, aliases, dict(doc.get("params") or {}), doc.where(),
                 doc.get("config_source"))


def import_config(path: Path) -> Model:
    """A model from a Hugging Face config.json on disk (no network)."""
    shown = yamlsafe.display_path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise CatalogError(f"config.json is over the {MAX_CONFIG_BYTES:,} bytes allowed", Location(shown),
                               hint="give the path of a Hugging Face config.json")
        cfg = json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise CatalogError(f"cannot read config.json: {exc.strerror}", Location(shown)) from None
    except (ValueError, RecursionError) as exc:    # JSONDecodeError, UnicodeDecodeError, a 5,000-digit int
        raise CatalogError(f"not valid JSON: {str(exc) or 'nested too deeply'}", Location(shown),
                           hint="give the path of a Hugging Face config.json") from None
    if not isinstance(cfg, dict):
        raise CatalogError("config.json must hold a JSON object", Location(shown))
    name = cfg.get("_name_or_path") or Path(path).parent.name or Path(path).stem
    return Model(str(name), cfg, architecture(cfg, Location(shown)), [], {}, Location(shown), shown)


# -- config.json -> architecture record ---------------------------------------------------

def _first(cfg: dict, *keys, default=None):
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return default


def architecture(cfg: dict, where: Location | None = None) -> dict:
    """Numbers the formulas need, read from a config.json's own spelling of them."""
    _check_config_values(cfg, where)
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
    model_type = str(text.get("model_type") or cfg.get("model_type") or "")

    def need(*keys):
        v = _first(text, *keys)
        if v is None:
            raise CatalogError(f"config.json has no {keys[0]}", where,
                               hint=f"add \"{keys[0]}\" (also read as {', '.join(keys[1:]) or 'nothing else'})")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise CatalogError(f"config.json {keys[0]} must be a positive number", where, found=repr(v))
        return v

    layers = need("num_hidden_layers", "n_layer", "num_layers")
    hidden = need("hidden_size", "n_embd", "d_model")
    heads = need("num_attention_heads", "n_head")
    kv_heads = _first(text, "num_key_value_heads", "multi_query_group_num", default=heads)
    head_dim = _first(text, "head_dim", default=None) or hidden // heads
    vocab = need("vocab_size", "padded_vocab_size")
    tied = _first(text, "tie_word_embeddings", default=None)
    if tied is None:
        tied = cfg.get("tie_word_embeddings", model_type in TIED_BY_DEFAULT)

    arch = {
        "num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "head_dim": head_dim, "vocab_size": vocab,
        "tie_word_embeddings": int(bool(tied)),
        "max_position_embeddings": _first(text, "max_position_embeddings", "n_positions", "seq_length",
                                          default=4096),
        "mlp_gated": 0 if model_type in UNGATED_MLP else 1,
        "qkv_bias": int(bool(_first(text, "attention_bias", "qkv_bias", default=model_type in QKV_BIAS))),
        "rotary_dim": int(head_dim * float(_first(text, "partial_rotary_factor", default=1.0))),
        "num_rope_caches": 2 if text.get("rope_local_base_freq") else 1,
    }
    arch.update(_moe(text, model_type, layers, hidden))
    arch["intermediate_size"] = _dense_intermediate(text, model_type, hidden, arch["num_experts"])
    arch.update(_mla(text))
    arch.update(_attention_layout(text, model_type, layers))
    arch.update(_vision(cfg))
    arch["torch_dtype"] = str(_first(text, "torch_dtype", "dtype", default=None)
                              or cfg.get("torch_dtype") or "bfloat16")
    arch["quantization"] = quantization_format(cfg.get("quantization_config") or text.get("quantization_config"))
    return arch


def _check_config_values(cfg: dict, where: Location | None):
    """Refuse NaN, infinities, huge numbers anywhere, and non-numbers where arithmetic is done."""
    stack = [("", cfg)]
    while stack:
        path, node = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in children)
        if isinstance(node, float) and not math.isfinite(node):
            raise CatalogError(f"config.json {path} is {node}, not a number", where,
                               hint=f"write a finite number for \"{path}\"")
        if isinstance(node, int) and not isinstance(node, bool) and abs(node) > MAX_CONFIG_NUMBER:
            raise CatalogError(f"config.json {path} is too large", where, found=str(node)[:40],
                               expected=f"at most {MAX_CONFIG_NUMBER:,}")
    for block, prefix in ((cfg, ""), (cfg.get("text_config"), "text_config."), (cfg.get("vision_config"),
                                                                                "vision_config.")):
        if not isinstance(block, dict):
            continue
        for key in CONFIG_NUMBERS:
            v = block.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise CatalogError(f"config.json {prefix}{key} must be a number of at least 0", where,
                                   found=repr(v), hint=f"fix \"{key}\" in the config.json")
        for key in CONFIG_LISTS:
            if block.get(key) is not None and not isinstance(block[key], list):
                raise CatalogError(f"config.json {prefix}{key} must be a list", where, found=repr(block[key]))


def _moe(text, model_type, layers, hidden) -> dict:
    experts = _first(text, "num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts", default=0) or 0
    if not experts:
        return {"num_experts": 0, "num_experts_per_tok": 0, "moe_intermediate_size": 0,
                "shared_expert_intermediate_size": 0, "num_moe_layers": 0}
    moe_inter = _first(text, "moe_intermediate_size", "expert_intermediate_size", default=None) \
        or text.get("intermediate_size")
    shared = 0
    if text.get("shared_expert_intermediate_size"):
        shared = text["shared_expert_intermediate_size"]
    elif text.get("n_shared_experts"):
        shared = text["n_shared_experts"] * moe_inter
    elif model_type.startswith("llama4"):
        shared = moe_inter                       # Llama 4: one shared expert as wide as a routed one
    dense = _first(text, "first_k_dense_replace", default=0) or 0
    if text.get("mlp_only_layers"):
        dense += len(text["mlp_only_layers"])
    step = _first(text, "interleave_moe_layer_step", "decoder_sparse_step", "moe_layer_freq", default=1) or 1
    moe_layers = (layers - dense) // step if step > 1 else layers - dense
    return {"num_experts": experts, "num_experts_per_tok": _first(text, "num_experts_per_tok", "moe_topk",
                                                                    "experts_per_token", default=2),
            "moe_intermediate_size": moe_inter, "shared_expert_intermediate_size": shared,
            "num_moe_layers": moe_layers}


def _dense_intermediate(text, model_type, hidden, experts) -> int:
    if model_type.startswith("llama4"):
        return text.get("intermediate_size_mlp") or text.get("intermediate_size")
    return _first(text, "intermediate_size", "ffn_hidden_size", "n_inner", default=None) or 4 * hidden


def _mla(text) -> dict:
    rank = text.get("kv_lora_rank") or 0
    return {"kv_lora_rank": rank, "q_lora_rank": text.get("q_lora_rank") or 0,
            "qk_rope_head_dim": text.get("qk_rope_head_dim") or 0 if rank else 0,
            "qk_nope_head_dim": text.get("qk_nope_head_dim") or 0 if rank else 0,
            "v_head_dim": text.get("v_head_dim") or 0 if rank else 0}


def _attention_layout(text, model_type, layers) -> dict:
    """How many layers attend to a window (sliding or chunked) and how many to everything."""
    window = _first(text, "sliding_window", "attention_chunk_size", default=0) or 0
    sliding = 0
    if isinstance(text.get("layer_types"), list) and text["layer_types"]:
        sliding = sum(1 for t in text["layer_types"] if t != "full_attention")
    elif model_type.startswith("gemma3"):
        pattern = text.get("sliding_window_pattern") or 6
        sliding = layers - layers // pattern
    elif model_type.startswith("gemma2"):
        sliding = layers // 2
    elif model_type.startswith("llama4") and text.get("attention_chunk_size"):
        flags = text.get("no_rope_layers") or []
        sliding = sum(1 for f in flags if f) if flags else layers - layers // 4
    elif window and text.get("use_sliding_window", True) and model_type in ("mistral", "mixtral", "qwen2"):
        sliding = layers if text.get("use_sliding_window", model_type != "qwen2") else 0
    if not window:
        sliding = 0
    return {"sliding_window": window if sliding else 0, "num_sliding_layers": sliding,
            "num_full_attention_layers": layers - sliding}


def _vision(cfg) -> dict:
    v = cfg.get("vision_config") if isinstance(cfg.get("vision_config"), dict) else None
    if not v:
        return {"vision_num_layers": 0, "vision_hidden_size": 0, "vision_intermediate_size": 0,
                "vision_patch_size": 0, "vision_num_channels": 0}
    return {"vision_num_layers": _first(v, "num_hidden_layers", "depth", default=0),
            "vision_hidden_size": _first(v, "hidden_size", "embed_dim", default=0),
            "vision_intermediate_size": _first(v, "intermediate_size", default=0),
            "vision_patch_size": _first(v, "patch_size", default=14),
            "vision_num_channels": _first(v, "num_channels", default=3)}


def quantization_format(qc) -> str:
    """The id in catalogs/quantization.yaml that a config's quantization_config describes."""
    if not isinstance(qc, dict):
        return "none"
    method = str(qc.get("quant_method", "")).lower()
    if method == "fp8":
        return "fp8-block" if qc.get("weight_block_size") else "fp8"
    if method == "mxfp4":
        return "mxfp4"
    if method in ("awq", "awq_marlin"):
        return "awq-int4-g128"
    if method in ("gptq", "gptq_marlin"):
        bits, group = qc.get("bits", 4), qc.get("group_size", 128)
        return "gptq-int8-g128" if bits == 8 else ("gptq-int4-g32" if group == 32 else "gptq-int4-g128")
    if method == "bitsandbytes":
        if qc.get("load_in_8bit"):
            return "bnb-int8"
        return "bnb-nf4" if qc.get("bnb_4bit_use_double_quant") else "bnb-nf4-single"
    if method in ("modelopt", "modelopt_fp4"):
        return "nvfp4"
    if method == "compressed-tensors":
        groups = qc.get("config_groups") or {}
        w = next((g.get("weights") or {} for g in groups.values() if isinstance(g, dict)), {})
        bits, kind = w.get("num_bits", 8), str(w.get("type", "int"))
        if bits == 8:
            return "fp8-dynamic" if kind == "float" else "int8-w8a8"
        if bits == 4:
            return "nvfp4" if kind == "float" else "gptq-int4-g128"
    return "none"

