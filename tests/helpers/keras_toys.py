"""Tiny Keras models for the conversion/quantization tests, built once per test session.

Two variants of one CNN (input 16x16x3: Conv 3x3/2 → Conv 3x3 → global average pool → Dense 4
softmax), one with SiLU and one with ReLU, each trained for a few steps on synthetic data (the
class is a fixed linear function of the mean colour), then converted with `coralcheck convert`
to full-int8 and to a float32 reference. Building everything takes a few seconds.

Also `run_without_ml_libraries(*args)`: the CLI in a fresh process where TensorFlow, Keras and
LiteRT cannot be imported.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from conftest import REPO, cli_env

HEIGHT, WIDTH, CHANNELS, CLASSES = 16, 16, 3, 4
CALIBRATION_SAMPLES = 32
VARIANTS = ("silu", "relu")


@dataclass(frozen=True)
class Toys:
    """Paths of the built toys: per variant its .keras, int8 and float .tflite."""

    directory: Path
    calibration: Path  # .npy, CALIBRATION_SAMPLES x 16x16x3 in [0, 1)
    keras: dict[str, Path]
    int8: dict[str, Path]
    float: dict[str, Path]


_built: dict[Path, Toys] = {}


def keras_module() -> Any:
    """Keras on the TensorFlow backend, with TensorFlow's start-up chatter off."""
    from coralcheck.convert import import_tensorflow

    import_tensorflow()
    import keras

    return keras


def synthetic_data(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images in [0, 1) and labels: argmax of a fixed linear map of each image's mean colour."""
    rng = np.random.default_rng(seed)
    images = rng.random((count, HEIGHT, WIDTH, CHANNELS), dtype=np.float32)
    weights = np.random.default_rng(1234).normal(size=(CHANNELS, CLASSES))
    labels = np.argmax(images.mean(axis=(1, 2)) @ weights, axis=1)
    return images, labels


def build_toy(activation: str) -> Any:
    """The toy CNN with `activation` after both convs, trained for a few steps."""
    keras = keras_module()
    keras.utils.set_random_seed(7)
    inputs = keras.Input((HEIGHT, WIDTH, CHANNELS), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation=activation, name="c1")(
        inputs
    )
    x = keras.layers.Conv2D(16, 3, padding="same", activation=activation, name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="dense")(x)
    model = keras.Model(inputs, outputs, name=f"toy_{activation}")
    images, labels = synthetic_data(256)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=2, batch_size=32, verbose=0)
    return model


def toys(base: Path) -> Toys:
    """Build (once per session and `base`) the toys and convert them with the CLI."""
    if base in _built:
        return _built[base]
    from coralcheck.cli import main

    base.mkdir(parents=True, exist_ok=True)
    calibration = base / "calibration.npy"
    np.save(calibration, synthetic_data(CALIBRATION_SAMPLES, seed=99)[0])
    paths: dict[str, dict[str, Path]] = {"keras": {}, "int8": {}, "float": {}}
    for variant in VARIANTS:
        keras_path = base / f"toy_{variant}.keras"
        build_toy(variant).save(keras_path)
        int8_path, float_path = base / f"{variant}_int8.tflite", base / f"{variant}_float.tflite"
        convert = ["convert", str(keras_path), "-o", str(int8_path)]
        assert main([*convert, "--calibration", str(calibration)]) == 0
        assert main(["convert", str(keras_path), "-o", str(float_path), "--float"]) == 0
        paths["keras"][variant] = keras_path
        paths["int8"][variant] = int8_path
        paths["float"][variant] = float_path
    _built[base] = Toys(base, calibration, paths["keras"], paths["int8"], paths["float"])
    return _built[base]


BLOCKER = """
import sys

class _Blocked:
    '''Refuse TensorFlow, Keras and LiteRT, as when the extras are not installed.'''
    names = {"tensorflow", "keras", "ai_edge_litert", "tflite_runtime", "tf_keras"}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, _Blocked())
from coralcheck.cli import main
code = main(sys.argv[1:])
loaded = sorted(n for n in _Blocked.names if n in sys.modules)
assert not loaded, loaded
sys.exit(code)
"""


def run_without_ml_libraries(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """`coralcheck ARGS` in a fresh process where TF, Keras and LiteRT cannot be imported."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
        cwd=cwd,
        check=False,
    )
