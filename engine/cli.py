"""The `llm-sizer` command line. User errors print one located message, no traceback."""
from __future__ import annotations

import functools
import json
import sys
import click

from . import paths, sizing
from .errors import EngineError, ErrorList

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _data_options(f):
    f = click.option("--formulas", "formula_dirs", multiple=True, type=click.Path(),
                     help="Extra formula directory (repeatable; also $LLM_SIZER_FORMULAS).")(f)
    f = click.option("--catalogs", "catalog_dirs", multiple=True, type=click.Path(),
                     help="Extra catalog directory: your GPUs, models, overrides (repeatable; also $LLM_SIZER_CATALOGS).")(f)
    return f


def _scenario_options(f):
    from .scenario_keys import KEYS

    for key, (kind, doc) in reversed(list(KEYS.items())):
        flag = "--" + key.replace("_", "-")
        if kind is bool:
            f = click.option(flag + "/--no-" + key.replace("_", "-"), key, default=None, help=doc)(f)
        else:
            f = click.option(flag, key, default=None, metavar=_metavar(kind), help=doc)(f)
    f = click.option("--scenario", "scenario_file", type=click.Path(), default=None,
                     help="YAML file of scenario keys; options given on the command line override it.")(f)
    return f


def _metavar(kind):
    return {int: "N", float: "X", str: "TEXT"}.get(kind, "QTY")


def _user_errors(f):
    """Turn user errors into one message on stderr and the right exit code."""
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except (EngineError, ErrorList) as exc:
            click.echo(str(exc), err=True)
            sys.exit(exc.exit_code)
    return wrapper


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="llm-sizer")
def main():
    """Size LLM inference deployments: GPU memory, vLLM KV-cache capacity, and how each figure is derived."""


@main.command()
@_scenario_options
@_data_options
@click.option("--json", "as_json", is_flag=True, help="Print the scenario and every formula's value as JSON.")
@click.option("--variant", default=None, help="Evaluate a named variant (e.g. simple_calculator) in place of the defaults.")
@click.option("--out", "out_dir", default="llm-sizer-output", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the sizing's workbook (sizing.xlsx) and Markdown report (sizing.md).")
@click.option("--no-files", is_flag=True, help="Only print; write no workbook or report.")
@_user_errors
def size(scenario_file, formula_dirs, catalog_dirs, as_json, variant, out_dir, no_files, **options):
    """Per-GPU memory breakdown, KV-cache capacity and the `vllm serve` command.

    With no options it sizes the built-in default scenario (catalogs/scenarios.yaml), and writes its
    workbook and Markdown report to llm-sizer-output/.
    """
    from .render import terminal

    g, c = sizing.load(formula_dirs, catalog_dirs)
    sc = sizing.scenario_from(c, scenario_file, options)
    result = sizing.evaluate_scenario(g, c, sc, variant)
    command = sizing.launch_command(result, sc)
    verdict = terminal.verdict(result, sc)
    sc.notes += sizing.command_notes(result, sc)
    if as_json:
        click.echo(json.dumps(sizing.json_result(result, sc), indent=2))
    else:
        click.echo(terminal.size_report(result, sc, command))
    if not no_files and not as_json:
        written = sizing.write_sizing(out_dir, result, sc, c, command)
        click.echo(f"\nWrote {', '.join(written)}")
    if not (verdict["fits"] and verdict.get("load_sustainable", True)):
        sys.exit(1)   # does not fit, or a load beyond capacity: a failed check, readable by scripts


@main.command()
@_scenario_options
@_data_options
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the .xlsx (written atomically).")
@click.option("--variant", default=None, help="Build the workbook from a named variant's formulas.")
@click.option("--compare", is_flag=True, help="Several scenarios side by side, one column each: give them as "
              "SCENARIOS (YAML files or named scenarios); the options above apply to every one.")
@click.argument("compared", nargs=-1, metavar="[SCENARIOS]...")
@_user_errors
def workbook(scenario_file, formula_dirs, catalog_dirs, output_path, variant, compare, compared, **options):
    """A live Excel workbook of the sizing: edit an input and every result recalculates.

    A deployment that does not fit is still written (edit it until it fits), and exits 1 as `size` does
    (with --compare: when none of the scenarios fits).
    """
    from . import output
    from .render import excel, terminal

    g, c = sizing.load(formula_dirs, catalog_dirs)
    if compare or compared:
        _compare_workbook(g, c, scenario_file, compare, compared, output_path, variant, options)
        return
    sc = sizing.scenario_from(c, scenario_file, options)
    result = sizing.evaluate_scenario(g, c, sc, variant)
    output.write_atomic(output_path, excel.build(result, sc, c))
    click.echo(f"wrote {output_path}")
    if not terminal.verdict(result, sc)["fits"]:
        click.echo(terminal.verdict_line(result, sc))
        sys.exit(1)


def _compare_workbook(g, c, scenario_file, compare, compared, output_path, variant, options):
    from . import compare as cmp
    from . import output
    from .render import terminal

    if not compare:
        raise EngineError(f"unexpected argument '{compared[0]}'", None,
                          hint="to compare scenarios: llm-sizer workbook --compare a.yaml b.yaml -o compare.xlsx")
    if scenario_file:
        raise EngineError("--scenario with --compare: give every scenario as an argument", None,
                          hint="llm-sizer workbook --compare a.yaml b.yaml -o compare.xlsx")
    data, results, scenarios = cmp.workbook(g, c, compared, options, variant)
    output.write_atomic(output_path, data)
    click.echo(f"wrote {output_path}")
    fits = [terminal.verdict(r, sc)["fits"] for r, sc in zip(results, scenarios)]
    for label, result, sc, ok in zip(cmp.labels(compared), results, scenarios, fits):
        click.echo(f"{label}: {terminal.headline(sc, result)}: {terminal.verdict_line(result, sc)}")
    if not any(fits):
        sys.exit(1)


@main.command()
@click.argument("name")
@_scenario_options
@_data_options
@click.option("--variant", default=None, help="Explain a named variant of the formula.")
@click.option("--latex", is_flag=True, help="Also print each step in LaTeX.")
@_user_errors
def explain(name, scenario_file, formula_dirs, catalog_dirs, variant, latex, **options):
    """Derive one figure: its formula, the numbers substituted, and every step below it."""
    from .render import terminal

    g, c = sizing.load(formula_dirs, catalog_dirs)
    sizing.known_formula(g, name)
    sc = sizing.scenario_from(c, scenario_file, options)
    result = sizing.evaluate_scenario(g, c, sc, variant, [name])
    click.echo(f"Scenario: {sc.model.id} on {sc.gpu_id}, TP={sc.values['tensor_parallel_size']}, "
               f"PP={sc.values.get('pipeline_parallel_size', 1)}\n")
    click.echo(terminal.derivation(result.derivation(name), latex=latex))


@main.command()
@click.option("--vary", "varies", multiple=True, metavar="KEY=RANGE",
              help="A scenario key and its values: start:stop:xK (geometric, e.g. max_model_len=4096:131072:x2), "
                   "start:stop:+K (arithmetic) or a,b,c (a list; also for gpu, model, quantization, kv_cache_dtype). "
                   "Once or twice.")
@click.option("--output", "outputs", multiple=True, metavar="NAME",
              help="A formula to tabulate (repeatable; default: memory per GPU, KV tokens, max concurrency, TTFT, "
                   "ITL, E2E, throughput).")
@_scenario_options
@_data_options
@click.option("--json", "as_json", is_flag=True, help="Print every point as JSON (values in each formula's unit).")
@click.option("--variant", default=None, help="Evaluate a named variant (e.g. simple_calculator) in place of the defaults.")
@click.option("--out", "out_dir", default="llm-sizer-output", show_default=True, type=click.Path(file_okay=False),
              help="Folder for sweep.csv, sweep.xlsx (table and charts) and sweep.md.")
@click.option("--no-files", is_flag=True, help="Only print; write no files.")
@_user_errors
def sweep(varies, outputs, scenario_file, formula_dirs, catalog_dirs, as_json, variant, out_dir, no_files, **options):
    """Vary one or two scenario keys and tabulate every point: fits or not, and the outputs.

    Numeric keys are evaluated in one vectorized pass; a categorical key (gpu, model, quantization,
    kv_cache_dtype, ...) is resolved once per value. A point vLLM would refuse (a TP that does not
    divide the heads) or that does not fit is a row saying so. Exits 1 when no point fits.
    """
    from . import sweep as sw_
    from .render import sweep_text

    g, c = sizing.load(formula_dirs, catalog_dirs)
    given = sw_.given_keys(scenario_file, options)
    result = sw_.run(g, c, given, [sw_.parse_vary(v) for v in varies], outputs, variant)
    if as_json:
        click.echo(json.dumps(sw_.json_result(result), indent=2))
    else:
        written = [] if no_files else sw_.write_files(out_dir, result)
        click.echo(sweep_text.terminal(result, written))
    if not (result.status == "fits").any():
        sys.exit(1)   # no point fits: a failed check, as for size


@main.command("solve")
@click.argument("condition")
@click.option("--for", "input_name", required=True, metavar="INPUT",
              help="The input to solve for: a numeric scenario key (max_model_len, tensor_parallel_size, batch_size, "
                   "gpu_memory_utilization, ...) or an input of the formulas.")
@click.option("--max", "direction", flag_value="max", default=None,
              help="The largest value that meets the condition (default: read from the evaluation).")
@click.option("--min", "direction", flag_value="min", help="The smallest value that meets the condition.")
@_scenario_options
@_data_options
@click.option("--json", "as_json", is_flag=True, help="Print the answer, its method, solved form and forward check as JSON.")
@click.option("--variant", default=None, help="Solve a named variant's formulas.")
@_user_errors
def solve_(condition, input_name, direction, scenario_file, formula_dirs, catalog_dirs, as_json, variant, **options):
    """The largest or smallest value of one input that meets a condition on an output.

    CONDITION is a yes/no formula (fits, minimum_memory_fits: met when 1) or 'NAME OP QUANTITY' with OP one of
    <=, <, >=, > (e.g. "inter_token_latency <= 30 ms"). Exits 1 when no value in the input's range meets it.
    """
    from . import solve as solving

    g, c = sizing.load(formula_dirs, catalog_dirs)
    answer = solving.solve(g, c, scenario_file, options, condition, input_name, direction, variant)
    click.echo(json.dumps(answer.to_json(), indent=2) if as_json else solving.text(answer))


@main.command()
@_data_options
@_user_errors
def check(formula_dirs, catalog_dirs):
    """Load every formula and catalog file, report all problems, then run every worked example."""
    from . import evaluate as ev
    from . import scenario as scn

    g, c = sizing.load(formula_dirs, catalog_dirs)
    failures = scn.unresolved_sources(g, c) + ev.run_checks(g)
    n_checks = sum(len(f.checks) for f in g.files)
    if failures:
        raise ErrorList(failures)
    click.echo(f"ok: {len(g.files)} formula files ({len(g.inputs)} inputs, {len(g.formulas)} formulas, "
               f"{len(g.variant_names)} variants), {len(c.files)} catalog files ({len(c.gpus)} GPUs, "
               f"{len(c.models)} models, {len(c.formats)} formats), {n_checks} worked examples hold")


@main.command()
@_data_options
@click.option("--version", "version", default=None, help="Only profiles of this vLLM version (e.g. 0.19).")
@click.option("--latency", is_flag=True, help="Latency instead: TTFT, decode step and E2E per dataset and GPU, in-sample and with each model left out of the fit.")
@click.option("--cross-validate", "cross_validate", is_flag=True,
              help="Also predict each fitted startup with the memory fit refitted without its model (a few seconds).")
@click.option("--json", "as_json", is_flag=True)
@_user_errors
def accuracy(formula_dirs, catalog_dirs, version, latency, cross_validate, as_json):
    """Predicted vs measured vLLM memory (or latency) for every measured profile (catalogs/profiles)."""
    from . import accuracy as acc
    from .render import terminal

    g, c = sizing.load(formula_dirs, catalog_dirs)
    report = acc.latency_accuracy(g, c) if latency else acc.accuracy(g, c, version)
    if cross_validate and not latency:
        from . import fitting

        fitting.cross_validate(g, c, report)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(terminal.accuracy_table(report, latency))


@main.group()
def report():
    """Markdown reports: validation against profiles, real-world write-ups, derivation audits."""


def _profile_paths(paths_):
    from pathlib import Path

    out = []
    for p in paths_:
        p = Path(p)
        out.extend(sorted(q for q in p.iterdir() if q.suffix in (".json", ".yaml", ".yml", ".log", ".txt"))
                   if p.is_dir() else [p])
    if not out:
        raise EngineError("no profiles given", None, hint="pass profile files (.json, .yaml, .log) or a directory")
    return out


@report.command("validation")
@click.argument("profiles", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--model", default=None, help="Override the model detected from the profile.")
@click.option("--gpu", default=None, help="Override the GPU detected from the profile.")
@click.option("--quantization", default=None, help="Override the quantization.")
@click.option("--kv-cache-dtype", default=None, help="Override the KV-cache dtype.")
@click.option("--record", "record_csv", type=click.Path(dir_okay=False), default=None,
              help="Append one row per profile to this CSV (the profiler's data-dictionary columns).")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write <profile>.md (and batch-summary.md) into this directory instead of printing.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@_data_options
@_user_errors
def report_validation(profiles, model, gpu, quantization, kv_cache_dtype, record_csv, out_dir, as_json,
                      formula_dirs, catalog_dirs):
    """Compare measured profiles (001 JSON, YAML, or a pasted vLLM startup log) with the calculator."""
    from pathlib import Path

    from . import output
    from . import profiles as prof
    from . import validation
    from .render import markdown

    g, c = sizing.load(formula_dirs, catalog_dirs)
    overrides = {"model": model, "gpu": gpu, "quantization": quantization, "kv_cache_dtype": kv_cache_dtype}
    reports = [validation.compare(g, c, prof.read(p), overrides) for p in _profile_paths(profiles)]
    summary = validation.batch_summary(reports, c) if len(reports) > 1 else None
    if record_csv:
        output.append_csv(record_csv, validation.RECORD_COLUMNS, [validation.record_row(r) for r in reports])
    if as_json:
        click.echo(json.dumps({"reports": reports, "summary": summary}, indent=2, default=str))
        return
    texts = {Path(r["profile"]).stem + ".md": markdown.render("validation.md.j2", r=r) for r in reports}
    if summary:
        texts["batch-summary.md"] = markdown.render("batch_summary.md.j2", s=summary, reports=reports)
    if out_dir:
        for name, text in texts.items():
            output.write_atomic(Path(out_dir) / name, text)
        click.echo(f"wrote {', '.join(texts)} to {out_dir}")
    else:
        click.echo("\n".join(texts.values()))


@report.command("writeup")
@click.argument("profile", type=click.Path(exists=True, dir_okay=False))
@click.option("--gpu", default=None, help="Override the GPU detected from the profile.")
@click.option("--model", default=None, help="Override the model detected from the profile.")
@click.option("-o", "--output", "out_file", type=click.Path(dir_okay=False), default=None)
@_data_options
@_user_errors
def report_writeup(profile, gpu, model, out_file, formula_dirs, catalog_dirs):
    """A real-world validation write-up in 000's structure, with the source's slips called out."""
    from . import profiles as prof
    from . import writeup
    from .render import markdown, terminal

    g, c = sizing.load(formula_dirs, catalog_dirs)
    w = writeup.writeup(g, c, prof.read(profile), {"gpu": gpu, "model": model})
    _emit(markdown.render("writeup.md.j2", w=w, derivation=terminal.derivation(w["derivation"])), out_file)


@report.command("derivation")
@click.argument("name")
@click.argument("scenario", required=False)
@_scenario_options
@_data_options
@click.option("--variant", default=None)
@click.option("-o", "--output", "out_file", type=click.Path(dir_okay=False), default=None)
@_user_errors
def report_derivation(name, scenario, scenario_file, formula_dirs, catalog_dirs, variant, out_file, **options):
    """The audit of one figure: its chain of formulas, symbolic forms, numbers and sources.

    SCENARIO is a scenario YAML file or the name of a scenario in catalogs/scenarios.yaml
    (like --scenario); options given on the command line override it.
    """
    from pathlib import Path

    from .render import markdown

    g, c = sizing.load(formula_dirs, catalog_dirs)
    sizing.known_formula(g, name)
    if scenario and scenario_file:
        raise EngineError("give the scenario once: as SCENARIO or with --scenario, not both", None)
    if scenario and not Path(scenario).is_file():
        options = {**sizing.named_scenario(c, scenario), **{k: v for k, v in options.items() if v is not None}}
        scenario = None
    sc = sizing.scenario_from(c, scenario or scenario_file, options)
    result = sizing.evaluate_scenario(g, c, sc, variant, [name])
    _emit(markdown.render("derivation.md.j2", d=result.derivation(name), scenario=sc.public()), out_file)


def _emit(text: str, out_file):
    from . import output

    if out_file:
        output.write_atomic(out_file, text)
        click.echo(f"wrote {out_file}")
    else:
        click.echo(text, nl=False)


@main.command()
@click.option("--model", required=True, help="Catalog id, alias, or path of a Hugging Face config.json.")
@click.option("--max-model-len", "max_model_len", multiple=True, metavar="N",
              help="Context length to serve (repeatable: each is planned; default the model's maximum).")
@click.option("--concurrency", default=None, metavar="N", help="Users in a closed loop (served load).")
@click.option("--request-rate", "request_rate", default=None, metavar="X", help="Requests per second, Poisson.")
@click.option("--input-tokens", "input_tokens", default=None, metavar="X", help="Prompt tokens per request.")
@click.option("--output-tokens", "output_tokens", default=None, metavar="X", help="Generated tokens per request.")
@click.option("--max-ttft", "max_ttft", default=None, metavar="QTY", help="Time to first token below this, e.g. '500 ms'.")
@click.option("--max-itl", "max_itl", default=None, metavar="QTY", help="Inter-token latency below this, e.g. '30 ms'.")
@click.option("--min-throughput", "min_throughput", default=None, metavar="QTY",
              help="Output tokens per second at least this, e.g. '2000 tokens/s'.")
@click.option("--gpus", default=None, metavar="IDS", help="Only these GPUs, comma-separated (default: every GPU).")
@click.option("--max-gpus", "max_gpus", default=8, show_default=True, type=click.IntRange(1, 64),
              help="At most this many GPUs (tensor x pipeline parallel).")
@click.option("--quantization", default=None, metavar="IDS",
              help="Weight formats, comma-separated (default: the checkpoint's own, and fp8 and awq-int4-g128 for "
                   "an unquantized one).")
@click.option("--kv-cache-dtype", "kv_cache_dtype", default=None, metavar="IDS",
              help="KV-cache dtypes, comma-separated (default: auto,fp8).")
@click.option("--price", multiple=True, metavar="GPU=USD", help="On-demand USD per GPU-hour for a GPU, in place of "
              "catalogs/prices.yaml (repeatable).")
@click.option("--top", default=10, show_default=True, type=click.IntRange(0), help="Candidates shown and written "
              "(0: every feasible one).")
@click.option("--json", "as_json", is_flag=True, help="Print the requirements, candidates and infeasible families as JSON.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Also write plan.csv, plan.xlsx (with a cost-vs-ITL chart) and plan.md into this folder.")
@_data_options
@_user_errors
def plan(model, formula_dirs, catalog_dirs, top, as_json, out_dir, **options):
    """Which GPUs, how many, which weight and KV-cache formats, and what it costs.

    Every candidate (GPU x TP/PP x weight format x KV-cache dtype x context length) is evaluated in one
    vectorized pass; the feasible ones are ranked by cost per hour. Exits 1 when none is feasible.
    """
    from . import plan as pl
    from .render import plan as render

    g, c = sizing.load(formula_dirs, catalog_dirs)
    p = pl.plan(g, c, pl.requirements(c, model, options), top or None)
    if not p.candidates:
        raise pl.no_feasible(p)
    command = pl.command(c, p)
    if as_json:
        click.echo(json.dumps(pl.json_plan(p), indent=2))
    else:
        click.echo(render.terminal(p, command))
    if out_dir:
        written = render.write(p, out_dir, command)
        click.echo(f"\nWrote {', '.join(written)}", err=as_json)


@main.group()
def calibrate():
    """Fit calibratable constants from measurements."""


def _emit_fit(name: str, fit: dict, command: str, write: bool, catalog_dirs=()):
    """Print a fit, or write it to <catalog dir>/fits/<name>.yaml atomically (paths.writable_catalogs)."""
    import yaml

    from . import output

    text = (f"# fits/{name}.yaml — written by `{command}`; do not edit by hand.\n"
            + yaml.safe_dump({"schema": 1, "fits": {name: fit}}, sort_keys=False, width=120, allow_unicode=True))
    if write:
        target = paths.writable_catalogs(catalog_dirs) / "fits" / f"{name}.yaml"
        output.write_atomic(target, text)
        click.echo(f"wrote {target} (read after the built-in catalogs: its records replace theirs)")
    else:
        click.echo(text)


@calibrate.command("memory")
@_data_options
@click.option("--version", "version", default="0.19", show_default=True, help="vLLM version of the profiles to fit on.")
@click.option("--write", is_flag=True, help="Write fits/vllm_memory.yaml into your catalog directory (the last --catalogs, "
              "else $LLM_SIZER_CATALOGS, else ~/.config/llm-sizer/catalogs).")
@_user_errors
def calibrate_memory(formula_dirs, catalog_dirs, version, write):
    """Fit vLLM's activation-peak, non-torch, CUDA-context and CUDA-graph constants."""
    from . import fitting

    g, c = sizing.load(formula_dirs, catalog_dirs)
    _emit_fit("vllm_memory", fitting.fit_vllm_memory(g, c, version), "llm-sizer calibrate memory --write", write,
              catalog_dirs)


@calibrate.command("latency")
@_data_options
@click.option("--gpu", "gpu", default="h100-sxm", show_default=True, help="GPU whose measured latencies to fit.")
@click.option("--framework", "framework", default="vllm", show_default=True,
              help="Framework whose measured latencies to fit (vllm, tensorrt-llm).")
@click.option("--write", is_flag=True, help="Write fits/roofline_<gpu>_<framework>.yaml into your catalog directory "
              "(as for calibrate memory).")
@_user_errors
def calibrate_latency(formula_dirs, catalog_dirs, gpu, framework, write):
    """Fit the step-time constants of one GPU and framework on measured offline-batch latencies (catalogs/latency/)."""
    from . import fitting
    from .scenario import roofline_fit

    g, c = sizing.load(formula_dirs, catalog_dirs)
    gid, _ = c.gpu(gpu)
    fid, _ = c.resolve("frameworks", framework)
    fit = fitting.fit_latency(g, c, gid, fid)
    _emit_fit(roofline_fit(gid, fid), fit, f"llm-sizer calibrate latency --gpu {gid} --framework {fid} --write",
              write, catalog_dirs)


@main.command("list")
@click.argument("what", type=click.Choice(["gpus", "models", "formats", "frameworks", "formulas", "variants"]))
@_data_options
@_user_errors
def list_(what, formula_dirs, catalog_dirs):
    """List catalog entries or formulas."""
    from .render import terminal

    g, c = sizing.load(formula_dirs, catalog_dirs)
    if what == "gpus":
        rows = [[k, v["name"], v["memory_marketed"] if "memory_marketed" in v else "", v["memory_total_runtime"],
                 v["memory_bandwidth"]] for k, v in c.gpus.items()]
        header = ["id", "name", "marketed", "runtime total", "bandwidth"]
    elif what == "models":
        rows = [[m.id, ", ".join(m.aliases[:2]), f"{m.arch['num_hidden_layers']}", m.arch["quantization"]]
                for m in c.models.values()]
        header = ["id", "aliases", "layers", "quantization"]
    elif what == "formats":
        rows = [[k, v.get("name", ""), str(v.get("linear_bits") or "dtype")] for k, v in c.formats.items()]
        header = ["id", "name", "bits/weight"]
    elif what == "frameworks":
        rows = [[k, v.get("name", "")] for k, v in c.frameworks.items()]
        header = ["id", "name"]
    elif what == "formulas":
        rows = [[n, f.unit_text, f.doc[:70]] for n, f in g.formulas.items()]
        header = ["name", "unit", "doc"]
    else:
        rows = [[v, n] for n, f in g.formulas.items() for v in f.variants]
        header = ["variant", "formula"]
    click.echo(terminal.table(rows, header) if rows else "(none)")


if __name__ == "__main__":  # pragma: no cover
    main()
