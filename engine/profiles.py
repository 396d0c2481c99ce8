"""Measured deployments in: 001's profiler JSON, our YAML profile, and pasted vLLM startup logs.

Each reader returns a Profile: the scenario keys it could establish (vLLM's engine-argument
names) and the measured quantities, memory in bytes. A field a report needs but the profile
lacks gets a ProfileError naming the field.
"""
from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import units, yamlsafe
from .errors import Location, ProfileError, display_path, shorten
from .units import GB, GIB



@dataclass
class Profile:
    path: str
    kind: str                      # "profiler-json", "yaml", "vllm-log"
    scenario: dict
    measured: dict                 # weights_memory, kv_cache_memory, ... in bytes; counts as numbers
    info: dict = field(default_factory=dict)   # model parameters, GPU name, confidence, ...
    notes: list = field(default_factory=list)
    where: dict = field(default_factory=dict)  # measured field -> Location it was read from
    missing: list = field(default_factory=list)  # lines a complete vLLM log has and this one lacks

    def check_measured(self) -> "Profile":
        """Refuse what no GPU can measure: negative or non-finite figures, and zero where vLLM cannot run."""
        for key, value in self.measured.items():
            where = self.where.get(key) or Location(self.path)
            problem = None
            if value != value or value in (float("inf"), float("-inf")):
                problem = "is not a finite number"
            elif value < 0:
                problem = "is negative"
            elif value == 0 and key in MUST_BE_POSITIVE:
                problem = "is 0"
            if problem:
                raise ProfileError(f"measured {key} {problem}", where, found=f"{value:g}",
                                   expected=MUST_BE_POSITIVE.get(key, "a measurement of 0 or more"),
                                   hint="correct the profile: a report graded on it would be meaningless")
        return self

    def need(self, key: str):
        if key not in self.measured:
            raise ProfileError(f"profile has no {key}", Location(self.path),
                               hint=f"{self.kind} profiles give it as {FIELD_HINTS.get((self.kind, key), key)}")
        return self.measured[key]


# measured fields a running vLLM cannot have at zero, and why
MUST_BE_POSITIVE = {
    "weights_memory": "more than 0: the model's weights are loaded",
    "kv_cache_memory": "more than 0: vLLM refuses to start without KV-cache memory",
    "total_memory": "more than 0: the GPU holds at least the weights",
    "nvidia_smi_total": "more than 0: a GPU's memory",
    "gpu_blocks": "at least 1 block: vLLM refuses to start without one",
    "kv_cache_tokens": "at least 1 token",
    "max_concurrency": "more than 0",
}

FIELD_HINTS = {
    ("profiler-json", "total_memory"): "memory_measurements.per_gpu_peak[].total_gb or memory_breakdown.total_measured_gb",
    ("profiler-json", "weights_memory"): "memory_breakdown.model_weights_gb",
    ("vllm-log", "weights_memory"): "'Model loading took N GiB' or 'Loading model weights took N GB'",
    ("vllm-log", "kv_cache_memory"): "'Available KV cache memory: N GiB' or 'the rest of the memory reserved for KV Cache is N GiB'",
}


def read(path) -> Profile:
    """Any supported profile, by content: JSON (001), YAML (ours) or a vLLM log."""
    p = Path(path)
    shown = display_path(p)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ProfileError(f"cannot read profile: {exc.strerror}", Location(shown)) from None
    if p.suffix in (".yaml", ".yml"):
        return read_yaml(p)
    if p.suffix == ".json" or text.lstrip().startswith("{"):
        return read_profiler_json(text, shown)
    return read_vllm_log(text, shown)


# -- the memory profiler's JSON (001_ee94126221be4916.txt) ----------------------------------------

def read_profiler_json(text: str, shown: str) -> Profile:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"corrupt profile JSON: {exc.msg}", Location(shown, exc.lineno, exc.colno),
                           hint="check it with: python -m json.tool FILE") from None
    if not isinstance(doc, dict):
        raise ProfileError("profile JSON must be an object", Location(shown))

    def section(name):
        value = doc.get(name)
        if not isinstance(value, dict):
            raise ProfileError(f"profile has no {name} section", Location(shown),
                               hint=f'001\'s profiler writes "{name}": {{...}}')
        return value

    model, gpu, bench = section("model_info"), section("gpu_info"), section("benchmark_parameters")
    breakdown = section("memory_breakdown")
    model_id = model.get("model_id") or model.get("name")
    if not model_id:
        raise ProfileError("profile has no model_info.model_id", Location(shown))
    number = functools.partial(_json_number, text, shown)
    count = int(number("gpu_info.count", gpu.get("count"), integer=True) or 1)
    scenario = {"model": model_id,
                "tensor_parallel_size": int(number("benchmark_parameters.tensor_parallel_size",
                                                   bench.get("tensor_parallel_size"), integer=True) or count),
                "batch_size": number("benchmark_parameters.batch_size", bench.get("batch_size"), integer=True),
                "input_tokens": number("benchmark_parameters.input_len", bench.get("input_len", bench.get("input_tokens")),
                                       integer=True),
                "output_tokens": number("benchmark_parameters.output_len",
                                        bench.get("output_len", bench.get("output_tokens")), integer=True),
                "dtype": _dtype(bench.get("dtype")), "quantization": bench.get("quantization"),
                "kv_cache_dtype": bench.get("kv_cache_dtype")}
    if gpu.get("gpu_type") or gpu.get("name"):
        scenario["gpu"] = gpu.get("gpu_type") or gpu.get("name")
    measured, where = {}, {}
    measurements = doc.get("memory_measurements") or {}
    if not isinstance(measurements, dict):
        raise ProfileError("memory_measurements must be an object", _json_where(text, shown, "memory_measurements"),
                           hint='001\'s profiler writes "memory_measurements": {"per_gpu_peak": [...]}')
    peaks = measurements.get("per_gpu_peak") or []
    if not isinstance(peaks, list):
        raise ProfileError("memory_measurements.per_gpu_peak must be a list", _json_where(text, shown, "per_gpu_peak"))
    if peaks:
        measured["total_memory"] = max(number("memory_measurements.per_gpu_peak[].total_gb",
                                              p.get("total_gb") if isinstance(p, dict) else p) or 0
                                       for p in peaks) * GB
        where["total_memory"] = _json_where(text, shown, "total_gb")
    elif breakdown.get("total_measured_gb") is not None:
        # 001's breakdown totals all GPUs; per GPU is what is compared
        measured["total_memory"] = number("memory_breakdown.total_measured_gb", breakdown["total_measured_gb"]) \
            * GB / max(1, count)
        where["total_memory"] = _json_where(text, shown, "total_measured_gb")
    for key, name in (("model_weights_gb", "weights_memory"), ("kv_cache_gb", "kv_cache_memory"),
                      ("activations_gb", "activation_peak"), ("framework_overhead_gb", "framework_overhead")):
        if breakdown.get(key) is not None:
            measured[name] = number(f"memory_breakdown.{key}", breakdown[key]) * GB
            where[name] = _json_where(text, shown, key)
    confidence = breakdown.get("confidence_levels")
    if confidence is not None and not (isinstance(confidence, dict)
                                       and all(isinstance(v, (str, int, float)) for v in confidence.values())):
        raise ProfileError("memory_breakdown.confidence_levels must map components to levels",
                           _json_where(text, shown, "confidence_levels"), found=shorten(json.dumps(confidence)),
                           expected='e.g. {"overall": "high", "weights": "medium"}')
    params = number("model_info.params", model.get("params") or model.get("model_params"))
    if params is not None and params <= 0:
        raise ProfileError("model_info.params must be more than 0", _json_where(text, shown, "params"),
                           found=f"{params:g}")
    info = {"model_params": params,
            "gpu_name": scenario.get("gpu"), "gpu_count": count, "confidence": confidence,
            "vram_gb": number("gpu_info.vram_gb", gpu.get("vram_gb"))}
    return Profile(shown, "profiler-json", {k: v for k, v in scenario.items() if v is not None}, measured, info,
                   where=where).check_measured()


def _json_where(text: str, shown: str, key: str) -> Location:
    """The line of a key in the JSON text (the first occurrence), for a located message."""
    at = text.find(f'"{key}"')
    if at < 0:
        return Location(shown)
    line = text.count("\n", 0, at) + 1
    return Location(shown, line, at - text.rfind("\n", 0, at), text.splitlines()[line - 1])


def _json_number(text: str, shown: str, name: str, value, integer: bool = False):
    """A finite number the profiler wrote; None stays None. Strings, booleans, NaN and the rest are refused."""
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer and value != int(value):
        ok = False
    if not ok:
        raise ProfileError(f"{name} must be {'a whole number' if integer else 'a finite number'}",
                           _json_where(text, shown, name.split(".")[-1].replace("[]", "")),
                           found=shorten(json.dumps(value)), hint="the profiler writes plain JSON numbers")
    return value


def _dtype(value):
    if not value:
        return None
    return {"fp16": "float16", "half": "float16", "bf16": "bfloat16", "fp32": "float32"}.get(str(value).lower(),
                                                                                           str(value).lower())


# -- our YAML profile ----------------------------------------------------------------------------

def read_yaml(path: Path) -> Profile:
    doc = yamlsafe.load(path)
    shown = display_path(path)
    if not isinstance(doc, dict) or "scenario" not in doc or "measured" not in doc:
        raise ProfileError("a YAML profile needs scenario: and measured:", Location(shown),
                           hint="see catalogs/profiles/ for the format")
    if not isinstance(doc["measured"], dict) or not isinstance(doc["scenario"], dict):
        raise ProfileError("scenario: and measured: must be mappings", Location(shown),
                           hint="see catalogs/profiles/ for the format")
    measured, where = {}, {}
    for key, value in doc["measured"].items():
        where[key] = doc["measured"].where(key)
        if isinstance(value, str):
            measured[key] = units.parse_quantity(value, "byte", where[key], field=f"measured.{key}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            measured[key] = float(value)
        else:
            raise ProfileError(f"measured.{key} must be a number or a quantity such as '7.69 GiB'", where[key],
                               found=shorten(repr(value)))
    info, claims = _mapping(doc, "info", shown), _mapping(doc, "claims", shown)
    numbers = dict(claims)
    if "extra_overhead_gb" in info:
        numbers["info.extra_overhead_gb"] = info["extra_overhead_gb"]
    for key, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProfileError(f"{key} must be a number (the figure as the source prints it)",
                               (doc["claims"].where(key) if key in claims else Location(shown)), found=shorten(repr(value)))
    info["claims"] = claims
    return Profile(shown, "yaml", dict(doc["scenario"]), measured, info, list(doc.get("notes") or []),
                   where=where).check_measured()


def _mapping(doc, key: str, shown: str) -> dict:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise ProfileError(f"{key}: must be a mapping", doc.where(key) if hasattr(doc, "where") else Location(shown),
                           found=shorten(repr(value)))
    return dict(value)


# -- vLLM startup logs (V0 and V1) ---------------------------------------------------------------

_NUM = r"([\d,]+(?:\.\d+)?)"
LOG_PATTERNS = {
    "weights_memory": [rf"Model loading took {_NUM} ?(GiB|GB)", rf"Loading model weights took {_NUM} ?(GiB|GB)"],
    "kv_cache_memory": [rf"Available KV cache memory: {_NUM} ?(GiB)",
                        rf"the rest of the memory reserved for KV Cache is {_NUM} ?(GiB)"],
    "activation_peak": [rf"torch peak memory increase: {_NUM} ?(GiB)",
                        rf"PyTorch activation peak memory takes {_NUM} ?(GiB)"],
    "non_torch_memory": [rf"non-torch forward increase memory: {_NUM} ?(GiB)", rf"non_torch_memory takes {_NUM} ?(GiB)"],
    "cuda_graph_memory": [rf"Graph capturing finished in [\d.]+ secs?, took {_NUM} ?(GiB)"],
    "cuda_context_memory": [rf"worker init memory snapshot:.*?non_torch_memory={_NUM}(GiB)"],
}
# what a complete startup log shows (V0 logs print no "GPU KV cache size"); a report on a log
# lacking any of these says so in its verdict
EXPECTED_LOG_LINES = {
    "weights_memory": "'Model loading took' / 'Loading model weights took'",
    "kv_cache_memory": "'Available KV cache memory' / 'the rest of the memory reserved for KV Cache'",
    "gpu_blocks": "'# GPU blocks'",
    "kv_cache_tokens": "'GPU KV cache size'",
    "max_concurrency": "'Maximum concurrency'",
}
COUNT_PATTERNS = {
    "gpu_blocks": [rf"# (?:GPU|CUDA|cuda) blocks: {_NUM}", rf"num_gpu_blocks is: {_NUM}"],
    "kv_cache_tokens": [rf"GPU KV cache size: {_NUM} tokens"],
    "max_concurrency": [rf"Maximum concurrency for [\d,]+ tokens per request: {_NUM}x"],
}
CONFIG_KEYS = {"tensor_parallel_size": int, "pipeline_parallel_size": int, "enforce_eager": bool,
               "kv_cache_dtype": str, "quantization": str, "max_seq_len": int, "dtype": str}


def read_vllm_log(text: str, shown: str) -> Profile:
    measured, scenario, info, notes, where = {}, {}, {}, [], {}
    for key, patterns in {**LOG_PATTERNS, **COUNT_PATTERNS}.items():
        m = _search(patterns, text)
        if m:
            # vLLM computes "Loading model weights took N GB" in GiB too
            measured[key] = float(m.group(1).replace(",", "")) * (GIB if key in LOG_PATTERNS else 1)
            line = text.count("\n", 0, m.start()) + 1
            where[key] = Location(shown, line, m.start() - text.rfind("\n", 0, m.start()))
    config = re.search(r"Initializing an? (V1 )?LLM engine \(v([\w.+-]+)\) with config: (.*)", text)
    if config:
        info["engine"] = "V1" if config.group(1) else "V0"
        info["vllm_version"] = config.group(2)
        fields = dict(re.findall(r"(\w+)=('[^']*'|[^,\s]+)", config.group(3)))
        scenario["model"] = fields.get("model", "").strip("'")
        for key, kind in CONFIG_KEYS.items():
            if key in fields and fields[key] != "None":
                value = fields[key].strip("'")
                if key == "dtype":
                    value = value.replace("torch.", "")
                target = "max_model_len" if key == "max_seq_len" else key
                try:
                    scenario[target] = (value == "True") if kind is bool else kind(value)
                except ValueError:
                    at = config.start(3) + config.group(3).find(f"{key}=")
                    line = text.count("\n", 0, at) + 1
                    raise ProfileError(f"the engine-config line's {key} is not {'a whole number' if kind is int else 'valid'}",
                                       Location(shown, line, at - text.rfind("\n", 0, at)), found=shorten(value),
                                       hint="paste the log as vLLM printed it") from None
    args = re.search(r"non-default args: (\{.*\})", text)
    if args:
        for key in ("max_model_len", "gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens",
                    "block_size"):
            m = re.search(rf"'{key}': ([\d.]+)", args.group(1))
            if m:
                scenario[key] = float(m.group(1)) if key == "gpu_memory_utilization" else int(m.group(1))
    util = re.search(r"gpu_memory_utilization \(([\d.]+)\)", text) or \
        re.search(r"Desired GPU memory utilization is \(([\d.]+),", text)
    if util and "gpu_memory_utilization" not in scenario:
        scenario["gpu_memory_utilization"] = float(util.group(1))
    total = re.search(r"total_gpu_memory \(([\d.]+)GiB\)", text) or re.search(r"total_memory=([\d.]+)GiB", text) \
        or re.search(r"Free memory on device \([\d.]+/([\d.]+) GiB\)", text)
    if total:
        scenario["gpu_memory_total"] = f"{total.group(1)} GiB"
    device = re.search(r"device_name=([A-Za-z0-9_]+)", text)
    if device:
        scenario["gpu"] = device.group(1).replace("_", " ")
    if not measured:
        raise ProfileError("no vLLM memory lines found in the log", Location(shown),
                           hint="paste the startup log from 'Initializing ... LLM engine' to 'Maximum concurrency'")
    if not scenario.get("model"):
        notes.append("the log has no engine-config line; give --model")
    missing = [EXPECTED_LOG_LINES[k] for k in EXPECTED_LOG_LINES
               if k not in measured and (k != "kv_cache_tokens" or info.get("engine") != "V0")]
    return Profile(shown, "vllm-log", scenario, measured, info, notes, where=where, missing=missing).check_measured()


def _search(patterns, text):
    for pattern in patterns:
        m = re.search(pattern, text)
        if m:
            return m
    return None
