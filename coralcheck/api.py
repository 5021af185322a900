"""`check()`: path → Report. The one place that strings load → analyze → report together.

`check_model(path, options)` picks the pipeline (coralcheck.pipeline) for the file:

- a compiled model (`edgetpu-custom-op` inside) is inspected as it is
  (`pipeline.compiled.inspect_compiled`); `--compile` on it is skipped (C041) and `--compiled`
  with it is a usage error;
- a source model gets the placement prediction and the rules (`pipeline.source.analyze`), then
  - with `Options.compiled_path` (`--compiled X_edgetpu.tflite`): the real placement from the
    pair and its diff against the prediction (`pipeline.pair`);
  - with `Options.compile` (`--compile`): a run of the real `edgetpu_compiler`, compared like a
    `--compiled` twin (`pipeline.compiler`).

The compiled-model, pair and compiler pipelines (and the data flow of the graph views) are
imported when a model needs them: a plain lint of a source model (the common case, and the one
whose start-up is measured) loads none of the compiled-model decoding, subprocess or
temporary-file machinery.

A report shows itself in a notebook (Jupyter, Colab) as the HTML report (`Report.html_view`,
set here: the records do not import the renderers).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from typing import Any

from coralcheck._version import __version__
from coralcheck.analyze.overview import op_shapes
from coralcheck.analyze.repeats import group_repeats
from coralcheck.config import Config, apply
from coralcheck.config_keys import SELECT_ALL
from coralcheck.errors import UsageError
from coralcheck.model import EDGETPU_CUSTOM_CODE, load
from coralcheck.model.graph import Model
from coralcheck.options import Options
from coralcheck.pipeline import source
from coralcheck.report import ModelReport, Report


def check(path: str | os.PathLike[str], **options: Any) -> Report:
    """Lint one model file. Keyword options are the fields of `Options`; `select`, `ignore`
    and `severity` filter and re-rank the findings as the CLI's config does. The report records
    the model's data flow (`graph`, for its HTML view in a notebook) unless `graph=False`."""
    opts = options.pop("options", None) or Options(**{"graph": True, **options})
    report = check_model(os.fspath(path), opts)
    if opts.select or opts.ignore or opts.severity:
        rules = Config(
            select=tuple(opts.select) or (SELECT_ALL,),
            ignore=tuple(opts.ignore),
            severity=dict(opts.severity),
        )
        report = apply(report, rules)
    return Report(models=[report], tool_version=__version__)


def check_model(path: str, options: Options) -> ModelReport:
    """The report of one model file (see the module docstring)."""
    with _cycle_collection_paused():
        model, report = _check_model(path, options)
    if options.graph:
        from coralcheck.analyze.opgraph import op_graph  # only for the graph views (html)

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
    if options.compile and options.compiled_path:
        raise UsageError("--compile", "cannot be combined with --compiled (pick one)")
    model = load(path)
    if model.is_compiled:
        report = _check_compiled(model, options)
        _record_op_shapes(report, model, options)
        return model, report
    compiled = load(options.compiled_path) if options.compiled_path else None
    if compiled is not None and _segment_count(compiled) > 1:
        # Several Edge TPU segments: the twin was compiled with -a; predict what -a does.
        options = options._replace(enable_multiple_subgraphs=True)
    report = source.analyze(model, options)
    _record_op_shapes(report, model, options)
    if _named_compiled(path):
        _expected_segments(report, model, options)
    if compiled is not None:
        from coralcheck.pipeline.pair import compare_with_compiled, pair_latency

        mapping = compare_with_compiled(report, model, compiled, options, "pair")
        pair_latency(report, model, compiled, mapping, options)
    if options.compile:
        from coralcheck.pipeline.compiler import compile_and_compare

        compile_and_compare(report, model, options)
    return model, report


def _record_op_shapes(report: ModelReport, model: Model, options: Options) -> None:
    """Every op's tensor shapes, when asked for (`-v`)."""
    if options.op_shapes:
        report.op_shapes = op_shapes(model)


def _segment_count(model: Model) -> int:
    """How many Edge TPU segments (`edgetpu-custom-op` nodes) a model's main subgraph has."""
    return sum(op.custom_code == EDGETPU_CUSTOM_CODE for op in model.main.operators)


def _named_compiled(path: str) -> bool:
    return os.path.basename(path).endswith("_edgetpu.tflite")


def _check_compiled(model: Model, options: Options) -> ModelReport:
    from coralcheck.checks.compiler import compile_compiled_model
    from coralcheck.pipeline.compiled import inspect_compiled

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


def _notebook_html(report: Report) -> str:
    """The HTML report in a frame of its own, as a notebook shows a report."""
    from coralcheck.render.html import notebook_frame  # the renderer, when a notebook asks

    return notebook_frame(report)


Report.html_view = _notebook_html
