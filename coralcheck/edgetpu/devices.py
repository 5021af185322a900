"""The Coral devices and the latency model's coefficients: rules/devices.toml as typed data.

`latency_model()` reads it once; `device(name)` and `check_clock(name)` check what `--device`
and `--clock` name (the settings check them too, see coralcheck.config_keys). The estimate that
uses them is coralcheck.analyze.latency.
"""

from functools import cache
from typing import NamedTuple

from coralcheck.edgetpu.knowledge import load_toml
from coralcheck.errors import UsageError

CLOCKS = ("max", "std")


class Device(NamedTuple):
    """A Coral device as the latency model sees it (rules/devices.toml [device.NAME])."""

    name: str
    description: str
    link: str
    invoke_ms: float
    link_mb_per_s: float
    relative_error: float  # held-out error of the Edge TPU part (the range's half-width)
    host: str
    cpu_scale: float
    cpu_low: float
    cpu_high: float

    def transfer_ms(self, nbytes: float) -> float:
        """Milliseconds to move `nbytes` over the link (1 MB = 10^6 bytes)."""
        return nbytes / (self.link_mb_per_s * 1e3)


class LatencyModel(NamedTuple):
    """rules/devices.toml, read: devices, Edge TPU coefficients and CPU rates."""

    devices: dict[str, Device]
    clock_mhz: dict[str, float]
    ms_per_work: dict[str, float]  # kind of `tpu_op_work` -> ms at 500 MHz per unit of work
    granularity: int
    free_ops: frozenset[str]
    compiler_cycles_scale: float
    near_cache_share: float
    cpu_conv_ns_per_mac: float
    cpu_depthwise_ns_per_mac: float
    cpu_op_us: float
    cpu_ns_per_element: dict[str, float]
    cpu_runtime_factor: float  # the Edge TPU runtime's TFLite against today's LiteRT
    cpu_runtime_range: tuple[float, float]


@cache
def latency_model() -> LatencyModel:
    """The latency model's data, read once."""
    data = load_toml("devices.toml")
    tpu, cpu, hosts = data["tpu"], data["cpu"], data["host"]
    devices = {}
    for name, d in data["device"].items():
        host = hosts[d["host"]]
        devices[name] = Device(
            name=name,
            description=d["description"],
            link=d["link"],
            invoke_ms=float(d["invoke_ms"]),
            link_mb_per_s=float(d["link_mb_per_s"]),
            relative_error=float(d["relative_error"]),
            host=host["description"],
            cpu_scale=float(host["scale"]),
            cpu_low=float(host["low"]),
            cpu_high=float(host["high"]),
        )
    return LatencyModel(
        devices=devices,
        clock_mhz={k: float(v) for k, v in tpu["clock_mhz"].items()},
        ms_per_work={
            "conv": float(tpu["conv_ms_per_gmac"]),
            "depthwise": float(tpu["depthwise_ms_per_gmac"]),
            "elementwise": float(tpu["elementwise_ms_per_melement"]),
            "free": 0.0,
        },
        granularity=int(tpu["channel_granularity"]),
        free_ops=frozenset(tpu["free_ops"]),
        compiler_cycles_scale=float(tpu["compiler_cycles_scale"]),
        near_cache_share=float(tpu["near_cache_share"]),
        cpu_conv_ns_per_mac=float(cpu["conv_ns_per_mac"]),
        cpu_depthwise_ns_per_mac=float(cpu["depthwise_ns_per_mac"]),
        cpu_op_us=float(cpu["op_us"]),
        cpu_ns_per_element={k: float(v) for k, v in cpu["ns_per_element"].items()},
        cpu_runtime_factor=float(cpu["runtime_factor"]),
        cpu_runtime_range=(
            float(cpu["runtime_factor_range"][0]),
            float(cpu["runtime_factor_range"][1]),
        ),
    )


def device_names() -> list[str]:
    """Every device name `--device` accepts, in the data file's order."""
    return list(latency_model().devices)


def device(name: str, where: str = "--device") -> Device:
    """The device called `name`; an unknown name is a usage error listing the valid ones."""
    found = latency_model().devices.get(name)
    if found is None:
        raise UsageError(where, f"unknown device {name!r} (valid: {', '.join(device_names())})")
    return found


def check_clock(name: str, where: str = "--clock") -> str:
    """`name` if it is a clock of `CLOCKS`; else a usage error listing them."""
    if name not in CLOCKS:
        raise UsageError(where, f"unknown clock {name!r} (valid: {', '.join(CLOCKS)})")
    return name
