"""Fuzzing the inputs a user controls: scenario options, scenario files, formula files.

Whatever comes in, the command line answers with exit code 0, 1 or 2, never a traceback,
and a failure is one message under 2 kB."""
from __future__ import annotations

import string

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.scenario_keys import KEYS

MAX_MESSAGE_BYTES = 2048
FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])

# values a user might type: numbers of every kind, words the catalogs know, junk
NUMBERS = st.one_of(st.integers(-5, 300_000), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, 2, 3, 7, 8, 16, 0.5, 0.9, 0.99, 1.5, 2 ** 53 + 1, 10 ** 30]))
WORDS = st.sampled_from(["auto", "fp8", "bfloat16", "float16", "h100-sxm", "a100-80gb", "awq", "mxfp4", "vllm",
                         "tgi", "llama.cpp", "tensorrt-llm", "meta-llama/Llama-3.1-8B-Instruct", "79.19 GiB",
                         "80 seconds", "true", "no", "1,024", "3,6", "", " ", "-1"])
JUNK = st.text(string.printable, max_size=30)
VALUES = st.one_of(NUMBERS, WORDS, JUNK, st.lists(NUMBERS, min_size=1, max_size=4))


def _assert_answered(result, short_on=(2,)):
    """Exit 0/1/2, no traceback; a refusal (exit 2, and 1 from `check`) is one short message. (A deployment
    that does not fit also exits 1, with its whole report or JSON: that is not a message.)"""
    assert result.exit_code in (0, 1, 2), (result.exit_code, repr(result.exception), result.output[-2000:])
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code in short_on:
        assert len(result.output.encode()) < MAX_MESSAGE_BYTES, result.output[:3000]


def _option_args(options: dict) -> list[str]:
    args = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if KEYS[key][0] is bool:
            args.append(flag if value in (1, True, "true") else "--no-" + key.replace("_", "-"))
        elif isinstance(value, list):
            args += [flag, ",".join(str(v) for v in value)]
        else:
            args += [flag, str(value)]
    return args


@settings(FUZZ, max_examples=45)
@given(st.dictionaries(st.sampled_from(sorted(KEYS)), VALUES, max_size=4))
def test_scenario_options(options):
    _assert_answered(CliRunner().invoke(main, ["size", "--no-files", "--json", *_option_args(options)]))


SCENARIO_DOCS = st.one_of(
    st.dictionaries(st.sampled_from(sorted(KEYS)), st.one_of(VALUES, st.dictionaries(JUNK, NUMBERS, max_size=2)),
                    max_size=5),
    st.dictionaries(JUNK, VALUES, max_size=3),
    st.lists(VALUES, max_size=3), NUMBERS, WORDS)


@settings(FUZZ, max_examples=35)
@given(doc=SCENARIO_DOCS, raw=st.one_of(st.none(), st.text(max_size=200)))
def test_scenario_files(tmp_path_factory, doc, raw):
    path = tmp_path_factory.mktemp("scenario") / "s.yaml"
    path.write_text(raw if raw is not None else yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    _assert_answered(CliRunner().invoke(main, ["size", "--no-files", "--json", "--scenario", str(path)]))


BASE_FORMULA_FILE = """\
schema: 1
title: Fuzzed rules
inputs:
  fuzz_a: {unit: byte, integer: true, min: 1, doc: A size}
  fuzz_b: {unit: 1, min: 0, max: 4, doc: A factor}
formulas:
  fuzz_c:
    doc: The size times the factor.
    expr: Max(fuzz_a * fuzz_b, fuzz_a // 2) + fuzz_a % 3
    unit: byte
    requires:
      - fuzz_a > fuzz_b
      - when: fuzz_b <= 4
        message: "fuzz_b {fuzz_b} is too large"
checks:
  - name: fuzzed example
    given: {fuzz_a: 10, fuzz_b: 2}
    expect: {fuzz_c: 21 B}
"""
SNIPPETS = ["**", "//", "(", ")", ":", "- ", "{", "}", "&x ", "*x", "\n  ", "1e308", "fuzz_a", "__import__",
            "'", '"', "nan", "no", "010", "unit: GiB", "Max(", "where(", "0", "-", " % ", "\t", "é"]


@st.composite
def mutated_formula_files(draw):
    text = BASE_FORMULA_FILE
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 8))
        text = text[:at] + draw(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=5))) + text[at + cut:]
    return text


@settings(FUZZ, max_examples=25)
@given(text=mutated_formula_files())
def test_formula_files(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("formulas")
    (folder / "fuzz.yaml").write_text(text, encoding="utf-8")
    _assert_answered(CliRunner().invoke(main, ["check", "--formulas", str(folder)]), short_on=(1, 2))
