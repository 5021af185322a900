"""Convert a Keras model or SavedModel to a full-integer Edge TPU TFLite model, then lint it.

Post-training full-integer quantization calibrated on your samples, int8 ops only, uint8 (or
int8) input and output, batch 1 and static shapes. Needs the `[convert]` extra (TensorFlow).
The converter runs in a child process (coralcheck.convert.child), so that its crash is one
line; the exit code is the lint's on the result (1 when it fails --fail-on or a gate).
"""

from __future__ import annotations

import argparse
import sys

from coralcheck.cli import build_parser
from coralcheck.config_keys import FAIL_ON
from coralcheck.convert.files import check_output, write_atomically
from coralcheck.convert.ptq import IO_TYPES
from coralcheck.errors import UsageError
from coralcheck.numeric.samples import DEFAULT_IMAGE_RANGE, DEFAULT_SAMPLES


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="Keras .keras/.h5 file or SavedModel dir")
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUT.tflite", help="the TFLite file to write"
    )
    parser.add_argument(
        "--calibration",
        metavar="DATA",
        help="representative samples: a directory of images, a .npy/.npz file, or "
        "module:function returning an iterable of samples",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=DEFAULT_SAMPLES,
        metavar="N",
        help=f"calibration samples to use (default {DEFAULT_SAMPLES})",
    )
    parser.add_argument(
        "--io-type",
        choices=IO_TYPES,
        default="uint8",
        help="type of the model's input and output (default uint8)",
    )
    parser.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="[NAME=]1,H,W,C",
        help="static shape for an input with unknown dimensions (repeatable; batch is always 1)",
    )
    parser.add_argument(
        "--image-range",
        default=",".join(f"{v:g}" for v in DEFAULT_IMAGE_RANGE),
        metavar="LOW,HIGH",
        help="pixel values 0..255 of calibration images are mapped to this range "
        "(default 0,255; e.g. 0,1 or -1,1 if the model does not rescale itself)",
    )
    parser.add_argument(
        "--swap-activations",
        action="append",
        default=[],
        metavar="FROM=TO",
        help="swap activations before converting, e.g. silu=relu (from: silu, swish, "
        "hard_swish, gelu, leaky_relu; to: relu, relu6). The result must be fine-tuned "
        "before its accuracy means anything",
    )
    parser.add_argument(
        "--float",
        action="store_true",
        help="write a float32 model instead: the reference for `coralcheck quant`/`compare`",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default=None,
        help="lowest severity of the result's findings that exits 1, as in the lint "
        "(default: error, or the nearest config's fail-on)",
    )


def check_arguments(args: argparse.Namespace) -> tuple[tuple[float, float], dict[str, str]]:
    """Everything a user can get wrong, checked before TensorFlow is imported (seconds)."""
    from coralcheck.convert.source import check_model_path
    from coralcheck.keras import parse_swap
    from coralcheck.numeric.samples import check_source, parse_image_range

    check_model_path(args.model)
    check_output(args.output, force=args.force, inputs=(args.model,))
    if not args.float:
        if not args.calibration:
            raise UsageError("--calibration", "required for full-integer quantization (or --float)")
        check_source(args.calibration)
    if args.samples < 1:
        raise UsageError("--samples", "must be at least 1")
    image_range = parse_image_range(args.image_range)
    try:
        swaps = parse_swap(",".join(args.swap_activations)) if args.swap_activations else {}
    except ValueError as e:
        raise UsageError("--swap-activations", str(e)) from None
    return image_range, swaps


def _print_note(text: str) -> None:
    print(text, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from coralcheck.convert.child import convert_in_child

    image_range, swaps = check_arguments(args)
    request = {
        "model": args.model,
        "calibration": args.calibration,
        "samples": args.samples,
        "io_type": args.io_type,
        "input_shape": list(args.input_shape),
        "image_range": list(image_range),
        "swaps": swaps,
        "float": bool(args.float),
    }
    data, facts = convert_in_child(request, notify=_print_note)
    write_atomically(args.output, data, force=args.force)
    if args.float:
        print(f"coralcheck: wrote {args.output} (float32, {len(data):,} bytes)", file=sys.stderr)
        return 0
    print(
        f"coralcheck: wrote {args.output} ({len(data):,} bytes; full-integer, {args.io_type} "
        f"I/O, calibrated on {facts['samples']} samples)",
        file=sys.stderr,
    )
    return lint_result(args.output, args.fail_on)


def lint_result(path: str, fail_on: str | None) -> int:
    """`coralcheck PATH [--fail-on X]`: the report on stdout, and its exit code."""

    lint_args = [*(["--fail-on", fail_on] if fail_on else []), "--", path]
    args = build_parser("lint").parse_args(lint_args)
    return int(args._run(args))
