"""Every framework sizes with its own formula set; the `vllm serve` line is what was sized."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.cli import main

FRAMEWORKS = ["vllm", "tgi", "llama.cpp", "tensorrt-llm"]
VLLM_ONLY = ["gpu_memory_budget", "cuda_graph_memory", "fits", "memory_shortfall"]


def run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_size_every_framework(framework, file_regression):
    result = run("size", "--no-files", "--framework", framework, "--max-model-len", "8192")
    assert result.exit_code == 0, result.output
    assert f"framework {framework}" in result.output and "Verdict: fits." in result.output
    file_regression.check(result.output, basename=f"size_{framework}", extension=".txt")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_json_every_framework(framework):
    result = run("size", "--json", "--framework", framework)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    verdict = data["verdict"]
    assert verdict["fits"] is True and verdict["memory_shortfall"] == 0 and verdict["failed_condition"] is None
    assert data["scenario"]["framework"] == framework
    assert {"minimum_memory_per_gpu", "activation_peak_memory", "weight_memory_per_gpu"} <= set(data["results"])
    if framework == "vllm":
        assert verdict["formulas"]["fits"] == "fits" and set(VLLM_ONLY) <= set(data["results"])
    else:
        assert verdict["formulas"]["fits"] == "minimum_memory_fits"
        assert not set(VLLM_ONLY) & set(data["results"])   # vLLM's figures are not required of it


def test_framework_engine_defaults_set_the_forward_pass():
    """Tokens per forward pass under each framework's own flag (catalogs/frameworks.yaml, with sources)."""
    tokens = {fw: json.loads(run("size", "--json", "--framework", fw).output)["scenario"]["max_num_batched_tokens"]
              for fw in FRAMEWORKS}
    assert tokens == {"vllm": 8192, "tgi": 4096, "llama.cpp": 512, "tensorrt-llm": 8192}


@pytest.mark.parametrize("framework", FRAMEWORKS[1:])
def test_other_frameworks_write_files_and_print_no_vllm_command(framework, tmp_path):
    from engine.render import excel

    result = run("size", "--framework", framework, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "  vllm serve " not in result.output and "# no launch command" in result.output
    report = (tmp_path / "sizing.md").read_text()
    assert "**Verdict: fits**" in report and "minimum_memory_per_gpu" in report
    cells = excel.dump((tmp_path / "sizing.xlsx").read_bytes())["sheets"]["Breakdown"]["cells"]
    assert "=minimum_memory_fits" in cells.values() and "=available_kv_cache_memory/1073741824" not in cells.values()


def test_other_framework_that_does_not_fit_exits_1():
    result = run("size", "--no-files", "--framework", "tgi", "--model", "meta-llama/Llama-3.1-70B-Instruct",
                 "--gpu", "l4")
    assert result.exit_code == 1
    assert "Verdict: does NOT fit" in result.output and "the workload needs" in result.output
    assert "Latency" not in result.output


def test_explain_a_vllm_figure_under_another_framework():
    result = run("explain", "kv_cache_tokens", "--framework", "tgi")
    assert result.exit_code == 2 and "not a figure of Text Generation Inference" in result.output
    assert "Traceback" not in result.output


# -- the vllm serve line ------------------------------------------------------------------------

def command(*args):
    result = run("size", "--no-files", *args)
    assert result.exit_code == 0, result.output
    return result.output.split("Command:\n", 1)[1], result.output


def test_command_carries_every_option_that_changed_the_result():
    text, _ = command("--max-num-batched-tokens", "4096", "--block-size", "32", "--kv-cache-dtype", "fp8",
                      "--dtype", "float16", "--enforce-eager", "--pipeline-parallel-size", "2",
                      "--gpu-memory-utilization", "0.85", "--max-model-len", "8192")
    for flag in ["--max-num-batched-tokens 4096", "--block-size 32", "--kv-cache-dtype fp8", "--dtype float16",
                 "--enforce-eager", "--pipeline-parallel-size 2", "--gpu-memory-utilization 0.85",
                 "--max-model-len 8192"]:
        assert flag in text, flag


def test_command_keeps_an_explicit_max_num_seqs_and_says_what_fits():
    text, output = command("--max-num-seqs", "128", "--max-model-len", "8192")
    assert "--max-num-seqs 128" in text
    assert "Note: --max-num-seqs 128 is kept, but at most 55 requests" in output


def test_command_leaves_out_what_vllm_defaults_to():
    text, _ = command()
    assert "--max-num-seqs" not in text and "--tensor-parallel-size" not in text and "--block-size" not in text


def test_command_uses_a_local_model_directory(tmp_path):
    import shutil
    from pathlib import Path

    source = Path(__file__).resolve().parent.parent / "catalogs" / "models"
    cfg = json.loads(json.dumps(__import__("yaml").safe_load(
        (source / "meta-llama--Llama-3.1-8B-Instruct.yaml").read_text())["config"]))
    model_dir = tmp_path / "my-llama"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(cfg))
    for given in (str(model_dir / "config.json"), str(model_dir)):
        text, _ = command("--model", given, "--max-model-len", "8192")
        assert f"vllm serve {model_dir} \\" in text, text
    shutil.rmtree(model_dir)


def test_quantization_that_contradicts_the_checkpoint_is_refused():
    result = run("size", "--no-files", "--model", "RedHatAI/Llama-3.3-70B-Instruct-fp8-dynamic",
                 "--quantization", "awq")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert ("Quantization method specified in the model config (compressed-tensors) does not match the "
            "quantization method specified in the `quantization` argument (awq)") in result.output


def test_max_model_len_defaults_to_the_model_and_says_so():
    _, output = command("--model", "meta-llama/Llama-2-7b-hf")
    assert "--max-model-len 4096" in output
    assert "Note: max_model_len 4,096: meta-llama/Llama-2-7b-hf's max_position_embeddings" in output
    explicit = run("size", "--no-files", "--model", "meta-llama/Llama-2-7b-hf", "--max-model-len", "8192")
    assert explicit.exit_code == 2 and "exceeds meta-llama/Llama-2-7b-hf's max_position_embeddings" in explicit.output


@pytest.mark.parametrize("framework", ["tgi", "tensorrt-llm"])
def test_served_load_without_vllms_pool_uses_the_free_memory(framework):
    """kv_cache_tokens is vLLM's paged pool; elsewhere the catalog's stand-in, the tokens free memory holds."""
    out = CliRunner().invoke(main, ["size", "--json", "--framework", framework, "--request-rate", "4"])
    r = json.loads(out.output)["results"]
    assert r["kv_cache_tokens"]["value"] == r["kv_cache_tokens_in_free_memory"]["value"] > 0
    assert r["max_sustainable_request_rate"]["value"] > 4 and r["ttft"]["value"] > 0
