"""Every failure mode of a formula file gets one located message (golden) and exit code 2."""
from __future__ import annotations

import subprocess
import sys

import pytest

from engine import graph
from engine.errors import ErrorList

from .conftest import FIXTURES

BAD = FIXTURES / "bad"
LOAD_FAILURES = sorted(p.name for p in BAD.iterdir() if p.is_dir() and p.name not in ("failing_check", "unresolved_from"))


@pytest.mark.parametrize("case", LOAD_FAILURES)
def test_bad_file_message(case, file_regression, monkeypatch):
    monkeypatch.chdir(BAD)
    with pytest.raises(ErrorList) as info:
        graph.load([case])
    file_regression.check(str(info.value) + "\n", basename=case, extension=".txt")


def test_all_problems_reported_together(monkeypatch):
    monkeypatch.chdir(BAD)
    with pytest.raises(ErrorList) as info:
        graph.load(["several_problems"])
    assert len(info.value.errors) == 3
    assert str(info.value).endswith("3 problems found")


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("case", ["unknown_name", "unit_mismatch", "cycle", "unsafe_expression", "yaml11_no"])
def test_cli_check_exit_2_without_traceback(case):
    run = _cli("check", "--formulas", case, cwd=BAD)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith(f"{case}/"), run.stderr


def test_cli_check_failing_example_exits_1():
    run = _cli("check", "--formulas", "failing_check", cwd=BAD)
    assert run.returncode == 1
    assert "y is 6, expected 7" in run.stderr and "Traceback" not in run.stderr


def test_shipped_files_are_clean():
    run = _cli("check", cwd=BAD.parent)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok:") and "worked examples hold" in run.stdout


def test_cli_check_resolves_from_paths(file_regression):
    """A `from:` path no catalog record holds is a declaration error of `check`, with the likely key."""
    run = _cli("check", "--formulas", "unresolved_from", cwd=BAD)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "hint: did you mean model.num_attention_heads?" in run.stderr
    file_regression.check(run.stderr, basename="unresolved_from", extension=".txt")


def test_bytes_per_token_plus_bytes_refused_beside_the_builtin_formulas(tmp_path):
    """token is a dimension: the built-in kv_cache_bytes_per_token cannot be added to weight bytes."""
    from engine import paths
    from engine.errors import UnitError
    (tmp_path / "x.yaml").write_text("schema: 1\ntitle: t\nformulas:\n  nonsense:\n    {doc: d, "
                                     "expr: kv_cache_bytes_per_token + weight_memory_per_gpu, unit: byte}\n")
    with pytest.raises(ErrorList) as info:
        graph.load([*paths.search_path("formulas"), tmp_path], use_cache=False)
    [err] = info.value.errors
    assert isinstance(err, UnitError) and "cannot add byte / token and byte" in err.message


def test_a_function_expands_where_it_is_called(graph):
    """formulas/serving.yaml declares the server's step once (functions: served_step) and calls it for a decode-only
    step, a step carrying prefill and a step at capacity: each formula is the body with its arguments put in; the
    routed-expert read fraction is another function (formulas/roofline.yaml), named once per step."""
    decode, capacity = graph.formulas["served_decode_step_time"], graph.formulas["capacity_step_time"]
    assert decode.text.startswith("served_step(") and capacity.text.startswith("served_step(")
    assert {"served_decode_tokens", "served_decode_requests", "kv_read_bytes_per_token",
            "served_decode_read_fraction"} <= set(decode.deps)
    read = graph.formulas["served_decode_read_fraction"]                # routed_read_fraction(served_decode_tokens)
    assert set(read.deps) == {"num_experts", "expert_share_of_tokens", "served_decode_tokens", "new_tokens_per_step",
                              "single_request"}
    assert "attention_flops_per_context_token" not in decode.deps       # a decode step runs no prompt chunk
    assert {"attention_flops_per_context_token", "capacity_step_tokens"} <= set(capacity.deps)
    for f in (decode, capacity):                                        # no parameter left unexpanded
        assert not {"tokens", "sampled", "decodes", "attention_flops"} & set(f.deps)


def test_function_arguments_are_unit_checked_where_called(tmp_path):
    """A function's body has no units of its own: the expansion is checked like any expression."""
    (tmp_path / "f.yaml").write_text(
        "schema: 1\ntitle: t\ninputs:\n  size: {unit: byte, doc: a size}\n  count: {unit: token, doc: a count}\n"
        "functions:\n  total:\n    doc: a sum\n    params: [a, b]\n    expr: a + b\n"
        "formulas:\n  wrong:\n    doc: bytes plus tokens\n    expr: total(size, count)\n    unit: byte\n")
    with pytest.raises(ErrorList) as info:
        graph.load([tmp_path])
    assert "f.yaml:14" in str(info.value) and "byte" in str(info.value) and "token" in str(info.value)
