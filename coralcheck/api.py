"""`check()`: path → Report. The one place that strings load → analyze together.

`check_model(path, options)`:

- a compiled model (`edgetpu-custom-op` inside) is inspected as it is
  (`coralcheck.analyze.compiled.inspect_compiled`); `--compile` on it is skipped (C041) and
  `--compiled` with it is a usage error;
- a source model gets the placement prediction (`coralcheck.analyze.analyze`), then
  - with `Options.compiled_path` (`--compiled X_edgetpu.tflite`): the real placement from the
    pair and its diff against the prediction (`coralcheck.analyze.pair`);
  - with `Options.compile` (`--compile`): a run of the real `edgetpu_compiler`
    (`coralcheck.compiler.run`), its parsed output in `ModelReport.compiler`, and the compiled
    output compared like a `--compiled` twin. A missing compiler is a warning (C030), not an
    error: the prediction is still reported.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from typing import Any

from coralcheck._version import __version__
from coralcheck.errors import ModelError, UsageError
from coralcheck.model.graph import Model
from coralcheck.options import Options
from coralcheck.report import ModelReport, Report


def check(path: str | os.PathLike[str], **options: Any) -> Report:
    """Lint one model file. Keyword options are the fields of `Options`; `select`, `ignore`
    and `severity` filter and re-rank the findings as the CLI's config does. The report records
    the model's data flow (`graph`, for its HTML view in a notebook) unless `graph=False`."""
    opts = options.pop("options", None) or Options(**{"graph": True, **options})
    report = check_model(os.fspath(path), opts)
    if opts.select or opts.ignore or opts.severity:
        from coralcheck.config import SELECT_ALL, Config, apply

        rules = Config(
            select=tuple(opts.select) or (SELECT_ALL,),
            ignore=tuple(opts.ignore),
            severity=dict(opts.severity),
        )
        report = apply(report, rules)
    return Report(models=[report], tool_version=__version__)


def check_model(path: str, options: Options) -> ModelReport:
    """The report of one model file (see the module docstring)."""
    from coralcheck.analyze.repeats import group_repeats

    with _cycle_collection_paused():
        model, report = _check_model(path, options)
    if options.graph:
        from coralcheck.analyze.opgraph import op_graph

        report.graph = op_graph(model, report.ops)
    report.findings = group_repeats(report.findings)
    return report


@contextlib.contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while one model is checked.

    A model is a graph of small objects (a large one has 100,000+: tensors, shapes, op views,
    verdicts) without reference cycles: reference counting frees them all when the check ends.
    Collecting while they are made only scans them again and again (about 15% of the lint time
    of a model with 10,000 tensors). Cyclic garbage made meanwhile is collected afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            # Enabled alone, the collector would scan everything made meanwhile at the next
            # allocation (5-10 ms after a large model). Frozen and unfrozen (each O(1)), it is
            # moved unscanned to the oldest generation, which the next full collection scans
            # (not when the caller keeps objects frozen: unfreezing would let those go).
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _check_model(path: str, options: Options) -> tuple[Model, ModelReport]:
    from coralcheck.model import load

    if options.compile and options.compiled_path:
        raise UsageError("--compile", "cannot be combined with --compiled (pick one)")
    model = load(path)
    if model.is_compiled:
        report = _check_compiled(model, options)
        _record_op_shapes(report, model, options)
        return model, report
    from coralcheck.analyze import analyze

    report = analyze(model, options)
    _record_op_shapes(report, model, options)
    if _named_compiled(path):
        _expected_segments(report, model, options)
    if options.compiled_path:
        from coralcheck.analyze.pair import compare_with_compiled

        compiled = load(options.compiled_path)
        mapping = compare_with_compiled(report, model, compiled, options, "pair")
        _pair_latency(report, model, compiled, mapping, options)
    if options.compile:
        compile_and_compare(report, model, options)
    return model, report


def _record_op_shapes(report: ModelReport, model: Model, options: Options) -> None:
    """Every op's tensor shapes, when asked for (`-v`)."""
    if options.op_shapes:
        from coralcheck.analyze import op_shapes

        report.op_shapes = op_shapes(model)


def _pair_latency(
    report: ModelReport, model: Model, compiled: Model, mapping: Any, options: Options
) -> None:
    """With a valid compiled twin, the latency estimate uses its real placement and segments."""
    from coralcheck.analyze.latency import estimate_pair

    estimate = estimate_pair(model, compiled, mapping, options)
    if estimate is not None:
        report.latency, report.latency_detail = estimate


def _named_compiled(path: str) -> bool:
    return os.path.basename(path).endswith("_edgetpu.tflite")


def _check_compiled(model: Model, options: Options) -> ModelReport:
    from coralcheck.analyze.compiled import inspect_compiled
    from coralcheck.checks.compiled import compile_compiled_model

    if options.compiled_path:
        raise UsageError(
            "--compiled", f"{model.path} is itself compiled: give its source model first"
        )
    report = inspect_compiled(model, options)
    if options.compile:
        report.findings.extend(compile_compiled_model())
    return report


def _expected_segments(report: ModelReport, model: Model, options: Options) -> None:
    """A file named like a compiler output but without any Edge TPU segment (C010)."""
    from coralcheck.checks.compiled import CompiledContext, no_edgetpu_segment

    report.findings.extend(no_edgetpu_segment(CompiledContext(model, [], options)))


def compile_and_compare(report: ModelReport, model: Model, options: Options) -> None:
    """Run edgetpu_compiler on `model` and compare its output with the prediction in `report`."""
    from coralcheck.analyze.pair import compare_with_compiled, log_vs_placement
    from coralcheck.checks.compiled import compiler_failure, compiler_unavailable
    from coralcheck.compiler.run import (
        VERSION_TIMEOUT_S,
        check_timeout,
        find_compiler,
        missing_compiler_dict,
        output_directory,
        read_version,
        refuse_to_overwrite,
        run_compiler,
    )
    from coralcheck.model import load

    check_timeout(options.compiler_timeout)
    executable = find_compiler(options.compiler_path)
    if executable is None:
        problem = "edgetpu_compiler not found on PATH"
        report.compiler = missing_compiler_dict(problem)
        report.findings.extend(compiler_unavailable(problem))
        return
    try:
        version = read_version(executable, min(VERSION_TIMEOUT_S, options.compiler_timeout))
    except TimeoutError as e:  # a compiler that hangs on --version would hang on the model too
        report.compiler = missing_compiler_dict(str(e))
        report.findings.extend(compiler_unavailable(str(e)))
        return
    with output_directory(options.compile_output) as (out_dir, kept):
        if kept and not options.force:
            refuse_to_overwrite(model.path, out_dir)
        try:
            run = run_compiler(executable, model.path, out_dir, options, version, kept)
        except OSError as e:
            problem = f"{executable} could not be run: {e.strerror or e}"
            if version is None:
                problem += " (edgetpu_compiler runs only on x86-64 Linux)"
            report.compiler = missing_compiler_dict(problem)
            report.findings.extend(compiler_unavailable(problem))
            return
        compiled = None
        if run.output_model is not None and not run.process.timed_out:
            try:
                compiled = load(run.output_model)
            except ModelError as e:
                run.output_problem = e.problem
        failures = run.failures()
        ran = run.console.compiler_version or version
        report.findings.extend(compiler_failure(f.kind, f.message, None, ran) for f in failures)
        if compiled is not None:
            mapping = compare_with_compiled(report, model, compiled, options, "compiler", run.log)
            _pair_latency(report, model, compiled, mapping, options)
            if not kept and report.compiled is not None:  # the temporary directory is gone
                name = os.path.basename(compiled.path)
                report.compiled["path"] = report.compiled["pair"]["compiled"] = name
            if mapping.valid and run.log.rows:
                mismatches = log_vs_placement(run.log, model, mapping.placements)
                run.extra["log_matches_compiled"] = not mismatches
                run.extra["log_mismatches"] = mismatches
        report.compiler = run.to_dict()
