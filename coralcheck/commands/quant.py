"""Measure the quantization error of an int8 model against its float original, layer by layer.

Runs both models on the same samples (the quantized one through its input scale and zero
point) and reports per output cosine, SNR, max/mean absolute error and top-1 agreement, per
layer where the error jumps, and the exact float <-> integer I/O formulas as numpy code.
Needs the `[numeric]` extra (LiteRT) or TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from coralcheck.cli import write_stdout
from coralcheck.numeric.samples import DEFAULT_IMAGE_RANGE, DEFAULT_SAMPLES


def add_data_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """--data, --samples and --image-range, shared by `quant` and `compare`."""
    parser.add_argument(
        "--data",
        required=required,
        metavar="DATA",
        help="samples: a directory of images, a .npy/.npz file, or module:function",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=DEFAULT_SAMPLES,
        metavar="N",
        help=f"samples to use (default {DEFAULT_SAMPLES})",
    )
    parser.add_argument(
        "--image-range",
        default=",".join(f"{v:g}" for v in DEFAULT_IMAGE_RANGE),
        metavar="LOW,HIGH",
        help="pixel values 0..255 of images are mapped to this range (default 0,255)",
    )


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("float_model", metavar="FLOAT.tflite", help="the float32 reference")
    parser.add_argument("quant_model", metavar="QUANT.tflite", help="the quantized model")
    add_data_arguments(parser, required=True)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="list every compared layer, not just jumps"
    )


def run(args: argparse.Namespace) -> int:
    from coralcheck.numeric.quant import compare_models
    from coralcheck.numeric.runner import ModelRunner
    from coralcheck.numeric.samples import check_source, load_samples, parse_image_range, stage

    check_source(args.data)
    image_range = parse_image_range(args.image_range)
    with stage("loading the models"):
        reference = ModelRunner(args.float_model, "quant")
        quantized = ModelRunner(args.quant_model, "quant")
    samples = load_samples(
        args.data, reference.input_specs(), limit=args.samples, image_range=image_range
    )
    result = compare_models(reference, quantized, samples, layers=True)
    if result.different_models:
        print(different_models_warning(args.quant_model, args.float_model, result), file=sys.stderr)

    if args.format == "json":
        write_stdout(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        write_stdout(render_text(result, verbose=args.verbose))
    return 0


def different_models_warning(quant: str, reference: str, result: Any) -> str:
    """One line: QUANT does not look like a conversion of FLOAT, so the numbers mean little."""
    reasons = "; ".join(result.different_models)
    return (
        f"coralcheck: warning: {quant} does not look like a conversion of {reference}: "
        f"{reasons}. The errors compare different models; give the float model QUANT was "
        "converted from"
    )


def fmt_db(value: float | None) -> str:
    """An SNR for people: "exact" when there is no error at all."""
    if value is None or value == math.inf:
        return "exact"
    return f"{value:.1f}"


def short_name(tensor: str) -> str:
    """The first of the names the converter joins with ';' when it fuses ops."""
    first, sep, _ = tensor.partition(";")
    return first + ("…" if sep else "")


def render_text(result: Any, *, verbose: bool) -> str:
    """The quant report as text tables (rich; plain when not a terminal)."""
    import io

    from rich.console import Console
    from rich.table import Table

    from coralcheck.numeric.quant import EIGHT_BIT_SNR_DB, JUMP_DB

    out = io.StringIO()
    console = Console(file=out, width=110, force_terminal=sys.stdout.isatty(), highlight=False)
    console.print(
        f"[bold]{result.model}[/] vs float [bold]{result.reference}[/]: "
        f"{result.samples} samples ({result.runtime})"
    )
    if result.different_models:
        console.print(
            "[yellow]warning: these look like different models: "
            f"{'; '.join(result.different_models)}[/]",
            highlight=False,
        )
    outputs = Table(title="Outputs", title_justify="left", box=None)
    for column in ("output", "shape", "cosine", "SNR dB", "max |err|", "mean |err|", "top-1"):
        outputs.add_column(column)
    for o in result.outputs:
        top1 = "-" if o.top1 is None else f"{o.top1.rate:.1%}"
        outputs.add_row(
            o.name,
            "x".join(map(str, o.shape)),
            f"{o.stats.cosine:.4f}",
            fmt_db(o.stats.snr_db),
            f"{o.stats.abs_error_max:.4g}",
            f"{o.stats.mean_abs_error:.4g}",
            top1,
        )
    console.print(outputs)
    rows = [r for r in result.layers if verbose or r.jump or r.activation]
    title = (
        f"Layers ({result.tensors_compared} tensors matched by name; "
        f"JUMP = SNR falls ≥ {JUMP_DB:g} dB across one op, to below {EIGHT_BIT_SNR_DB:g} dB)"
    )
    if result.layers and rows:
        layers = Table(title=title, title_justify="left", box=None)
        for column in ("op", "opcode", "tensor", "cosine", "SNR dB", "drop dB", "note"):
            layers.add_column(column, overflow="fold")
        for r in rows:
            note = ", ".join(filter(None, ["JUMP" if r.jump else "", r.activation or ""]))
            drop = "-" if r.snr_drop_db is None else f"{r.snr_drop_db:+.1f}"
            layers.add_row(
                "-" if r.op is None else str(r.op),
                r.opcode,
                short_name(r.tensor),
                f"{r.stats.cosine:.4f}",
                fmt_db(r.stats.snr_db),
                drop,
                note,
            )
        console.print(layers)
    elif result.layers:
        console.print(f"{title}: no jumps")
    else:
        console.print("Layers: no tensor names in common (was QUANT converted from FLOAT?)")
    console.print("\nFloat <-> integer at the model's edges (numpy):\n")
    return out.getvalue() + result.to_dict()["snippet"]
