"""The command line as a user runs it: outputs, exit codes, and no tracebacks for user errors."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.cli import main

JSON_NAMES = ["weight_memory_per_gpu", "kv_cache_bytes_per_token", "activation_peak_memory", "non_torch_memory",
              "cuda_graph_memory", "available_kv_cache_memory", "num_gpu_blocks", "kv_cache_tokens",
              "max_concurrency", "total_memory_per_gpu"]


def run(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_size_default_scenario(file_regression):
    result = run("size", "--no-files")
    assert result.exit_code == 0
    assert "vllm serve meta-llama/Llama-3.1-8B-Instruct" in result.output
    file_regression.check(result.output, basename="size_default", extension=".txt")


def test_size_writes_workbook_and_report(tmp_path):
    result = run("size", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0 and "Wrote" in result.output
    report = (tmp_path / "out" / "sizing.md").read_text()
    assert "## Memory per GPU" in report and "`kv_cache_tokens` = 443,312" in report
    from engine.render import excel
    dump = excel.dump((tmp_path / "out" / "sizing.xlsx").read_bytes())
    assert dump["defined_names"]["tp"] == "'Inputs'!$B$" + dump["defined_names"]["tp"].rsplit("$", 1)[1]


def test_size_json_has_every_formula():
    result = run("size", "--json")
    data = json.loads(result.output)
    assert set(JSON_NAMES) <= set(data["results"])
    assert data["results"]["weight_memory_per_gpu"]["unit"].startswith("byte")
    assert data["scenario"]["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert isinstance(data["results"]["num_gpu_blocks"]["value"], float)


def test_scenario_file_and_override(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("model: mistralai/Mixtral-8x7B-Instruct-v0.1\ngpu: NVIDIA H100 80GB HBM3\n"
                    "tensor_parallel_size: 2\nkv_cache_dtype: fp8\n")
    data = json.loads(run("size", "--scenario", str(path), "--max-model-len", "4096", "--json").output)
    assert data["scenario"]["tensor_parallel_size"] == 2 and data["scenario"]["max_model_len"] == 4096
    assert data["results"]["kv_cache_bytes_per_token"]["value"] == 32 * 2 * 4 * 128


@pytest.mark.parametrize("args, message", [
    (["size", "--model", "no/such-model"], "unknown model 'no/such-model'"),
    (["size", "--gpu", "H1OO"], "unknown GPU 'H1OO'"),
    (["size", "--batch-size", "-3"], "--batch-size must be at least 1"),
    (["size", "--tensor-parallel-size", "3"], "--tensor-parallel-size 3 does not divide the 32 attention heads"),
    (["size", "--tensor-parallel-size", "two"], "must be a whole number"),
    (["size", "--gpu-memory-total", "80 seconds"], "wrong dimension"),
    (["size", "--max-model-len", "999999"], "exceeds"),
    (["explain", "kv_cache_byte_per_token"], "did you mean 'kv_cache_bytes_per_token'"),
])
def test_user_errors_exit_2_without_traceback(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_unknown_scenario_key_in_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("model: meta-llama/Llama-3.1-8B-Instruct\ntensor_paralel_size: 2\n")
    result = CliRunner().invoke(main, ["size", "--scenario", str(path)])
    assert result.exit_code == 2
    assert "unknown scenario key 'tensor_paralel_size'" in result.output and "tensor_parallel_size" in result.output
    assert ":2:1:" in result.output


def test_corrupt_config_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"hidden_size": 4096,')
    result = CliRunner().invoke(main, ["size", "--model", str(path)])
    assert result.exit_code == 2 and "not valid JSON" in result.output


def test_explain_shows_chain(file_regression):
    result = run("explain", "kv_cache_tokens", "--model", "meta-llama/Llama-3.1-8B-Instruct")
    assert result.exit_code == 0
    for piece in ["kv_cache_tokens = 443,312 token", "num_gpu_blocks", "kv_block_bytes", "gpu_memory_budget"]:
        assert piece in result.output
    file_regression.check(result.output, basename="explain_kv_cache_tokens", extension=".txt")


def test_explain_variant_and_latex():
    result = run("explain", "kv_cache_bytes_per_token", "--variant", "hidden_size_kv", "--latex")
    assert "[variant hidden_size_kv]" in result.output and "LaTeX:" in result.output


def test_list_and_check():
    assert "h100-sxm" in run("list", "gpus").output
    assert "simple_calculator" in run("list", "variants").output
    assert run("check").output.startswith("ok:")


def test_user_catalog_directory(tmp_path):
    """A user's own GPU, added with --catalogs, is checked like the built-in ones and usable at once."""
    (tmp_path / "my.yaml").write_text(
        "schema: 1\ngpus:\n  my-gpu:\n    name: My GPU\n    device_names: [My GPU 48GB]\n"
        "    memory_total_runtime: 47.5 GiB\n    memory_bandwidth: 1 TB/s\n    interconnect_bandwidth: 64 GB/s\n"
        "    peer_fabric: 0\n"
        "    tflops_dense: {bf16: 100 TFLOPS}\n"
        "    supported_dtypes: [fp16, bf16]\n    sources: {spec: mine, memory_total_runtime: measured}\n")
    data = json.loads(run("size", "--catalogs", str(tmp_path), "--gpu", "My GPU 48GB", "--json").output)
    assert data["results"]["gpu_memory_budget"]["value"] == pytest.approx(0.9 * 47.5 * 2 ** 30)
    (tmp_path / "my.yaml").write_text("schema: 1\ngpus:\n  bad:\n    name: Bad\n    memory_total_runtime: 10 s\n")
    bad = CliRunner().invoke(main, ["check", "--catalogs", str(tmp_path)])
    assert bad.exit_code == 2 and "is missing 'memory_bandwidth'" in bad.output and "wrong dimension" in bad.output


def test_help_is_light():
    """`--help` must not import the heavy libraries."""
    import subprocess
    import sys

    code = ("import sys, engine.cli; from click.testing import CliRunner; "
            "CliRunner().invoke(engine.cli.main, ['--help']); "
            "print(sorted(m for m in ('sympy', 'numpy', 'pint', 'openpyxl', 'jinja2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_user_formulas_from_environment(tmp_path, monkeypatch):
    """$LLM_SIZER_FORMULAS adds a directory of formulas, checked like the built-in ones."""
    (tmp_path / "mine.yaml").write_text(
        "schema: 1\ntitle: My figure\nformulas:\n  kv_cache_gib_per_request:\n"
        "    doc: KV cache of one full-length request, in GiB.\n"
        "    expr: max_model_len * kv_cache_bytes_per_token_paged\n    unit: GiB\n")
    monkeypatch.setenv("LLM_SIZER_FORMULAS", str(tmp_path))
    data = json.loads(run("size", "--json", "--max-model-len", "8192").output)["results"]
    assert data["kv_cache_gib_per_request"] == {"value": 1.0, "unit": "GiB"}   # 8,192 x 131,072 bytes
    (tmp_path / "mine.yaml").write_text(
        "schema: 1\ntitle: Broken\nformulas:\n  oops:\n    doc: Adds seconds to bytes.\n"
        "    expr: ttft + weight_memory_per_gpu\n    unit: s\n")
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 2 and "cannot add" in result.output and "mine.yaml:6:11" in result.output


def test_calibrate_write_goes_to_the_user_catalogs(tmp_path, monkeypatch):
    """A fit is written where the user's catalogs are read from, never into the installed package."""
    from engine import paths

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("LLM_SIZER_CATALOGS", raising=False)
    builtin_fit = (paths.builtin("catalogs") / "fits" / "vllm_memory.yaml").read_text()
    result = run("calibrate", "memory", "--write")
    assert result.exit_code == 0, result.output
    written = tmp_path / "config" / "llm-sizer" / "catalogs" / "fits" / "vllm_memory.yaml"
    assert f"wrote {written}" in result.output and written.is_file()
    assert (paths.builtin("catalogs") / "fits" / "vllm_memory.yaml").read_text() == builtin_fit
    assert paths.user_catalogs() in paths.search_path("catalogs")          # and it is read from then on
    mine = tmp_path / "mine"
    mine.mkdir()
    assert run("calibrate", "memory", "--catalogs", str(mine), "--write").exit_code == 0
    assert (mine / "fits" / "vllm_memory.yaml").is_file()
