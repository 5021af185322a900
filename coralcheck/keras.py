"""Keras helpers for the Edge TPU: make a ReLU variant of a model for fine-tuning.

Needs Keras (the `[convert]` extra); it is imported inside the functions, never at import time.

SiLU/swish runs on the Edge TPU (LOGISTIC + MUL) but costs two ops and loses more accuracy in
int8 than ReLU; HardSwish, GELU and LeakyReLU do not run on the Edge TPU at all. Swapping them
for ReLU or ReLU6 keeps every weight, but the network was trained with the old activation:
**fine-tune the swapped model before its accuracy means anything.**
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Names an activation goes by in Keras 2 and 3 configs -> one canonical name.
ACTIVATION_ALIASES: dict[str, str] = {
    "silu": "silu",
    "swish": "silu",
    "hard_silu": "hard_swish",
    "hard_swish": "hard_swish",
    "gelu": "gelu",
    "leaky_relu": "leaky_relu",
}
SWAP_TARGETS = ("relu", "relu6")


def normalize_swap(mapping: Mapping[str, str]) -> dict[str, str]:
    """Check a swap mapping and return it with canonical activation names as keys.

    Keys: silu/swish, hard_swish/hard_silu, gelu, leaky_relu. Values: relu or relu6.
    """
    if not mapping:
        raise ValueError("no activation to swap: give e.g. {'silu': 'relu'}")
    out: dict[str, str] = {}
    for source, target in mapping.items():
        canonical = ACTIVATION_ALIASES.get(source.strip().lower())
        if canonical is None:
            known = ", ".join(sorted(ACTIVATION_ALIASES))
            raise ValueError(f"cannot swap activation {source!r}: known ones are {known}")
        if target.strip().lower() not in SWAP_TARGETS:
            raise ValueError(f"cannot swap to {target!r}: use one of {', '.join(SWAP_TARGETS)}")
        out[canonical] = target.strip().lower()
    return out


def parse_swap(text: str) -> dict[str, str]:
    """Parse the CLI form `silu=relu,gelu=relu6` into a checked mapping."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        source, sep, target = item.partition("=")
        if not sep or not source or not target:
            raise ValueError(f"expected FROM=TO (e.g. silu=relu), got {item!r}")
        pairs[source] = target
    return normalize_swap(pairs)


def _activation_name(value: Any) -> str | None:
    """The canonical name of a serialized activation (a string, or Keras 3's dict form)."""
    if isinstance(value, dict) and isinstance(value.get("config"), str):
        value = value["config"]
    if isinstance(value, str):
        return ACTIVATION_ALIASES.get(value.lower())
    return None


def swap_with_count(model: Any, mapping: Mapping[str, str]) -> tuple[Any, int]:
    """`swap_activations`, also returning how many activations were swapped."""
    import keras

    swaps = normalize_swap(mapping)
    swapped = 0

    def clone_layer(layer: Any) -> Any:
        nonlocal swapped
        if isinstance(layer, keras.layers.LeakyReLU) and "leaky_relu" in swaps:
            swapped += 1
            return keras.layers.Activation(
                swaps["leaky_relu"],
                name=layer.name,
                dtype=getattr(layer, "dtype_policy", layer.dtype),
            )
        config = layer.get_config()
        target = swaps.get(_activation_name(config.get("activation")) or "")
        if target is not None:
            config["activation"] = target
            swapped += 1
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    clone.set_weights(model.get_weights())
    return clone, swapped


def swap_activations(model: Any, mapping: Mapping[str, str]) -> Any:
    """Return a copy of a Keras model with activations swapped, e.g. `{"silu": "relu"}`.

    Swaps `activation=` arguments of any layer (Conv2D, Dense, Activation, ...), LeakyReLU
    layers, and layers of nested Sequential/Functional models. Keys: silu/swish,
    hard_swish/hard_silu, gelu, leaky_relu; values: relu or relu6. The weights are copied
    unchanged, so the new model must be fine-tuned before its accuracy means anything.
    """
    return swap_with_count(model, mapping)[0]
