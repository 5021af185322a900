"""The lint's speed-ups change nothing but time.

- The reader's fast paths (`_Reader._buffers_fast`, `_tensors_fast`, `_operators_fast`) give
  the same model as the plain `Table` reads, and on a damaged file the same error, byte for byte.
- `check_model` pauses the cyclic garbage collector only while it runs.
- `printable` returns clean immutable parts of a report as they are, and still escapes the rest.
- A JSON lint does not import rich; a lint without --baseline, not the baseline module.
"""

from __future__ import annotations

import gc
import math
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import CLI_LISTING_MODULES, CORPUS, FIXTURES, run_listing_modules
from helpers.tflite_builder import OpSpec, TensorSpec, build_model

from coralcheck import ModelError
from coralcheck.api import check_model
from coralcheck.model import flatbuf, load
from coralcheck.model import reader as reader_module
from coralcheck.options import Options
from coralcheck.render.escape import printable
from coralcheck.report import OpPlacement

FAST_PATHS = ("_buffers_fast", "_tensors_fast", "_operators_fast")


def _edge_cases() -> bytes:
    """Tensors and ops the fast paths hand to the plain reads or read themselves: calibration
    ranges, a variable, a shape signature, an empty quantization table, custom options, an
    unnamed tensor, an op without options."""
    return build_model(
        tensors=[
            TensorSpec("x", [1, 4], "INT8", shape_signature=[-1, 4], scale=[0.5], zero_point=[1]),
            TensorSpec("w", [4, 4], data=np.ones((4, 4), np.int8), scale=[0.1], zero_point=[0]),
            TensorSpec("", [1, 4], "INT8", scale=[0.5], zero_point=[0], min=[-1.0], max=[1.0]),
            TensorSpec("state", [1, 4], "FLOAT32", is_variable=True, scale=()),
            TensorSpec("y", [1, 4], "FLOAT32"),
        ],
        ops=[
            OpSpec("FULLY_CONNECTED", [0, 1, -1], [2]),
            OpSpec("CUSTOM:MyOp", [2, 3], [4], custom_options=b"\x01\x02\x03", intermediates=[1]),
            OpSpec("RELU", [4], [4]),
        ],
        inputs=[0],
        outputs=[4],
    )


def _outcome(source: object) -> object:
    """What `load` makes of `source`: the model's contents, or its one-line error."""
    try:
        m = load(source)  # type: ignore[arg-type]
    except ModelError as e:
        return e.one_line()
    return (m.subgraphs, m.buffers, dict(m.metadata), m.signature_defs, m.description)


def _plain_outcome(source: object, monkeypatch: pytest.MonkeyPatch) -> object:
    with monkeypatch.context() as patched:
        for name in FAST_PATHS:
            patched.setattr(reader_module._Reader, name, lambda *args: [])  # read none
        return _outcome(source)


def _real_models() -> list[Path]:
    corpus = sorted((CORPUS / "models").rglob("*.tflite")) if CORPUS.exists() else []
    return sorted(FIXTURES.glob("*.tflite")) + [p for p in corpus if p.stat().st_size < 4 << 20]


def test_fast_reads_equal_plain_reads_on_real_models(monkeypatch: pytest.MonkeyPatch) -> None:
    models = _real_models()
    assert models, "no fixtures"
    taken = {name: 0 for name in FAST_PATHS}
    for name in FAST_PATHS:  # count the tables each fast path read itself
        original = getattr(reader_module._Reader, name)

        def counted(*args, _name=name, _original=original):  # type: ignore[no-untyped-def]
            result = _original(*args)
            taken[_name] += len(result)
            return result

        monkeypatch.setattr(reader_module._Reader, name, counted)
    plain_reads: list[str] = []  # tables the fast paths left to the plain reads
    for name in ("buffer", "tensor", "operator"):
        plain = getattr(reader_module._Reader, name)

        def recorded(*args, _name=name, _plain=plain):  # type: ignore[no-untyped-def]
            plain_reads.append(_name)
            return _plain(*args)

        monkeypatch.setattr(reader_module._Reader, name, recorded)
    for path in models:
        fast = _outcome(str(path))
        assert not isinstance(fast, str), fast
        assert not plain_reads, (path.name, plain_reads[:3])  # real files: no table is unusual
        assert fast == _plain_outcome(str(path), monkeypatch), path.name
        plain_reads.clear()
    assert all(n > 100 for n in taken.values()), taken  # the fast paths did the reading


def test_fast_reads_equal_plain_reads_on_edge_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _edge_cases()
    fast = _outcome(data)
    assert not isinstance(fast, str), fast
    tensors = fast[0][0].tensors  # type: ignore[index]
    assert tensors[2].quantization.min == (-1.0,) and tensors[3].is_variable
    assert fast == _plain_outcome(data, monkeypatch)


def test_equal_quantizations_are_shared_and_signed_zeros_kept() -> None:
    """The fast read shares one `Quantization` among tensors with equal parameters, but never
    turns a -0.0 into a 0.0 (they compare equal, so `==` against the plain read cannot tell)."""
    tensors = [
        TensorSpec("a", [1, 4], "INT8", scale=[0.5], zero_point=[1]),
        TensorSpec("b", [1, 4], "INT8", scale=[0.5], zero_point=[1]),
        TensorSpec("c", [1, 4], "INT8", scale=[0.0], zero_point=[0]),
        TensorSpec("d", [1, 4], "INT8", scale=[-0.0], zero_point=[0]),
        TensorSpec("e", [1, 4], "INT8", scale=[0.5], zero_point=[0], min=[-0.0], max=[1.0]),
        TensorSpec("f", [1, 4], "INT8", scale=[0.5], zero_point=[0], min=[0.0], max=[1.0]),
    ]
    ops = [OpSpec("ADD", [0, 1], [2]), OpSpec("ADD", [2, 3], [4]), OpSpec("RELU", [4], [5])]
    a, b, c, d, e, f = load(build_model(tensors, ops, [0, 1, 3], [5])).main.tensors
    assert a.quantization is b.quantization
    signs = [math.copysign(1.0, t.quantization.scale[0]) for t in (c, d)]  # type: ignore[union-attr]
    assert signs == [1.0, -1.0]
    assert [math.copysign(1.0, t.quantization.min[0]) for t in (e, f)] == [-1.0, 1.0]  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", range(4))
def test_fast_reads_equal_plain_reads_on_damaged_files(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bit flips anywhere: each file loads to the same model, or fails with the same error."""
    sources = [_edge_cases(), (FIXTURES / "demo_int8.tflite").read_bytes()]
    rng = random.Random(seed)
    errors = 0
    for data in sources:
        for _ in range(60):
            damaged = bytearray(data)
            for _ in range(rng.randint(1, 3)):
                damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
            fast = _outcome(bytes(damaged))
            errors += isinstance(fast, str)
            assert fast == _plain_outcome(bytes(damaged), monkeypatch)
    assert errors  # some flips broke the file: the error paths were compared too


@pytest.mark.parametrize("source", ["edge_cases", "demo_int8.tflite"])
def test_fast_reads_spend_the_read_budget_as_plain_reads(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every read budget from nothing to enough, the fast reads run out exactly where the
    plain reads do (same error), or both load the same model."""
    data = _edge_cases() if source == "edge_cases" else (FIXTURES / source).read_bytes()
    budget = 1 << 40
    spent = []
    init, model = flatbuf.FlatBuffer.__init__, reader_module._Reader.model

    def with_budget(self: flatbuf.FlatBuffer, *args: object) -> None:
        init(self, *args)  # type: ignore[arg-type]
        self.read_budget = budget

    def counting(self: reader_module._Reader, *args: object) -> object:
        result = model(self, *args)  # type: ignore[arg-type]
        spent.append(budget - self.buf.read_budget)
        return result

    monkeypatch.setattr(flatbuf.FlatBuffer, "__init__", with_budget)
    monkeypatch.setattr(reader_module._Reader, "model", counting)
    _outcome(data)
    needed = spent[0]
    outcomes = set()
    for budget in sorted({*range(0, needed, max(needed // 300, 1)), needed - 1, needed}):
        fast = _outcome(data)
        outcomes.add(isinstance(fast, str))
        assert fast == _plain_outcome(data, monkeypatch), budget
    assert outcomes == {True, False}  # ran out, and did not


@pytest.mark.parametrize(
    ("dtype", "data"),
    [
        ("INT32", np.array([0, -1, 2**31 - 1, -(2**31)], np.int32).tobytes()),
        ("INT64", np.array([1, -(2**63), 2**63 - 1], np.int64).tobytes()),
        ("UINT64", np.array([2**64 - 1, 0], np.uint64).tobytes()),
        ("INT16", np.array([-3, 7], np.int16).tobytes()),
        ("UINT16", np.array([65535], np.uint16).tobytes()),
        ("UINT32", np.array([2**32 - 1], np.uint32).tobytes()),
        ("INT8", bytes([0x80, 0x7F, 0x00])),
        ("UINT8", bytes([0xFF, 0x01])),
        ("BOOL", bytes([0, 1, 2, 255])),
        ("INT32", bytes(range(6))),  # not a whole number of elements: the whole ones
        ("INT4", bytes([0x12, 0xF0])),  # no numpy type: raw bytes
        ("FLOAT32", np.array([1.5], np.float32).tobytes()),  # not integers: no values
        ("FLOAT16", np.array([1.5], np.float16).tobytes()),
    ],
)
def test_constant_values_are_read_as_numpy_reads_them(dtype: str, data: bytes) -> None:
    """`OpView.values` reads integer constants without numpy; numpy is the oracle."""
    from coralcheck.edgetpu.opview import OpView

    n = max(len(data), 1)
    model = load(
        build_model(
            tensors=[
                TensorSpec("x", [1, 4], "INT8"),
                TensorSpec("c", [n], dtype, data=data),
                TensorSpec("y", [1, 4], "INT8"),
            ],
            ops=[OpSpec("ADD", [0, 1], [2])],
            inputs=[0],
            outputs=[2],
        )
    )
    sg = model.main
    constant = sg.tensors[1]
    assert constant.is_constant and constant.data_size == len(data)
    expected = model.tensor_data(constant)
    expected = [int(v) for v in expected.reshape(-1)] if expected.dtype.kind in "iub" else None
    assert OpView(model, sg, sg.operators[0]).values(constant) == expected


def test_check_pauses_the_garbage_collector_only_while_it_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import coralcheck.pipeline.source

    seen = []
    analyze = coralcheck.pipeline.source.analyze
    monkeypatch.setattr(
        coralcheck.pipeline.source, "analyze", lambda *a: seen.append(gc.isenabled()) or analyze(*a)
    )
    demo = str(FIXTURES / "demo_int8.tflite")
    was_enabled = gc.isenabled()
    try:
        gc.enable()
        check_model(demo, Options())
        assert gc.isenabled()
        gc.disable()
        check_model(demo, Options())
        assert not gc.isenabled()  # left as the caller had it
    finally:
        (gc.enable if was_enabled else gc.disable)()
    assert seen == [False, False]


def test_printable_keeps_clean_immutable_parts_and_escapes_the_rest() -> None:
    clean = OpPlacement(0, "CONV_2D", 1, "tpu", "Mapped to Edge TPU", "")
    hostile = clean._replace(index=1, reason="tensor 'a\x1b[31m' is FLOAT32")
    ops = [clean, hostile]
    shown = printable(ops)
    assert shown is not ops and shown[0] is clean  # a new list; the clean op as it is
    assert shown[1] == hostile._replace(reason="tensor 'a\\x1b[31m' is FLOAT32")
    shape = (1, 224, 224, 3)
    assert printable(shape) is shape
    assert printable(("ok", "b\x07")) == ("ok", "b\\x07")


@pytest.mark.parametrize(
    ("fmt", "not_imported"),
    [
        ("json", ("rich",)),
        ("text", ("coralcheck.baseline", "hashlib")),
        ("text", ("numpy",)),  # STRIDED_SLICE's begin, end and strides are read (O002)
    ],
)
def test_lint_imports_only_what_its_output_needs(
    tmp_path: Path, fmt: str, not_imported: tuple[str, ...]
) -> None:
    """JSON needs no terminal renderer; without --baseline, no baseline (text has no
    fingerprints); small constants are read without numpy."""
    model = str(FIXTURES / "stridedslice_int8.tflite")
    args = (model, "--format", fmt, "--isolated")
    result, modules = run_listing_modules(CLI_LISTING_MODULES, tmp_path, *args)
    assert result.returncode in (0, 1), result.stderr  # 1: the model has errors
    assert model in result.stdout
    assert "coralcheck.analyze.placement" in modules  # the model really was linted
    assert [m for m in modules if m.split(".")[0] in not_imported or m in not_imported] == []
