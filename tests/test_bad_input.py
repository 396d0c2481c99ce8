"""The bad-input catalogue (issue 8): every case exits 2 (1 for a failed check) with one short
message in the user's words, never a traceback, and quickly; output files are never weakened."""
from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine import output
from engine.cli import main
from engine.errors import EngineError, ErrorList, Location

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bad_input"
MAX_MESSAGE_BYTES = 2048
LONG = "x" * 100_000


def _generated(tmp: Path) -> None:
    """Inputs too large or too regular to keep as fixture files."""
    (tmp / "deep.yaml").write_text("batch_size: " + "[" * 60 + "1" + "]" * 60 + "\n")
    (tmp / "digits.yaml").write_text("batch_size: 1" + "0" * 5000 + "\n")
    (tmp / "huge.yaml").write_text("# padding\n" * 120_000 + "batch_size: 8\n")
    (tmp / "mapping.yaml").write_text("batch_size: {a: 1}\n")
    (tmp / "long_key.yaml").write_text(f"{LONG}: 1\n")
    (tmp / "ragged.yaml").write_text("input_tokens: [1, [2, 3]]\n")
    (tmp / "sweep.yaml").write_text("block_size: [1, 1]\n")
    (tmp / "long_expr").mkdir()
    (tmp / "long_expr" / "f.yaml").write_text(
        "schema: 1\ntitle: Long\ninputs:\n  fuzz_a: {unit: 1, doc: A}\nformulas:\n  fuzz_b:\n    doc: Long.\n"
        f"    expr: {' + '.join(['fuzz_a'] * 30_000)}\n    unit: 1\n")
    (tmp / "many_errors").mkdir()
    (tmp / "many_errors" / "f.yaml").write_text(
        "schema: 1\ntitle: Many\nformulas:\n" + "".join(
            f"  fuzz_{i}:\n    doc: Unknown name {i}.\n    expr: no_such_name_{i} * 2\n    unit: 1\n" for i in range(200)))
    (tmp / "bomb_catalog").mkdir()
    (tmp / "bomb_catalog" / "c.yaml").write_text((FIXTURES / "billion_laughs.yaml").read_text()
                                                 .replace("batch_size:", "gpus:"))
    (tmp / "not_json.json").write_text("{num_hidden_layers: 32")
    (tmp / "huge_int.json").write_text('{"num_hidden_layers": 1' + "0" * 30 + "}")
    (tmp / "a_file").write_text("not a folder")
    (tmp / "out" / "sizing.xlsx").mkdir(parents=True)


# (id, command line, exit code, phrase the message must hold). {F}: fixtures/bad_input, {T}: a temp folder.
CASES = [
    # YAML: alias bombs, recursion, nesting, size (any YAML input: scenario, formula, catalog)
    ("alias-bomb-scenario", ["size", "--no-files", "--scenario", "{F}/billion_laughs.yaml"], 2, "aliases expand"),
    ("alias-bomb-formula", ["check", "--formulas", "{F}/alias_bomb_formula"], 2, "aliases expand"),
    ("alias-bomb-catalog", ["check", "--catalogs", "{T}/bomb_catalog"], 2, "aliases expand"),
    ("recursive-alias", ["size", "--no-files", "--scenario", "{F}/recursive_alias.yaml"], 2, "contains it"),
    ("deep-nesting", ["size", "--no-files", "--scenario", "{T}/deep.yaml"], 2, "flat list"),
    ("5000-digit-int", ["size", "--no-files", "--scenario", "{T}/digits.yaml"], 2, "5,001 digits"),
    ("oversized-scenario", ["size", "--no-files", "--scenario", "{T}/huge.yaml"], 2, "bytes allowed"),
    ("mapping-value", ["size", "--no-files", "--scenario", "{T}/mapping.yaml"], 2, "must be a whole number"),
    ("ragged-sweep", ["size", "--no-files", "--scenario", "{T}/ragged.yaml"], 2, "flat list"),
    ("sweep-to-size", ["size", "--no-files", "--json", "--scenario", "{T}/sweep.yaml"], 2, "sizes one deployment"),
    ("long-key", ["size", "--no-files", "--scenario", "{T}/long_key.yaml"], 2, "malformed YAML"),
    # config.json given with --model
    ("config-nan", ["size", "--no-files", "--model", "{F}/config_nan.json"], 2, "num_hidden_layers is nan"),
    ("config-infinity", ["size", "--no-files", "--model", "{F}/config_infinity.json"], 2, "hidden_size is inf"),
    ("config-string", ["size", "--no-files", "--model", "{F}/config_string.json"], 2,
     "num_key_value_heads must be a number"),
    ("config-negative", ["size", "--no-files", "--model", "{F}/config_negative.json"], 2,
     "intermediate_size must be a number of at least 0"),
    ("config-huge-int", ["size", "--no-files", "--model", "{T}/huge_int.json"], 2, "num_hidden_layers is too large"),
    ("config-not-json", ["size", "--no-files", "--model", "{T}/not_json.json"], 2, "not valid JSON"),
    ("long-model-name", ["size", "--no-files", "--model", LONG], 2, "unknown model"),
    # formulas: overflow in a worked example, a 200 kB expression, hundreds of errors
    ("overflow-check", ["check", "--formulas", "{F}/overflow_check"], 1, "fuzz_power is inf, not a finite number"),
    ("long-expression", ["check", "--formulas", "{T}/long_expr"], 2, "characters long"),
    ("two-hundred-errors", ["check", "--formulas", "{T}/many_errors"], 2, "more not shown"),
    # output files
    ("out-under-a-file", ["size", "--out", "{T}/a_file/out"], 2, "cannot write the file: Not a directory"),
    ("output-file-is-a-folder", ["size", "--out", "{T}/out"], 2, "a folder of that name exists"),
    ("output-is-a-folder", ["report", "derivation", "kv_cache_tokens", "-o", "{T}"], 2, "is a directory"),
    # values vLLM refuses, in the options the user typed
    ("block-size-7", ["size", "--no-files", "--block-size", "7"], 2, "--block-size 7 is refused by vLLM"),
    ("input-tokens-0", ["size", "--no-files", "--input-tokens", "0"], 2, "--input-tokens must be at least 1"),
    ("batched-tokens-1", ["size", "--no-files", "--max-num-batched-tokens", "1"], 2,
     "--max-num-batched-tokens 1 is below --max-num-seqs 1024"),
    ("batched-below-seqs", ["size", "--no-files", "--max-num-seqs", "300", "--max-num-batched-tokens", "299"], 2,
     "must be greater than or equal to max_num_seqs"),
    ("batch-size-0", ["size", "--no-files", "--batch-size", "0"], 2, "--batch-size must be at least 1"),
    ("batch-size-negative", ["size", "--no-files", "--batch-size", "-1"], 2, "--batch-size must be at least 1"),
    ("max-num-seqs-0", ["size", "--no-files", "--max-num-seqs", "0"], 2, "--max-num-seqs must be at least 1"),
    ("tp-0", ["size", "--no-files", "--tensor-parallel-size", "0"], 2, "--tensor-parallel-size must be at least 1"),
    ("pp-0", ["size", "--no-files", "--pipeline-parallel-size", "0"], 2, "--pipeline-parallel-size must be at least 1"),
    ("tp-3", ["size", "--no-files", "--tensor-parallel-size", "3"], 2,
     "--tensor-parallel-size 3 does not divide the 32 attention heads of meta-llama/Llama-3.1-8B-Instruct"),
    ("gpu-util-0", ["size", "--no-files", "--gpu-memory-utilization", "0"], 2,
     "--gpu-memory-utilization must be at least 0.01"),
    ("gpu-util-1.5", ["size", "--no-files", "--gpu-memory-utilization", "1.5"], 2,
     "--gpu-memory-utilization must be at most 1"),
    ("gpu-util-nan", ["size", "--no-files", "--gpu-memory-utilization", "nan"], 2, "must be a finite number"),
    ("input-tokens-inf", ["size", "--no-files", "--input-tokens", "inf"], 2, "must be a finite number"),
    ("batch-size-huge", ["size", "--no-files", "--batch-size", "1" + "0" * 30], 2, "--batch-size is too large"),
    ("comma-list", ["size", "--no-files", "--tensor-parallel-size", "3,6"], 2, "must be a whole number"),
]


def _invoke(args, tmp):
    args = [a.replace("{F}", str(FIXTURES)).replace("{T}", str(tmp)) for a in args]
    start = time.perf_counter()
    result = CliRunner().invoke(main, args)
    return result, time.perf_counter() - start


@pytest.mark.parametrize("case_id, args, code, phrase", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_short_message(case_id, args, code, phrase, tmp_path):
    _generated(tmp_path)
    result, seconds = _invoke(args, tmp_path)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(result.output.encode()) < MAX_MESSAGE_BYTES, result.output[:3000]
    assert phrase in result.output, result.output
    assert seconds < 5, f"{case_id} took {seconds:.1f} s"


def test_alias_bomb_fails_in_well_under_a_second(tmp_path):
    CliRunner().invoke(main, ["size", "--no-files", "--json"])       # imports and caches out of the timing
    result, seconds = _invoke(["size", "--no-files", "--scenario", "{F}/billion_laughs.yaml"], tmp_path)
    assert result.exit_code == 2 and "aliases expand" in result.output
    assert seconds < 0.5


def test_permission_denied_names_the_path_and_the_fix(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(output.tempfile, "mkstemp", refuse)
    result, _ = _invoke(["workbook", "-o", "{T}/locked/w.xlsx"], tmp_path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "w.xlsx: cannot write the file: Permission denied" in result.output
    assert "make" in result.output and "writable" in result.output


# -- output files: never weakened, never half-written ---------------------------------------

@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_mode_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        written = output.write_atomic(tmp_path / "a.md", "text")
    finally:
        os.umask(old)
    assert stat.S_IMODE(written.stat().st_mode) == mode


def test_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "a.md"
    target.write_text("old")
    target.chmod(0o640)
    output.write_atomic(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_symlink_is_written_through(tmp_path):
    real = tmp_path / "real.md"
    real.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    output.write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "a.md"
    target.write_text("good")

    def fail(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "fsync", fail)
    with pytest.raises(EngineError, match="No space left on device"):
        output.write_atomic(target, "half")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["a.md"]     # no temporary file left behind


def test_append_csv_keeps_rows_and_mode(tmp_path):
    target = tmp_path / "r.csv"
    output.append_csv(target, ["a"], [{"a": 1}])
    target.chmod(0o640)
    output.append_csv(target, ["a"], [{"a": 2}])
    assert target.read_text() == "a\n1\n2\n" and stat.S_IMODE(target.stat().st_mode) == 0o640


# -- rendering stays short -------------------------------------------------------------

def test_error_echoes_long_values_cut():
    line = "    expr: " + "a + " * 50_000 + "b"
    err = EngineError("bad " + LONG, Location("f.yaml", 3, 100_000, line), found=LONG, hint=LONG, width=50_000)
    text = str(err)
    assert len(text) < MAX_MESSAGE_BYTES
    assert "(100,004 characters)" in text and "..." in text


def test_error_list_is_bounded_and_counts_the_rest():
    errors = ErrorList([EngineError(f"problem {i}", Location("f.yaml", i)) for i in range(500)])
    text = str(errors)
    assert len(text) < MAX_MESSAGE_BYTES
    assert text.endswith("500 problems found (" + str(500 - text.count("problem ")) +
                         " more not shown: fix these and run again)")
