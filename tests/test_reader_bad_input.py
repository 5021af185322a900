"""Every way the reader refuses a file: each `fail(...)` / `raise ModelError` site of
coralcheck/model/reader.py and flatbuf.py is reached by a test here, and the error is one line
naming the file and the problem. Then the same through the CLI: exit 2, one stderr line, no
traceback, nothing on stdout.
"""

from __future__ import annotations

import os
import struct
import time
import tracemalloc
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
import tflite
from conftest import FIXTURES, run_cli
from helpers.tflite_builder import (
    OpSpec,
    RawBuffer,
    SignatureSpec,
    SubgraphSpec,
    TensorSpec,
    add_model,
    build_model,
    locate,
    patch,
    patch_field,
    truncate,
    vtable,
    with_identifier,
)

from coralcheck import ModelError
from coralcheck.model import load

DEMO = FIXTURES / "demo_int8.tflite"


def refused(source: bytes | Path | str, *words: str, tmp_path: Path | None = None) -> str:
    """Load `source` (bytes are written to a .tflite file first when `tmp_path` is given),
    expect a one-line ModelError naming the file, and return its problem text."""
    if isinstance(source, bytes) and tmp_path is not None:
        path = tmp_path / "model.tflite"
        path.write_bytes(source)
        source = path
    with pytest.raises(ModelError) as info:
        load(source)
    error = info.value
    name = "<bytes>" if isinstance(source, bytes) else os.fspath(source)
    assert error.path == name
    message = str(error)
    assert message == f"{name}: {error.problem}"
    assert "\n" not in message and "\r" not in message
    assert error.exit_code == 2
    for word in words:
        assert word in error.problem, f"{word!r} not in {error.problem!r}"
    return error.problem


def _tensors(n: int = 2) -> list[TensorSpec]:
    return [TensorSpec(f"t{i}", [1, 4]) for i in range(n)]


# --- the file itself ----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    refused(tmp_path / "absent.tflite", "no such file")


def test_directory(tmp_path: Path) -> None:
    refused(tmp_path, "directory")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.tflite").write_bytes(b"")
    refused(tmp_path / "empty.tflite", "empty file")


def test_path_through_a_file(tmp_path: Path) -> None:
    """Any other OS error (here ENOTDIR) is reported with the system's reason."""
    (tmp_path / "file").write_bytes(add_model())
    refused(tmp_path / "file" / "model.tflite", "cannot read", "Not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.tflite"
    path.write_bytes(add_model())
    path.chmod(0)
    refused(path, "permission denied")


def test_permission_error_names_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a user without read access gets (the test above cannot run as root)."""
    from coralcheck.model import reader

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    path = tmp_path / "secret.tflite"
    path.write_bytes(add_model())
    monkeypatch.setattr(reader, "open_regular", denied)
    refused(path, "permission denied")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes: the reader must not open it."""
    fifo = tmp_path / "pipe.tflite"
    os.mkfifo(fifo)
    result = run_cli(str(fifo), timeout=30)
    assert result.returncode == 2
    assert "not a regular file" in result.stderr
    refused(fifo, "not a regular file")


@pytest.mark.parametrize("size", [1, 3, 15])
def test_tiny_files(tmp_path: Path, size: int) -> None:
    refused(add_model()[:size], "not a TFLite model", f"only {size} bytes", tmp_path=tmp_path)


OTHER_FORMATS = {
    "png": (b"\x89PNG\r\n\x1a\n" + bytes(range(64)), "PNG"),
    "jpeg": (b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(64), "JPEG"),
    "zip": (b"PK\x03\x04\x14\x00\x00\x00" + bytes(64), "zip"),
    "hdf5": (b"\x89HDF\r\n\x1a\n" + bytes(64), "HDF5"),
    "gzip": (b"\x1f\x8b\x08\x00" + bytes(64), "gzip"),
    "json": (b'{"model": "not really", "layers": [1, 2, 3]}', "JSON"),
    "onnx": (b"\x08\x07\x12\x07pytorch\x1a\x032.1" + bytes(64), "ONNX"),
}


@pytest.mark.parametrize("kind", OTHER_FORMATS)
def test_other_formats_named_tflite(tmp_path: Path, kind: str) -> None:
    data, name = OTHER_FORMATS[kind]
    refused(data, "not a TFLite model", name, tmp_path=tmp_path)


def test_random_bytes(tmp_path: Path) -> None:
    data = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    data = data[:4] + b"ABCD" + data[8:]  # random bytes could start with "TFL3" only by design
    refused(data, "not a TFLite model", "no 'TFL3' identifier", tmp_path=tmp_path)


def test_truncated_real_model_at_every_cut(tmp_path: Path) -> None:
    """A converter-made model cut anywhere is refused, quickly."""
    data = DEMO.read_bytes()
    start = time.perf_counter()
    for cut in range(len(data)):
        refused(truncate(data, cut))
    assert time.perf_counter() - start < 30
    refused(truncate(data, len(data) // 2), "lies outside the file", tmp_path=tmp_path)


def test_truncated_external_buffer_data() -> None:
    data = add_model(external_buffers=True)
    refused(truncate(data, len(data) - 1), "external buffer", "past the end of the file")


# --- flatbuffer structure (flatbuf.py) ------------------------------------------------------


def test_root_offset_outside_the_file(tmp_path: Path) -> None:
    refused(
        patch(add_model(), 0, "u32", 0xFFFFFF00), "model", "outside the file", tmp_path=tmp_path
    )


def test_vtable_outside_the_file() -> None:
    data = add_model()
    root = struct.unpack_from("<I", data, 0)[0]
    refused(patch(data, root, "i32", 0x7FFFFFF0), "vtable of model", "outside the file")
    refused(patch(data, root, "i32", -len(data)), "vtable of model", "outside the file")


@pytest.mark.parametrize("length", [0, 2, 7])
def test_vtable_with_invalid_length(length: int) -> None:
    data = add_model()
    vt, _, _ = vtable(data, struct.unpack_from("<I", data, 0)[0])
    refused(patch(data, vt, "u16", length), f"invalid length {length}")


def test_vtable_longer_than_the_file() -> None:
    data = add_model()
    vt, _, _ = vtable(data, struct.unpack_from("<I", data, 0)[0])
    refused(patch(data, vt, "u16", 0xFFFE), "vtable of model", "outside the file")


def test_table_longer_than_the_file() -> None:
    """The last table in the file claims 64 KB of fields."""
    data = add_model()
    count = locate(data, "buffers").length(data)
    last = max(locate(data, f"buffers[{i}]").target or 0 for i in range(count))
    vt, _, _ = vtable(data, last)
    refused(patch(data, vt + 2, "u16", 0xFFFF), "buffers[", "outside the file")


def test_field_overrunning_its_table() -> None:
    data = add_model()
    root = struct.unpack_from("<I", data, 0)[0]
    vt, _, obj_len = vtable(data, root)
    refused(patch(data, vt + 4, "u16", obj_len - 2), "field 0 of model", "overruns the table")


def test_offset_field_pointing_outside_the_file() -> None:
    data = add_model()
    loc = locate(data, "subgraphs")
    refused(patch(data, loc.field, "u32", 0x7FFF0000), "subgraphs of model", "outside the file")


def test_vector_element_pointing_outside_the_file() -> None:
    data = add_model()
    loc = locate(data, "subgraphs[0]")
    refused(patch(data, loc.field, "u32", 0x7FFF0000), "subgraphs", "outside the file")


def test_vector_length_past_the_end() -> None:
    data = add_model()
    length_at = locate(data, "subgraphs").target
    refused(patch(data, length_at, "u32", 0x7FFF0000), "subgraphs of model claims 2147418112")


def test_vector_length_word_outside_the_file() -> None:
    data = add_model()
    loc = locate(data, "subgraphs")
    refused(patch(data, loc.field, "u32", len(data) - loc.field - 2), "length of subgraphs")


@pytest.mark.parametrize(
    "path",
    [
        "subgraphs",
        "subgraphs[0].tensors",
        "subgraphs[0].operators",
        "subgraphs[0].tensors[1].shape",
        "subgraphs[0].tensors[0].name",
        "buffers",
        "buffers[1].data",
        "operator_codes",
        "description",
    ],
)
def test_vector_length_inflated_to_2_pow_31_fails_fast(path: str) -> None:
    """A forged length must be refused from its size alone: no allocation, no long loop."""
    data = add_model()
    length_at = locate(data, path).target
    corrupt = patch(data, length_at, "u32", 1 << 31)
    load(data)  # schema names read once, outside the measurement
    tracemalloc.start()
    start = time.perf_counter()
    try:
        problem = refused(corrupt, "claims 2147483648 elements", "bytes left in the file")
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 1 << 20, f"{peak} bytes allocated for a forged length"
    assert path.rsplit(".", 1)[-1].split("[")[0] in problem


def _shared_offsets_model(n_subgraphs: int, n_tensors: int, shape_len: int) -> bytes:
    """A small file whose subgraphs all point at one subgraph, whose tensors all point at one
    tensor with a long shape: a naive walk reads n_subgraphs * n_tensors * shape_len ints."""
    b = flatbuffers.Builder(1024)
    shape = b.CreateNumpyVector(np.ones(shape_len, np.int32))
    tflite.TensorStart(b)
    tflite.TensorAddShape(b, shape)
    tensor = tflite.TensorEnd(b)
    tflite.SubGraphStartTensorsVector(b, n_tensors)
    for _ in range(n_tensors):
        b.PrependUOffsetTRelative(tensor)
    tensors = b.EndVector()
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensors)
    subgraph = tflite.SubGraphEnd(b)
    tflite.ModelStartSubgraphsVector(b, n_subgraphs)
    for _ in range(n_subgraphs):
        b.PrependUOffsetTRelative(subgraph)
    subgraphs = b.EndVector()
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddSubgraphs(b, subgraphs)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_shared_offsets_cannot_make_the_reader_loop() -> None:
    """12 KB that a naive walk reads as 10^9 shape entries (a minute and gigabytes)."""
    data = _shared_offsets_model(1000, 1000, 1000)
    assert len(data) < 16_000
    start = time.perf_counter()
    refused(data, "again and again through shared offsets")
    assert time.perf_counter() - start < 1.0


def test_shared_options_vector_is_counted() -> None:
    """Option vectors count against the same read budget as every other vector."""
    b = flatbuffers.Builder(1024)
    new_shape = b.CreateNumpyVector(np.ones(2000, np.int32))
    tflite.ReshapeOptionsStart(b)
    tflite.ReshapeOptionsAddNewShape(b, new_shape)
    options = tflite.ReshapeOptionsEnd(b)
    inputs = b.CreateNumpyVector(np.array([], np.int32))
    tflite.OperatorStart(b)
    tflite.OperatorAddInputs(b, inputs)
    tflite.OperatorAddOutputs(b, inputs)
    tflite.OperatorAddBuiltinOptionsType(b, tflite.BuiltinOptions.ReshapeOptions)
    tflite.OperatorAddBuiltinOptions(b, options)
    op = tflite.OperatorEnd(b)
    tflite.SubGraphStartOperatorsVector(b, 3000)
    for _ in range(3000):
        b.PrependUOffsetTRelative(op)
    ops = b.EndVector()
    tflite.SubGraphStart(b)
    tflite.SubGraphAddOperators(b, ops)
    subgraph = tflite.SubGraphEnd(b)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddBuiltinCode(b, tflite.BuiltinOperator.RESHAPE)
    code = tflite.OperatorCodeEnd(b)
    tflite.ModelStartOperatorCodesVector(b, 1)
    b.PrependUOffsetTRelative(code)
    codes = b.EndVector()
    tflite.ModelStartSubgraphsVector(b, 1)
    b.PrependUOffsetTRelative(subgraph)
    subgraphs = b.EndVector()
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes)
    tflite.ModelAddSubgraphs(b, subgraphs)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    refused(bytes(b.Output()), "new_shape of builtin_options of operators[", "shared offsets")


# --- model semantics (reader.py) ------------------------------------------------------------


def test_a_custom_op_name_longer_than_any_identifier_is_refused() -> None:
    """A custom_code offset gone astray reads megabytes as the op's name, which every op of
    that code, every finding and every output format repeats (issue 12, item 18)."""
    from coralcheck.model.reader import MAX_CUSTOM_CODE_BYTES

    def model(name: str) -> bytes:
        return build_model(
            tensors=[TensorSpec("x", [1, 4], "FLOAT32"), TensorSpec("y", [1, 4], "FLOAT32")],
            ops=[OpSpec(f"CUSTOM:{name}", [0], [1])],
            inputs=[0],
            outputs=[1],
        )

    name = "x" * MAX_CUSTOM_CODE_BYTES
    assert load(model(name)).main.operators[0].custom_code == name
    problem = refused(model(name + "x"), "(custom_code) of operator_codes[0]")
    assert f"{MAX_CUSTOM_CODE_BYTES + 1:,} bytes long" in problem


def test_schema_version_2(tmp_path: Path) -> None:
    refused(add_model(version=2), "unsupported TFLite schema version 2", tmp_path=tmp_path)


def test_schema_version_2_without_identifier_says_so() -> None:
    """Files of schema v1/v2 had no identifier: name the version, not 'not a TFLite model'."""
    refused(add_model(version=2, identifier=None), "schema version 2")
    refused(add_model(version=1, identifier=None), "schema version 1")


def test_future_schema_version() -> None:
    refused(add_model(version=4), "unsupported TFLite schema version 4 (expected 3)")


def test_corrupt_model_without_identifier_is_not_a_model() -> None:
    data = add_model(identifier=None)
    length_at = locate(data, "subgraphs").target
    refused(patch(data, length_at, "u32", 1 << 31), "not a TFLite model", "no 'TFL3' identifier")


def test_wrong_identifier() -> None:
    refused(with_identifier(truncate(add_model(), 40), b"TFL2"), "not a TFLite model")


def test_no_subgraphs(tmp_path: Path) -> None:
    refused(build_model(subgraphs=[]), "no subgraphs")
    refused(build_model(subgraphs=[]), "corrupt model: no subgraphs", tmp_path=tmp_path)


def test_opcode_index_out_of_range() -> None:
    ops = [OpSpec("RELU", [0], [1], opcode_index=5)]
    refused(
        build_model(_tensors(), ops, [0], [1]),
        "operator 0 of subgraph 0 uses operator code 5, but there are 1",
    )


@pytest.mark.parametrize(
    ("op", "where"),
    [
        (OpSpec("RELU", [7], [1]), "operator 0 of subgraph 0 inputs names tensor 7"),
        (OpSpec("RELU", [0], [2]), "operator 0 of subgraph 0 outputs names tensor 2"),
        (OpSpec("RELU", [-2], [1]), "inputs names tensor -2"),
        (OpSpec("RELU", [0], [1], intermediates=[9]), "intermediates names tensor 9"),
    ],
)
def test_op_tensor_index_out_of_range(op: OpSpec, where: str) -> None:
    refused(build_model(_tensors(), [op], [0], [1]), where, "but there are 2")


@pytest.mark.parametrize(
    ("inputs", "outputs", "where"),
    [
        ([5], [1], "subgraph 0 inputs names tensor 5"),
        ([0], [2], "subgraph 0 outputs"),
        ([-1], [1], "tensor -1"),
    ],
)
def test_subgraph_tensor_index_out_of_range(inputs: list, outputs: list, where: str) -> None:
    ops = [OpSpec("RELU", [0], [1])]
    refused(build_model(_tensors(), ops, inputs, outputs), where)


def test_optional_input_minus_one_is_fine() -> None:
    tensors = [*_tensors(3), TensorSpec("w", [4, 4], data=np.zeros((4, 4), np.float32))]
    model = load(build_model(tensors, [OpSpec("FULLY_CONNECTED", [0, 3, -1], [1])], [0], [1]))
    assert model.main.operators[0].inputs == (0, 3, -1)


def test_tensor_in_the_second_subgraph_out_of_range() -> None:
    main = SubgraphSpec(_tensors(), [OpSpec("RELU", [0], [1])], [0], [1])
    bad = SubgraphSpec(_tensors(), [OpSpec("RELU", [0], [3])], [0], [1])
    refused(build_model(subgraphs=[main, bad]), "operator 0 of subgraph 1 outputs")


def test_buffer_index_out_of_range() -> None:
    tensors = [TensorSpec("t0", [1, 4], buffer=9), TensorSpec("t1", [1, 4])]
    refused(
        build_model(tensors, [OpSpec("RELU", [0], [1])], [0], [1]),
        "tensor 0 of subgraph 0 uses buffer 9, but there are",
    )


def test_external_buffer_past_the_end() -> None:
    tensors = [TensorSpec("t0", [1, 4], buffer=1), TensorSpec("t1", [1, 4])]
    data = build_model(
        tensors, [OpSpec("RELU", [0], [1])], [0], [1], buffers=[RawBuffer(offset=1 << 20, size=16)]
    )
    refused(data, "external buffer 1 (16 bytes at offset 1048576)", "past the end of the file")


def test_external_buffer_size_past_the_end() -> None:
    data = add_model(external_buffers=True)
    refused(patch_field(data, "buffers[1].size", 1 << 40), "external buffer 1", "past the end")


def test_large_custom_options_past_the_end() -> None:
    op = OpSpec(
        "CUSTOM:Big", [0], [1], large_custom_options_offset=1 << 30, large_custom_options_size=8
    )
    refused(
        build_model(_tensors(), [op], [0], [1]),
        "large custom options of operator 0 of subgraph 0",
        "outside the file",
    )


def test_metadata_naming_a_missing_buffer() -> None:
    data = add_model(min_runtime_version="1.14.0")
    refused(
        patch_field(data, "metadata[0].buffer", 77),
        "metadata 'min_runtime_version' uses missing buffer 77",
    )


def test_signature_naming_a_missing_subgraph() -> None:
    data = add_model(signature_defs=[SignatureSpec("serving_default", {"x": 0}, subgraph=4)])
    refused(data, "signature names missing subgraph 4")


def test_signature_naming_a_missing_tensor() -> None:
    data = add_model(signature_defs=[SignatureSpec("serving_default", {"x": 0}, {"y": 30})])
    refused(data, "signature outputs name missing tensor 30")


def _reshape_model() -> bytes:
    op = OpSpec("RESHAPE", [0], [1], {"new_shape": [1, 4]})
    return build_model(_tensors(), [op], [0], [1])


@pytest.mark.parametrize("length", [1 << 31, 1000])
def test_corrupt_options_vector(length: int) -> None:
    data = _reshape_model()
    new_shape = locate(data, "subgraphs[0].operators[0].builtin_options.@0:[i32]")
    assert struct.unpack_from("<I", data, new_shape.target)[0] == 2
    refused(
        patch(data, new_shape.target, "u32", length),
        "new_shape of builtin_options of operators[0] of subgraphs[0] of model",
        f"claims {length} elements",
    )


def test_options_field_pointing_outside_the_file() -> None:
    data = _reshape_model()
    options = locate(data, "subgraphs[0].operators[0].builtin_options").target
    assert options is not None
    vt, _, _ = vtable(data, options)
    refused(
        patch(data, vt + 4, "u16", 60000),
        "field 0 of builtin_options of operators[0] of subgraphs[0]",
        "overruns the table",
    )


def test_options_table_outside_the_file() -> None:
    data = _reshape_model()
    loc = locate(data, "subgraphs[0].operators[0].builtin_options")
    refused(patch(data, loc.field, "u32", 1 << 30), "builtin_options of", "outside the file")


def test_bad_input_never_leaves_the_file_changed(tmp_path: Path) -> None:
    data = patch(add_model(), 0, "u32", 0xFFFFFF00)
    path = tmp_path / "bad.tflite"
    path.write_bytes(data)
    refused(path)
    assert path.read_bytes() == data


# --- through the CLI ----------------------------------------------------------------------


def _corrupt_vtable() -> bytes:
    data = add_model()
    vt, _, _ = vtable(data, struct.unpack_from("<I", data, 0)[0])
    return patch(data, vt, "u16", 7)


CLI_CASES = {
    "missing": (None, "no such file"),
    "empty": (b"", "empty file"),
    "three_bytes": (b"TFL", "only 3 bytes"),
    "png": (OTHER_FORMATS["png"][0], "PNG"),
    "truncated": (truncate(DEMO.read_bytes(), 5000), "outside the file"),
    "vtable": (_corrupt_vtable(), "invalid length 7"),
    "inflated_vector": (
        patch(add_model(), locate(add_model(), "subgraphs[0].tensors").target, "u32", 1 << 31),
        "claims 2147483648 elements",
    ),
    "schema_v2": (add_model(version=2), "schema version 2"),
    "no_subgraphs": (build_model(subgraphs=[]), "no subgraphs"),
    "options": (
        patch(
            _reshape_model(),
            locate(_reshape_model(), "subgraphs[0].operators[0].builtin_options.@0:[i32]").target,
            "u32",
            1 << 31,
        ),
        "new_shape of builtin_options",
    ),
}


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_bad_file(tmp_path: Path, case: str) -> None:
    data, problem = CLI_CASES[case]
    path = tmp_path / f"{case}.tflite"
    if data is not None:
        path.write_bytes(data)
    result = run_cli(str(path))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"coralcheck: error: {path}: ")
    assert problem in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_directory(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"coralcheck: error: {tmp_path}: ")
    assert len(result.stderr.splitlines()) == 1
