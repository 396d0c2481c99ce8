"""Markdown reports, CSV records and batch summaries, golden-tested; profiles in every format."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from engine import profiles
from engine.cli import main
from engine.errors import ProfileError

from .conftest import FIXTURES, ROOT

PROFILES = FIXTURES / "profiles"
VALIDATION_CASES = {
    "dense_1gpu_v1_log": "vllm_v1_codellama_7b.log",
    "moe_tp2_v1_log": "vllm_v1_mixtral_tp2.log",
    "fp8_kv_v1_log": "vllm_v1_llama31_8b_fp8kv.log",
    "v0_log": "vllm_v0_llama2_7b.log",
    "hypernova_tp2": "hypernova_60b_tp2.yaml",
    "profile_001_json": "profile_001_llama2_7b_mi300x.json",
}


def cli(*args, code=0):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture(autouse=True)
def _in_profiles(monkeypatch):
    monkeypatch.chdir(PROFILES)


@pytest.mark.parametrize("case", sorted(VALIDATION_CASES))
def test_validation_report(case, file_regression):
    text = cli("report", "validation", VALIDATION_CASES[case])
    assert "## Memory comparison" in text and "## Recommendations" in text
    file_regression.check(text, basename=f"validation_{case}", extension=".md")


def test_v1_log_reproduces_vllm_capacity():
    data = json.loads(cli("report", "validation", "vllm_v1_mixtral_tp2.log", "--json"))
    report = data["reports"][0]
    tokens = next(c for c in report["capacity"] if c["label"] == "KV-cache tokens")
    assert abs(tokens["pct"]) < 0.5
    assert report["scenario"]["tensor_parallel_size"] == 2


def test_overrides_win_over_the_profile():
    data = json.loads(cli("report", "validation", "vllm_v1_codellama_7b.log", "--gpu", "h100-pcie", "--json"))
    assert data["reports"][0]["gpu_id"] == "h100-pcie"


def test_writeup_hypernova():
    text = cli("report", "writeup", "hypernova_60b_tp2.yaml")
    for figure in ["252,075", "32,768", "268,468,224", "0.805 GB", "4.37 GB", "3.565 GB", "11.83 GB*"]:
        assert figure in text, figure
    for slip in ["| total_vram_gib | 31.85 | 31.84 |", "| measured_bytes_per_token | 32818 | 32813 |",
                 "| kv_with_padding_gb | 8.28 | 8.33 |"]:
        assert slip in text, slip
    assert "(14 of 17)" in text


# what each bundled profile lacks, shown as "not measured" in its write-up
NOT_MEASURED = {"dense_1gpu_v1_log": "free VRAM (nvidia-smi):** not measured",
                "moe_tp2_v1_log": "free VRAM (nvidia-smi):** not measured",
                "fp8_kv_v1_log": "free VRAM (nvidia-smi):** not measured",
                "v0_log": "does not measure kv_cache_tokens",
                "profile_001_json": "does not measure kv_cache_memory, kv_cache_tokens"}


@pytest.mark.parametrize("case", sorted(VALIDATION_CASES))
def test_writeup_every_profile_kind(case, file_regression):
    text = cli("report", "writeup", VALIDATION_CASES[case])
    assert "## Summary" in text and "## Conclusion" in text
    if case in NOT_MEASURED:
        assert NOT_MEASURED[case] in text
    else:
        assert "not measured" not in text
    file_regression.check(text, basename=f"writeup_{case}", extension=".md")


def test_derivation_audit(file_regression):
    text = cli("report", "derivation", "max_concurrency", "--model", "mistralai/Mixtral-8x7B-Instruct-v0.1",
               "--tensor-parallel-size", "2")
    assert "$$" in text and "`num_gpu_blocks`" in text
    file_regression.check(text, basename="derivation_max_concurrency_mixtral_tp2", extension=".md")


def test_derivation_scenario_argument(tmp_path):
    """README: `report derivation NAME [SCENARIO]`, a scenario file or a named scenario."""
    path = tmp_path / "mixtral.yaml"
    path.write_text("model: mistralai/Mixtral-8x7B-Instruct-v0.1\ntensor_parallel_size: 2\n")
    from_file = cli("report", "derivation", "max_concurrency", str(path))
    assert "Mixtral-8x7B-Instruct-v0.1 on h100-sxm, TP=2" in from_file
    named = cli("report", "derivation", "max_concurrency", "default", "--tensor-parallel-size", "2")
    assert "Llama-3.1-8B-Instruct on h100-sxm, TP=2" in named
    output = cli("report", "derivation", "max_concurrency", "defualt", code=2)
    assert "no scenario file or named scenario 'defualt'" in output and "did you mean 'default'?" in output
    output = cli("report", "derivation", "max_concurrency", str(path), "--scenario", str(path), code=2)
    assert "not both" in output


def _validate_directory(tmp_path):
    csv_path, out = tmp_path / "validation-results.csv", tmp_path / "reports"
    cli("report", "validation", str(PROFILES), "--record", str(csv_path), "-o", str(out))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["batch-summary.md"] + [v.rsplit(".", 1)[0] + ".md" for v in VALIDATION_CASES.values()])
    return csv_path, out


def test_batch_summary(tmp_path, file_regression):
    _, out = _validate_directory(tmp_path)
    summary = (out / "batch-summary.md").read_text().replace(str(PROFILES), "profiles")
    assert "6 profiles validated" in summary
    file_regression.check(summary, basename="batch_summary", extension=".md")


def test_record_csv(tmp_path, file_regression):
    csv_path, _ = _validate_directory(tmp_path)
    file_regression.check(csv_path.read_text(), basename="validation_results", extension=".csv")
    cli("report", "validation", "vllm_v0_llama2_7b.log", "--record", str(csv_path))
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 1 + 6 + 1 and lines[0].startswith("profile_file,model_id,model_params_b")


@pytest.mark.parametrize("content, suffix, message", [
    ('{"model_info": {"model_id": "x"', ".json", "corrupt profile JSON"),
    ('{"model_info": {"model_id": "meta-llama/Llama-2-7b-hf"}}', ".json", "no gpu_info section"),
    ("hello\nworld\n", ".log", "no vLLM memory lines"),
    ("scenario: {model: meta-llama/Llama-2-7b-hf}\n", ".yaml", "needs scenario: and measured:"),
])
def test_bad_profiles(tmp_path, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    output = cli("report", "validation", str(path), code=2)
    assert message in output and "Traceback" not in output


YAML_PROFILE = "scenario: {model: meta-llama/Llama-3.1-8B-Instruct, gpu: h100}\nmeasured:\n"


@pytest.mark.parametrize("measured, message", [
    ("  weights_memory: -14.99 GiB\n  kv_cache_memory: 58 GiB\n", "p.yaml:3:19: measured weights_memory is negative"),
    ("  weights_memory: 14.99 GiB\n  kv_cache_memory: 0\n", "p.yaml:4:20: measured kv_cache_memory is 0"),
    ("  weights_memory: [14.99]\n", "measured.weights_memory must be a number or a quantity"),
    ("  weights_memory: .nan\n", "p.yaml:3:19: '.nan' is not an ordinary number"),
])
def test_impossible_measurements_refused(tmp_path, measured, message):
    """Negative or zero memory used to be graded ("+200.6 % Poor", "nan%"); now it names the field."""
    path = tmp_path / "p.yaml"
    path.write_text(YAML_PROFILE + measured)
    for command in ("validation", "writeup"):
        output = cli("report", command, str(path), code=2)
        assert message in output and "Traceback" not in output and len(output) < 2000, output


def test_zero_that_vllm_can_measure_is_not_graded(tmp_path):
    path = tmp_path / "eager.yaml"
    path.write_text(YAML_PROFILE + "  weights_memory: 14.99 GiB\n  kv_cache_memory: 54 GiB\n  cuda_graph_memory: 0\n")
    text = cli("report", "validation", str(path))
    assert "| CUDA Graphs | 0.00 | 0.92 | -0.92 | n/a (profiled 0) | – Not graded |" in text
    assert "nan" not in text


def test_zero_in_a_log_is_located(tmp_path):
    log = (PROFILES / "vllm_v1_mixtral_tp2.log").read_text().replace("memory: 28.44 GiB", "memory: 0.00 GiB")
    (tmp_path / "zero.log").write_text(log)
    output = cli("report", "validation", str(tmp_path / "zero.log"), code=2)
    assert "zero.log:8:" in output and "measured kv_cache_memory is 0" in output


def test_truncated_log_verdict_lists_missing_lines(tmp_path):
    lines = (PROFILES / "vllm_v1_mixtral_tp2.log").read_text().splitlines(keepends=True)
    (tmp_path / "cut.log").write_text("".join(lines[:7]))     # stops before the KV-cache lines
    text = cli("report", "validation", str(tmp_path / "cut.log"))
    summary = text.split("## Summary")[1]
    assert "**INCOMPLETE LOG**" in summary and "the log lacks 4 lines" in summary
    for line in ("'Available KV cache memory'", "'# GPU blocks'", "'GPU KV cache size'", "'Maximum concurrency'"):
        assert line in summary, line
    complete = cli("report", "validation", "vllm_v1_mixtral_tp2.log")
    assert "INCOMPLETE" not in complete


@pytest.mark.parametrize("field, value, message", [
    ("model_weights_gb", '"13.4 GB"', 'memory_breakdown.model_weights_gb must be a finite number'),
    ("kv_cache_gb", "true", "memory_breakdown.kv_cache_gb must be a finite number"),
    ("count", '"two"', "gpu_info.count must be a whole number"),
    ("tensor_parallel_size", "1.5", "benchmark_parameters.tensor_parallel_size must be a whole number"),
    ("model_weights_gb", "-13.4", "measured weights_memory is negative"),
    ("model_weights_gb", "NaN", "memory_breakdown.model_weights_gb must be a finite number"),
    ("params", "-6.7e9", "model_info.params must be more than 0"),
])
def test_profiler_json_strings_are_located(tmp_path, field, value, message):
    text = (PROFILES / "profile_001_llama2_7b_mi300x.json").read_text()
    text = re.sub(rf'"{field}": [^,}}]+', f'"{field}": {value}', text, count=1)
    (tmp_path / "p.json").write_text(text)
    output = cli("report", "validation", str(tmp_path / "p.json"), code=2)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if f'"{field}"' in t)
    assert message in output and f"p.json:{line}:" in output and "Traceback" not in output, output


JSON_FIELDS = [("memory_breakdown", "model_weights_gb"), ("memory_breakdown", "kv_cache_gb"),
               ("memory_breakdown", "total_measured_gb"), ("memory_breakdown", "confidence_levels"),
               ("gpu_info", "count"), ("benchmark_parameters", "tensor_parallel_size"),
               ("benchmark_parameters", "batch_size"), ("memory_measurements", "per_gpu_peak"), ("model_info", None)]


@pytest.mark.parametrize("section, key", JSON_FIELDS)
@pytest.mark.parametrize("value", ["x", None, [], {}, -1, 0, True, float("nan"), 1e308])
def test_profiler_json_any_value_is_a_report_or_a_message(tmp_path, section, key, value):
    """Whatever a field of the profiler JSON holds: a report (exit 0) or one short message (exit 2)."""
    doc = json.loads((PROFILES / "profile_001_llama2_7b_mi300x.json").read_text())
    if key is None:
        doc[section] = value
    else:
        doc[section][key] = value
    (tmp_path / "p.json").write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["report", "validation", str(tmp_path / "p.json")])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 2) and "Traceback" not in result.output
    if result.exit_code == 2:
        assert len(result.output) < 2000 and result.output.startswith(str(tmp_path / "p.json")), result.output


GOOD_YAML = YAML_PROFILE + "  weights_memory: 14.99 GiB\n  kv_cache_memory: 58 GiB\n  kv_cache_tokens: 4000\n"


@pytest.mark.parametrize("name, text, message", [
    ("p.yaml", GOOD_YAML + "claims: {token_error: abc}\n", "p.yaml:6:23: token_error must be a number"),
    ("p.yaml", GOOD_YAML + "claims: [1]\n", "p.yaml:6:9: claims: must be a mapping"),
    ("p.yaml", GOOD_YAML + "info: [1]\n", "p.yaml:6:7: info: must be a mapping"),
    ("p.yaml", GOOD_YAML + "info: {extra_overhead_gb: abc}\n", "info.extra_overhead_gb must be a number"),
    ("p.yaml", "scenario: [1]\nmeasured: {weights_memory: 1 GiB}\n", "scenario: and measured: must be mappings"),
    ("p.yaml", GOOD_YAML.replace("14.99 GiB", "14.99 parsecs"), "p.yaml:3:19: measured.weights_memory is not a quantity"),
    ("p.log", (PROFILES / "vllm_v1_mixtral_tp2.log").read_text().replace("tensor_parallel_size=2",
                                                                         "tensor_parallel_size=abc"),
     "the engine-config line's tensor_parallel_size is not a whole number"),
    ("p.log", (PROFILES / "vllm_v1_mixtral_tp2.log").read_text().replace("28.44 GiB", "1" + "0" * 400 + " GiB"),
     "measured kv_cache_memory is not a finite number"),
])
def test_bad_yaml_profiles_and_logs_are_located(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    for command in ("validation", "writeup"):
        output = cli("report", command, str(tmp_path / name), code=2)
        assert message in output and len(output) < 2000, output


def test_every_cut_of_a_log_is_a_report_or_a_message(tmp_path):
    """A log pasted partly (any prefix, or with any one line lost) never gives a traceback."""
    lines = (PROFILES / "vllm_v1_mixtral_tp2.log").read_text().splitlines(keepends=True)
    variants = [lines[:i] for i in range(1, len(lines))] + [lines[:i] + lines[i + 1:] for i in range(len(lines))]
    for i, variant in enumerate(variants):
        (tmp_path / "cut.log").write_text("".join(variant))
        result = CliRunner().invoke(main, ["report", "validation", str(tmp_path / "cut.log")])
        assert result.exit_code in (0, 2) and not isinstance(result.exception, (TypeError, ValueError, KeyError)), \
            (i, result.output)
        if result.exit_code == 0 and "Available KV cache memory" not in "".join(variant):
            assert "INCOMPLETE LOG" in result.output and "'Available KV cache memory'" in result.output


def test_writeup_names_what_is_not_measured(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("scenario: {model: meta-llama/Llama-3.1-8B-Instruct, gpu: h100}\n"
                    "measured: {weights_memory: 14.99 GiB, kv_cache_memory: 58 GiB}\n")
    output = cli("report", "writeup", str(path))
    assert "does not measure kv_cache_tokens" in output and "Real tokens: not measured" in output
    path.write_text(path.read_text() + "claims: {token_error: 347}\n")
    output = cli("report", "writeup", str(path), code=2)
    assert "claim 'token_error' needs a measurement the profile does not have" in output


def test_log_parsing_v0_and_v1():
    v0 = profiles.read(PROFILES / "vllm_v0_llama2_7b.log")
    v1 = profiles.read(PROFILES / "vllm_v1_llama31_8b_fp8kv.log")
    assert v0.info["engine"] == "V0" and v1.info["engine"] == "V1"
    assert v0.measured["gpu_blocks"] == 7325 and v0.scenario["max_model_len"] == 4096
    assert v1.scenario["kv_cache_dtype"] == "fp8" and v1.measured["kv_cache_tokens"] == 952032
    with pytest.raises(ProfileError, match="no weights"):
        profiles.Profile("x", "vllm-log", {}, {}).need("weights")


SIZING = {
    "hypernova_tp2": ["--model", "MultiverseComputingCAI/HyperNova-60B", "--gpu", "rtx-5090",
                      "--tensor-parallel-size", "2", "--max-model-len", "131072", "--max-num-seqs", "8",
                      "--max-num-batched-tokens", "65536"],
    "dense_1gpu": ["--model", "meta-llama/Llama-3.1-8B-Instruct"],
    "moe_tp2": ["--model", "mistralai/Mixtral-8x7B-Instruct-v0.1", "--tensor-parallel-size", "2"],
    "fp8_kv": ["--model", "Qwen/Qwen3-8B", "--kv-cache-dtype", "fp8", "--max-model-len", "32768"],
}


@pytest.mark.parametrize("case", sorted(SIZING))
def test_sizing_report_with_latency(case, tmp_path, file_regression):
    cli("size", *SIZING[case], "--out", str(tmp_path))
    text = (tmp_path / "sizing.md").read_text()
    assert "Latency at batch" in text and "TTFT" in text
    file_regression.check(text, basename=f"sizing_{case}", extension=".md")


@pytest.mark.parametrize("template", sorted(p.name for p in (ROOT / "templates").glob("*.j2")))
def test_report_templates_do_no_arithmetic(template):
    """Numbers worth printing are formulas (or 001's comparisons, made in Python): templates only format."""
    from jinja2 import nodes

    from engine import paths
    from engine.render import markdown

    source = (paths.builtin("templates") / template).read_text(encoding="utf-8")
    tree = markdown.environment().parse(source)
    arithmetic = (nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow)
    found = [type(n).__name__ for n in tree.find_all(arithmetic)]
    assert not found, f"{template} computes: {found}"
    assert not any(n.value in (5, 20) for n in tree.find_all(nodes.Const) if isinstance(n.value, int)), \
        "band thresholds come from catalogs/validation.yaml"


def test_recommendation_threshold_from_catalog(graph, catalog, monkeypatch):
    import copy

    from engine import validation

    strict = copy.copy(catalog)
    strict.validation = copy.deepcopy(catalog.validation)
    strict.validation["recommendations"]["threshold"] = 0.5
    report = validation.compare(graph, strict, profiles.read(PROFILES / "vllm_v1_mixtral_tp2.log"))
    assert report["recommendation_threshold"] == 0.5
    # Mixtral's activation peak is in the memory fit and within 0.5 %: only the components beyond it are named
    labels = {a["label"] for a in report["recommendations"]}
    assert labels >= {"Non-torch Memory", "CUDA Graphs"} and "Activations" not in labels
