"""Compare model variants side by side (e.g. SiLU vs ReLU): TPU placement, memory, latency,
size, error.

Ops on the TPU and CPU, TPU segments, parameter bytes on-chip and streamed, the estimated
milliseconds per inference on `--device` and its parts, file size, activations and findings come
from the linter (no TensorFlow or LiteRT needed). With `--data`
and `--reference FLOAT.tflite` (one for all, or one per model), each model's output error
against its float reference is added (needs the `[numeric]` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from typing import Any

from coralcheck.api import check
from coralcheck.cli import write_stdout
from coralcheck.commands.lint import add_latency_arguments
from coralcheck.commands.quant import add_data_arguments
from coralcheck.config_keys import parse_clock, parse_device
from coralcheck.errors import UsageError
from coralcheck.model import load
from coralcheck.model.isolation import call_isolated
from coralcheck.render.escape import no_workflow_commands, printable
from coralcheck.render.phrases import LATENCY_PARTS, human_ms


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL", help="two or more .tflite files")
    parser.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="FLOAT.tflite",
        help="float model to measure errors against: once for all models, or once per model "
        "in the same order (e.g. each variant's own float model)",
    )
    add_data_arguments(parser, required=False)

    add_latency_arguments(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text")


def model_facts(report: Any, activations: dict[str, int]) -> dict[str, Any]:
    """The lint facts of one model that matter when choosing between variants."""
    memory = report.memory
    severities = Counter(f.severity for f in report.findings)
    return {
        "path": report.path,
        "file_size": report.file_size,
        "placement_predicted": bool(report.ops),
        "ops_total": report.summary.ops_total,
        "ops_tpu": report.summary.ops_tpu,
        "ops_cpu": report.summary.ops_cpu,
        "tpu_segments": report.summary.tpu_segments,
        "parameter_bytes_on_chip": None if memory is None else memory.on_chip_bytes,
        "parameter_bytes_streamed": None if memory is None else memory.off_chip_bytes,
        "activations": activations,
        "findings": {s: severities.get(s, 0) for s in ("error", "warning", "info")},
        "finding_codes": sorted({f.code for f in report.findings}),
        "latency": None if report.latency is None else report.latency._asdict(),
        "numeric": None,
    }


def numeric_errors(args: argparse.Namespace, paths: list[str]) -> list[dict[str, Any]]:
    """Each model's output error against its float reference, all on the same samples."""
    from coralcheck.numeric.metrics import finite_or_none
    from coralcheck.numeric.quant import compare_models
    from coralcheck.numeric.runner import ModelRunner
    from coralcheck.numeric.samples import check_source, load_samples, parse_image_range

    check_source(args.data)
    image_range = parse_image_range(args.image_range)
    references = [ModelRunner(p, "compare") for p in dict.fromkeys(args.reference)]
    by_path = {r.path: r for r in references}
    samples = load_samples(
        args.data, references[0].input_specs(), limit=args.samples, image_range=image_range
    )
    errors = []
    for path, reference_path in zip(paths, reference_paths(args.reference, paths), strict=True):
        reference = by_path[reference_path]
        result = compare_models(reference, ModelRunner(path, "compare"), samples, layers=False)
        top1 = result.top1_agreement
        errors.append(
            {
                "reference": reference.path,
                "samples": result.samples,
                "cosine": round(result.worst_cosine, 6),
                "snr_db": finite_or_none(result.worst_snr_db, 2),
                "max_abs_error": max(o.stats.abs_error_max for o in result.outputs),
                "top1_agreement": None if top1 is None else round(top1, 4),
            }
        )
    return errors


def latency_options(args: argparse.Namespace) -> dict[str, str]:
    """The `check()` options for `--device` and `--clock` (checked: unknown names exit 2)."""

    target = {}
    if args.device is not None:
        target["device"] = parse_device(args.device, "--device")
    if args.clock is not None:
        target["clock"] = parse_clock(args.clock, "--clock")
    return target


def reference_paths(references: list[str], paths: list[str]) -> list[str]:
    """The float reference of each model: one shared, or one per model in order."""
    if len(references) == 1:
        return references * len(paths)
    if len(references) != len(paths):
        raise UsageError(
            "--reference", f"give it once, or once per model ({len(paths)}), not {len(references)}"
        )
    return references


def _facts(path: str, target: dict[str, Any]) -> dict[str, Any]:
    """One model's row: its report (without the data-flow graph) and its activations."""
    from coralcheck.numeric.activations import activation_summary

    return model_facts(check(path, graph=False, **target).models[0], activation_summary(load(path)))


def run(args: argparse.Namespace) -> int:

    if len(args.models) < 2:
        raise UsageError("compare", "give at least two models to compare")
    if bool(args.data) != bool(args.reference):
        raise UsageError(
            "--data" if args.reference else "--reference",
            "--data and --reference go together (samples, and the float model to measure "
            "errors against)",
        )
    if args.reference:
        reference_paths(args.reference, args.models)  # fail before any work
    target = latency_options(args)
    # (Each model in a child process when it is mapped: see coralcheck.model.isolation.)
    facts = [call_isolated([path], _facts, path, target) for path in args.models]
    if args.data:
        for row, error in zip(facts, numeric_errors(args, args.models), strict=True):
            row["numeric"] = error

    if args.format == "json":
        document = {"models": facts}
        write_stdout(json.dumps(document, indent=2) + "\n")
    else:
        write_stdout(render_text(facts))
    return 0


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value} B"


def table_rows(facts: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(label, one cell per model) for the comparison table."""

    def placement(row: dict[str, Any], key: str) -> str:
        if not row["placement_predicted"]:
            return "not predicted"
        return f"{row[key]}/{row['ops_total']}"

    rows: list[tuple[str, list[str]]] = [
        ("ops on TPU", [placement(r, "ops_tpu") for r in facts]),
        ("ops on CPU", [placement(r, "ops_cpu") for r in facts]),
        (
            "TPU segments",
            [str(r["tpu_segments"]) if r["placement_predicted"] else "-" for r in facts],
        ),
        ("parameters on-chip", [_bytes(r["parameter_bytes_on_chip"]) for r in facts]),
        ("parameters streamed", [_bytes(r["parameter_bytes_streamed"]) for r in facts]),
        *latency_rows(facts),
        ("file size", [_bytes(r["file_size"]) for r in facts]),
        (
            "activations",
            [", ".join(f"{a}×{n}" for a, n in r["activations"].items()) or "none" for r in facts],
        ),
        (
            "findings",
            [", ".join(f"{n} {s}" for s, n in r["findings"].items() if n) or "none" for r in facts],
        ),
        ("finding codes", [", ".join(r["finding_codes"]) or "-" for r in facts]),
    ]
    if any(r["numeric"] for r in facts):
        numeric = [r["numeric"] or {} for r in facts]
        snr = [n.get("snr_db") for n in numeric]
        top1 = [n.get("top1_agreement") for n in numeric]
        rows += [
            ("float reference", [n.get("reference", "-") for n in numeric]),
            ("output cosine (worst)", [f"{n.get('cosine', 0):.4f}" for n in numeric]),
            ("output SNR dB (worst)", ["exact" if v is None else f"{v:.1f}" for v in snr]),
            ("max abs error", [f"{n.get('max_abs_error', 0):.4g}" for n in numeric]),
            ("top-1 agreement", ["-" if v is None else f"{v:.1%}" for v in top1]),
        ]
    return rows


def latency_rows(facts: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """The estimate and its parts, in ms, one row each (the device is in the first label)."""

    latencies = [r["latency"] for r in facts]
    known = [lat for lat in latencies if lat]
    if not known:
        return [("latency", ["-" for _ in facts])]
    device = ", ".join(dict.fromkeys(f"{lat['device']}, {lat['clock']} clock" for lat in known))

    def cells(key: str) -> list[str]:
        return [f"{human_ms(lat[key])} ms" if lat else "-" for lat in latencies]

    rows = [
        (
            f"latency ({device})",
            [
                f"~{human_ms(lat['estimate_ms'])} ms ({human_ms(lat['low_ms'])}–"
                f"{human_ms(lat['high_ms'])})"
                if lat
                else "no estimate"
                for lat in latencies
            ],
        ),
        ("  compute", cells("tpu_ms")),
        ("  streaming", cells("streaming_ms")),
        ("  I/O", cells("io_ms")),
        ("  CPU ops", cells("cpu_ms")),
        ("  dominant", [LATENCY_PARTS[lat["dominant"]] if lat else "-" for lat in latencies]),
    ]
    return rows


def column_labels(paths: list[str]) -> list[str]:
    """Short column headers: file names when they are unique, else the paths as given."""
    names = [os.path.basename(p) for p in paths]
    return names if len(set(names)) == len(names) else paths


def render_text(facts: list[dict[str, Any]]) -> str:
    """The comparison as one table, a column per model (full paths in the JSON)."""
    import io

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=sys.stdout.isatty(), highlight=False)
    table = Table(box=None, title_justify="left")
    table.add_column("")
    # File names are shown as they are (escaped), never read as rich markup ("[red]").
    for label in column_labels([row["path"] for row in facts]):
        table.add_column(Text(printable(label)), overflow="fold")
    for label, cells in table_rows(facts):
        table.add_row(label, *(Text(printable(cell)) for cell in cells))
    console.print(table)
    numeric = [r["numeric"] for r in facts if r["numeric"]]
    if numeric:
        console.print(
            f"errors: outputs against the float reference, {numeric[0]['samples']} samples"
        )
    return no_workflow_commands(out.getvalue())
