"""The facts: GPUs, models, number formats, frameworks, fitted constants; validated on load.

Models are Hugging Face `config.json` contents. `architecture()` reads the many
spellings transformers uses (n_layer, num_local_experts, text_config, ...) into
one flat record of numbers that formulas read as `model.<field>`; the counting
itself (parameters, bytes) is done by formulas, never here.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from . import units, yamlsafe
from .errors import CatalogError, EngineError, ErrorList, Location
from .yamlsafe import YDict

# Why: above 2**53 a float no longer holds every integer; no model dimension comes near it.
MAX_CONFIG_NUMBER = 2 ** 53
MAX_CONFIG_BYTES = 5_000_000     # config.json files are a few kB; anything this large is not one
GPU_FIELDS = {"name", "device_names", "memory_total_runtime", "memory_bandwidth", "interconnect_bandwidth",
              "peer_fabric", "tflops_dense", "supported_dtypes", "sources"}


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
    latency_data: dict = field(default_factory=dict)    # catalogs/latency/: measured offline-batch latencies
    vllm_versions: dict = field(default_factory=dict)   # catalogs/vllm_versions.yaml: newest, releases
    config_keys: dict = field(default_factory=dict)     # catalogs/architectures.yaml: how config.json spells a field
    config_key_kinds: tuple = ()                         # (numeric keys, list keys) of config_keys, derived once
    model_types: dict = field(default_factory=dict)     # catalogs/architectures.yaml: per-class defaults and facts
    quantization_config: dict = field(default_factory=dict)  # catalogs/quantization.yaml: how its keys are spelled
    prices: dict = field(default_factory=dict)          # catalogs/prices.yaml: on-demand USD per GPU-hour, by GPU id
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
            return import_config(path / "config.json" if is_dir else path, self)
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
    _read_architectures(cat, errors)
    _check_calibrated_as(cat, errors)
    errors.raise_if_any()
    return cat


def _check_calibrated_as(cat: Catalog, errors: ErrorList):
    """`calibrated_as` names another GPU of the catalog, one that is not itself borrowing, with why."""
    for gid, rec in cat.gpus.items():
        other = rec.get("calibrated_as") if isinstance(rec, dict) else None
        if other is None:
            continue
        where = rec.where("calibrated_as") if hasattr(rec, "where") else None
        if other not in cat.gpus or other == gid or cat.gpus[other].get("calibrated_as"):
            errors.add(CatalogError(f"gpus.{gid}.calibrated_as must name another GPU with a calibration of its own",
                                    where, found=str(other), expected=", ".join(sorted(g for g in cat.gpus if g != gid))))
        elif not rec.get("calibrated_as_why"):
            errors.add(CatalogError(f"gpus.{gid}.calibrated_as needs calibrated_as_why", where,
                                    hint="say why the two chips share their roofline constants"))


def _read_architectures(cat: Catalog, errors: ErrorList):
    """Model records are read once every file is in: their meaning depends on catalogs/architectures.yaml."""
    cat.config_key_kinds = _config_key_kinds(cat)
    for mid, m in list(cat.models.items()):
        try:
            m.arch = architecture(m.config, cat, m.location)
        except EngineError as exc:
            errors.add(exc)
            del cat.models[mid]


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
            if key == "prices":
                _check_price(rid, rec, block, errors)
            getattr(cat, key)[rid] = rec
        if key == "calibration":
            _check_calibration(cat.calibration, errors)


def _check_gpu(gid, rec, block: YDict, errors: ErrorList):
    if not isinstance(rec, YDict):
        errors.add(CatalogError(f"gpus.{gid} must be a mapping", block.where(gid)))
        return
    for f in sorted(GPU_FIELDS - set(rec)):
        errors.add(CatalogError(f"gpus.{gid} is missing '{f}'", rec.where(), hint=f"add '{f}:' with its source"))
    if "peer_fabric" in rec and rec["peer_fabric"] not in (0, 1):   # formulas branch on it (non_torch_memory)
        errors.add(CatalogError(f"gpus.{gid}.peer_fabric must be 1 (NVLink/xGMI between the GPUs) or 0 (PCIe only)",
                                rec.where("peer_fabric"), found=str(rec["peer_fabric"])))
    for f, unit in (("memory_total_runtime", "byte"), ("memory_bandwidth", "byte/s"),
                    ("interconnect_bandwidth", "byte/s")):
        if f in rec:
            try:
                value = units.parse_quantity(rec[f], unit, rec.where(f), field=f"gpus.{gid}.{f}")
                if value <= 0:
                    raise CatalogError(f"gpus.{gid}.{f} must be positive", rec.where(f), found=str(rec[f]))
            except EngineError as exc:
                errors.add(exc)


def _check_price(gid, rec, block: YDict, errors: ErrorList):
    """A price is a quantity in USD / gpu / hour with its provider, source and date; or null with why_none."""
    if not isinstance(rec, YDict) or "usd_per_gpu_hour" not in rec:
        errors.add(CatalogError(f"prices.{gid} must be a mapping with usd_per_gpu_hour", block.where(gid),
                                hint="usd_per_gpu_hour: 2.5 USD / gpu / hour, with provider, source and date"))
        return
    if rec["usd_per_gpu_hour"] is None:
        if not rec.get("why_none"):
            errors.add(CatalogError(f"prices.{gid} has no price and no why_none", rec.where(),
                                    hint="say why no public on-demand price exists (why_none: ...)"))
        return
    for f in ("provider", "source", "date"):
        if not rec.get(f):
            errors.add(CatalogError(f"prices.{gid} is missing '{f}'", rec.where(), hint="a price needs its provider, "
                                    "the page it was read from (source) and the day it was read (date)"))
    try:
        if units.parse_quantity(rec["usd_per_gpu_hour"], PRICE_UNIT, rec.where("usd_per_gpu_hour"),
                                field=f"prices.{gid}.usd_per_gpu_hour") < 0:
            raise CatalogError(f"prices.{gid}.usd_per_gpu_hour must not be negative", rec.where("usd_per_gpu_hour"))
    except EngineError as exc:
        errors.add(exc)


PRICE_UNIT = "USD / gpu / hour"


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
            elif not (low := (r.get("min_by_gpu") or {}).get(gid, r["min"])) <= value <= r["max"]:
                errors.add(CatalogError(f"{name} must be between {low} and {r['max']} for {gid}, got {value}",
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
    aliases = [str(a).lower() for a in (doc.get("aliases") or [])]
    return Model(str(doc["id"]), cfg, {}, aliases, dict(doc.get("params") or {}), doc.where(),
                 doc.get("config_source"))


def import_config(path: Path, catalog: Catalog) -> Model:
    """A model from a Hugging Face config.json on disk (no network), read with the catalog's architectures."""
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
    # a file called config.json is named by its directory; any other JSON file by its own name
    name = cfg.get("_name_or_path") or (Path(path).parent.name if Path(path).name == "config.json" else "") \
        or Path(path).stem
    return Model(str(name), cfg, architecture(cfg, catalog, Location(shown)), [], {}, Location(shown), shown)


# -- config.json -> architecture record ---------------------------------------------------
# A generic reader: what each key means and what a model type leaves unsaid live in catalogs/architectures.yaml;
# the arithmetic on what is read (head_dim, layer counts, shared experts) is formulas/architecture.yaml.

def architecture(cfg: dict, catalog: Catalog, where: Location | None = None) -> dict:
    """The flat record formulas read as `model.<field>`, from a config.json and the catalog's architectures."""
    if not catalog.config_keys:
        raise CatalogError("no config_keys in the catalogs: config.json files cannot be read", where,
                           hint="keep catalogs/architectures.yaml among the catalog directories")
    _check_config_values(cfg, catalog, where)
    parts = _config_parts(cfg, catalog)
    arch = {name: _field(name, spec, parts, where) for name, spec in catalog.config_keys.items()}
    for name, spec in catalog.config_keys.items():
        if isinstance(arch[name], dict):
            arch[name] = arch[arch[name]["same_as"]]
        if spec.get("only_with") and not arch.get(spec["only_with"]):
            arch[name] = 0
    arch.update(_layer_pattern(parts["text"], where))
    arch.update(_layer_kinds(parts["text"], where))
    qc = cfg.get("quantization_config") or parts["text"]["explicit"].get("quantization_config")
    arch["quantization"] = quantization_format(qc)
    arch.update(quantization_details(qc, catalog.quantization_config))
    return arch


def _config_parts(cfg: dict, catalog: Catalog) -> dict:
    """The top level, the text part and the vision part, each with its model type's record."""
    types = catalog.model_types

    def part(block, model_type, parent_rec=None, sub=None):
        block = block if isinstance(block, dict) else None
        mtype = str((block or {}).get("model_type") or (parent_rec or {}).get(sub) or model_type or "")
        rec = _merged_type(types, mtype)
        return {"explicit": block or {}, "present": block is not None, "type": mtype, "record": rec,
                "effective": {**(rec.get("defaults") or {}), **(block or {})}}

    top = part(cfg, cfg.get("model_type"))
    nested = isinstance(cfg.get("text_config"), dict)
    text = part(cfg["text_config"], None, top["record"], "text_config") if nested else top
    vision = part(cfg.get("vision_config"), None, top["record"], "vision_config")
    return {"top": top, "text": text, "vision": vision}


def _merged_type(types: dict, mtype: str) -> dict:
    """A model type's record over the `any` record (a field of its own replaces the shared one)."""
    base, own = types.get("any") or {}, types.get(mtype) or {}
    merged = {**base, **own}
    merged["layer_pattern"] = {**(base.get("layer_pattern") or {}), **(own.get("layer_pattern") or {})}
    return merged


def _field(name: str, spec: dict, parts: dict, where):
    part = parts[spec.get("part", "text")]
    if spec.get("part") == "vision" and not part["present"]:
        return 0
    layers = [part["explicit"]]
    if spec.get("also_top") and parts["top"] is not part:
        layers.append(parts["top"]["explicit"])
    layers.append(part["effective"])
    kind, keys = spec.get("kind", "number"), spec.get("read") or []
    for layer in layers:
        found = [layer[k] for k in keys if k in layer]
        if kind == "present" and found:
            return int(any(v is not None for v in found))
        if kind == "matches" and found:
            return int(found[0] in (spec.get("values") or []))
        if kind == "count" and found:
            return len(found[0]) if isinstance(found[0], list) else 0
        value = next((v for v in found if v is not None), None)
        if value is not None:
            return _typed(name, kind, value, where)
    modeling = part["record"].get("modeling") or {}
    if name in modeling:
        return _typed(name, kind, modeling[name], where)
    if kind in ("present", "count", "matches"):
        return 0
    if spec.get("required"):
        also = ", ".join(keys[1:]) or "nothing else"
        raise CatalogError(f"config.json has no {keys[0]}", where,
                           hint=f"add \"{keys[0]}\" (also read as {also}); model type "
                                f"'{part['type'] or '?'}' has no class default for it in catalogs/architectures.yaml")
    fallback = spec.get("fallback")
    if isinstance(fallback, dict):      # {same_as: field}: architecture() copies it once that field is read
        return fallback
    return _typed(name, kind, fallback, where)


def _typed(name: str, kind: str, value, where):
    if kind == "flag":
        return int(bool(value))
    if kind == "name":
        return str(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CatalogError(f"config.json {name} must be a number", where, found=repr(value)[:40])
    return value


def _layer_pattern(text: dict, where) -> dict:
    """What the layer-pattern keys say, read as the model type declares them; formulas count the layers."""
    pattern, cfg = text["record"].get("layer_pattern") or {}, text["effective"]
    window = cfg.get(pattern.get("window", "sliding_window")) or 0
    if pattern.get("enabled_by") and not cfg.get(pattern["enabled_by"]):
        window = 0
    listed, windowed = 0, 0
    for key, full in (pattern.get("lists") or {}).items():
        if isinstance(cfg.get(key), list) and cfg[key]:
            listed, windowed = 1, sum(1 for entry in cfg[key] if entry not in full)
            break
    period = pattern.get("period", 1)
    period = cfg.get(period) if isinstance(period, str) else period
    return {"sliding_window": _typed("sliding_window", "number", window, where),
            "layer_pattern_listed": listed, "num_listed_window_layers": windowed,
            "full_attention_period": _typed("full_attention_period", "number", period or 0, where)}


def _layer_kinds(text: dict, where) -> dict:
    """Hybrid models: how many layers of each kind a per-layer list (or a string, one character a layer) names."""
    spec, cfg = text["record"].get("layer_kinds") or {}, text["effective"]
    counts = {kind: 0 for kind in LAYER_KINDS}
    listed = next((cfg[k] for k in spec.get("keys") or [] if cfg.get(k) is not None), None)
    if listed is not None and not isinstance(listed, (list, str)):
        raise CatalogError("config.json lists its layer kinds in something other than a list or a string", where,
                           found=repr(listed)[:40], expected=f"one of {', '.join(spec['keys'])} as a list")
    for entry in listed or []:
        kind = next((k for k in LAYER_KINDS if entry in (spec.get(k) or [])), None)
        if kind is None:
            raise CatalogError(f"config.json names a layer kind '{entry}' that catalogs/architectures.yaml does not "
                               f"know for model type '{text['type']}'", where,
                               hint="add it to that model type's layer_kinds")
        counts[kind] += 1
    return {"layer_kinds_listed": int(bool(listed)),
            "blocks_listed": int(bool(listed) and bool(spec.get("mlp") or spec.get("moe"))),
            **{f"num_kind_{kind}_layers": n for kind, n in counts.items()}}


# The kinds a hybrid model's layer list may name: attention (a KV cache per token), recurrent (Mamba, Gated DeltaNet,
# lightning attention: a fixed state per sequence), and mlp / moe blocks that NemotronH counts as layers of their own.
LAYER_KINDS = ("attention", "recurrent", "mlp", "moe")


def _check_config_values(cfg: dict, catalog: Catalog, where: Location | None):
    """Refuse NaN and infinities where numbers are read, huge numbers anywhere, and non-numbers where arithmetic is
    done. (A key nobody reads may hold Infinity: NemotronH's time_step_limit is [0.0, Infinity].)"""
    numbers, lists = catalog.config_key_kinds or _config_key_kinds(catalog)
    stack = [("", cfg)]
    while stack:
        path, node = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in children)
        if isinstance(node, float) and not math.isfinite(node) and path.split(".")[-1] in numbers:
            raise CatalogError(f"config.json {path} is {node}, not a number", where,
                               hint=f"write a finite number for \"{path}\"")
        if isinstance(node, int) and not isinstance(node, bool) and abs(node) > MAX_CONFIG_NUMBER:
            raise CatalogError(f"config.json {path} is too large", where, found=str(node)[:40],
                               expected=f"at most {MAX_CONFIG_NUMBER:,}")
    for block, prefix in ((cfg, ""), (cfg.get("text_config"), "text_config."), (cfg.get("vision_config"),
                                                                                "vision_config.")):
        if not isinstance(block, dict):
            continue
        for key in numbers:
            v = block.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise CatalogError(f"config.json {prefix}{key} must be a number of at least 0", where,
                                   found=repr(v), hint=f"fix \"{key}\" in the config.json")
        for key in lists:
            if block.get(key) is not None and not isinstance(block[key], list):
                raise CatalogError(f"config.json {prefix}{key} must be a list", where, found=repr(block[key]))


def _config_key_kinds(catalog: Catalog) -> tuple[set, set]:
    """config.json keys read as numbers, and keys read as per-layer lists, per the catalog."""
    numbers, lists = set(), set()
    for spec in catalog.config_keys.values():
        kind = spec.get("kind", "number")
        (numbers if kind == "number" else lists if kind == "count" else set()).update(spec.get("read") or [])
    for rec in catalog.model_types.values():
        pattern = rec.get("layer_pattern") or {}
        lists.update(pattern.get("lists") or {})
        numbers.update(v for k, v in pattern.items() if k in ("window", "period") and isinstance(v, str))
    return numbers, lists


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



def quantization_details(qc, spelling: dict) -> dict:
    """What a quantization_config says beyond its format, read as catalogs/quantization.yaml spells the keys:
    bits and elements per scale (group or block), zero points, and the decoder layers a skip list keeps unquantized.
    formulas/quantization.yaml turns them into bits per weight and the unquantized share."""
    qc = qc if isinstance(qc, dict) else {}
    groups = qc.get(spelling.get("groups_key", "config_groups"))
    weights = next((g.get("weights") for g in (groups or {}).values() if isinstance(g, dict)
                    and isinstance(g.get("weights"), dict)), {}) if isinstance(groups, dict) else {}

    def first(field):
        for layer in (weights, qc):
            found = next((layer[k] for k in spelling.get(field) or [] if layer.get(k) is not None), None)
            if found is not None:
                return found
        return None

    bits, group, block = first("weight_bits"), first("group_size"), first("block_shape")
    if isinstance(block, list) and block and all(isinstance(b, int) and b > 0 for b in block):
        group = math.prod(block)
    asym = first("asymmetric_when_true")
    sym = first("asymmetric_when_false")
    skipped = {kind: set() for kind in (spelling.get("per_layer_kinds") or {}).values()}
    pattern = re.compile(spelling.get("per_layer_skip") or r"$^")
    for key in spelling.get("skip_lists") or []:
        listed = qc.get(key) if isinstance(qc.get(key), list) else []
        for entry in listed:
            m = pattern.search(str(entry))
            if m and m.group(2) in spelling["per_layer_kinds"]:
                skipped[spelling["per_layer_kinds"][m.group(2)]].add(int(m.group(1)))
    number = (lambda v: v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0)
    return {"quant_weight_bits": number(bits), "quant_group_size": number(group),
            "quant_zero_point": int(asym is True or sym is False),
            **{f"quant_skipped_{kind}_layers": len(layers) for kind, layers in skipped.items()}}
