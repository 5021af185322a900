"""Sample data for calibration and numeric checks.

One `--calibration`/`--data` argument, three forms:
- a directory of images (searched recursively; resized to the model input; pixel values mapped
  from 0..255 to `--image-range`); when there are more images than `--samples`, evenly spaced
  ones are taken so that every class folder is represented;
- a `.npy` file (first axis = samples, one input) or an `.npz` file (one array per input,
  named like the inputs or in input order; first axis = samples);
- `module:function` (importable from the current directory): a function taking no argument
  and returning an iterable of samples; a sample is an array (one input), a list/tuple of
  arrays (in input order) or a dict input name -> array.

A sample may carry the batch dimension (1, H, W, C) or not (H, W, C).
Only numpy is needed; images use Pillow when installed, else TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TextIO

import numpy as np

from coralcheck.convert import import_tensorflow
from coralcheck.errors import UsageError

DEFAULT_SAMPLES = 100
DEFAULT_IMAGE_RANGE = (0.0, 255.0)  # Keras models usually rescale inside (Rescaling layer)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif"})
FUNCTION_SOURCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

Sample = list[np.ndarray]


@dataclass(frozen=True, slots=True)
class InputSpec:
    """A model input as the float model sees it: name, static shape (batch 1), value dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    @property
    def label(self) -> str:
        return "x".join(str(d) for d in self.shape)


def check_source(source: str) -> None:
    """Fail fast (before any heavy import) on a data argument that cannot be right."""
    if os.path.isdir(source):
        return
    if os.path.isfile(source):
        if os.path.splitext(source)[1].lower() not in (".npy", ".npz"):
            raise UsageError(
                source, "expected a directory of images, a .npy/.npz file or module:function"
            )
        return
    if not FUNCTION_SOURCE.match(source):
        raise UsageError(source, "no such file or directory (nor a module:function)")


def parse_image_range(text: str) -> tuple[float, float]:
    """`LOW,HIGH` (the `--image-range` option) -> (low, high), low < high."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError("--image-range", f"expected LOW,HIGH (e.g. 0,1), got {text!r}") from None
    if not low < high:
        raise UsageError("--image-range", f"LOW must be below HIGH, got {text!r}")
    return low, high


def load_samples(
    source: str,
    inputs: Sequence[InputSpec],
    *,
    limit: int = DEFAULT_SAMPLES,
    image_range: tuple[float, float] = DEFAULT_IMAGE_RANGE,
) -> list[Sample]:
    """Read up to `limit` samples from `source`, each checked against and cast to `inputs`."""
    check_source(source)
    if limit < 1:
        raise UsageError("--samples", "must be at least 1")
    if os.path.isdir(source):
        raw: Iterable[Any] = _images(source, inputs, limit, image_range)
    elif source.lower().endswith(".npy"):
        raw = _npy(source, inputs)
    elif source.lower().endswith(".npz"):
        raw = _npz(source, inputs)
    else:
        raw = _function_samples(source)
    samples = []
    try:
        items = progress(islice(raw, limit), limit, "reading samples")
        for number, item in enumerate(items):
            samples.append(_fit_sample(item, inputs, source, number))
    except UsageError:
        raise
    except Exception as e:  # the user's generator, a decoder: one line, not a traceback
        raise UsageError(source, f"reading samples failed: {type(e).__name__}: {e}") from e
    if not samples:
        raise UsageError(source, "holds no samples")
    return samples


def _fit_sample(item: Any, inputs: Sequence[InputSpec], source: str, number: int) -> Sample:
    """One raw sample -> one array per input, with batch dim, right shape and dtype."""
    if isinstance(item, dict):
        missing = [spec.name for spec in inputs if spec.name not in item]
        if missing:
            raise UsageError(source, f"sample {number} has no value for input {missing[0]!r}")
        values = [item[spec.name] for spec in inputs]
    elif isinstance(item, (list, tuple)):
        values = list(item)
    else:
        values = [item]
    if len(values) != len(inputs):
        raise UsageError(
            source, f"sample {number} has {len(values)} arrays, the model {len(inputs)} inputs"
        )
    return [_fit_array(v, spec, source, number) for v, spec in zip(values, inputs, strict=True)]


def _fit_array(value: Any, spec: InputSpec, source: str, number: int) -> np.ndarray:
    """Check one array against its input (adding the batch dimension when it is missing)."""
    array = np.asarray(value)
    if array.shape == spec.shape[1:]:
        array = array[np.newaxis]
    if array.shape != spec.shape:
        got = "x".join(str(d) for d in array.shape) or "a scalar"
        raise UsageError(
            source, f"sample {number} has shape {got}; input {spec.name!r} needs {spec.label}"
        )
    if array.dtype.kind not in "biuf":
        raise UsageError(source, f"sample {number} is not numeric (dtype {array.dtype})")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise UsageError(source, f"sample {number} holds NaN or infinite values")
    return np.ascontiguousarray(array, dtype=spec.dtype)


def _npy(path: str, inputs: Sequence[InputSpec]) -> Iterator[Any]:
    """Samples along the first axis of one array (for a single-input model)."""
    if len(inputs) != 1:
        raise UsageError(path, f"the model has {len(inputs)} inputs: give an .npz, one array each")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise UsageError(path, f"not a readable .npy file ({e})") from e
    if array.ndim == 0:
        raise UsageError(path, "holds a scalar: the first axis must be the samples")
    yield from array


def _npz(path: str, inputs: Sequence[InputSpec]) -> Iterator[Any]:
    """Samples from one array per input, matched by input name, else in input order."""
    try:
        archive = np.load(path, allow_pickle=False)
        keys = list(archive.keys())
    except (OSError, ValueError, EOFError) as e:
        raise UsageError(path, f"not a readable .npz file ({e})") from e
    names = [spec.name for spec in inputs]
    if not set(names) <= set(keys):
        if len(keys) != len(names):
            raise UsageError(
                path, f"needs one array per input, named {', '.join(names)} (it has {len(keys)})"
            )
        keys_for_inputs = keys
    else:
        keys_for_inputs = names
    try:
        arrays = [archive[key] for key in keys_for_inputs]
    except (OSError, ValueError, EOFError) as e:
        raise UsageError(path, f"not a readable .npz file ({e})") from e
    if any(a.ndim == 0 for a in arrays):
        raise UsageError(path, "holds a scalar: the first axis of each array must be the samples")
    counts = {len(a) for a in arrays}
    if len(counts) != 1:
        raise UsageError(path, f"arrays hold different numbers of samples: {sorted(counts)}")
    for number in range(counts.pop()):
        yield [a[number] for a in arrays]


def _function_samples(source: str) -> Iterable[Any]:
    """Call `module:function` (the module importable from the current directory)."""
    module_name, function_name = source.split(":")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise UsageError(source, f"cannot import {module_name}: {type(e).__name__}: {e}") from e
    finally:
        sys.path.pop(0)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UsageError(source, f"module {module_name} has no function {function_name}")
    try:
        result = function()
        return iter(result)
    except Exception as e:
        raise UsageError(source, f"{function_name}() failed: {type(e).__name__}: {e}") from e


def image_files(directory: str, limit: int) -> list[str]:
    """Up to `limit` image paths under `directory`, evenly spaced over the sorted list."""
    paths = sorted(
        os.path.join(root, name)
        for root, _dirs, names in os.walk(directory)
        for name in names
        if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
    )
    if len(paths) <= limit:
        return paths
    return [paths[i * len(paths) // limit] for i in range(limit)]


def _images(
    directory: str, inputs: Sequence[InputSpec], limit: int, image_range: tuple[float, float]
) -> Iterator[np.ndarray]:
    """Decode, resize and rescale images for a model with one [1, H, W, C] input."""
    if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[3] not in (1, 3):
        raise UsageError(directory, "images need a model with one 1xHxWx1 or 1xHxWx3 input")
    _, height, width, channels = inputs[0].shape
    paths = image_files(directory, limit)
    if not paths:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise UsageError(directory, f"holds no images ({suffixes})")
    decode = _image_decoder(directory)
    low, high = image_range
    for path in paths:
        try:
            pixels = decode(path, height, width, channels)
        except Exception as e:
            raise UsageError(path, f"cannot read image: {type(e).__name__}: {e}") from e
        yield low + pixels.astype(np.float32) * np.float32((high - low) / 255.0)


def _image_decoder(directory: str) -> Any:
    """Pillow when installed, else TensorFlow: (path, h, w, c) -> HxWxC float array 0..255."""
    try:
        from PIL import Image

        def decode_pil(path: str, height: int, width: int, channels: int) -> np.ndarray:
            with Image.open(path) as image:
                image = image.convert("L" if channels == 1 else "RGB")
                image = image.resize((width, height), Image.Resampling.BILINEAR)
                return np.asarray(image, dtype=np.float32).reshape(height, width, channels)

        return decode_pil
    except ImportError:
        pass

    try:
        tf = import_tensorflow(directory)
    except UsageError:
        raise UsageError(
            directory,
            "reading images needs Pillow or TensorFlow (pip install pillow); "
            "or give the samples as .npy",
        ) from None

    def decode_tf(path: str, height: int, width: int, channels: int) -> np.ndarray:
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=channels, expand_animations=False
        )
        return tf.image.resize(image, [height, width]).numpy()

    return decode_tf


@contextlib.contextmanager
def stage(description: str) -> Iterator[None]:
    """A spinner with `description` on stderr while the block runs, only on a terminal: for
    steps without a count (loading a model, importing an interpreter)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(description):
        yield


def progress(
    items: Iterable[Any], total: int, description: str, *, file: TextIO | None = None
) -> Iterator[Any]:
    """Yield `items` with a progress bar on stderr (or `file`), only when that is a terminal."""
    from rich.console import Console
    from rich.progress import track

    console = Console(file=file) if file is not None else Console(stderr=True)
    yield from track(
        items,
        total=total,
        description=description,
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
