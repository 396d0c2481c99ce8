"""The README cannot drift: every `$ llm-sizer ...` command it shows is run, and its output compared.

A README code block holds commands (`$ llm-sizer ...`) each followed by the output it shows. The
shown lines must appear in the command's output in the same order; a line `...` (indented or not)
stands for lines left out, so each run of lines between `...` must appear contiguously, the first
at the start of the output unless the block begins with `...` (a block may stop before the output
ends: READMEs show the lines that matter). Commands run in a sandbox: the repository's formulas, templates and tests are
linked in, catalogs are copied (`calibrate --write` writes there), and the current directory is a
temporary one, so files the commands write never touch the checkout.
"""
from __future__ import annotations

import difflib
import shlex
import shutil

import pytest
from click.testing import CliRunner

from engine import paths
from engine.cli import main
from engine.render import markdown

from .conftest import ROOT

PROMPT = "$ llm-sizer "
ELIDED = "..."

# README blocks known to differ from what the command prints today, by command. Each is still run and
# must still differ: when one matches, the test fails until it is removed from here.
DRIFTING: dict[str, str] = {
}


def readme_examples(text: str) -> list[tuple[int, str, list[str]]]:
    """(line number, command without the prompt, the output lines shown) for each command in a code block."""
    examples, in_block, current = [], False, None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_block, current = not in_block, None
        elif in_block and line.startswith(PROMPT):
            current = (number, line[2:].strip(), [])
            examples.append(current)
        elif in_block and current is not None:
            current[2].append(line.rstrip())
    return [(n, command, _trimmed(shown)) for n, command, shown in examples]


def _trimmed(lines: list[str]) -> list[str]:
    """Without the blank lines at either end (they separate commands within a block)."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def mismatch(shown: list[str], output: list[str]) -> str | None:
    """None when `output` shows what the README shows (see the module doc), else a diff to read."""
    chunks, chunk = [], []
    for line in shown:
        if line.strip() == ELIDED:
            chunks.append(chunk)
            chunk = []
        else:
            chunk.append(line)
    chunks.append(chunk)
    position = 0
    for i, lines in enumerate(chunks):
        if not lines:
            continue
        found = _find(lines, output, position)
        if found is None or (i == 0 and found != 0):
            return "\n".join(difflib.unified_diff(lines, output, "README", "output", lineterm="", n=2))
        position = found + len(lines)
    return None


def _find(lines: list[str], output: list[str], start: int) -> int | None:
    for at in range(start, len(output) - len(lines) + 1):
        if output[at:at + len(lines)] == lines:
            return at
    return None


def _id(example) -> str:
    return f"README:{example[0]}:{example[1][len('llm-sizer '):][:60]}"


EXAMPLES = readme_examples((ROOT / "README.md").read_text(encoding="utf-8"))


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A copy of the installation whose writes land in tmp; the current directory is its top level."""
    for kind in ("formulas", "templates", "tests"):
        (tmp_path / kind).symlink_to(ROOT / kind, target_is_directory=True)
    shutil.copytree(ROOT / "catalogs", tmp_path / "catalogs")
    monkeypatch.setattr(paths, "_HERE", tmp_path / "engine")     # builtin() looks in _HERE.parent
    for name in (*paths.ENV.values(), "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    markdown.environment.cache_clear()        # its template loader must not outlive the sandbox
    yield tmp_path
    markdown.environment.cache_clear()


def test_readme_shows_commands():
    commands = [command.split()[1] for _, command, _ in EXAMPLES]
    for documented in ("size", "workbook", "report", "explain", "check", "accuracy", "calibrate"):
        assert documented in commands, documented
    assert all(shown for _, _, shown in EXAMPLES), "every README command shows its output"


@pytest.mark.parametrize("example", EXAMPLES, ids=_id)
def test_readme_command_output(example, sandbox):
    _, command, shown = example
    result = CliRunner().invoke(main, shlex.split(command)[1:])
    output = _trimmed([line.rstrip() for line in result.output.splitlines()])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    difference = mismatch(shown, output)
    if command in DRIFTING:
        assert difference, f"README now matches `{command}`: remove it from DRIFTING"
    else:
        assert difference is None, f"`{command}` prints something else than README.md shows:\n{difference}"


@pytest.mark.parametrize("shown, output, ok", [
    (["a", "b"], ["a", "b"], True),
    (["a", "b"], ["a", "x", "b"], False),          # shown lines are contiguous unless '...' says otherwise
    (["a", "...", "b"], ["a", "x", "b"], True),
    (["...", "b"], ["x", "b"], True),
    (["a", "..."], ["a", "x"], True),
    (["a"], ["a", "x"], True),                     # the output may go on past what the README shows
    (["b"], ["a", "b"], False),                    # but starts where the README starts, unless it begins with '...'
    (["...", "b", "..."], ["x", "y"], False),
    (["b", "...", "a"], ["a", "b"], False),        # order counts
    (["  ...", "b"], ["x", "b"], True),            # an indented '...' elides too
])
def test_mismatch_rules(shown, output, ok):
    assert (mismatch(shown, output) is None) == ok


def test_examples_are_read_from_code_blocks():
    text = "x\n```\n$ llm-sizer check\nok: 1\n\n$ llm-sizer size\n...\nfits\n```\n$ llm-sizer outside\n"
    assert readme_examples(text) == [(3, "llm-sizer check", ["ok: 1"]), (6, "llm-sizer size", ["...", "fits"])]
