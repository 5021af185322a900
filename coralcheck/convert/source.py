"""The model to convert: a Keras file (.keras/.h5) or a SavedModel directory, and its inputs.

Keras files are loaded in safe mode (no Lambda bytecode, no custom objects): converting a
model must never run code that came inside the file. SavedModels hold a TensorFlow graph, not
Python code, and are loaded with `tf.saved_model.load`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from coralcheck.convert import import_tensorflow
from coralcheck.errors import UsageError
from coralcheck.keras import swap_with_count
from coralcheck.numeric.samples import InputSpec

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass(frozen=True, slots=True)
class DeclaredInput:
    """A model input as declared: unknown dimensions are None."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str


@dataclass(slots=True)
class Source:
    """A loaded model ready to be traced: `call(list of input tensors) -> outputs`."""

    path: str
    kind: str  # "keras" | "saved_model"
    inputs: list[DeclaredInput]
    call: Callable[[list[Any]], Any]
    model: Any  # the Keras model, or the loaded SavedModel (which owns the variables)


def check_model_path(path: str) -> str:
    """The kind of model at `path` ("keras" or "saved_model"), checked before TF is imported."""
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise UsageError(path, "a directory, but not a SavedModel (no saved_model.pb)")
        return "saved_model"
    if not os.path.exists(path):
        raise UsageError(path, "no such file or directory")
    if not path.lower().endswith(KERAS_SUFFIXES):
        raise UsageError(path, "expected a Keras .keras/.h5 file or a SavedModel directory")
    return "keras"


def _one_sentence(error: BaseException) -> str:
    """The first sentence of an exception message (Keras messages run to a paragraph)."""
    text = " ".join(str(error).split())
    return re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0] or type(error).__name__


def load_source(path: str) -> Source:
    """Load a Keras file (safe mode) or a SavedModel for conversion."""
    if check_model_path(path) == "saved_model":
        return _load_saved_model(path)
    return keras_source(path, load_keras(path))


def load_keras(path: str) -> Any:
    """Load a .keras/.h5 file in Keras safe mode, without compiling it."""

    import_tensorflow()
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UsageError(path, "conversion needs the TensorFlow Keras backend (KERAS_BACKEND)")
    if int(keras.__version__.split(".")[0]) < 3:
        raise UsageError(path, "needs Keras 3 (TensorFlow >= 2.16) to load models in safe mode")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:
        raise UsageError(
            path,
            f"cannot load it in safe mode (no Lambda layers or custom objects): {_one_sentence(e)}",
        ) from e


def keras_source(path: str, model: Any) -> Source:
    """Wrap a Keras model: inputs from `model.inputs`, called with training=False."""
    try:
        tensors = list(model.inputs)
    except (AttributeError, ValueError):
        raise UsageError(path, "the Keras model has no defined inputs (build it first)") from None
    inputs = [
        DeclaredInput(t.name, tuple(t.shape), str(getattr(t.dtype, "name", t.dtype)))
        for t in tensors
    ]

    def call(xs: list[Any]) -> Any:
        return model(xs[0] if len(xs) == 1 else xs, training=False)

    return Source(path, "keras", inputs, call, model)


def _load_saved_model(path: str) -> Source:
    """Wrap the serving signature of a SavedModel (`serving_default`, or its only one)."""

    tf = import_tensorflow()
    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:
        raise UsageError(path, f"cannot load the SavedModel: {_one_sentence(e)}") from e
    signatures = dict(loaded.signatures)
    if "serving_default" in signatures:
        signature = signatures["serving_default"]
    elif len(signatures) == 1:
        signature = next(iter(signatures.values()))
    else:
        raise UsageError(path, f"expected a serving_default signature, found {len(signatures)}")
    _, specs = signature.structured_input_signature
    names = list(specs)
    inputs = [
        DeclaredInput(n, tuple(specs[n].shape.as_list() or ()), specs[n].dtype.name) for n in names
    ]

    def call(xs: list[Any]) -> Any:
        return signature(**dict(zip(names, xs, strict=True)))

    return Source(path, "saved_model", inputs, call, loaded)


def parse_shape(text: str) -> tuple[str | None, tuple[int, ...]]:
    """`[NAME=]1,224,224,3` (or 1x224x224x3) -> (NAME or None, dims)."""
    name, sep, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in re.split(r"[x,]", dims.strip()) if d.strip())
    except ValueError:
        raise UsageError("--input-shape", f"expected [NAME=]1,H,W,C, got {text!r}") from None
    if not shape or any(d < 1 for d in shape):
        raise UsageError("--input-shape", f"expected positive dimensions, got {text!r}")
    return (name.strip() if sep else None), shape


def static_inputs(declared: Sequence[DeclaredInput], shapes: Sequence[str]) -> list[InputSpec]:
    """Fix every input shape: batch 1, other unknown dimensions from `--input-shape`.

    The Edge TPU needs static shapes and batch 1; `--input-shape` applies by input name
    (`NAME=...`) or, without a name, to the inputs in order.
    """
    named: dict[str, tuple[int, ...]] = {}
    positional: list[tuple[int, ...]] = []
    for text in shapes:
        name, shape = parse_shape(text)
        if name is None:
            positional.append(shape)
        elif name not in {d.name for d in declared}:
            known = ", ".join(d.name for d in declared)
            raise UsageError("--input-shape", f"no input named {name!r} (inputs: {known})")
        else:
            named[name] = shape
    if len(positional) > len(declared):
        raise UsageError(
            "--input-shape", f"given {len(positional)} times for {len(declared)} inputs"
        )
    specs = []
    for i, decl in enumerate(declared):
        given = named.get(decl.name) or (positional[i] if i < len(positional) else None)
        specs.append(_static_input(decl, given))
    return specs


def _static_input(decl: DeclaredInput, given: tuple[int, ...] | None) -> InputSpec:
    """One input's static shape, checked against what the model declares."""
    label = "x".join("?" if d is None else str(d) for d in decl.shape)
    shape: list[int | None] = list(decl.shape)
    if given is not None:
        if len(given) != len(shape):
            raise UsageError(
                "--input-shape", f"input {decl.name!r} has rank {len(shape)} ({label})"
            )
        if given[0] != 1:
            raise UsageError("--input-shape", "the batch dimension must be 1 for the Edge TPU")
        for axis, (want, have) in enumerate(zip(shape[1:], given[1:], strict=True), start=1):
            if want is not None and want != have:
                raise UsageError(
                    "--input-shape", f"input {decl.name!r} has {want} at axis {axis} ({label})"
                )
        shape = list(given)
    if shape:
        shape[0] = 1  # the Edge TPU runs batch 1 (rank > 3 with a batch > 1 does not map)
    if any(d is None for d in shape):
        raise UsageError(
            decl.name,
            f"input shape {label} has unknown dimensions: give --input-shape {decl.name}=1,...",
        )
    return InputSpec(decl.name, tuple(int(d) for d in shape), decl.dtype)  # type: ignore[arg-type]


def swapped_source(source: Source, swaps: dict[str, str], notify: Callable[[str], None]) -> Source:
    """The source with its activations swapped (Keras models only), said through `notify`."""
    if source.kind != "keras":
        raise UsageError(source.path, "--swap-activations needs a Keras model file")
    try:
        model, count = swap_with_count(source.model, swaps)
    except ValueError as e:
        raise UsageError(source.path, f"cannot swap activations: {e}") from None
    pairs = ", ".join(f"{a}→{b}" for a, b in swaps.items())
    notify(
        f"coralcheck: swapped {count} activation(s) ({pairs}); fine-tune the swapped model "
        "before trusting its accuracy"
    )
    return keras_source(source.path, model)
