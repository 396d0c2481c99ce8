"""`llm-sizer workbook --compare A.yaml B.yaml ...`: several scenarios sized, then laid side by side
in one live workbook (render/excel_compare.py)."""
from __future__ import annotations

from pathlib import Path

from . import sizing
from .errors import EngineError


def labels(names) -> list:
    """A column heading per scenario: the file's stem or the named scenario, numbered when repeated."""
    stems = [Path(n).stem if Path(n).suffix in (".yaml", ".yml") else str(n) for n in names]
    return [s if stems.count(s) == 1 else f"{s} ({stems[:i + 1].count(s)})" for i, s in enumerate(stems)]


def size_all(g, c, names, options: dict, variant=None) -> tuple[list, list]:
    """(results, scenarios): each SCENARIO (a YAML file or a named scenario of catalogs/scenarios.yaml),
    the command line's scenario options applied to every one."""
    from .render.excel_compare import MAX_SCENARIOS

    if len(names) < 2:
        raise EngineError(f"--compare needs two scenarios or more; got {len(names)}", None,
                          hint="llm-sizer workbook --compare a.yaml b.yaml -o compare.xlsx")
    if len(names) > MAX_SCENARIOS:
        raise EngineError(f"--compare takes at most {MAX_SCENARIOS} scenarios; got {len(names)}", None)
    results, scenarios = [], []
    for name in names:
        if Path(name).is_file():
            sc = sizing.scenario_from(c, name, options)
        else:
            keys = {**sizing.named_scenario(c, name), **{k: v for k, v in options.items() if v is not None}}
            sc = sizing.scenario_from(c, None, keys)
        results.append(sizing.evaluate_scenario(g, c, sc, variant))
        scenarios.append(sc)
    return results, scenarios


def workbook(g, c, names, options: dict, variant=None) -> tuple[bytes, list, list]:
    from .render import excel_compare

    results, scenarios = size_all(g, c, names, options, variant)
    return excel_compare.build(results, scenarios, labels(names)), results, scenarios
