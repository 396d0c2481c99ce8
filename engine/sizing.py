"""Sizing one scenario: load the rules and facts, resolve the scenario, evaluate the formulas its
framework uses, and what a sizing produces besides the terminal text (JSON, files, the launch
command). The command line (cli.py) calls these; it computes nothing itself.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from . import paths
from .errors import EngineError, ErrorList, RequirementError, ScenarioError


def load(formula_dirs=(), catalog_dirs=()):
    """The compiled formula graph and the catalog; all declaration problems reported together."""
    from . import catalog, graph

    errors = ErrorList()
    g = _collecting(errors, graph.load, paths.search_path("formulas", formula_dirs))
    c = _collecting(errors, catalog.load, paths.search_path("catalogs", catalog_dirs))
    errors.raise_if_any()
    return g, c


def _collecting(errors: ErrorList, load, dirs):
    """load(dirs), or None with its problems added to `errors`."""
    try:
        return load(dirs)
    except ErrorList as exc:
        errors.extend(exc.errors)
    except EngineError as exc:
        errors.add(exc)
    return None


def scenario_from(catalog, scenario_file, options):
    from . import scenario as scn

    given = scn.read_file(scenario_file) if scenario_file else {}
    given.update({k: scn.coerce(k, v, None) for k, v in options.items() if v is not None and k in scn.KEYS})
    swept = sorted(k for k, v in given.items() if hasattr(v, "shape"))
    if swept:   # one deployment per command: a list of values is a sweep, which these commands do not print
        raise ScenarioError(f"{scenario_file}: {', '.join(swept)} holds a list of values; this command sizes one "
                            "deployment", None, hint="give one value per key (sweeps: benchmarks/sweep.py shows "
                            "the vectorized Python API)")
    return scn.resolve(catalog, given)


def evaluate_scenario(g, c, sc, variant=None, targets=None):
    from . import evaluate as ev
    from . import scenario as scn

    if variant and variant not in g.variant_names:
        raise EngineError(f"unknown variant '{variant}'", None, expected=", ".join(g.variant_names))
    used = framework_formulas(g, sc)
    stand_ins = scn.stand_ins(sc)
    for name in targets or ():
        if name not in used:
            raise EngineError(f"'{name}' is not a figure of {sc.framework.get('name', sc.framework_id)}: it is sized "
                              f"without formulas/{Path(g.formulas[name].path).stem}.yaml", None,
                              hint="size it with --framework vllm")
    targets = list(targets or used)
    try:
        bindings = scn.bindings(g, c, sc, g.inputs_for([*targets, *stand_ins.values()], variant, set(stand_ins)))
        return ev.evaluate(g, ev.pin_stand_ins(g, bindings, stand_ins, variant), targets, variant)
    except RequirementError as exc:
        raise exc.in_scenario(model=sc.model.id) from None   # "... the 32 attention heads of <model>"


def framework_formulas(g, sc) -> list[str]:
    """The formulas the scenario's framework is sized with: all but the files its memory model leaves
    out (catalogs/frameworks.yaml) and whatever depends on them, so their inputs are not required of it."""
    from . import scenario as scn

    skipped = set((sc.framework.get("memory_model") or {}).get("formulas_not_used") or ())
    stand_ins = set(scn.stand_ins(sc))
    unpriced = set() if sc.price else {n for n, i in g.inputs.items() if (i.source_path or "").startswith("price.")}
    left_out = {n for n, f in g.formulas.items() if Path(f.path).stem in skipped or unpriced.intersection(f.deps)}
    if not left_out:
        return list(g.formulas)
    return [n for n in g.formulas if n not in left_out and not left_out.intersection(g.needed([n], pinned=stand_ins))]



def write_sizing(out_dir, result, sc, catalog, command) -> list[str]:
    """The scenario's live workbook and Markdown report, written atomically."""
    from . import latency, output
    from .render import excel, markdown, terminal

    text = markdown.render(
        "sizing.md.j2", sc=sc.public(), gpu_name=sc.gpu["name"], headline=terminal.headline(sc, result),
        breakdown=terminal.breakdown_rows(result, sc), capacity=terminal.capacity_lines(result, sc),
        notes=sc.notes, command=command, verdict=terminal.verdict(result, sc),
        derivations=[result.derivation(n) for n in terminal.key_figures(sc) if n in result],
        latency=latency.sweep(result) if "ttft" in result and terminal.verdict(result, sc)["fits"] else None)
    paths_ = [Path(out_dir) / "sizing.xlsx", Path(out_dir) / "sizing.md"]
    output.write_atomic(paths_[0], excel.build(result, sc, catalog))
    output.write_atomic(paths_[1], text)
    return [str(p) for p in paths_]


def json_result(result, sc) -> dict:
    import numpy as np

    from .render import terminal

    def plain(v):       # JSON has no infinity: an unbounded queue's TTFT is null (verdict.load_sustainable says why)
        a = np.asarray(v, dtype=float)
        a = np.where(np.isfinite(a), a, None)
        return a.item() if a.ndim == 0 else a.tolist()

    return {"scenario": sc.public(), "notes": sc.notes, "variant": result.variant,
            "verdict": terminal.verdict(result, sc),
            "results": {n: {"value": plain(result[n]), "unit": result.unit(n)}
                        for n in result.graph.formulas if n in result}}


# Engine options that change vLLM's memory, printed when the user set them (vLLM computes its own
# defaults exactly as they were sized here, so a default left out means the same thing).
SERVE_OPTIONS = [("tensor_parallel_size", "--tensor-parallel-size"), ("pipeline_parallel_size", "--pipeline-parallel-size"),
                 ("dtype", "--dtype"), ("quantization", "--quantization"), ("kv_cache_dtype", "--kv-cache-dtype"),
                 ("max_num_seqs", "--max-num-seqs"), ("max_num_batched_tokens", "--max-num-batched-tokens"),
                 ("block_size", "--block-size")]


def launch_command(result, sc) -> str:
    """The framework's launch command for exactly what was sized, or why none is printed."""
    from .render import terminal

    if sc.framework.get("launcher") != "vllm serve":
        return (f"# no launch command: llm-sizer prints `vllm serve` only; set {sc.framework.get('name')}'s own "
                "flags to the scenario above")
    v = terminal.verdict(result, sc)
    if not v["fits"]:
        return f"# no command: the deployment does not fit ({terminal.condition_text(result, sc, v['failed_condition'])})"
    return vllm_command(sc)


def command_notes(result, sc) -> list[str]:
    """What the command keeps as given although it cannot all be used at once."""
    from .render.terminal import format_number, scalar

    if sc.origin.get("max_num_seqs") not in ("given", "default scenario") or "max_num_seqs_that_fit" not in result \
            or scalar(result["max_num_seqs_that_fit"]) >= sc.values["max_num_seqs"]:
        return []
    return [f"--max-num-seqs {sc.values['max_num_seqs']} is kept, but at most "
            f"{format_number(scalar(result['max_num_seqs_that_fit']))} requests of max_model_len "
            f"{format_number(sc.values['max_model_len'])} tokens fit in the KV cache at once; vLLM queues the rest "
            "(shorter requests fit more)"]


def vllm_command(sc) -> str:
    """`vllm serve` with every option that changed the sizing, the user's own values unchanged."""
    s = sc.values
    parts = [f"vllm serve {_model_argument(sc)}"]
    for key, flag in SERVE_OPTIONS:
        value, origin = s.get(key), sc.origin.get(key)
        if value in (None, "", "auto") or origin not in ("given", "default scenario") \
                or (origin == "default scenario" and value == sc.framework["engine_defaults"].get(key)):
            continue
        parts.append(f"{flag} {shlex.quote(str(value))}")
    parts += [f"--max-model-len {s['max_model_len']}", f"--gpu-memory-utilization {s['gpu_memory_utilization']:g}"]
    if s["enforce_eager"]:
        parts.append("--enforce-eager")
    return " \\\n    ".join(parts)


def _model_argument(sc) -> str:
    """The model as vLLM takes it: a catalog model's id, or the checkpoint directory the user gave."""
    given = Path(str(sc.values["model"]))
    if given.suffix == ".json":          # vLLM loads the directory that holds config.json
        return shlex.quote(str(given.parent))
    return shlex.quote(str(given)) if given.is_dir() else sc.model.id



def named_scenario(c, name: str) -> dict:
    """The keys of a named scenario in catalogs/scenarios.yaml."""
    import difflib

    if name not in c.scenarios:
        close = difflib.get_close_matches(name, list(c.scenarios), n=1)
        raise EngineError(f"no scenario file or named scenario '{name}'", None,
                          expected="a YAML file, or one of: " + ", ".join(sorted(c.scenarios)),
                          hint=f"did you mean '{close[0]}'?" if close else None)
    return dict(c.scenarios[name])


def known_formula(g, name):
    import difflib

    if name not in g.formulas:
        close = difflib.get_close_matches(name, list(g.formulas), n=1)
        raise EngineError(f"no formula named '{name}'", None,
                          hint=f"did you mean '{close[0]}'?" if close else "llm-sizer list formulas shows them")
