"""Served load (formulas/serving.yaml): the fixed point, Little's law, capacity and the user's verdict."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from engine import evaluate as ev
from engine.cli import main

LOAD = dict(input_tokens=600, output_tokens=250, prefix_tokens=100)
SHARES = np.array([0.02, 0.1, 0.4, 0.7, 0.9])      # of the sustainable rate
TARGETS = ["ttft", "inter_token_latency", "e2e_latency", "output_throughput", "served_step_time", "served_decode_requests",
           "served_prefill_tokens_per_step", "served_load_sustainable", "max_sustainable_request_rate"]


@pytest.fixture(scope="module")
def served(graph, catalog):
    """Bindings of the issue's example on H100 with an array of rates, evaluated in one vectorized call."""
    from engine import scenario as scn

    sc = scn.resolve(catalog, {"request_rate": 8.0, **LOAD})
    b = scn.bindings(graph, catalog, sc, graph.inputs_for(["ttft", "e2e_latency", "output_throughput"]))
    rates = SHARES * float(ev.evaluate(graph, b, TARGETS)["max_sustainable_request_rate"])
    return b, ev.evaluate(graph, {**b, "request_rate": rates}, TARGETS), rates


def test_step_time_is_a_fixed_point(served):
    _, r, _ = served
    assert np.all(r["served_load_sustainable"] == 1)
    np.testing.assert_allclose(r["served_step_time"], r["served_step_time_estimate"], rtol=1e-9)


def test_littles_law_in_steps(served):
    """Decoding requests = rate x decode steps x step time; prompt tokens per step = rate x step x prompt."""
    _, r, rates = served
    np.testing.assert_allclose(r["served_decode_requests"], rates * 249 * r["inter_token_latency"], rtol=1e-9)
    np.testing.assert_allclose(r["served_prefill_tokens_per_step"], rates * r["inter_token_latency"] * 500, rtol=1e-9)
    np.testing.assert_allclose(r["output_throughput"], rates * 250)


def test_vectorized_solve_matches_one_rate_at_a_time(graph, served):
    b, r, rates = served
    for i, rate in enumerate(rates):
        one = ev.evaluate(graph, {**b, "request_rate": float(rate)}, ["ttft", "inter_token_latency"])
        assert float(one["ttft"]) == pytest.approx(r["ttft"][i], rel=1e-9)
        assert float(one["inter_token_latency"]) == pytest.approx(r["inter_token_latency"][i], rel=1e-9)


def test_latency_grows_with_the_load_and_the_queue_diverges_at_capacity(graph, served):
    b, r, _ = served
    for name in ("ttft", "inter_token_latency", "e2e_latency"):
        assert np.all(np.diff(r[name]) > 0), name
    cap = float(np.asarray(r["max_sustainable_request_rate"]).reshape(-1)[0])
    near = ev.evaluate(graph, {**b, "request_rate": np.array([0.5, 0.99, 1.0, 1.5]) * cap}, TARGETS)
    assert list(near["served_load_sustainable"]) == [1, 1, 0, 0]
    assert np.isfinite(near["ttft"][1]) and near["ttft"][1] > 10 * near["ttft"][0]
    assert np.all(np.isinf(near["ttft"][2:]))


def test_a_lone_request_sees_the_batch_of_one(size):
    """A closed loop of one user is one request at a time: its steps are the offline batch of one's."""
    served, _ = size(concurrency=1, **LOAD)
    batch, _ = size(batch_size=1, **LOAD)
    assert float(served["served_decode_step_time"]) == pytest.approx(float(batch["batch_inter_token_latency"]), rel=0.05)
    assert float(served["served_other_share"]) == 0 and float(served["served_queue_wait"]) == 0


def test_closed_loop_obeys_littles_law(size):
    r, _ = size(concurrency=32, **LOAD)
    assert float(r["served_request_rate"]) * float(r["e2e_latency"]) == pytest.approx(32)
    assert float(r["serving_mode"]) == 2 and float(r["served_load_sustainable"]) == 1


def test_shared_prefix_is_not_recomputed(size):
    with_prefix, _ = size(request_rate=8, **LOAD)
    without, _ = size(request_rate=8, input_tokens=600, output_tokens=250)
    assert float(with_prefix["served_prompt_tokens"]) == 500 and float(without["served_prompt_tokens"]) == 600
    assert float(with_prefix["ttft"]) < float(without["ttft"])
    assert float(with_prefix["max_sustainable_request_rate"]) > float(without["max_sustainable_request_rate"])


def test_no_load_keeps_the_offline_batch(size):
    r, _ = size(batch_size=8)
    assert float(r["serving_mode"]) == 0
    for name in ("ttft", "inter_token_latency", "e2e_latency", "output_throughput"):
        assert float(r[name]) == float(r["batch_" + name])


def test_cli_served_example_prints_and_json_has_the_names():
    args = ["size", "--request-rate", "8", "--input-tokens", "600", "--output-tokens", "250", "--prefix-tokens", "100"]
    text = CliRunner().invoke(main, [*args, "--no-files"])
    assert text.exit_code == 0 and "Served at 8 requests/s (Poisson)" in text.output and "sustainable up to" in text.output
    data = json.loads(CliRunner().invoke(main, [*args, "--json"]).output)
    for name in ("ttft", "inter_token_latency", "e2e_latency", "output_throughput", "max_sustainable_request_rate"):
        assert data["results"][name]["value"] > 0, name
    assert data["verdict"]["load_sustainable"] is True


def test_cli_overload_is_a_verdict_not_a_number():
    args = ["size", "--request-rate", "500", "--input-tokens", "600", "--output-tokens", "250"]
    text = CliRunner().invoke(main, [*args, "--no-files"])
    assert text.exit_code == 1 and "the queue grows without bound" in text.output
    assert not re.search(r"TTFT \d", text.output)
    out = CliRunner().invoke(main, [*args, "--json"])
    data = json.loads(out.output)           # strict JSON: no Infinity
    assert out.exit_code == 1 and data["results"]["ttft"]["value"] is None
    assert data["verdict"]["load_sustainable"] is False


@pytest.mark.parametrize("args, message", [
    (["--request-rate", "8", "--concurrency", "4"], "give --request-rate or --concurrency, not both"),
    (["--request-rate", "8", "--input-tokens", "100", "--prefix-tokens", "200"], "--prefix-tokens 200 is longer than the prompt"),
    (["--request-rate", "-1"], "--request-rate must be at least 0"),
])
def test_bad_load_gets_one_message(args, message):
    out = CliRunner().invoke(main, ["size", "--no-files", *args])
    assert out.exit_code == 2 and message in out.output and "Traceback" not in out.output


def test_sweep_marks_a_load_beyond_capacity():
    out = CliRunner().invoke(main, ["sweep", "--no-files", "--vary", "request_rate=10,30", "--input-tokens", "600",
                                    "--output-tokens", "250"])
    assert out.exit_code == 0, out.output       # one point fits
    lines = out.output.splitlines()
    assert "load beyond capacity" in next(l for l in lines if l.startswith("30 "))
    assert "1 fit, 0 do not fit, 1 beyond the sustainable load, 0 refused" in out.output


def test_plan_refuses_a_load_no_candidate_sustains():
    args = ["plan", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "8192", "--gpus", "h100-sxm",
            "--max-gpus", "1", "--quantization", "none", "--kv-cache-dtype", "auto", "--input-tokens", "600",
            "--output-tokens", "250"]
    ok = CliRunner().invoke(main, [*args, "--request-rate", "8", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["candidates"]
    over = CliRunner().invoke(main, [*args, "--request-rate", "500"])
    assert over.exit_code == 1 and "no deployment in the catalog sustains 500 requests/s" in over.output
    assert "the queue grows without bound, sustainable up to" in over.output


def test_closed_loop_line_names_the_users():
    one = CliRunner().invoke(main, ["size", "--no-files", "--concurrency", "1", "--input-tokens", "600"])
    assert one.exit_code == 0 and "Served to 1 user in a closed loop" in one.output
