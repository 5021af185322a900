"""Small Keras models converted the way Coral users convert them, for the verdict tests.

`RECIPES` are the TFLite converter settings found in user code and tutorials, from the
recommended one (full-integer post-training quantization with a representative data set, int8
builtins, uint8 I/O) to the ones that do not work on the Edge TPU (float, dynamic-range,
float16, 16x8). `convert(model, recipe)` runs the real converter on a Keras model built by one
of the `build_*` functions; conversions are cached per test session.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

CALIBRATION_SAMPLES = 8
RECIPES = ("int8", "int8_float_io", "float", "dynamic_range", "float16", "int16x8")


def keras() -> Any:
    """Keras on the TensorFlow backend, with TensorFlow's start-up chatter off."""
    from coralcheck.convert import import_tensorflow

    import_tensorflow()
    import keras as keras_module

    return keras_module


def _representative(model: Any) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Random samples in [0, 1) for every input, batch 1 where the batch is unknown."""
    rng = np.random.default_rng(0)
    shapes = [[1 if d is None else d for d in t.shape] for t in model.inputs]

    def samples() -> Iterator[list[np.ndarray]]:
        for _ in range(CALIBRATION_SAMPLES):
            yield [rng.random(shape, dtype=np.float32) for shape in shapes]

    return samples


def convert(model: Any, recipe: str = "int8") -> bytes:
    """`model` converted with `tf.lite.TFLiteConverter.from_keras_model` and `recipe`."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if recipe == "float":
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if recipe == "dynamic_range":
        return converter.convert()
    if recipe == "float16":
        converter.target_spec.supported_types = [tf.float16]
        return converter.convert()
    converter.representative_dataset = _representative(model)
    if recipe == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        return converter.convert()
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if recipe == "int8":
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    elif recipe != "int8_float_io":
        raise ValueError(f"unknown recipe {recipe!r} (one of {', '.join(RECIPES)})")
    return converter.convert()


def write(directory: Path, name: str, model: Any, recipe: str = "int8") -> Path:
    """Convert and write `directory/name.tflite` (once per path)."""
    path = directory / f"{name}.tflite"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        path.write_bytes(convert(model, recipe))
    return path


# --- the models ----------------------------------------------------------------------------------


def cnn(activation: str = "relu", batch: int | None = None, hw: tuple = (32, 32)) -> Any:
    """Conv 3x3 (ReLU) → Conv 3x3 (`activation`) → Conv 3x3 (ReLU) → global average pool →
    Dense 4 softmax: the activation under test sits between convolutions. `activation` is a
    Keras activation name, or "leaky" for a LeakyReLU layer."""
    k = keras()
    layers = k.layers
    inputs = k.Input((*hw, 3), batch_size=batch, name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    if activation == "leaky":
        x = layers.LeakyReLU(0.1)(layers.Conv2D(16, 3, padding="same")(x))
    else:
        x = layers.Conv2D(16, 3, padding="same", activation=activation)(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return k.Model(inputs, layers.Dense(4, activation="softmax")(x))


def reshape() -> Any:
    """A Keras Reshape on a model whose batch is left as None (sizes computed at run time)."""
    k = keras()
    inputs = k.Input((8, 8, 3), name="image")
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = k.layers.Reshape((64, 8))(x)
    return k.Model(inputs, k.layers.Dense(4)(x))


def five_d_elementwise() -> Any:
    """ADD, ReLU and MUL on a [1, 2, 4, 8, 8] tensor (batch 1, four dimensions above 1)."""
    k = keras()
    inputs = k.Input((2, 4, 8, 8), batch_size=1, name="x")
    x = k.layers.ReLU()(k.layers.Add()([inputs, inputs]))
    return k.Model(inputs, k.layers.Multiply()([x, inputs]))


def conv3d() -> Any:
    """A Conv3D on a 4-frame clip, then pooling and a Dense layer."""
    k = keras()
    inputs = k.Input((4, 8, 8, 3), batch_size=1, name="clip")
    x = k.layers.Conv3D(8, 3, padding="same", activation="relu")(inputs)
    x = k.layers.GlobalAveragePooling3D()(x)
    return k.Model(inputs, k.layers.Dense(4)(x))


def nchw() -> Any:
    """A channels-first input permuted to NHWC and back, as PyTorch exports are."""
    k = keras()
    inputs = k.Input((3, 32, 32), batch_size=1, name="nchw")
    x = k.layers.Permute((2, 3, 1))(inputs)
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    return k.Model(inputs, k.layers.Permute((3, 1, 2))(x))


def resize(size: tuple[int, int], convs_after: bool) -> Any:
    """A 16x16 feature map resized (bilinear) to `size`, with or without a convolution after."""
    k = keras()
    inputs = k.Input((16, 16, 3), batch_size=1, name="image")
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = k.layers.Resizing(*size, interpolation="bilinear")(x)
    if convs_after:
        x = k.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    return k.Model(inputs, x)


def multi_io() -> Any:
    """Two image inputs, concatenated; two Dense heads."""
    k = keras()
    a = k.Input((16, 16, 3), batch_size=1, name="a")
    b = k.Input((16, 16, 3), batch_size=1, name="b")
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu")(k.layers.Concatenate()([a, b]))
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model([a, b], [k.layers.Dense(4)(x), k.layers.Dense(2)(x)])
