"""`--compile`: run the real `edgetpu_compiler` on a source model (coralcheck.compiler.run),
put what it printed in `ModelReport.compiler` and compare its output with the prediction like a
`--compiled` twin (coralcheck.pipeline.pair). A missing compiler is a warning (C030), not an
error: the prediction is still reported.
"""

from __future__ import annotations

import os

from coralcheck.analyze.logcompare import log_vs_placement
from coralcheck.checks.compiler import compiler_failure, compiler_unavailable
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
from coralcheck.errors import ModelError
from coralcheck.model import load
from coralcheck.model.graph import Model
from coralcheck.options import Options
from coralcheck.pipeline.pair import compare_with_compiled, pair_latency
from coralcheck.report import ModelReport


def compile_and_compare(report: ModelReport, model: Model, options: Options) -> None:
    """Run edgetpu_compiler on `model` and compare its output with the prediction in `report`."""
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
            pair_latency(report, model, compiled, mapping, options)
            if not kept and report.compiled is not None:  # the temporary directory is gone
                name = os.path.basename(compiled.path)
                report.compiled["path"] = report.compiled["pair"]["compiled"] = name
            if mapping.valid and run.log.rows:
                mismatches = log_vs_placement(run.log, model, mapping.placements)
                run.extra["log_matches_compiled"] = not mismatches
                run.extra["log_mismatches"] = mismatches
        report.compiler = run.to_dict()
