"""A scenario (what to size) and the bindings it gives every formula input.

Keys are named as vLLM names its engine arguments. A user scenario is layered
over the built-in default (catalogs: scenarios.default) and vLLM's engine
defaults (catalogs: frameworks.vllm.engine_defaults). Each formula input's
`from:` path is then read from the scenario, the model's architecture, the GPU,
the number formats, the framework or the fitted constants.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from . import units, yamlsafe
from .catalog import Catalog, Model
from .errors import EngineError, Location, ScenarioError, SchemaError, shorten
from .graph import FormulaGraph
from .scenario_keys import KEYS

LARGE_DEFAULT_KEYS = ("max_num_seqs", "max_num_batched_tokens")


@dataclass
class Scenario:
    """Resolved settings, the records they point at, and notes on what was decided for the user."""

    values: dict
    model: Model
    gpu_id: str
    gpu: dict
    framework_id: str
    framework: dict
    dtype: str
    kv_dtype: str
    quant_id: str
    quant: dict
    notes: list = field(default_factory=list)
    origin: dict = field(default_factory=dict)   # key -> where its value came from
    vllm: dict = field(default_factory=dict)     # the vLLM release's facts (catalogs/vllm_versions.yaml), merged
    price: dict = field(default_factory=dict)    # {usd_per_gpu_hour}: the GPU's on-demand price, when one is known

    def public(self) -> dict:
        """The scenario as it was sized, for JSON output and reports."""
        out = {k: _plain(v) for k, v in self.values.items()}
        out.update({"model": self.model.id, "gpu": self.gpu_id, "framework": self.framework_id,
                    "dtype": self.dtype, "kv_cache_dtype": self.kv_dtype, "quantization": self.quant_id})
        return out


def _plain(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v.item() if isinstance(v, np.generic) else v


# Why: beyond 2**53 a float no longer holds every whole number; no scenario value comes near it.
MAX_MAGNITUDE = 2 ** 53
MAX_SWEEP = 10_000            # values in one swept key; a longer sweep is a mistake, and slow
SCENARIO_MAX_BYTES = 1_000_000  # a scenario file is a few dozen keys, a sweep a few thousand values
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+$")    # 131,072 (commas only as thousands separators)


def flag(key: str) -> str:
    """The command-line option of a scenario key, as the user types it."""
    return "--" + key.replace("_", "-")


def coerce(key: str, value, where: Location | None = None):
    """A scenario value of the right type, or a ScenarioError naming the key (the option on the
    command line, `where` is None; the key in a file otherwise) and the fix."""
    if key not in KEYS:
        import difflib

        close = difflib.get_close_matches(key, list(KEYS), n=1)
        raise ScenarioError(f"unknown scenario key '{shorten(key)}'", where,
                            hint=f"did you mean '{close[0]}'?" if close else f"keys: {', '.join(KEYS)}")
    kind, doc = KEYS[key]
    name = f"scenario key '{key}'" if where else flag(key)
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and kind in (int, float):
        if not value or len(value) > MAX_SWEEP or any(isinstance(v, (list, tuple, dict)) for v in value):
            raise ScenarioError(f"{name} must be a number or a flat list of 1 to {MAX_SWEEP:,} numbers (a sweep)",
                                where, found=shorten(repr(value)))
        return np.array([coerce(key, v, where) for v in value], dtype=float)
    try:
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            if isinstance(value, bool):
                return value
            raise ValueError
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            if isinstance(value, str) and "," in value and not _THOUSANDS.match(value.strip()):
                raise ValueError    # '3,6' is not 36
            number = int(str(value).replace(",", "").replace("_", "")) if isinstance(value, str) else int(value)
            return _bounded(number, name, where)
        if kind is float:
            if isinstance(value, bool) or isinstance(value, dict):
                raise ValueError
            number = _bounded(float(value), name, where)
            return int(number) if number.is_integer() else number
        if kind == "quantity":
            units.parse_quantity(value, "byte", where, field=key)
            return str(value)
        if not isinstance(value, str):
            raise ValueError
        return value
    except EngineError:
        raise
    except (ValueError, TypeError, OverflowError):
        expected = {int: "a whole number", float: "a number", bool: "true or false",
                    str: "text"}.get(kind, "a quantity such as '79.19 GiB'")
        raise ScenarioError(f"{name} must be {expected}", where, found=shorten(repr(value)),
                            expected=f"{expected}: {doc}") from None


def _bounded(number, name, where):
    if number != number or abs(number) == float("inf"):
        raise ScenarioError(f"{name} must be a finite number", where, found=repr(number))
    if abs(number) > MAX_MAGNITUDE:
        raise ScenarioError(f"{name} is too large", where, found=shorten(repr(number)),
                            expected=f"at most {MAX_MAGNITUDE:,}")
    return number


def read_file(path) -> dict:
    """A scenario YAML file: a mapping of scenario keys."""
    doc = yamlsafe.load(path, max_bytes=SCENARIO_MAX_BYTES)
    if not isinstance(doc, dict):
        raise ScenarioError("a scenario file must be a mapping of keys such as model:, gpu:",
                            Location(yamlsafe.display_path(path)))
    return {k: coerce(k, v, doc.where(k, of_key=True)) for k, v in doc.items()}


def resolve(catalog: Catalog, given: dict) -> Scenario:
    """Layer the given keys over the built-in default and vLLM's defaults; resolve the records."""
    values = {**catalog.scenarios_default(), **{k: v for k, v in given.items() if v is not None}}
    origins = {k: ("given" if given.get(k) is not None else "default scenario") for k in values}
    model = catalog.model(values["model"])
    gpu_id, gpu = catalog.gpu(values["gpu"])
    framework_id, framework = catalog.resolve("frameworks", values.get("framework", "vllm"))
    notes = []
    vllm = _vllm_release(catalog, values, origins, notes)
    _engine_defaults(framework, values, origins, gpu, vllm)
    _max_model_len(values, origins, model, notes, "launcher" in framework)   # only vLLM's sizing reads it
    _refuse_choices(framework, values)
    dtype = _resolve_dtype(catalog, values["dtype"], model, gpu_id, gpu, notes)
    quant_id, quant = _resolve_quant(catalog, values.get("quantization"), model, gpu_id, gpu, notes)
    kv_dtype = dtype if values["kv_cache_dtype"] == "auto" else \
        catalog.resolve("kv_cache_dtypes", values["kv_cache_dtype"])[0]
    values["enforce_eager"] = int(bool(values["enforce_eager"]))
    values["enable_chunked_prefill"] = int(bool(values["enable_chunked_prefill"]))
    values["enable_lora"] = int(bool(values.get("enable_lora")))
    values["unsloth"] = int(bool(values.get("unsloth")))
    notes += _calibration_notes(catalog, gpu_id, gpu, framework_id)
    return Scenario(values, model, gpu_id, gpu, framework_id, framework, dtype, kv_dtype, quant_id, quant,
                    notes, origins, vllm, gpu_price(catalog, values, gpu_id))


def stand_ins(sc: Scenario) -> dict:
    """Formulas the framework takes from another formula's value (catalogs/frameworks.yaml memory_model.stand_ins),
    e.g. kv_cache_tokens of a framework without vLLM's pool."""
    return (sc.framework.get("memory_model") or {}).get("stand_ins") or {}


def gpu_price(catalog: Catalog, values: dict, gpu_id: str) -> dict:
    """The price the cost formulas read (price.usd_per_gpu_hour): the scenario's own, else catalogs/prices.yaml's;
    empty when neither has one (those formulas are then left out, see sizing.framework_formulas)."""
    if values.get("price_per_gpu_hour") is not None:
        return {"usd_per_gpu_hour": values["price_per_gpu_hour"]}
    price = (catalog.prices.get(gpu_id) or {}).get("usd_per_gpu_hour")
    return {"usd_per_gpu_hour": price} if price is not None else {}


def _engine_defaults(framework: dict, values: dict, origins: dict, gpu: dict, release: dict):
    """The framework's engine defaults for keys not given; a framework with `releases` takes its release's
    defaults over them (vLLM: V0 or V1, and the larger scheduler defaults on big GPUs)."""
    name = framework.get("name", "framework")
    layered = dict(framework.get("engine_defaults", {}))
    if framework.get("releases"):
        layered.update(release["engine_defaults"])
        name = f"{name} {release['version']} {release['engine']}"
    for key, value in layered.items():
        if key not in values:
            values[key], origins[key] = value, f"{name} default"
    large = release.get("large_gpu_defaults") if framework.get("releases") else None
    total = units.parse_quantity(values.get("gpu_memory_total") or gpu["memory_total_runtime"], "byte")
    if large and total >= units.parse_quantity(large["min_gpu_memory"], "byte") \
            and not any(n.lower() in str(gpu.get("name", "")).lower() for n in large.get("excluded_gpu_names", [])):
        for key in LARGE_DEFAULT_KEYS:
            if origins.get(key) == f"{name} default":
                values[key], origins[key] = large[key], f"{name} default on GPUs of {large['min_gpu_memory']} or more"


_RELEASE = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?")


def _vllm_release(catalog: Catalog, values: dict, origins: dict, notes: list) -> dict:
    """The record of the vLLM release the scenario names (catalogs/vllm_versions.yaml), its engine's facts
    merged in: the newest record not newer than the release."""
    table = catalog.vllm_versions
    if not table.get("releases"):
        raise ScenarioError("no vLLM releases in the catalogs", None, hint="catalogs/vllm_versions.yaml lists them")
    given = str(values.get("vllm_version") or table["newest"])
    values["vllm_version"] = given
    origins.setdefault("vllm_version", "newest release in catalogs/vllm_versions.yaml")
    match = _RELEASE.match(given)
    if not match:
        raise ScenarioError(f"--vllm-version {shorten(given)} is not a vLLM release", None,
                            expected="major.minor[.patch], e.g. 0.8.5")
    wanted = (int(match[1]), int(match[2]), int(match[3] or 0))
    known = sorted(((tuple(int(x) for x in rid.split(".")) + (0,))[:3], rid) for rid in table["releases"])
    older = [rid for key, rid in known if key <= wanted]
    if not older:
        raise ScenarioError(f"vLLM {given} is older than every release in catalogs/vllm_versions.yaml", None,
                            expected=f"{known[0][1]} or later")
    rid = older[-1]
    if wanted[:2] > known[-1][0][:2]:   # a patch release of the newest record is that release
        notes.append(f"vLLM {given} is newer than every release in catalogs/vllm_versions.yaml: sized as {rid}")
    rec = table["releases"][rid]
    engine = str(values.get("vllm_engine") or rec["default_engine"]).upper()
    if engine not in rec["engines"]:
        raise ScenarioError(f"--vllm-engine {shorten(engine)} did not exist in vLLM {given}", None,
                            expected=" or ".join(rec["engines"]))
    values["vllm_engine"] = engine
    origins.setdefault("vllm_engine", f"vLLM {rid} default engine")
    return {**{k: v for k, v in rec.items() if k not in ("engines", "sources")}, **rec["engines"][engine],
            "version": given, "release": rid, "engine": engine}


def _refuse_choices(framework: dict, values: dict):
    """Values the framework refuses outright (its `engine_choices`), refused with its allowed list."""
    for key, allowed in (framework.get("engine_choices") or {}).items():
        bad = [v for v in np.atleast_1d(values.get(key)).tolist() if v is not None and v not in allowed]
        if bad:
            name = framework.get("name", "the framework")
            raise ScenarioError(f"{flag(key)} {format(bad[0], 'g')} is refused by {name}", None,
                                expected=f"one of {', '.join(map(str, allowed))}",
                                hint=f"source: {shorten(framework.get('engine_choices_source', 'catalogs'), 200)}")


def _max_model_len(values: dict, origins: dict, model: Model, notes: list, reads_max_model_len: bool):
    """The model's limit when none was given, as vLLM does; a limit the model lacks is refused, never capped."""
    limit = model.arch["max_position_embeddings"]
    if "max_model_len" not in values:
        values["max_model_len"], origins["max_model_len"] = limit, "model max_position_embeddings"
        if reads_max_model_len:
            notes.append(f"max_model_len {limit:,}: {model.id}'s max_position_embeddings, vLLM's default when "
                         "none is given")
    elif np.any(np.asarray(values["max_model_len"]) > limit):
        given = "--max-model-len" if origins.get("max_model_len") == "given" else "max_model_len of the default scenario"
        raise ScenarioError(f"{given} {values['max_model_len']} exceeds {model.id}'s max_position_embeddings "
                            f"({limit:,}); vLLM refuses it", None, hint=f"set --max-model-len to at most {limit}")


def _resolve_dtype(catalog, requested, model, gpu_id, gpu, notes) -> str:
    supported = set(gpu.get("supported_dtypes") or [])
    if requested == "auto":
        name, _ = catalog.resolve("dtypes", model.arch["torch_dtype"])
        if name == "bfloat16" and "bf16" not in supported:
            notes.append(f"{gpu_id} has no bfloat16 support (compute capability {gpu.get('compute_capability')}); "
                         "vLLM casts the bfloat16 checkpoint to float16, as sized here")
            return "float16"
        if name == "float32":
            notes.append("the checkpoint is float32; vLLM's dtype=auto loads float32 checkpoints as float16")
            return "float16"
        return name
    name, rec = catalog.resolve("dtypes", requested)
    if supported and rec["gpu_name"] not in supported:
        raise ScenarioError(f"{gpu_id} does not support {name}; vLLM refuses dtype={requested} on it", None,
                            hint="use dtype float16 (or auto, which falls back to float16)")
    return name


def _resolve_quant(catalog, requested, model, gpu_id, gpu, notes):
    from_config = model.arch["quantization"]
    if requested in (None, "", "auto"):
        qid = from_config
    else:
        qid, _ = catalog.resolve("formats", requested)
        if from_config != "none" and qid != from_config:
            method = (catalog.formats[from_config].get("vllm") or [from_config])[0]
            raise ScenarioError(
                f"--quantization {requested} on the {from_config} checkpoint {model.id}: vLLM refuses it (\"Quantization method "
                f"specified in the model config ({method}) does not match the quantization method specified in "
                f"the `quantization` argument ({requested})\")", None,
                hint=f"omit --quantization (vLLM reads {method} from {model.id}'s config.json)")
    rec = catalog.formats[qid]
    compute = rec.get("compute")
    if compute and compute not in set(gpu.get("supported_dtypes") or []):
        fallback = rec.get("fallback", "refuse")
        if fallback == "refuse":
            raise ScenarioError(f"{gpu_id} has no {compute} support and vLLM has no fallback for {qid}", None,
                                hint="choose a GPU with it, or another quantization")
        notes.append(f"{gpu_id} has no native {compute} compute: vLLM uses {fallback}")
    return qid, rec


# -- inputs ------------------------------------------------------------------------------

def bindings(graph: FormulaGraph, catalog: Catalog, sc: Scenario, names=None) -> dict:
    """Values for the graph's inputs (all, or `names`), read along each input's `from:` path."""
    ctx = _context(catalog, sc)
    out = {}
    for name in names if names is not None else graph.inputs:
        decl = graph.inputs[name]
        if decl.source_path is None:
            if decl.default is None:
                continue
            raw = decl.default
        else:
            raw = _lookup(ctx, decl.source_path, decl)
        out[name] = _magnitude(raw, decl)
    return out


def _context(catalog: Catalog, sc: Scenario) -> dict:
    dtype_bytes = catalog.dtypes[sc.dtype]["bytes"]
    bits = 8 * dtype_bytes
    quant = {k: (sc.quant.get(k) if sc.quant.get(k) is not None else bits)
             for k in ("linear_bits", "expert_bits", "embedding_bits", "lm_head_bits", "vision_bits")}
    quant.update({k: sc.quant.get(k) or 0 for k in ("weight_bits", "scale_bits", "expanded_at_load_bits")})   # 0: not the format's
    gpu = dict(sc.gpu)
    if sc.values.get("gpu_memory_total"):
        gpu["memory_total_runtime"] = sc.values["gpu_memory_total"]
    framework = dict(sc.framework)
    if framework.get("overhead_fit"):   # constants fitted on measurements, when the fit exists
        framework["overhead"] = catalog.fits.get(framework["overhead_fit"], {}).get("framework_overhead")
    return {"scenario": sc.values, "model": sc.model.arch, "gpu": gpu, "dtype": {"bytes": dtype_bytes},
            "hardware": _hardware(catalog, sc), "calibration": calibration(catalog, sc)[1],
            "kv_dtype": {"bytes": catalog.kv_cache_dtypes[sc.kv_dtype]["bytes"]}, "quant": quant,
            "framework": framework, "fit": catalog.fits, "vllm": sc.vllm, "price": sc.price}


def compute_dtype(catalog: Catalog, sc: Scenario) -> str:
    """The dtype the tensor cores run: the format's (fp8, int8, fp4) where the GPU has it, else the model's."""
    wanted = sc.quant.get("compute")
    supported = sc.gpu.get("supported_dtypes") or []
    return wanted if wanted and wanted in supported else catalog.dtypes[sc.dtype]["gpu_name"]


def _hardware(catalog: Catalog, sc: Scenario) -> dict:
    peak = (sc.gpu.get("tflops_dense") or {}).get(compute_dtype(catalog, sc))
    return {"peak_flops": peak} if peak else {}


def roofline_fit(gpu_id: str, framework_id: str) -> str:
    """The name of a GPU and framework's latency fit (catalogs/fits/, written by calibrate latency)."""
    return f"roofline_{gpu_id}_{framework_id}"


def calibrated_gpu(catalog: Catalog, gpu_id: str, gpu: dict, framework_id: str) -> str:
    """The GPU whose roofline constants this one uses: its own where it has a fit or a starting record, else the
    one its catalog record is `calibrated_as` (the same chip, measured), else itself (and then the default)."""
    own = roofline_fit(gpu_id, framework_id) in catalog.fits or gpu_id in (catalog.calibration or {}).get("gpus", {})
    return gpu_id if own else gpu.get("calibrated_as") or gpu_id


def _calibration_notes(catalog: Catalog, gpu_id: str, gpu: dict, framework_id: str) -> list[str]:
    cid = calibrated_gpu(catalog, gpu_id, gpu, framework_id)
    fitted = roofline_fit(cid, framework_id) in catalog.fits    # a fit needs no starting record (MI300X vLLM)
    out = [f"latency uses {cid}'s roofline calibration: {gpu['calibrated_as_why']}"] if cid != gpu_id else []
    if not fitted and cid not in (catalog.calibration or {}).get("gpus", {}):
        out.append(f"latency uses the roofline calibration guide's default constants (seed 002): {gpu_id} has no "
                   "calibration (llm-sizer calibrate latency fits one from measured TTFT/ITL)")
    elif not fitted:
        out.append(f"latency uses the starting constants of catalogs/hardware_calibration.yaml for {cid}: no fit for "
                   f"{framework_id} on it (llm-sizer calibrate latency --gpu {cid} --framework {framework_id})")
    return out


def calibration(catalog: Catalog, sc: Scenario):
    """(id, record) of the GPU's roofline calibration, or the default one; a fit for this GPU (or the one it is
    calibrated_as) and framework (calibrate latency --write) overrides the starting values."""
    gpus = (catalog.calibration or {}).get("gpus", {})
    cid = calibrated_gpu(catalog, sc.gpu_id, sc.gpu, sc.framework_id)
    gid = cid if cid in gpus else "default"
    fitted = catalog.fits.get(roofline_fit(cid, sc.framework_id), {}).get("constants", {})
    return gid, {**gpus.get(gid, {}), **fitted}


def _lookup(ctx: dict, path: str, decl):
    node = ctx
    parts = path.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node or node[part] is None:
            where = ".".join(parts[:i + 1])
            raise EngineError(f"input '{decl.name}' reads {path}, but {where} is missing", decl.location,
                              hint="add it to the catalog record, or fix the input's from: path")
        node = node[part]
    return node


def _magnitude(raw, decl):
    if isinstance(raw, np.ndarray):
        return raw
    if isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, str):
        return units.parse_quantity(raw, decl.unit_text, decl.location, field=decl.source_path or decl.name)
    if isinstance(raw, (int, float)):
        return raw       # a plain number is a magnitude in the unit the input declares
    raise EngineError(f"input '{decl.name}' got {raw!r} from {decl.source_path}", decl.location,
                      expected=f"a number or a quantity in {decl.unit_text}")


def unresolved_sources(graph: FormulaGraph, catalog: Catalog) -> list[EngineError]:
    """Inputs whose `from:` path leads to no value in any record it can read: a typo is found by
    `check`, not by the first user whose scenario reaches it. Records are sampled through real
    scenarios: every GPU, model and framework in the catalog, over the default scenario."""
    contexts = []
    for key, table in (("gpu", catalog.gpus), ("model", catalog.models), ("framework", catalog.frameworks)):
        for rid in table:
            try:
                contexts.append(_context(catalog, resolve(catalog, {key: rid})))
            except EngineError:
                continue     # a record the default scenario cannot use (e.g. a GPU too small) is sampled no further
    contexts.append({"scenario": dict.fromkeys(KEYS, 0)})
    errors = []
    for decl in graph.inputs.values():
        if decl.source_path and not any(_resolves(ctx, decl.source_path) for ctx in contexts):
            errors.append(_unresolved(decl, contexts))
    return errors


def _resolves(node, path: str) -> bool:
    for part in path.split("."):
        if not isinstance(node, dict) or node.get(part) is None:
            return False
        node = node[part]
    return True


def _unresolved(decl, contexts) -> EngineError:
    """The error for a path no record holds, at its first missing step, with the likeliest key."""
    import difflib

    parts = decl.source_path.split(".")
    i = next(i for i in range(len(parts)) if not any(_resolves(c, ".".join(parts[:i + 1])) for c in contexts))
    parent = ".".join(parts[:i])
    known = sorted({str(k) for c in contexts for k in (_at(c, parent) or {})})
    close = difflib.get_close_matches(parts[i], known, n=1)
    return SchemaError(f"input '{decl.name}' reads {decl.source_path}, but no record has "
                       f"{'.'.join(parts[:i + 1])}", decl.location, width=len(decl.name),
                       hint=f"did you mean {parent + '.' if parent else ''}{close[0]}?" if close
                       else f"{parent or 'a path'} starts with one of: {', '.join(known[:12])}")


def _at(node, path: str):
    for part in filter(None, path.split(".")):
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None
