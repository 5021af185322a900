"""What an analysis run is asked to do: the merged result of defaults, config and the CLI."""

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

DEFAULT_COMPILER_VERSION = "16.0"
DEFAULT_RUNTIME_VERSION = 14
DEFAULT_DEVICE = "usb3"  # rules/devices.toml [device.*]
DEFAULT_CLOCK = "max"  # libedgetpu1-max; "std" is libedgetpu1-std's reduced clock


class Options(NamedTuple):
    compiler_version: str = DEFAULT_COMPILER_VERSION
    runtime_version: int = DEFAULT_RUNTIME_VERSION
    # Predict for `edgetpu_compiler -a` (--enable_multiple_subgraphs): several Edge TPU segments.
    enable_multiple_subgraphs: bool = False
    # Pair mode: the compiled twin of the model (`--compiled X_edgetpu.tflite`).
    compiled_path: str | None = None
    # Run the real edgetpu_compiler (`--compile`).
    compile: bool = False
    compiler_path: str | None = None
    compile_output: str | None = None
    compiler_timeout: float = 180.0
    compiler_flags: tuple[str, ...] = ()
    # `--force`: a compile may replace an existing X_edgetpu.tflite/.log in `compile_output`.
    force: bool = False
    # Rule selection (ruff-style code prefixes) and severity overrides.
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    # Code or prefix -> severity. The default is read-only: it is shared by every Options.
    severity: Mapping[str, str] = MappingProxyType({})
    # Record every op's tensor shapes in the report (`-v` shows them).
    op_shapes: bool = False
    # Record the main subgraph's data flow in the report (`ModelReport.graph`): the HTML and
    # Model Explorer formats draw it; the others do not need it.
    graph: bool = False
    # The latency estimate's device (rules/devices.toml) and Edge TPU clock ("max" | "std").
    device: str = DEFAULT_DEVICE
    clock: str = DEFAULT_CLOCK

    def __reduce__(self) -> "tuple[type[Options], tuple[object, ...]]":
        # The read-only default cannot be pickled (options go to worker processes): a dict can.
        return type(self), tuple(dict(v) if type(v) is MappingProxyType else v for v in self)
