"""M: memory. Parameters the Edge TPU caches on-chip, and what is streamed every inference."""

from __future__ import annotations

from collections.abc import Iterator

from coralcheck.checks.context import CheckContext
from coralcheck.registry import finding, rule
from coralcheck.report import Finding
from coralcheck.wording import human_bytes


@rule("M001")
def parameters_off_chip(ctx: CheckContext) -> Iterator[Finding]:
    """The parameters of the Edge TPU part do not fit the on-chip cache.

    The Edge TPU caches parameters in about 8 MiB of on-chip SRAM. What does not fit is stored
    in the model file and streamed from host memory on every inference, which slows it down
    considerably, most over USB (VGG-size models run many times slower than their MAC count
    suggests). The estimate counts the compiler's padding of filters (rules/compilers.toml
    [memory]); the compiler's "Off-chip memory used" line gives the real figure.
    """
    m = ctx.memory
    if m.off_chip_bytes <= 0:
        return
    yield finding(
        "M001",
        f"~{human_bytes(m.parameter_bytes)} of parameters on the Edge TPU for "
        f"{human_bytes(m.cache_bytes)} of on-chip cache (compiler {ctx.target.release.short}): "
        f"~{human_bytes(m.off_chip_bytes)} streamed every inference",
    )


@rule("M002")
def parameters_near_cache(ctx: CheckContext) -> Iterator[Finding]:
    """The parameters nearly fill the on-chip cache, which they share with other data.

    The 8 MiB of on-chip SRAM also holds activations and instructions: real compiles left 7.0 to
    7.5 MiB for parameters in mid-size models. A model close to the limit may stream part of its
    parameters (see the compiler's "Off-chip memory used" line), and co-compiled models share
    the cache.
    """
    m = ctx.memory
    share = float(ctx.target.knowledge.memory.get("near_cache_share", 0.85))
    if m.off_chip_bytes > 0 or m.parameter_bytes < share * m.cache_bytes:
        return
    yield finding(
        "M002",
        f"~{human_bytes(m.parameter_bytes)} of parameters for {human_bytes(m.cache_bytes)} of "
        f"on-chip cache ({100 * m.parameter_bytes / m.cache_bytes:.0f}%)",
    )
