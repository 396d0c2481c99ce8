"""Shared fixtures: goldens live in golden/<test module>/, and CI never regenerates them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_unconfigure(config):
    import shutil

    shutil.rmtree(os.environ.get("LLM_SIZER_CACHE_DIR", ""), ignore_errors=True)


def pytest_configure(config):
    # a compiled-graph cache of the session's own: tests start cold and never touch the user's
    import tempfile

    os.environ["LLM_SIZER_CACHE_DIR"] = tempfile.mkdtemp(prefix="llm-sizer-cache-")
    regen = config.getoption("force_regen", False) or config.getoption("regen_all", False)
    if os.environ.get("CI") and regen:
        raise pytest.UsageError("refusing --force-regen/--regen-all with CI set: "
                                "regenerate goldens deliberately, read the diff, then commit")


@pytest.fixture
def original_datadir(request) -> Path:
    """pytest-regressions reads expected files from golden/<test module>/ (obtained files stay in tmp)."""
    return ROOT / "golden" / Path(request.module.__file__).stem


@pytest.fixture(scope="session")
def graph():
    from engine import graph as g
    from engine import paths

    return g.load(paths.search_path("formulas"))


@pytest.fixture(scope="session")
def catalog():
    from engine import catalog as c
    from engine import paths

    return c.load(paths.search_path("catalogs"))


@pytest.fixture
def size(graph, catalog):
    """Evaluate every formula for a scenario given as keyword arguments."""
    from engine import scenario as scn
    from engine.sizing import evaluate_scenario

    def run(variant=None, **keys):
        sc = scn.resolve(catalog, {k: scn.coerce(k, v) for k, v in keys.items()})
        return evaluate_scenario(graph, catalog, sc, variant), sc
    return run
