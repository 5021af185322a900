"""The records of a compiled model's Edge TPU segments (`coralcheck.model.edgetpu`): a segment
holds packages, a package executables, an executable its input and output layers; with the
enums and limits of `shared/edgetpu/compiled-model-format.md` §3 (libedgetpu executable.fbs).
"""

from __future__ import annotations

from typing import NamedTuple

PACKAGE_IDENTIFIER = b"DWN1"

# Executable.type (enum ExecutableType : short); absent means STAND_ALONE.
STAND_ALONE, PARAMETER_CACHING, EXECUTION_ONLY = 0, 1, 2
EXECUTABLE_TYPES = {
    STAND_ALONE: "STAND_ALONE",
    PARAMETER_CACHING: "PARAMETER_CACHING",
    EXECUTION_ONLY: "EXECUTION_ONLY",
}

# Layer.data_type (enum DataType : short) → (name, bytes per element).
LAYER_DATA_TYPES: dict[int, tuple[str, int]] = {
    0: ("FIXED_POINT8", 1),
    1: ("FIXED_POINT16", 2),
    2: ("SIGNED_FIXED_POINT32", 4),
    3: ("BFLOAT", 2),
    4: ("HALF", 2),
    5: ("SINGLE", 4),
    8: ("SIGNED_FIXED_POINT8", 1),
    9: ("SIGNED_FIXED_POINT16", 2),
}
SIGNED_LAYER_TYPES = {8, 9}

# Output layers with this name suffix are the state write-backs of variable tensors (LSTM);
# they have no TFLite output tensor (libedgetpu tflite/custom_op.cc).
VARIABLE_OUTPUT_SUFFIX = "_variable_output"

# Executables in one package: the runtime loads 1, 2 or 3 (libedgetpu package_registry.cc); a
# few more still get a finding (C006), a longer list is a corrupt or hostile file.
MAX_EXECUTABLES = 8


class Layer(NamedTuple):
    """One TPU-side input or output of an executable (table `Layer`).

    `y_dim`/`x_dim`/`z_dim` are 1 when the dimension is absent. `zero_point` is the layer's own
    (for signed types shifted into the unsigned range: +128 or +32768); `scale` is the
    dequantization factor. `shape` holds the inclusive (start, end) range of each dimension when
    the compiler wrote one (outputs of current-format files).
    """

    name: str
    size_bytes: int
    y_dim: int
    x_dim: int
    z_dim: int
    zero_point: int | None
    scale: float | None
    data_type: int
    execution_count_per_inference: int
    cache_on_dram: bool
    shape: tuple[tuple[int, int], ...]

    @property
    def data_type_name(self) -> str:
        known = LAYER_DATA_TYPES.get(self.data_type)
        return known[0] if known else f"UNKNOWN({self.data_type})"

    @property
    def element_bytes(self) -> int | None:
        known = LAYER_DATA_TYPES.get(self.data_type)
        return known[1] if known else None

    @property
    def is_signed(self) -> bool:
        return self.data_type in SIGNED_LAYER_TYPES

    @property
    def is_variable_output(self) -> bool:
        return self.name.endswith(VARIABLE_OUTPUT_SUFFIX)


class Executable(NamedTuple):
    """One executable of a package (table `Executable`); sizes in bytes.

    `parameter_bytes` is the length of the parameter stream: for a PARAMETER_CACHING executable
    the bytes cached in on-chip SRAM, for the main one the bytes streamed from the host on every
    inference. `estimated_cycles` is 0 when the compiler did not record it.
    """

    version: int
    name: str
    type: int
    batch_size: int
    scratch_size_bytes: int
    parameter_bytes: int
    instruction_bytes: int
    serialized_model_bytes: int
    input_layers: tuple[Layer, ...]
    output_layers: tuple[Layer, ...]
    chip: str | None
    estimated_cycles: int
    estimated_cycles_32bit: int
    used_narrow_memory_bytes_per_tile: int
    parameter_caching_token: int
    use_tpu_dram_for_parameters: bool

    @property
    def type_name(self) -> str:
        return EXECUTABLE_TYPES.get(self.type, f"UNKNOWN({self.type})")


class Package(NamedTuple):
    """One package (table `Package`, file identifier "DWN1") and its executables.

    `layout` is "DWN1", "no-identifier" (read as a Package although bytes 4..7 are not "DWN1";
    the runtime only warns) or "legacy" (the 2019 layout: bare executables, no Package, so no
    runtime or compiler version). `compiler_version` is the raw field, "cl/<changelist>".
    """

    layout: str
    min_runtime_version: int | None
    compiler_version: str | None
    keypair_version: int
    signature_bytes: int
    virtual_chip_id: int
    multi_chip_packages: int
    model_identifier: str | None
    executables: tuple[Executable, ...]

    @property
    def compiler_changelist(self) -> int | None:
        """The compiler's changelist number ("cl/343520747" → 343520747); None when empty."""
        text = (self.compiler_version or "").removeprefix("cl/")
        return int(text) if text.isdigit() and len(text) < 19 else None

    def main_executable(self) -> Executable | None:
        """The executable the runtime runs, chosen as libedgetpu's package registry does.

        1 executable: that one; 2 = {PARAMETER_CACHING, EXECUTION_ONLY}: the EXECUTION_ONLY one;
        3 = all three types: STAND_ALONE. A legacy package runs its key-"4" executable. Any other
        combination is one the runtime rejects: None.
        """
        execs = self.executables
        if self.layout == "legacy":
            return execs[0] if execs else None
        if len(execs) == 1:
            return execs[0]
        types = sorted(e.type for e in execs)
        if types == [PARAMETER_CACHING, EXECUTION_ONLY]:
            return next(e for e in execs if e.type == EXECUTION_ONLY)
        if types == [STAND_ALONE, PARAMETER_CACHING, EXECUTION_ONLY]:
            return next(e for e in execs if e.type == STAND_ALONE)
        return None

    def caching_executable(self) -> Executable | None:
        """The PARAMETER_CACHING executable that fills the on-chip cache, when one is used.

        Only with the {PARAMETER_CACHING, EXECUTION_ONLY} pair (with all three types the runtime
        runs STAND_ALONE and ignores it), and the key-"3" executable of a legacy package.
        """
        execs = self.executables
        if self.layout == "legacy":
            return execs[1] if len(execs) > 1 else None
        if sorted(e.type for e in execs) == [PARAMETER_CACHING, EXECUTION_ONLY]:
            return next(e for e in execs if e.type == PARAMETER_CACHING)
        return None


class Segment(NamedTuple):
    """One `edgetpu-custom-op` node: its custom-option keys and its decoded packages.

    `keys` are the FlexBuffer map keys present. `data_version` is key "1", `chip_name` the
    deprecated key "2" (legacy files), `execution_preference` key "5", `chip_enums` key "6"
    (None when absent). `packages[0]` comes from key "4", the rest from key "7".
    """

    subgraph: int
    op_index: int
    keys: tuple[str, ...]
    data_version: int | None
    chip_name: str | None
    execution_preference: int | None
    chip_enums: tuple[int, ...] | None
    extra_package_count: int
    packages: tuple[Package, ...]

    @property
    def package(self) -> Package:
        return self.packages[0]

    @property
    def legacy(self) -> bool:
        return self.package.layout == "legacy"
