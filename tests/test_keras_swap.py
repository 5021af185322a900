"""`coralcheck.keras.swap_activations`: a ReLU variant of a Keras model, same weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from coralcheck.keras import normalize_swap, parse_swap, swap_activations, swap_with_count


@pytest.fixture(scope="module")
def keras() -> Any:
    pytest.importorskip("tensorflow")
    from helpers.keras_toys import keras_module

    return keras_module()


def mixed_model(keras: Any) -> Any:
    """Every form an activation takes: argument, Activation layer, LeakyReLU, nested model."""
    keras.utils.set_random_seed(3)
    inner = keras.Sequential(
        [keras.Input((8, 8, 8)), keras.layers.Conv2D(8, 1, activation="swish", name="inner_conv")],
        name="inner",
    )
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="silu", name="conv")(inputs)
    x = inner(x)
    x = keras.layers.LeakyReLU(negative_slope=0.1, name="leaky")(x)
    x = keras.layers.Activation("hard_swish", name="hswish")(x)
    x = keras.layers.Dense(8, activation="gelu", name="dense_gelu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs)


def activations(model: Any) -> dict[str, Any]:
    """Layer name -> activation as configured (class name for LeakyReLU), nested included."""
    found = {}
    for layer in model.layers:
        if hasattr(layer, "layers"):
            found.update(activations(layer))
        elif type(layer).__name__ == "LeakyReLU":
            found[layer.name] = "LeakyReLU"
        elif "activation" in layer.get_config():
            found[layer.name] = layer.get_config()["activation"]
    return found


@pytest.mark.tensorflow
def test_swaps_every_form_and_leaves_the_rest(keras: Any) -> None:
    model = mixed_model(keras)
    mapping = {"silu": "relu", "leaky_relu": "relu", "hard_swish": "relu6", "gelu": "relu"}
    swapped, count = swap_with_count(model, mapping)
    assert activations(swapped) == {
        "conv": "relu",
        "inner_conv": "relu",  # "swish" is SiLU's other name
        "leaky": "relu",  # the LeakyReLU layer became Activation("relu")
        "hswish": "relu6",
        "dense_gelu": "relu",
        "head": "softmax",
    }
    assert count == 5
    assert type(swapped.get_layer("leaky")).__name__ == "Activation"
    # The original is untouched.
    assert activations(model)["conv"] == "silu" and activations(model)["leaky"] == "LeakyReLU"


@pytest.mark.tensorflow
def test_only_the_named_activations_are_swapped(keras: Any) -> None:
    swapped = swap_activations(mixed_model(keras), {"swish": "relu"})
    got = activations(swapped)
    assert got["conv"] == got["inner_conv"] == "relu"
    assert got["dense_gelu"] == "gelu" and got["hswish"] == "hard_silu"
    assert got["leaky"] == "LeakyReLU"


@pytest.mark.tensorflow
def test_weights_are_kept(keras: Any) -> None:
    model = mixed_model(keras)
    swapped = swap_activations(model, {"silu": "relu"})
    original, copied = model.get_weights(), swapped.get_weights()
    assert len(original) == len(copied) > 0
    for a, b in zip(original, copied, strict=True):
        assert a.shape == b.shape and np.array_equal(a, b)
    assert [w.name for w in model.weights] == [w.name for w in swapped.weights]


@pytest.mark.tensorflow
def test_the_swapped_model_computes_relu(keras: Any) -> None:
    """Same weights, ReLU instead of SiLU: the output is relu(x·W + b), computed by hand."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(6, activation="silu", name="d")(inputs))
    swapped = swap_activations(model, {"silu": "relu"})
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    kernel, bias = model.get_layer("d").get_weights()
    pre = x @ kernel + bias
    assert np.allclose(swapped(x).numpy(), np.maximum(pre, 0.0), atol=1e-5)
    assert np.allclose(model(x).numpy(), pre / (1.0 + np.exp(-pre)), atol=1e-5)


@pytest.mark.tensorflow
def test_sequential_models(keras: Any) -> None:
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="gelu", name="d")], name="seq"
    )
    swapped = swap_activations(model, {"gelu": "relu6"})
    assert isinstance(swapped, keras.Sequential)
    assert swapped.get_layer("d").get_config()["activation"] == "relu6"


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"selu": "relu"}, "cannot swap activation 'selu'"),
        ({"silu": "tanh"}, "cannot swap to 'tanh'"),
        ({}, "no activation to swap"),
    ],
)
def test_bad_mappings(mapping: dict[str, str], expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        normalize_swap(mapping)


def test_parse_swap_cli_form() -> None:
    assert parse_swap("silu=relu, GELU=relu6") == {"silu": "relu", "gelu": "relu6"}
    assert parse_swap("hard_silu=relu") == {"hard_swish": "relu"}
    with pytest.raises(ValueError, match="expected FROM=TO"):
        parse_swap("silu")
