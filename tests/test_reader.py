"""The reader against independent ground truth.

- fixtures/: every field checked against fixtures/manifest.json, which TensorFlow's own
  Interpreter wrote when it made the files.
- ../shared/corpus: against summary.csv (op histograms, I/O, constants, metadata).
- tflite_builder models: what no converter emits (unknown op codes, rank 6, several or empty
  subgraphs, custom ops, external buffers, no identifier, signature defs, metadata).
- TensorFlow's interpreter (only in tests marked `tensorflow`): constant values, tensor details.
"""

from __future__ import annotations

import csv
import re
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, FIXTURES, manifest_entries
from helpers.tflite_builder import (
    OpCode,
    OpSpec,
    SignatureSpec,
    SubgraphSpec,
    TensorSpec,
    add_model,
    build_model,
    builtin_code,
    locate,
    patch_field,
)

import coralcheck
from coralcheck.model import Model, load
from coralcheck.model.schema import NUMPY_DTYPES

# tf.lite.Interpreter warns that it is deprecated in favour of LiteRT: it is the reference here.
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")

ENTRIES = manifest_entries()
FIXTURE_IDS = [e["file"] for e in ENTRIES]


@pytest.fixture(scope="module", params=ENTRIES, ids=FIXTURE_IDS)
def fixture(request: pytest.FixtureRequest) -> tuple[dict, Model]:
    entry = request.param
    return entry, load(FIXTURES / entry["file"])


# --- converter-made fixtures vs. TensorFlow's manifest -----------------------------------


def test_manifest_lists_fixtures() -> None:
    assert len(ENTRIES) >= 10, "fixtures/manifest.json is missing or nearly empty"


def test_file_and_subgraphs(fixture: tuple[dict, Model]) -> None:
    entry, model = fixture
    assert model.file_size == entry["size_bytes"]
    assert model.version == 3
    assert model.has_identifier
    assert len(model.subgraphs) == entry["subgraphs"]
    assert [sg.name for sg in model.subgraphs] == entry["subgraph_names"]
    assert [sg.index for sg in model.subgraphs] == list(range(entry["subgraphs"]))


def test_ops_in_order_with_versions(fixture: tuple[dict, Model]) -> None:
    entry, model = fixture
    got = [[op.index, op.opcode, op.version] for op in model.main.operators]
    assert got == entry["ops"]


def test_op_inputs_and_outputs(fixture: tuple[dict, Model]) -> None:
    entry, model = fixture
    assert [list(op.inputs) for op in model.main.operators] == entry["op_inputs"]
    assert [list(op.outputs) for op in model.main.operators] == entry["op_outputs"]


def test_other_subgraph_ops(fixture: tuple[dict, Model]) -> None:
    entry, model = fixture
    got = [[[op.index, op.opcode, op.version] for op in sg.operators] for sg in model.subgraphs[1:]]
    assert got == entry["other_subgraph_ops"]


def test_graph_inputs_and_outputs(fixture: tuple[dict, Model]) -> None:
    entry, model = fixture
    assert list(model.main.inputs) == entry["inputs"]
    assert list(model.main.outputs) == entry["outputs"]
    assert len(model.main.tensors) == entry["num_tensors"]


def test_tensors(fixture: tuple[dict, Model]) -> None:
    entry, model = fixture
    tensors = model.main.tensors
    assert len(entry["tensors"]) + len(entry["tensors_omitted_by_interpreter"]) == len(tensors)
    for want in entry["tensors"]:
        t = tensors[want["index"]]
        assert t.index == want["index"]
        assert t.name == want["name"]
        assert t.dtype == want["dtype"], t.name
        assert list(t.shape) == want["shape"], t.name
        signature = t.shape_signature if t.shape_signature is not None else t.shape
        assert list(signature) == want["shape_signature"], t.name


def test_quantization(fixture: tuple[dict, Model]) -> None:
    entry, model = fixture
    for want in entry["tensors"]:
        t = model.main.tensors[want["index"]]
        q = t.quantization
        scales = list(q.scale) if q else []
        zero_points = list(q.zero_point) if q else []
        # The manifest holds the exact Python float of each float32 scale.
        assert scales == [float(np.float32(s)) for s in want["quantization"]["scales"]], t.name
        assert zero_points == want["quantization"]["zero_points"], t.name
        if q is not None:
            assert q.quantized_dimension == want["quantization"]["quantized_dimension"], t.name
            assert q.per_channel == (len(want["quantization"]["scales"]) > 1)
        assert t.is_quantized == bool(want["quantization"]["scales"])


def test_dynamic_batch_fixture_is_dynamic() -> None:
    model = load(FIXTURES / "dynamic_batch_int8.tflite")
    inp = model.main.tensors[model.main.inputs[0]]
    assert inp.shape == (1, 32, 32, 3)
    assert inp.shape_signature == (-1, 32, 32, 3)
    assert inp.is_dynamic
    assert not load(FIXTURES / "demo_int8.tflite").main.tensors[0].is_dynamic


def test_demo_options_match_the_model_description() -> None:
    """fixtures/README.md: Conv 3x3/2 with ReLU, DepthwiseConv with ReLU6, pools of 2."""
    ops = load(FIXTURES / "demo_int8.tflite").main.operators
    conv1, dwconv, _, maxpool, avgpool = ops[1:6]
    assert conv1.options_type == "Conv2DOptions"
    assert conv1.options["fused_activation_function"] == "RELU"
    assert (conv1.options["stride_w"], conv1.options["stride_h"]) == (2, 2)
    assert conv1.options["padding"] in ("SAME", "VALID")
    assert dwconv.options["fused_activation_function"] == "RELU6"
    assert dwconv.options["depth_multiplier"] == 1
    for pool in (maxpool, avgpool):
        assert pool.options_type == "Pool2DOptions"
        assert pool.options["filter_width"] == pool.options["filter_height"] == 2
    fc = ops[7]
    assert fc.opcode == "FULLY_CONNECTED"
    assert fc.inputs[2] == -1  # no bias: omitted optional input
    assert len(load(FIXTURES / "demo_int8.tflite").main.op_inputs(fc)) == 2


def test_while_options_name_its_subgraphs() -> None:
    model = load(FIXTURES / "while_loop.tflite")
    (loop,) = [op for op in model.main.operators if op.opcode == "WHILE"]
    cond, body = loop.options["cond_subgraph_index"], loop.options["body_subgraph_index"]
    assert model.subgraphs[cond].name.endswith("while_cond")
    assert model.subgraphs[body].name.endswith("while_body")


def _check_producers_consumers(model: Model) -> None:
    for sg in model.subgraphs:
        for op in sg.operators:
            for t in op.outputs:
                if t >= 0:
                    assert sg.producers[t] == op.index
                    assert sg.producer_of(t) is op
            for t in op.inputs:
                if t >= 0:
                    assert op.index in sg.consumers[t]
                    assert op in sg.consumers_of(t)
            for p in sg.predecessors(op):
                assert set(sg.operators[p].outputs) & set(op.inputs)
            for s in sg.successors(op):
                assert set(sg.operators[s].inputs) & set(op.outputs)
        for t, producer in enumerate(sg.producers):
            if producer is not None:
                assert t in sg.operators[producer].outputs
        for t, consumers in enumerate(sg.consumers):
            assert list(consumers) == sorted(set(consumers)), "in op order, each op once"
            for c in consumers:
                assert t in sg.operators[c].inputs
        for t in sg.inputs:
            assert sg.producers[t] is None
        for t in sg.tensors:
            if t.is_constant:
                assert sg.producers[t.index] is None


def test_producers_and_consumers(fixture: tuple[dict, Model]) -> None:
    _check_producers_consumers(fixture[1])


def test_demo_graph_is_a_chain() -> None:
    """The demo CNN is a straight line: op i feeds op i+1 and nothing else."""
    sg = load(FIXTURES / "demo_int8.tflite").main
    for op in sg.operators:
        want_pred = [op.index - 1] if op.index else []
        want_succ = [op.index + 1] if op.index + 1 < len(sg.operators) else []
        assert sg.predecessors(op) == want_pred
        assert sg.successors(op) == want_succ


def test_tensor_data_is_a_read_only_view_of_the_file_data() -> None:
    """A view of the bytes the reader holds: the file read whole (small files, see
    `reader.READ_WHOLE_BYTES`), never a copy per tensor."""
    model = load(FIXTURES / "demo_int8.tflite")
    weights = next(t for t in model.main.tensors if t.is_constant and t.dtype == "INT8")
    view = model.tensor_data(weights)
    assert view.shape == weights.shape
    assert view.dtype == np.int8
    assert not view.flags.writeable
    assert not view.flags.owndata
    base = view
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    assert base is model._data, "tensor_data must not copy the file"
    raw = (FIXTURES / "demo_int8.tflite").read_bytes()
    start = weights.data_offset
    assert view.tobytes() == raw[start : start + weights.data_size]
    assert weights.data_size == weights.nbytes
    assert model.tensor_data(model.main.tensors[0]) is None  # the input has no data


def test_scalar_constant_keeps_its_rank() -> None:
    """A rank-0 constant (RESHAPE's batch) is a 0-d array, as TFLite's get_tensor gives it."""
    model = load(FIXTURES / "dynamic_batch_int8.tflite")
    scalars = [t for t in model.main.tensors if t.is_constant and t.shape == ()]
    assert scalars, "the fixture has a scalar int32 constant"
    for t in scalars:
        assert model.tensor_data(t).shape == ()


# --- TensorFlow's interpreter as the reference --------------------------------------------


@pytest.fixture(scope="module")
def tf():  # type: ignore[no-untyped-def]
    return pytest.importorskip("tensorflow")


def _tf_interpreter(tf, path: Path):  # type: ignore[no-untyped-def]
    interpreter = tf.lite.Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    return interpreter


@pytest.mark.tensorflow
@pytest.mark.parametrize("file", FIXTURE_IDS)
def test_constant_values_match_tensorflow(tf, file: str) -> None:  # type: ignore[no-untyped-def]
    model = load(FIXTURES / file)
    interpreter = _tf_interpreter(tf, FIXTURES / file)
    constants = [t for t in model.main.tensors if t.is_constant]
    assert constants
    for t in constants:
        ours = model.tensor_data(t)
        theirs = interpreter.get_tensor(t.index)
        assert ours.dtype == theirs.dtype, t.name
        assert ours.shape == theirs.shape, t.name
        np.testing.assert_array_equal(ours, theirs, err_msg=t.name)


def _corpus_sources() -> list[Path]:
    if not (CORPUS / "summary.csv").exists():
        return []
    rows = csv.DictReader((CORPUS / "summary.csv").open(encoding="utf-8"))
    return [
        CORPUS / r["local_path"]
        for r in rows
        if r["kind"] == "source" and not r["other_custom_ops"] and r["parse_ok"] == "yes"
    ]


@pytest.mark.tensorflow
@pytest.mark.parametrize("path", _corpus_sources(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_tensors_match_tensorflow(tf, path: Path) -> None:  # type: ignore[no-untyped-def]
    model = load(path)
    interpreter = _tf_interpreter(tf, path)
    n = len(model.main.tensors)
    # The interpreter adds its own temporaries (im2col...) after the file's tensors.
    details = [d for d in interpreter.get_tensor_details() if d["index"] < n]
    assert {d["index"] for d in details} == set(range(n))
    for d in details:
        t = model.main.tensors[d["index"]]
        assert t.name == d["name"]
        assert list(t.shape) == list(d["shape"]), t.name
        signature = t.shape_signature if t.shape_signature is not None else t.shape
        assert list(signature) == list(d["shape_signature"]), t.name
        assert np.dtype(d["dtype"]) == np.dtype(NUMPY_DTYPES[t.dtype]), t.name
        scales = d["quantization_parameters"]["scales"]
        q = t.quantization
        np.testing.assert_array_equal(np.asarray(q.scale if q else (), np.float32), scales)
        if t.is_constant and t.dtype in ("UINT8", "INT8", "INT32"):
            np.testing.assert_array_equal(model.tensor_data(t), interpreter.get_tensor(t.index))
    ops = interpreter._get_ops_details()
    assert [op["op_name"] for op in ops] == [op.opcode for op in model.main.operators]
    for theirs, ours in zip(ops, model.main.operators, strict=True):
        assert list(theirs["inputs"]) == list(ours.inputs)
        assert list(theirs["outputs"]) == list(ours.outputs)


# --- the real corpus vs. summary.csv -----------------------------------------------------


def _summary_rows() -> list[dict[str, str]]:
    if not (CORPUS / "summary.csv").exists():
        return []
    with (CORPUS / "summary.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _histogram(text: str) -> dict[str, int]:
    if not text:
        return {}
    return {k: int(v) for k, v in (item.rsplit(":", 1) for item in text.split(";"))}


def _io(text: str) -> list[tuple[str, list[int]]]:
    return [
        (dtype, [int(d) for d in dims.split(",") if d.strip()])
        for dtype, dims in re.findall(r"(\w+)\[([^\]]*)\]", text)
    ]


@pytest.mark.parametrize(
    "row", _summary_rows(), ids=lambda r: r["local_path"].removeprefix("models/")
)
def test_corpus_model_matches_summary(row: dict[str, str]) -> None:
    path = CORPUS / row["local_path"]
    if not path.exists():
        pytest.skip(f"{path} is not in the corpus")
    assert row["parse_ok"] == "yes"
    model = load(path)
    sg = model.main
    assert model.version == int(row["schema_version"])
    assert len(model.subgraphs) == int(row["subgraphs"])
    assert len(sg.operators) == int(row["operator_count"])
    builtins = [op for op in sg.operators if not op.is_custom]
    assert len(builtins) == int(row["n_builtin"])
    assert dict(Counter(op.opcode for op in builtins)) == _histogram(row["builtin_ops"])
    assert sum(op.is_edgetpu for op in sg.operators) == int(row["edgetpu_custom_ops"] or 0)
    others = Counter(op.custom_code for op in sg.operators if op.is_custom and not op.is_edgetpu)
    assert dict(others) == _histogram(row["other_custom_ops"])
    assert model.is_compiled == (row["kind"] == "compiled")
    for role, indices in (("inputs", sg.inputs), ("outputs", sg.outputs)):
        got = [(sg.tensors[i].dtype, list(sg.tensors[i].shape)) for i in indices]
        assert got == _io(row[role]), role
    constants = Counter(t.dtype for t in sg.tensors if t.is_constant)
    assert dict(constants) == _histogram(row["const_tensor_dtypes"])
    assert sorted(model.metadata) == sorted(filter(None, row["metadata"].split(";")))
    _check_producers_consumers(model)


def test_corpus_min_runtime_version_is_decoded(corpus_dir: Path) -> None:
    rows = [r for r in _summary_rows() if "min_runtime_version" in r["metadata"].split(";")]
    assert rows
    for row in rows:
        model = load(corpus_dir / row["local_path"])
        assert model.min_runtime_version is not None
        assert re.fullmatch(r"\d+\.\d+\.\d+", model.min_runtime_version), row["local_path"]
        raw = model.metadata_bytes("min_runtime_version")
        assert raw is not None and raw.startswith(model.min_runtime_version.encode())


def _raw_field(raw: bytes, path: str, fmt: str) -> int | None:
    """A scalar read with tflite_builder.locate (not the reader); None when absent."""
    loc = locate(raw, path)
    return None if loc.field is None else struct.unpack_from(fmt, raw, loc.field)[0]


def test_corpus_opcodes_use_the_larger_of_both_code_fields(corpus_dir: Path) -> None:
    """Files before TF 2.4 set only deprecated_builtin_code; later ones both (127 = "see the
    other field"). Each op's code and version read field by field, without the reader."""
    seen_old_style = False
    for row in _summary_rows():
        raw = (corpus_dir / row["local_path"]).read_bytes()
        model = load(corpus_dir / row["local_path"])
        for op in model.main.operators:
            index = _raw_field(raw, f"subgraphs[0].operators[{op.index}].opcode_index", "<I")
            code = f"operator_codes[{index or 0}]"
            deprecated = _raw_field(raw, f"{code}.deprecated_builtin_code", "<b")
            builtin = _raw_field(raw, f"{code}.builtin_code", "<i")
            version = _raw_field(raw, f"{code}.version", "<i")
            assert op.builtin_code == max(deprecated or 0, builtin or 0)
            assert op.version == (1 if version is None else version)
            seen_old_style |= builtin is None and bool(deprecated)
    assert seen_old_style, "the corpus has files from before builtin_code existed"


def test_compiled_corpus_model_has_an_edgetpu_segment(corpus_dir: Path) -> None:
    model = load(
        corpus_dir / "models/coral_test_data_grouper/mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    )
    (op,) = model.main.operators
    assert op.is_edgetpu and op.is_custom
    assert op.opcode == "CUSTOM:edgetpu-custom-op"
    assert op.log_name == "CUSTOM"
    options = model.custom_options(op)
    assert len(options) == op.custom_options_size > 0
    assert model.is_compiled


# --- models no converter emits ------------------------------------------------------------


def _io_tensors(shape: list[int], dtype: str = "FLOAT32") -> list[TensorSpec]:
    return [TensorSpec("in", shape, dtype), TensorSpec("out", shape, dtype)]


def test_unknown_builtin_code_loads_as_unknown() -> None:
    """An op newer than the schema binding: deprecated code 127 (placeholder) + builtin 250."""
    data = build_model(_io_tensors([1, 4]), [OpSpec(250, [0], [1], version=3)], [0], [1])
    (op,) = load(data).main.operators
    assert op.opcode == "UNKNOWN_250"
    assert op.builtin_code == 250
    assert op.version == 3
    assert not op.is_custom
    assert op.log_name == "UNKNOWN_250"


def test_op_above_127_is_read_from_builtin_code() -> None:
    code = builtin_code("GELU")
    assert code > 127
    data = build_model(_io_tensors([1, 4]), [OpSpec("GELU", [0], [1])], [0], [1])
    assert load(data).main.operators[0].opcode == "GELU"


def test_old_style_opcode_uses_the_deprecated_field() -> None:
    old_conv = OpCode(builtin_code=None, deprecated_builtin_code=builtin_code("CONV_2D"), version=2)
    data = build_model(_io_tensors([1, 4]), [OpSpec(old_conv, [0], [1])], [0], [1])
    op = load(data).main.operators[0]
    assert (op.opcode, op.version) == ("CONV_2D", 2)


def test_absent_version_defaults_to_one() -> None:
    code = OpCode(builtin_code=builtin_code("RELU"), deprecated_builtin_code=None, version=None)
    data = build_model(_io_tensors([1, 4]), [OpSpec(code, [0], [1])], [0], [1])
    assert load(data).main.operators[0].version == 1


def test_custom_op_and_its_options() -> None:
    blob = b"\x01\x02custom-options\x00"
    data = build_model(
        _io_tensors([1, 4]), [OpSpec("CUSTOM:MyOp", [0], [1], custom_options=blob)], [0], [1]
    )
    model = load(data)
    (op,) = model.main.operators
    assert op.opcode == "CUSTOM:MyOp"
    assert op.custom_code == "MyOp"
    assert op.is_custom and not op.is_edgetpu
    assert op.log_name == "CUSTOM"
    assert model.custom_options(op) == blob
    assert not model.is_compiled


def test_edgetpu_custom_op_marks_a_compiled_model() -> None:
    data = build_model(
        _io_tensors([1, 4], "UINT8"), [OpSpec("CUSTOM:edgetpu-custom-op", [0], [1])], [0], [1]
    )
    model = load(data)
    assert model.is_compiled
    assert model.main.operators[0].is_edgetpu
    assert model.custom_options(model.main.operators[0]) == b""


def test_rank6_tensor() -> None:
    shape = [1, 2, 3, 4, 5, 6]
    data = build_model(_io_tensors(shape, "INT8"), [OpSpec("RELU", [0], [1])], [0], [1])
    t = load(data).main.tensors[0]
    assert t.shape == tuple(shape)
    assert t.num_elements == 720
    assert t.nbytes == 720
    assert t.shape_signature is None and not t.is_dynamic


def test_shape_signature_and_dynamic_dims() -> None:
    tensors = [
        TensorSpec("in", [1, 8], shape_signature=[-1, 8]),
        TensorSpec("out", [1, 8], shape_signature=[-1, 8]),
    ]
    model = load(build_model(tensors, [OpSpec("RELU", [0], [1])], [0], [1]))
    assert model.main.tensors[0].shape_signature == (-1, 8)
    assert model.main.tensors[0].is_dynamic


def test_quantization_fields_as_written() -> None:
    tensors = [
        TensorSpec("in", [1, 4], "INT8", scale=[0.5], zero_point=[-3], min=[-1.0], max=[2.0]),
        TensorSpec(
            "w",
            data=np.arange(8, dtype=np.int8).reshape(2, 4),
            scale=[0.25, 0.125],
            zero_point=[0, 0],
            quantized_dimension=0,
        ),
        TensorSpec("bias", data=np.array([7, -9], np.int32), scale=[0.125, 0.0625]),
        TensorSpec("out", [1, 2], "INT8", scale=[0.1], zero_point=[5]),
        TensorSpec("float_with_empty_table", [1, 2], scale=()),
    ]
    ops = [OpSpec("FULLY_CONNECTED", [0, 1, 2], [3], {"fused_activation_function": "RELU"})]
    model = load(build_model(tensors, ops, [0], [3]))
    inp, w, bias, out, empty = model.main.tensors
    assert inp.quantization is not None
    assert inp.quantization.scale == (0.5,) and inp.quantization.zero_point == (-3,)
    assert (inp.quantization.min, inp.quantization.max) == ((-1.0,), (2.0,))
    assert w.dtype == "INT8" and w.shape == (2, 4)
    assert w.quantization is not None and w.quantization.per_channel
    assert w.quantization.scale == (0.25, 0.125)
    np.testing.assert_array_equal(model.tensor_data(w), np.arange(8).reshape(2, 4))
    assert bias.dtype == "INT32" and bias.quantization is not None
    np.testing.assert_array_equal(model.tensor_data(bias), [7, -9])
    assert out.quantization is not None and out.quantization.zero_point == (5,)
    assert empty.quantization is not None and not empty.quantization.is_set
    assert not empty.is_quantized
    (fc,) = model.main.operators
    assert fc.options["fused_activation_function"] == "RELU"


def test_options_decoded_by_name() -> None:
    tensors = _io_tensors([1, 8, 8, 3])
    options = {"padding": "VALID", "stride_w": 2, "stride_h": 3, "filter_width": 4}
    options |= {"filter_height": 5, "fused_activation_function": "RELU6"}
    op = OpSpec("MAX_POOL_2D", [0], [1], options)
    (got,) = load(build_model(tensors, [op], [0], [1])).main.operators
    assert got.options_type == "Pool2DOptions"
    for key, value in options.items():
        assert got.options[key] == value
    reshape = OpSpec("RESHAPE", [0], [1], {"new_shape": [1, 192]})
    (got,) = load(build_model(tensors, [reshape], [0], [1])).main.operators
    assert got.options["new_shape"] == (1, 192)


def test_several_subgraphs_and_an_empty_one() -> None:
    main = SubgraphSpec(_io_tensors([1, 4]), [OpSpec("RELU", [0], [1])], [0], [1], "main")
    second = SubgraphSpec(
        [*_io_tensors([2]), TensorSpec("t", [2])],
        [OpSpec("RELU", [0], [2]), OpSpec("TANH", [2], [1])],
        [0],
        [1],
        "second",
    )
    model = load(build_model(subgraphs=[main, second, SubgraphSpec(name="empty")]))
    assert [sg.name for sg in model.subgraphs] == ["main", "second", "empty"]
    assert [op.opcode for op in model.subgraphs[1].operators] == ["RELU", "TANH"]
    empty = model.subgraphs[2]
    assert empty.tensors == () and empty.operators == ()
    assert empty.inputs == () and empty.outputs == ()
    assert model.subgraphs[1].producers == (None, 1, 0)
    assert model.subgraphs[1].consumers == ((0,), (), (1,))
    assert [op.opcode for _, op in model.operators()] == ["RELU", "RELU", "TANH"]


def test_op_reading_a_tensor_twice_is_one_consumer() -> None:
    tensors = [TensorSpec("x", [4]), TensorSpec("y", [4])]
    model = load(build_model(tensors, [OpSpec("MUL", [0, 0], [1])], [0], [1]))
    assert model.main.consumers[0] == (0,)


def test_external_buffers_are_read_from_after_the_flatbuffer() -> None:
    weights = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    tensors = [
        TensorSpec("in", [2, 3, 4]),
        TensorSpec("w", data=weights),
        TensorSpec("b", data=np.array([5, 6, 7], np.int32)),
        TensorSpec("out", [2, 3, 4]),
    ]
    ops = [OpSpec("ADD", [0, 1], [3])]
    data = build_model(tensors, ops, [0], [3], external_buffers=True, min_runtime_version="2.3.0")
    model = load(data)
    w, b = model.main.tensors[1], model.main.tensors[2]
    assert model.buffers[w.buffer].external and model.buffers[b.buffer].external
    flatbuffer_end = min(ref.offset for ref in model.buffers if ref.external)
    assert w.data_offset >= flatbuffer_end and b.data_offset >= flatbuffer_end
    np.testing.assert_array_equal(model.tensor_data(w), weights)
    np.testing.assert_array_equal(model.tensor_data(b), [5, 6, 7])
    assert model.min_runtime_version == "2.3.0"
    inline = load(build_model(tensors, ops, [0], [3]))
    assert not any(ref.external for ref in inline.buffers)
    np.testing.assert_array_equal(inline.tensor_data(inline.main.tensors[1]), weights)


@pytest.mark.tensorflow
def test_external_buffer_model_runs_in_tensorflow(tf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The builder's external-buffer layout is the real one: TFLite reads the same weights."""
    data = add_model(external_buffers=True)
    path = tmp_path / "external.tflite"
    path.write_bytes(data)
    interpreter = _tf_interpreter(tf, path)
    model = load(path)
    bias = model.main.tensors[1]
    assert model.buffers[bias.buffer].external
    np.testing.assert_array_equal(model.tensor_data(bias), interpreter.get_tensor(1))


def test_metadata_and_min_runtime_version() -> None:
    data = add_model(min_runtime_version="1.14.0", metadata={"extra": b"\x00\x01\x02"})
    model = load(data)
    assert set(model.metadata) == {"min_runtime_version", "extra"}
    assert model.min_runtime_version == "1.14.0"
    assert model.metadata_bytes("extra") == b"\x00\x01\x02"
    assert model.metadata_bytes("absent") is None
    assert load(add_model()).min_runtime_version is None


def test_signature_defs() -> None:
    sig = SignatureSpec("serving_default", {"image": 0}, {"scores": 2})
    model = load(add_model(signature_defs=[sig]))
    (got,) = model.signature_defs
    assert got.key == "serving_default"
    assert got.subgraph_index == 0
    assert dict(got.inputs) == {"image": 0}
    assert dict(got.outputs) == {"scores": 2}


def test_model_without_identifier_loads() -> None:
    model = load(add_model(identifier=None))
    assert not model.has_identifier
    assert [op.opcode for op in model.main.operators] == ["ADD"]
    assert load(add_model()).has_identifier


def test_description_and_public_load(tmp_path: Path) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(add_model(description="hand made"))
    model = coralcheck.load(path)
    assert model.description == "hand made"
    assert model.path == str(path)
    assert model.file_size == path.stat().st_size
    assert coralcheck.load(str(path)).main.tensors[1].name == "bias"
    assert load(bytearray(path.read_bytes())).path == "<bytes>"
    assert load(memoryview(path.read_bytes())).main.operators[0].opcode == "ADD"


def test_loading_never_writes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.tflite"
    data = add_model()
    path.write_bytes(data)
    path.chmod(0o444)
    before = path.stat().st_mtime_ns
    model = load(path)
    model.tensor_data(model.main.tensors[1])
    assert path.read_bytes() == data
    assert path.stat().st_mtime_ns == before


def test_negative_dims_without_a_signature_are_dynamic() -> None:
    """Old converters wrote -1 into `shape` itself and no shape_signature."""
    tensors = [TensorSpec("in", [-1, 4]), TensorSpec("out", [-1, 4])]
    t = load(build_model(tensors, [OpSpec("RELU", [0], [1])], [0], [1])).main.tensors[0]
    assert t.shape_signature == (-1, 4)
    assert t.is_dynamic


def test_large_custom_options_outside_the_flatbuffer() -> None:
    """Models over 2 GB keep custom options after the flatbuffer (offset/size in the op)."""
    op = OpSpec("CUSTOM:Big", [0], [1], large_custom_options_offset=8, large_custom_options_size=6)
    data = build_model(_io_tensors([1, 4]), [op], [0], [1])
    model = load(data)
    (got,) = model.main.operators
    assert (got.custom_options_offset, got.custom_options_size) == (8, 6)
    assert model.custom_options(got) == data[8:14]


def test_op_inputs_and_outputs_as_tensors() -> None:
    model = load(FIXTURES / "demo_int8.tflite")
    sg = model.main
    fc = sg.operators[7]
    assert [t.index for t in sg.op_inputs(fc)] == [i for i in fc.inputs if i >= 0]
    assert [t.index for t in sg.op_outputs(fc)] == list(fc.outputs)
    assert sg.op_outputs(fc)[0].dtype == "INT8"


def test_tensor_data_of_a_type_numpy_lacks_is_raw_bytes() -> None:
    """INT4 has no numpy dtype: the view is the stored bytes (two values per byte)."""
    tensors = [
        TensorSpec("in", [1, 4]),
        TensorSpec("w", [4], "INT4", b"\x12\x34"),
        TensorSpec("out", [1, 4]),
    ]
    model = load(build_model(tensors, [OpSpec("ADD", [0, 1], [2])], [0], [2]))
    w = model.main.tensors[1]
    assert w.nbytes == 2 == w.data_size
    view = model.tensor_data(w)
    assert view.dtype == np.uint8
    assert view.tobytes() == b"\x12\x34"


# --- option tables: the ast-read schema equals the binding's own accessors ----------------


def _binding_values(cls: type, data: bytes, pos: int) -> dict[str, object]:
    """Every scalar / scalar-vector field of an options table, read by the tflite binding."""
    from coralcheck.model.schema import _snake

    table = cls()
    table.Init(data, pos)
    names = [n for n in vars(cls) if not n.startswith(("_", "GetRootAs", "Init"))]
    out: dict[str, object] = {}
    for name in names:
        if name.endswith(("AsNumpy", "Length", "IsNone")) or "BufferHasIdentifier" in name:
            continue
        if f"{name}AsNumpy" in names:
            is_none = getattr(table, f"{name}IsNone")()
            out[_snake(name)] = (
                () if is_none else tuple(getattr(table, f"{name}AsNumpy")().tolist())
            )
            continue
        value = getattr(table, name)()
        if not (hasattr(value, "Init") or isinstance(value, bytes) or value is None):
            out[_snake(name)] = value
    return out


def _raw_options(name: str, values: dict[str, object]) -> bytes:
    """An options table alone (as a flatbuffer root) with the given fields set."""
    import flatbuffers
    import tflite

    b = flatbuffers.Builder(256)
    vectors = {}
    for field, value in values.items():
        if isinstance(value, tuple):
            code = {int: "<i4"}.get(type(value[0]), "<f4")
            vectors[field] = b.CreateNumpyVector(np.asarray(value, code))
    getattr(tflite, f"{name}Start")(b)
    for field, value in values.items():
        camel = "".join(p.capitalize() for p in field.split("_"))
        getattr(tflite, f"{name}Add{camel}")(b, vectors.get(field, value))
    b.Finish(getattr(tflite, f"{name}End")(b))
    return bytes(b.Output())


def _option_types() -> list[tuple[int, str]]:
    from coralcheck.model.schema import builtin_options_names

    return sorted((c, n) for c, n in builtin_options_names().items() if n != "NONE")


@pytest.mark.parametrize(("code", "name"), _option_types(), ids=[n for _, n in _option_types()])
def test_every_options_table_decodes_like_the_binding(code: int, name: str) -> None:
    """All fields set to non-default values; the reader and the binding must agree."""
    import tflite

    from coralcheck.model.flatbuf import FlatBuffer
    from coralcheck.model.schema import decode_options, option_fields

    fields = option_fields(name)
    assert fields is not None, name
    values: dict[str, object] = {}
    for i, f in enumerate(fields):
        if f.vector:
            values[f.name] = (1.5, -2.0) if f.code in "fd" else (i + 1, 7)
        elif f.kind == "bool":
            values[f.name] = not f.default
        elif f.kind in ("f32", "f64"):
            values[f.name] = 0.25 + i
        else:
            values[f.name] = (f.default or 0) + 1 + i % 3
    data = _raw_options(name, values)
    pos = struct.unpack_from("<I", data, 0)[0]
    cls = getattr(tflite, name)
    theirs = _binding_values(cls, data, pos)
    got_name, ours = decode_options(code, FlatBuffer(data, "x").root(name))
    assert got_name == name
    assert set(ours) == set(theirs), "the same fields"
    for key, value in theirs.items():
        mine = ours[key]
        if key in ("fused_activation_function", "padding") and isinstance(mine, str):
            table = {"fused_activation_function": "ActivationFunctionType", "padding": "Padding"}
            assert getattr(getattr(tflite, table[key]), mine) == value
        elif isinstance(value, float):
            assert mine == pytest.approx(value)
        else:
            assert mine == value, key
    empty = _raw_options(name, {})
    defaults = _binding_values(cls, empty, struct.unpack_from("<I", empty, 0)[0])
    _, ours_default = decode_options(code, FlatBuffer(empty, "x").root(name))
    for key, value in defaults.items():
        if key not in ("fused_activation_function", "padding"):
            assert ours_default[key] == value, f"default of {key}"


def _models_with_options() -> list[Path]:
    paths = [FIXTURES / e["file"] for e in ENTRIES]
    paths += [CORPUS / r["local_path"] for r in _summary_rows() if r["kind"] == "source"]
    return [p for p in paths if p.exists()]


def test_real_models_options_decode_like_the_binding() -> None:
    import tflite

    from coralcheck.model.schema import builtin_options_names

    checked = 0
    for path in _models_with_options():
        raw = path.read_bytes()
        binding = tflite.Model.GetRootAs(raw, 0)
        model = load(path)
        for sg in model.subgraphs:
            for op in sg.operators:
                bop = binding.Subgraphs(sg.index).Operators(op.index)
                options = bop.BuiltinOptions()
                if options is None:
                    assert op.options_type is None
                    continue
                name = builtin_options_names()[bop.BuiltinOptionsType()]
                theirs = _binding_values(getattr(tflite, name), raw, options.Pos)
                theirs.pop("fused_activation_function", None)
                theirs.pop("padding", None)
                assert op.options_type == name
                assert {k: op.options[k] for k in theirs} == theirs, f"{path.name} op {op.index}"
                checked += 1
    assert checked > 100


def test_equal_looking_options_with_vectors_are_each_read() -> None:
    """Two RESHAPE options tables can hold the same bytes (the same relative offset) and still
    point at different new_shape vectors: an empty one and [1, 4]. Each must be read."""
    tensors = [TensorSpec(name, [1, 4]) for name in "abc"]
    ops = [
        OpSpec("RESHAPE", [0], [1], {"new_shape": []}),
        OpSpec("RESHAPE", [1], [2], {"new_shape": [1, 4]}),
        OpSpec("RESHAPE", [2], [0], {"new_shape": [4, 1]}),
    ]
    model = load(build_model(tensors, ops, [0], [2]))
    assert [op.options["new_shape"] for op in model.main.operators] == [(), (1, 4), (4, 1)]


def test_equal_scalar_options_decode_equal() -> None:
    """Scalar-only options tables with the same fields are decoded once and shared."""
    tensors = [TensorSpec(name, [1, 4]) for name in "abcd"]
    ops = [
        OpSpec("ADD", [0, 1], [2], {"fused_activation_function": "RELU"}),
        OpSpec("ADD", [2, 1], [3], {"fused_activation_function": "RELU6"}),
        OpSpec("ADD", [3, 1], [0], {"fused_activation_function": "RELU"}),
    ]
    got = [
        op.options["fused_activation_function"]
        for op in load(build_model(tensors, ops, [0], [0])).main.operators
    ]
    assert got == ["RELU", "RELU6", "RELU"]


def test_unknown_tensor_type_is_named_not_refused() -> None:
    """A TensorType newer than the schema binding (99) loads as UNKNOWN_99."""
    tensors = [TensorSpec("in", [1, 4], 99), TensorSpec("out", [1, 4])]
    t = load(build_model(tensors, [OpSpec("RELU", [0], [1])], [0], [1])).main.tensors[0]
    assert t.dtype == "UNKNOWN_99"
    assert t.nbytes == 0


@pytest.mark.parametrize("options_type", [0, 250])
def test_options_of_unknown_or_none_type_are_empty(options_type: int) -> None:
    """An options table whose union type is NONE (0) or newer than the binding is not decoded."""
    tensors = [TensorSpec(name, [1, 4]) for name in "ab"]
    data = build_model(tensors, [OpSpec("RESHAPE", [0], [1], {"new_shape": [1, 4]})], [0], [1])
    data = patch_field(data, "subgraphs[0].operators[0].builtin_options_type", options_type)
    (op,) = load(data).main.operators
    assert op.options_type is None
    assert dict(op.options) == {}


def test_model_is_read_only_and_equal_only_to_itself() -> None:
    """`Model` is a plain class (not a dataclass): assignment is refused, and two loads of one
    file are two models, as with the frozen dataclass it replaced (eq=False)."""
    data = (FIXTURES / "demo_int8.tflite").read_bytes()
    first, second = load(data), load(data)
    with pytest.raises(AttributeError, match="read-only"):
        first.description = "changed"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="read-only"):
        del first.subgraphs
    assert first == first and first != second
    assert len({first, second}) == 2  # hashed by identity
    assert first.subgraphs == second.subgraphs  # the records compare by value
    assert repr(first).startswith("Model(path='<bytes>', file_size=")
    assert "_data" not in repr(first)


def test_records_are_named_tuples_with_their_fields() -> None:
    from coralcheck.model.graph import Operator, Quantization, Tensor

    model = load(FIXTURES / "demo_int8.tflite")
    tensor, op = model.main.tensors[0], model.main.operators[0]
    assert type(tensor) is Tensor and type(op) is Operator
    assert tensor._fields[:4] == ("index", "name", "dtype", "shape")
    assert tensor.index == 0 and op.index == 0  # the field, not tuple.index
    renamed = tensor._replace(name="other")
    assert renamed.name == "other" and renamed[1:] != tensor[1:] and renamed.shape == tensor.shape
    assert Quantization((0.5,), (0,)).min == () and Operator(0, "ADD", 0, 1, (), ()).options == {}


def test_schema_tables_are_plain_data() -> None:
    """What schema.py derives from the binding is plain data (str, int, float, bool in dicts
    and tuples), so that a persistent cache can store it; `option_fields` wraps the rows."""
    from coralcheck.model.schema import (
        OptionField,
        builtin_options_names,
        enum_names,
        option_field_rows,
        option_fields,
    )

    def plain(value: object) -> bool:
        if type(value) in (str, int, float, bool):
            return True
        if type(value) is tuple:
            return all(plain(v) for v in value)
        if type(value) is dict:
            return all(plain(k) and plain(v) for k, v in value.items())
        return False

    for enum in ("BuiltinOperator", "TensorType", "BuiltinOptions"):
        names = enum_names(enum)
        assert names and plain(names), enum
    assert enum_names("TensorType")[9] == "INT8"
    for name in builtin_options_names().values():
        if name == "NONE":
            continue
        rows = option_field_rows(name)
        assert rows is not None and plain(rows), name
        assert option_fields(name) == tuple(OptionField(*row) for row in rows)
    assert option_field_rows("NoSuchOptions") is None and option_fields("NoSuchOptions") is None
