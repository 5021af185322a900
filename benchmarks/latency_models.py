"""Rebuild the classic models of ../shared/latency/ground_truth.csv as int8 TFLite files.

Latency depends on the architecture (layer shapes, parameter bytes), not on weight values, so
each model is a Keras application built with `weights=None` (or, for the three classics Keras does
not ship, the published architecture written out below), converted by TensorFlow with full-integer
post-training quantization (int8 ops, uint8 input and output, as Coral's models) calibrated on a
few random samples. The files go to a cache directory (default benchmarks/_work/latency_models,
gitignored): a model is built once and reused while its file exists.

    python benchmarks/latency_models.py            # build every model missing from the cache
    python benchmarks/latency_models.py --list     # what would be built, and what is cached
    python benchmarks/latency_models.py resnet50   # one model

Needs the `[convert]` extra (TensorFlow). Building everything takes ~15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / "_work" / "latency_models"
CALIBRATION_SAMPLES = 4


# --- the architectures Keras does not ship --------------------------------------------------------


def _conv(x: Any, filters: int, kernel: Any, strides: int = 1, padding: str = "same") -> Any:
    """Conv + BatchNorm + ReLU (the converter folds the BatchNorm into the conv)."""
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def inception_v1() -> Any:
    """GoogLeNet / Inception v1 (Szegedy et al. 2014, TF-slim `inception_v1` layout, 224x224)."""
    import keras
    from keras import layers

    def block(x: Any, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool: int) -> Any:
        b1 = _conv(x, c1, 1)
        b2 = _conv(_conv(x, c3r, 1), c3, 3)
        b3 = _conv(_conv(x, c5r, 1), c5, 3)  # TF-slim uses 3x3 in the "5x5" branch
        b4 = _conv(layers.MaxPooling2D(3, 1, padding="same")(x), pool, 1)
        return layers.Concatenate()([b1, b2, b3, b4])

    inputs = keras.Input((224, 224, 3), batch_size=1)
    x = _conv(inputs, 64, 7, 2)
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = _conv(x, 64, 1)
    x = _conv(x, 192, 3)
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = block(x, 64, 96, 128, 16, 32, 32)
    x = block(x, 128, 128, 192, 32, 96, 64)
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    for spec in (
        (192, 96, 208, 16, 48, 64),
        (160, 112, 224, 24, 64, 64),
        (128, 128, 256, 24, 64, 64),
        (112, 144, 288, 32, 64, 64),
        (256, 160, 320, 32, 128, 128),
    ):
        x = block(x, *spec)
    x = layers.MaxPooling2D(2, 2, padding="same")(x)
    x = block(x, 256, 160, 320, 32, 128, 128)
    x = block(x, 384, 192, 384, 48, 128, 128)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(1001)(x)
    return keras.Model(inputs, layers.Softmax()(x), name="inception_v1")


def inception_v4() -> Any:
    """Inception v4 (Szegedy et al. 2016, TF-slim `inception_v4` layout, 299x299)."""
    import keras
    from keras import layers

    def cat(parts: list[Any]) -> Any:
        return layers.Concatenate()(parts)

    def block_a(x: Any) -> Any:
        b0 = _conv(x, 96, 1)
        b1 = _conv(_conv(x, 64, 1), 96, 3)
        b2 = _conv(_conv(_conv(x, 64, 1), 96, 3), 96, 3)
        b3 = _conv(layers.AveragePooling2D(3, 1, padding="same")(x), 96, 1)
        return cat([b0, b1, b2, b3])

    def reduction_a(x: Any) -> Any:
        b0 = _conv(x, 384, 3, 2, "valid")
        b1 = _conv(_conv(_conv(x, 192, 1), 224, 3), 256, 3, 2, "valid")
        b2 = layers.MaxPooling2D(3, 2)(x)
        return cat([b0, b1, b2])

    def block_b(x: Any) -> Any:
        b0 = _conv(x, 384, 1)
        b1 = _conv(_conv(_conv(x, 192, 1), 224, (1, 7)), 256, (7, 1))
        b2 = _conv(x, 192, 1)
        for filters, kernel in ((192, (7, 1)), (224, (1, 7)), (224, (7, 1)), (256, (1, 7))):
            b2 = _conv(b2, filters, kernel)
        b3 = _conv(layers.AveragePooling2D(3, 1, padding="same")(x), 128, 1)
        return cat([b0, b1, b2, b3])

    def reduction_b(x: Any) -> Any:
        b0 = _conv(_conv(x, 192, 1), 192, 3, 2, "valid")
        b1 = _conv(_conv(_conv(x, 256, 1), 256, (1, 7)), 320, (7, 1))
        b1 = _conv(b1, 320, 3, 2, "valid")
        b2 = layers.MaxPooling2D(3, 2)(x)
        return cat([b0, b1, b2])

    def block_c(x: Any) -> Any:
        b0 = _conv(x, 256, 1)
        b1 = _conv(x, 384, 1)
        b1 = cat([_conv(b1, 256, (1, 3)), _conv(b1, 256, (3, 1))])
        b2 = _conv(_conv(_conv(x, 384, 1), 448, (3, 1)), 512, (1, 3))
        b2 = cat([_conv(b2, 256, (1, 3)), _conv(b2, 256, (3, 1))])
        b3 = _conv(layers.AveragePooling2D(3, 1, padding="same")(x), 256, 1)
        return cat([b0, b1, b2, b3])

    inputs = keras.Input((299, 299, 3), batch_size=1)
    x = _conv(inputs, 32, 3, 2, "valid")
    x = _conv(x, 32, 3, 1, "valid")
    x = _conv(x, 64, 3)
    x = cat([layers.MaxPooling2D(3, 2)(x), _conv(x, 96, 3, 2, "valid")])
    x = cat(
        [
            _conv(_conv(x, 64, 1), 96, 3, 1, "valid"),
            _conv(_conv(_conv(_conv(x, 64, 1), 64, (1, 7)), 64, (7, 1)), 96, 3, 1, "valid"),
        ]
    )
    x = cat([_conv(x, 192, 3, 2, "valid"), layers.MaxPooling2D(3, 2)(x)])
    for _ in range(4):
        x = block_a(x)
    x = reduction_a(x)
    for _ in range(7):
        x = block_b(x)
    x = reduction_b(x)
    for _ in range(3):
        x = block_c(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(1001)(x)
    return keras.Model(inputs, layers.Softmax()(x), name="inception_v4")


def squeezenet() -> Any:
    """SqueezeNet 1.1 (Iandola et al. 2016; the 1.1 layout of the reference implementation)."""
    import keras
    from keras import layers

    def fire(x: Any, squeeze: int, expand: int) -> Any:
        s = layers.Conv2D(squeeze, 1, activation="relu")(x)
        e1 = layers.Conv2D(expand, 1, activation="relu")(s)
        e3 = layers.Conv2D(expand, 3, padding="same", activation="relu")(s)
        return layers.Concatenate()([e1, e3])

    inputs = keras.Input((224, 224, 3), batch_size=1)
    x = layers.Conv2D(64, 3, strides=2, activation="relu")(inputs)
    x = layers.MaxPooling2D(3, 2)(x)
    x = fire(fire(x, 16, 64), 16, 64)
    x = layers.MaxPooling2D(3, 2)(x)
    x = fire(fire(x, 32, 128), 32, 128)
    x = layers.MaxPooling2D(3, 2)(x)
    for squeeze, expand in ((48, 192), (48, 192), (64, 256), (64, 256)):
        x = fire(x, squeeze, expand)
    x = layers.Conv2D(1000, 1, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Softmax()(x), name="squeezenet")


def _application(name: str, size: int, **kwargs: Any) -> Callable[[], Any]:
    def build() -> Any:
        import keras

        factory = getattr(keras.applications, name)
        return factory(weights=None, input_shape=(size, size, 3), **kwargs)

    return build


# Cache file stem -> (builder, input side). The ground-truth rows name these by `model`
# (latency_agreement.py: MODELS).
BUILDERS: dict[str, tuple[Callable[[], Any], int]] = {
    "mobilenet_v1": (_application("MobileNet", 224, alpha=1.0, classes=1001), 224),
    "mobilenet_v2": (_application("MobileNetV2", 224, alpha=1.0, classes=1001), 224),
    "resnet50": (_application("ResNet50", 224), 224),
    "resnet50_v2": (_application("ResNet50V2", 224), 224),
    "resnet152_v2": (_application("ResNet152V2", 224), 224),
    "vgg16": (_application("VGG16", 224), 224),
    "vgg19": (_application("VGG19", 224), 224),
    "densenet121": (_application("DenseNet121", 224), 224),
    "inception_v3": (_application("InceptionV3", 299, classes=1001), 299),
    "inception_resnet_v2": (_application("InceptionResNetV2", 299, classes=1001), 299),
    "inception_v1": (inception_v1, 224),
    "inception_v4": (inception_v4, 299),
    "squeezenet": (squeezenet, 224),
}


def cached_path(name: str, cache: Path = CACHE) -> Path:
    return cache / f"{name}_int8.tflite"


def build(name: str, cache: Path = CACHE) -> Path:
    """The int8 TFLite file of model `name`, built now unless the cache has it."""
    path = cached_path(name, cache)
    if path.is_file():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    from coralcheck.convert.ptq import to_tflite
    from coralcheck.convert.source import keras_source
    from coralcheck.numeric.samples import InputSpec

    builder, size = BUILDERS[name]
    model = builder()
    shape = (1, size, size, 3)
    rng = np.random.default_rng(0)
    samples = [[rng.uniform(-1, 1, shape).astype("float32")] for _ in range(CALIBRATION_SAMPLES)]
    spec = InputSpec(model.inputs[0].name, shape)
    data = to_tflite(keras_source(name, model), [spec], samples, io_type="uint8")
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", help=f"models to build (default: all of {', '.join(BUILDERS)})"
    )
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the models are kept")
    parser.add_argument("--list", action="store_true", help="list the models and stop")
    args = parser.parse_args(argv)
    names = args.names or list(BUILDERS)
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)} (known: {', '.join(BUILDERS)})")
    for name in names:
        path = cached_path(name, args.cache)
        if args.list:
            print(f"{name:22} {'cached' if path.is_file() else 'missing'}  {path}")
            continue
        start = time.perf_counter()
        existed = path.is_file()
        build(name, args.cache)
        took = "cached" if existed else f"built in {time.perf_counter() - start:.0f} s"
        print(f"{name:22} {path.stat().st_size / 1e6:7.1f} MB  {took}", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
