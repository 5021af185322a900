"""Convert a Keras model or SavedModel to a full-integer Edge TPU TFLite model, then lint it.

Post-training full-integer quantization calibrated on your samples, int8 ops only, uint8 (or
int8) input and output, batch 1 and static shapes. Needs the `[convert]` extra (TensorFlow).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

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


def check_arguments(args: argparse.Namespace) -> tuple[tuple[float, float], dict[str, str]]:
    """Everything a user can get wrong, checked before TensorFlow is imported (seconds)."""
    from coralcheck.convert.files import check_output
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


def swapped_source(source: Any, swaps: dict[str, str]) -> Any:
    """The source with its activations swapped (Keras models only), said on stderr."""
    from coralcheck.convert.source import keras_source
    from coralcheck.keras import swap_with_count

    if source.kind != "keras":
        raise UsageError(source.path, "--swap-activations needs a Keras model file")
    try:
        model, count = swap_with_count(source.model, swaps)
    except ValueError as e:
        raise UsageError(source.path, f"cannot swap activations: {e}") from None
    pairs = ", ".join(f"{a}→{b}" for a, b in swaps.items())
    print(
        f"coralcheck: swapped {count} activation(s) ({pairs}); fine-tune the swapped model "
        "before trusting its accuracy",
        file=sys.stderr,
    )
    return keras_source(source.path, model)


def refuse_float_ops(model_path: str, tflite: bytes) -> None:
    """Refuse a result in which ops stayed float: the Edge TPU runs only int8 ops."""
    from coralcheck.convert.ptq import float_ops

    left_float = float_ops(tflite)
    if left_float:
        more = " and more" if len(left_float) > 5 else ""
        raise UsageError(
            model_path,
            f"cannot become fully integer: the converter has no int8 kernel for "
            f"{', '.join(left_float[:5])}{more} (left in float); the Edge TPU runs only int8 "
            f"ops, so replace {'it' if len(left_float) == 1 else 'them'}",
        )


def run(args: argparse.Namespace) -> int:
    from coralcheck.api import check
    from coralcheck.convert.files import write_atomically
    from coralcheck.convert.ptq import to_tflite
    from coralcheck.convert.source import load_source, static_inputs
    from coralcheck.numeric.samples import load_samples
    from coralcheck.render import render

    image_range, swaps = check_arguments(args)
    source = load_source(args.model)
    if swaps:
        source = swapped_source(source, swaps)
    inputs = static_inputs(source.inputs, args.input_shape)
    if args.float:
        data = to_tflite(source, inputs, None)
        write_atomically(args.output, data, force=args.force)
        print(f"coralcheck: wrote {args.output} (float32, {len(data):,} bytes)", file=sys.stderr)
        return 0
    samples = load_samples(args.calibration, inputs, limit=args.samples, image_range=image_range)
    data = to_tflite(source, inputs, samples, io_type=args.io_type)
    refuse_float_ops(args.model, data)
    write_atomically(args.output, data, force=args.force)
    print(
        f"coralcheck: wrote {args.output} ({len(data):,} bytes; full-integer, {args.io_type} "
        f"I/O, calibrated on {len(samples)} samples)",
        file=sys.stderr,
    )
    from coralcheck.cli import write_stdout

    write_stdout(render(check(args.output), "text"))
    return 0
