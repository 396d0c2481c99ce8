"""`llm-sizer solve`: every answer holds when sized forward the way `size` sizes it, and the next value does not;
the solved form agrees with the bisection; bad requests get one clear error."""
from __future__ import annotations

import functools

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import scenario as scn
from engine import solve as solving
from engine.cli import main
from engine.errors import EngineError, RequirementError, ScenarioError
from engine.sizing import evaluate_scenario

MODELS = ["Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B-Instruct", "mistral-small-3.1-24b-w8a8", "google/gemma-2-9b-it"]
GPUS = ["rtx-4090", "l40s", "h100-sxm"]
QUESTIONS = [("fits", "max_model_len"), ("fits", "tensor_parallel_size"), ("fits", "gpu_memory_utilization"),
             ("inter_token_latency <= 25 ms", "batch_size"), ("kv_cache_tokens >= 50000 tokens", "max_num_seqs"),
             ("total_memory_per_gpu <= 18 GiB", "gpu_memory_utilization"), ("ttft <= 400 ms", "input_tokens")]


def _sized(graph, catalog, keys: dict, name: str):
    """The output as `size` computes it (rules enforced), or None where the scenario is refused."""
    try:
        sc = scn.resolve(catalog, {k: scn.coerce(k, v) for k, v in keys.items()})
        return float(np.asarray(evaluate_scenario(graph, catalog, sc)[name]).reshape(-1)[0])   # all, as `size`
    except (RequirementError, ScenarioError):
        return None


def _meets(cond, value) -> bool:
    return value is not None and bool(cond.meets(value))


@functools.lru_cache(maxsize=1)
def _loaded():
    """The graph and catalog, loaded once (not as fixtures: hypothesis would print them in a failing example)."""
    from engine import sizing

    return sizing.load()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(MODELS), gpu=st.sampled_from(GPUS), tp=st.sampled_from([1, 2]),
       question=st.sampled_from(QUESTIONS))
def test_every_answer_holds_forward_and_the_next_value_does_not(model, gpu, tp, question):
    graph, catalog = _loaded()
    condition, input_name = question
    keys = {"model": model, "gpu": gpu, "tensor_parallel_size": tp, "max_model_len": 8192}
    try:
        answer = solving.solve(graph, catalog, None, dict(keys), condition, input_name)
    except solving.NoSolutionError:
        cond = solving.parse_condition(graph, condition)
        lo = {"gpu_memory_utilization": 0.5, "input_tokens": 1}.get(input_name, 1)
        assert not _meets(cond, _sized(graph, catalog, {**keys, input_name: lo}, cond.output))
        return
    except EngineError as exc:     # a condition holding on a middle range only: the user must pick an end
        assert "--max" in str(exc.hint)
        answer = solving.solve(graph, catalog, None, dict(keys), condition, input_name, "max")
    cond, t = answer.condition, answer.target
    keys.pop(t.key, None)
    assert _meets(cond, _sized(graph, catalog, {**keys, t.key: answer.value}, cond.output))
    step = 1 if t.integer else 10.0 ** (np.floor(np.log10(abs(answer.value))) - solving.FLOAT_DIGITS + 1)
    beyond = answer.value + (step if answer.direction == "max" else -step)
    if t.lo <= beyond <= t.top:
        assert not _meets(cond, _sized(graph, catalog, {**keys, t.key: beyond}, cond.output))
    if t.integer:
        assert float(answer.value).is_integer()


@pytest.mark.parametrize("condition, input_name, keys", [
    ("inter_token_latency <= 30 ms", "batch_size", {"model": "mistral-small-3.1-24b-w8a8", "gpu": "rtx-4090",
                                                    "tensor_parallel_size": 2, "max_model_len": 32768}),
    ("inter_token_latency <= 12 ms", "batch_size", {"model": "Qwen/Qwen3-8B", "gpu": "h100-sxm"}),
    ("total_memory_per_gpu <= 20 GiB", "gpu_memory_utilization", {"model": "Qwen/Qwen3-8B", "gpu": "rtx-4090"}),
])
def test_the_solved_form_agrees_with_the_bisection(graph, catalog, condition, input_name, keys):
    symbolic = solving.solve(graph, catalog, None, dict(keys), condition, input_name)
    bisected = solving.solve(graph, catalog, None, dict(keys), condition, input_name, symbolic=False)
    assert (symbolic.method, bisected.method) == ("symbolic", "bisection")
    assert symbolic.value == bisected.value
    # the exact root lies between the answer and the next value
    lo, hi = sorted((symbolic.value, symbolic.checks[1][0]))
    assert lo <= symbolic.exact <= hi
    assert symbolic.expression.startswith(symbolic.target.inputs[0] + " = ")


@pytest.mark.parametrize("condition, input_name, keys, why", [
    ("ttft <= 1 s", "input_tokens", {"gpu": "rtx-4090"}, "ceiling in prefill_chunks"),
    # the served load's fixed point lies between the request rate and the latency: solved numerically, never inverted
    ("inter_token_latency <= 20 ms", "request_rate", {"gpu": "h100-sxm"}, "the fixed point"),
])
def test_a_step_in_the_chain_is_bisected_and_says_why(graph, catalog, condition, input_name, keys, why):
    answer = solving.solve(graph, catalog, None, {"model": "Qwen/Qwen3-8B", **keys}, condition, input_name)
    assert answer.method == "bisection"
    assert why in answer.reason
    assert answer.checks[0][2] and not answer.checks[1][2]


def test_tensor_parallel_skips_sizes_that_do_not_divide_the_heads(graph, catalog):
    """Llama-3.1-70B on L40S at its full 131,072 context: TP 8; 5, 6 and 7 break the head rule, 4 does not fit."""
    answer = solving.solve(graph, catalog, None, {"model": "meta-llama/Llama-3.1-70B-Instruct", "gpu": "l40s"},
                           "fits", "tp")
    assert answer.target.name == "tensor_parallel_size" and answer.direction == "min"
    assert answer.value == 8
    assert "not allowed" in answer.checks[1][3] and answer.checks[-1][0] == 4 and not answer.checks[-1][2]


def test_max_model_len_stops_at_the_model_limit(graph, catalog):
    answer = solving.solve(graph, catalog, None, {"model": "Qwen/Qwen3-8B", "gpu": "h100-sxm"}, "fits",
                           "max_model_len")
    assert answer.value == catalog.model("Qwen/Qwen3-8B").arch["max_position_embeddings"]
    assert "max_position_embeddings" in answer.checks[1][3]


SCENARIO = ["--model", "mistral-small-3.1-24b-w8a8", "--gpu", "rtx-4090", "--tensor-parallel-size", "2"]


def test_text_output(file_regression):
    result = CliRunner().invoke(main, ["solve", "fits", "--for", "max_model_len", *SCENARIO,
                                       "--gpu-memory-utilization", "0.88"])
    assert result.exit_code == 0, result.output
    file_regression.check(result.output, basename="solve_max_model_len", extension=".txt")


def test_json_contract():
    import json

    result = CliRunner().invoke(main, ["solve", "inter_token_latency <= 30 ms", "--for", "batch_size", *SCENARIO,
                                       "--gpu-memory-utilization", "0.88", "--max-model-len", "32768", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {"output", "input", "value", "method", "expression"} <= set(out)
    assert (out["output"], out["input"], out["method"]) == ("inter_token_latency", "batch_size", "symbolic")
    assert isinstance(out["value"], int)
    assert [c["meets"] for c in out["check"]] == [True, False]


def test_json_is_strict_where_a_candidate_breaks_a_rule():
    import json

    result = CliRunner().invoke(main, ["solve", "fits", "--for", "tp", "--model", "meta-llama/Llama-3.1-70B-Instruct",
                                       "--gpu", "l40s", "--json"])
    checks = json.loads(result.output, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))["check"]
    assert [c["value"] for c in checks] == [8, 7, 4] and checks[1]["fits"] is None


@pytest.mark.parametrize("condition, input_name, keys, code, words", [
    ("fitz", "max_model_len", {}, 2, "did you mean 'fits'"),
    ("fits", "max_model_lenn", {}, 2, "did you mean 'max_model_len'"),
    ("fits", "model", {}, 2, "not a number"),
    ("fits", "enforce_eager", {}, 2, "yes/no switch"),
    ("fits", "kv_cache_tokens", {}, 2, "is a formula, not an input"),
    ("inter_token_latency <=", "batch_size", {}, 2, "cannot read the condition"),
    ("inter_token_latency == 30 ms", "batch_size", {}, 2, "cannot read the condition"),
    ("inter_token_latency <= 30 GB", "batch_size", {}, 2, "wrong dimension"),
    ("inter_token_latency", "batch_size", {}, 2, "not a yes/no figure"),
    ("fits", "gpu_memory_utilization", {"model": "mistral-small-3.1-24b-w8a8", "gpu": "rtx-4090",
                                        "tensor_parallel_size": 2, "max_model_len": 32768}, 2, "--max"),
    ("inter_token_latency <= 1 ms", "batch_size", {}, 1, "closest tried: batch_size 1"),
    ("fits", "max_model_len", {"model": "gemma-3-27b-it", "gpu": "rtx-4090", "tensor_parallel_size": 2}, 1,
     "in use per GPU"),
])
def test_bad_requests_get_one_clear_error(graph, catalog, condition, input_name, keys, code, words):
    with pytest.raises(EngineError) as caught:
        solving.solve(graph, catalog, None, keys, condition, input_name)
    assert caught.value.exit_code == code
    assert words in str(caught.value)


@pytest.mark.parametrize("args, code, words", [
    (["fits", "--for", "model"], 2, "not a number"),
    (["inter_token_latency <= 1 ms", "--for", "batch_size"], 1, "closest tried"),
])
def test_the_command_prints_errors_without_a_traceback(args, code, words):
    result = CliRunner().invoke(main, ["solve", *args])
    assert result.exit_code == code, result.output
    assert words in result.output
    assert "Traceback" not in result.output
