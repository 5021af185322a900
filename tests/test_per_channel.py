"""Per-channel quantization read and checked without a Python number per channel, and the other
speed-ups of the per-channel benchmark model (benchmarks/bench_load.py `per_channel`), changing
nothing but time:

- `PackedNumbers` (a scale or zero-point vector of more than one value, left in the file) behaves
  as the tuple of its values; `all_positive`/`all_within` answer as the decoded values do;
- the reader gives the values the file holds, through its fast and its plain reads;
- Q009's per-channel fast path finds exactly what the full check finds;
- a model too large to read whole is checked here under a read lease, or else in one forked
  child, with the in-process report, and a report holds nothing that reads the mapped file;
- Q009 checks all per-channel weights of a type at once, vouching only for usable ones;
- `check_model` moves what it made to the oldest generation instead of scanning it.
"""

from __future__ import annotations

import gc
import math
import os
import pickle
import random
import struct
import weakref
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, FIXTURES, leases_work
from helpers.tflite_builder import OpSpec, TensorSpec, build_model

from coralcheck.api import check_model
from coralcheck.model import load
from coralcheck.model import reader as reader_module
from coralcheck.model.packed import (
    PackedNumbers,
    all_positive,
    all_usable_per_channel,
    all_within,
    usable_per_channel,
)
from coralcheck.options import Options

FLOAT32_SPECIALS = (
    0.0,
    -0.0,
    math.inf,
    -math.inf,
    math.nan,
    1e-45,  # the smallest positive float32 (subnormal)
    1.17549435e-38,  # the smallest normal one
    3.4028234663852886e38,  # the largest
    -1e-45,
    2.0**-126 * 1.5,
    2.0**126,
    0.005,
)


def _packed(values: list[float] | list[int], code: str) -> PackedNumbers:
    raw = b"\x99" * 4 + struct.pack(f"<{len(values)}{code}", *values) + b"\x77" * 4
    return PackedNumbers(raw, 4, len(values), code)


def test_packed_numbers_behave_as_the_tuple_of_their_values() -> None:
    scales = [0.25, 0.5, 1.5, 3.0]
    vec = _packed(scales, "f")
    as_tuple = tuple(scales)
    assert len(vec) == 4 and bool(vec) and list(vec) == scales
    assert vec == as_tuple and as_tuple == vec
    assert (vec != as_tuple) is False and (as_tuple != vec) is False
    assert vec != (0.25, 0.5) and vec != [0.25, 0.5, 1.5, 3.0]  # a list is no tuple
    assert vec == _packed(scales, "f") and hash(vec) == hash(as_tuple)
    assert {vec: 1}[as_tuple] == 1  # usable as the key of an equal tuple
    assert [vec[i] for i in range(-4, 4)] == [*scales, *scales]
    assert vec[1:3] == (0.5, 1.5) and vec[::-1] == as_tuple[::-1]
    with pytest.raises(IndexError):
        vec[4]
    with pytest.raises(IndexError):
        vec[-5]
    assert 1.5 in vec and 7.0 not in vec and vec.index(3.0) == 3 and vec.count(0.5) == 1
    assert repr(vec) == repr(as_tuple) and max(vec) == 3.0
    assert pickle.loads(pickle.dumps(vec)) == as_tuple  # pickled as the tuple
    zero_points = _packed([0, -3, 2**40], "q")
    assert zero_points == (0, -3, 2**40) and zero_points[2] == 2**40


def test_packed_numbers_read_one_element_without_decoding_the_rest() -> None:
    vec = _packed([0.5] * 1000, "f")
    assert len(vec) == 1000 and vec[0] == 0.5 and vec[-1] == 0.5
    assert vec._values is None  # nothing decoded yet
    assert vec == (0.5,) * 1000
    assert vec._values is not None


def test_all_positive_and_all_within_answer_as_the_values_do() -> None:
    rng = random.Random(16)
    pool = [*FLOAT32_SPECIALS, *(rng.uniform(1e-6, 10) for _ in range(20))]
    fast_answers = set()
    for _ in range(3000):
        values = [rng.choice(pool) for _ in range(rng.randint(2, 9))]
        if rng.random() < 0.5:  # random bit patterns: every sign, exponent, NaN payload
            values[rng.randrange(len(values))] = struct.unpack(
                "<f", struct.pack("<I", rng.getrandbits(32))
            )[0]
        vec = _packed(values, "f")
        expected = all(0.0 < v < math.inf for v in vec.values)
        assert all_positive(vec) == expected, values
        assert all_positive(vec.values) == expected
        fast_answers.add(expected)
    assert fast_answers == {True, False}
    for _ in range(3000):
        values = [rng.choice((0, 0, 0, 1, -1, 127, -128, 128, -129, 255, 256, 2**40, -(2**63)))]
        values *= rng.randint(2, 6)
        values[rng.randrange(len(values))] = rng.choice((0, 5, -200))
        low, high = rng.choice(((-128, 127), (0, 255)))
        vec = _packed(values, "q")
        expected = all(low <= v <= high for v in values)
        assert all_within(vec, low, high) == expected, (values, low, high)
        assert all_within(tuple(values), low, high) == expected
    for _ in range(3000):  # both at once, and as many of each
        n = rng.randint(2, 5)
        scales = [rng.choice(pool) for _ in range(n)]
        zero_points = [rng.choice((0, 0, 0, 3, -200)) for _ in range(rng.choice((n, n, n - 1)))]
        expected = len(zero_points) == n and all(0.0 < s < math.inf for s in scales)
        expected = expected and all(-128 <= z <= 127 for z in zero_points)
        assert (
            usable_per_channel(_packed(scales, "f"), _packed(zero_points, "q"), -128, 127)
            == expected
        ), (scales, zero_points)
        assert not usable_per_channel(tuple(scales), tuple(zero_points), -128, 127)


def test_all_usable_per_channel_vouches_only_for_usable_pairs() -> None:
    """Q009 accepts the per-channel tensors of a type all at once when `all_usable_per_channel`
    says so: it never does when one pair is not usable, and does for the pairs converters
    write (normal scales, zero points 0)."""
    rng = random.Random(9)
    pool = [*FLOAT32_SPECIALS, *(rng.uniform(1e-6, 10) for _ in range(20))]
    answers = set()
    for _ in range(2000):
        pairs = []
        for _ in range(rng.randint(1, 4)):
            n = rng.randint(2, 5)
            if rng.random() < 0.7:  # what converters write
                scales, zero_points = [rng.uniform(1e-4, 1) for _ in range(n)], [0] * n
            else:
                scales = [rng.choice(pool) for _ in range(n)]
                zero_points = [rng.choice((0, 0, 3, -200)) for _ in range(rng.choice((n, n - 1)))]
            pairs.append((_packed(scales, "f"), _packed(zero_points, "q")))
        low, high = rng.choice(((-128, 127), (0, 255)))
        together = all_usable_per_channel(pairs, low, high)
        each = all(usable_per_channel(s, z, low, high) for s, z in pairs)
        assert each or not together, pairs
        if all(
            set(z.values) == {0} and 1e-30 < min(s.values) <= max(s.values) < 1e30 for s, z in pairs
        ):
            assert together == each  # normal scales and zero points 0: answered at once
        answers.add(together)
    assert answers == {True, False}
    plain = [((0.5, 0.25), (0, 0))]
    assert not all_usable_per_channel(plain, -128, 127)  # not packed: asked pair by pair


def test_packed_numbers_over_a_mapped_file(tmp_path: Path) -> None:
    """As the reader leaves them for a model over 64 MiB: over an mmap, not bytes."""
    import mmap

    path = tmp_path / "vectors"
    path.write_bytes(struct.pack("<4f", 0.5, 0.25, 1e-45, 3e38) + struct.pack("<3q", 0, 0, 0))
    with open(path, "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    scales, zero_points = PackedNumbers(data, 0, 4, "f"), PackedNumbers(data, 16, 3, "q")
    assert all_positive(scales) and all_within(zero_points, -128, 127)
    assert scales[1] == 0.25 and zero_points == (0, 0, 0) and scales.raw == path.read_bytes()[:16]
    assert not all_positive(PackedNumbers(data, 16, 3, "f"))  # zeros


def _per_channel_model(
    layers: list[tuple[str, list[float], list[int], int]],
) -> bytes:
    """A chain of CONV_2D (3x3, 4 channels in and out) whose weights have the given per-channel
    (name, scales, zero points, quantized dimension); the bias scales are input x weight scale."""
    rng = np.random.default_rng(1)
    tensors = [TensorSpec("input", [1, 6, 6, 4], "INT8", scale=[0.05], zero_point=[0])]
    ops = []
    current = 0
    options = {"padding": "SAME", "stride_w": 1, "stride_h": 1}
    for name, scales, zero_points, dimension in layers:
        first = len(tensors)
        weights = rng.integers(-127, 128, (4, 3, 3, 4), dtype=np.int8)
        bias = rng.integers(-100, 100, 4, dtype=np.int32)
        tensors += [
            TensorSpec(
                f"{name}/weights",
                data=weights,
                scale=scales,
                zero_point=zero_points,
                quantized_dimension=dimension,
            ),
            TensorSpec(
                f"{name}/bias",
                data=bias,
                scale=[0.05 * abs(s) if math.isfinite(s) else 1.0 for s in scales],
                zero_point=[0] * len(scales),
            ),
            TensorSpec(f"{name}/out", [1, 6, 6, 4], "INT8", scale=[0.05], zero_point=[0]),
        ]
        ops.append(
            OpSpec("CONV_2D", [current, first, first + 1], [first + 2], options, "Conv2DOptions")
        )
        current = first + 2
    return build_model(tensors, ops, [0], [current])


HEALTHY = [0.01, 0.02, 1e-45, 3.4028234663852886e38]


def test_per_channel_parameters_are_read_as_the_file_holds_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scales = [0.001, 0.5, 1e-45, 2.0**100]
    data = _per_channel_model([("a", scales, [0, 1, -2, 3], 0), ("b", HEALTHY, [0] * 4, 0)])
    fast = load(data).main.tensors
    with monkeypatch.context() as patched:  # the plain reads, through `Table`
        patched.setattr(reader_module._Reader, "_tensors_fast", lambda *args: [])
        plain = load(data).main.tensors
    assert fast == plain
    for tensors in (fast, plain):
        q = tensors[1].quantization
        assert q is not None and type(q.scale) is PackedNumbers
        assert q.scale == tuple(np.float32(scales).tolist()) and q.zero_point == (0, 1, -2, 3)
        assert q.per_channel and q.quantized_dimension == 0
        assert tensors[0].quantization.scale == (np.float32(0.05).item(),)  # one: a tuple
    # Equal per-channel parameters are not shared (sharing would decode them to hash them).
    assert fast[4].quantization == fast[4].quantization and fast[1].quantization is not None


@pytest.mark.parametrize(
    ("scales", "zero_points", "dimension", "problem"),
    [
        ([0.01, 0.02, math.nan, 0.5], [0] * 4, 0, "scale nan"),
        ([0.01, -0.02, 0.01, 0.5], [0] * 4, 0, "scale -0.0"),
        ([0.01, 0.02, 0.0, 0.5], [0] * 4, 0, "scale 0.0"),
        ([0.01, 0.02, 0.01, math.inf], [0] * 4, 0, "scale inf"),
        ([0.01, 0.02, 0.01, 0.5], [0, 0, 200, 0], 0, "zero point 200 (outside INT8"),
        ([0.01, 0.02, 0.01, 0.5], [0, 0, 0], 0, "4 scales but 3 zero points"),
        ([0.01, 0.02, 0.01, 0.5], [0] * 4, 4, "quantized dimension 4 for a rank-4 tensor"),
        ([0.01, 0.02, 0.01, 0.5], [0] * 4, -1, "quantized dimension -1"),
        (HEALTHY, [0, 0, 0], 0, "4 scales but 3 zero points"),
        (HEALTHY, [5, -7, 127, -128], 3, None),  # usable, if unusual
        (HEALTHY, [0], 0, None),  # one zero point for all channels
        (HEALTHY, [], 0, None),
    ],
)
def test_q009_on_per_channel_weights(
    tmp_path: Path,
    scales: list[float],
    zero_points: list[int],
    dimension: int,
    problem: str | None,
) -> None:
    """The per-channel fast path of Q009 accepts only what the full check accepts."""
    if problem == "scale -0.0":
        problem = "scale -0.019999"  # (float32 of -0.02)
    path = tmp_path / "m.tflite"
    layers = [("good", HEALTHY, [0] * 4, 0), ("bad", scales, zero_points, dimension)]
    path.write_bytes(_per_channel_model(layers))
    found = [f for f in check_model(str(path), Options()).findings if f.code == "Q009"]
    if problem is None:
        assert found == []
    else:
        (finding,) = found
        assert finding.tensor == "bad/weights" and problem in finding.message, finding.message


def test_the_readers_of_a_tensor_read_by_many_ops() -> None:
    """Kept as tuples grown by one, then as a list past a few: the same consumers."""
    from helpers.hostile import fan_out

    subgraph = load(fan_out(2_000)).main
    expected: list[list[int]] = [[] for _ in subgraph.tensors]
    for i, op in enumerate(subgraph.operators):
        for t in op.inputs:
            if t >= 0 and (not expected[t] or expected[t][-1] != i):
                expected[t].append(i)
    assert subgraph.consumers == tuple(map(tuple, expected))
    assert max(map(len, subgraph.consumers)) == 2_000


def _large(path: Path, data: bytes) -> Path:
    """`data` followed by zeros (a sparse file) beyond the size the reader reads whole."""
    path.write_bytes(data)
    os.truncate(path, reader_module.READ_WHOLE_BYTES + (1 << 20))
    return path


@pytest.mark.parametrize("leases", [True, False], ids=["leased", "no-lease"])
def test_a_model_too_large_to_read_whole_is_checked_under_a_lease_or_in_a_child_process(
    leases: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Mapped, a model is checked in this process while it holds a read lease on it, else in a
    forked child; the report is the same."""
    from coralcheck.commands import workers as lint

    big = _large(tmp_path / "big.tflite", (FIXTURES / "demo_int8.tflite").read_bytes())
    readers = tmp_path / "pids"
    parse = reader_module.parse

    def recorded(data, path):  # type: ignore[no-untyped-def]
        with open(readers, "a") as f:
            f.write(f"{os.getpid()}\n")
        return parse(data, path)

    if leases and not leases_work(tmp_path):
        pytest.skip("no read leases on this file system")
    if not leases:
        request.getfixturevalue("no_leases")
    monkeypatch.setattr(reader_module, "parse", recorded)
    (report,) = lint.check_all([(str(big), Options())])
    in_process = check_model(str(big), Options())  # (this test's process may map it)
    pids = [int(p) for p in readers.read_text().split()]
    assert len(pids) == 2 and (pids[0] == os.getpid()) == leases and pids[1] == os.getpid()
    assert report.to_dict() == in_process.to_dict()
    assert report.ops and report.summary


@pytest.mark.parametrize("kind", ["source", "compiled"])
def test_a_report_holds_nothing_that_reads_the_model_file(kind: str, tmp_path: Path) -> None:
    """A model mapped under a lease is checked in the lint's own process, and the lease ends when
    the check does: from then on the file may be truncated, and reading its mapping would end
    the process (SIGBUS). So a report holds numbers and text only: no packed per-channel
    vector, mapping or view of the file (a child's report is pickled, which decodes them). A
    per-channel source model, and a real compiled one (its Edge TPU segments decoded)."""
    import mmap

    if kind == "source":
        layers = [("a", HEALTHY, [0] * 4, 0), ("b", [0.01, -1.0, 0.5, 0.2], [0] * 4, 0)]
        path = _large(tmp_path / "big.tflite", _per_channel_model(layers))
    else:
        compiled = CORPUS / "models/coral_test_data_grouper/split_concat_edgetpu.tflite"
        path = _large(tmp_path / "big_edgetpu.tflite", compiled.read_bytes())
    report = check_model(str(path), Options(graph=True, op_shapes=True))
    assert report.graph is not None and report.op_shapes
    assert report.findings if kind == "source" else report.compiled
    seen: set[int] = set()

    def walk(value: object) -> None:
        assert not isinstance(value, PackedNumbers | mmap.mmap | memoryview), value
        if id(value) in seen or isinstance(value, str | bytes | int | float | type(None)):
            return
        seen.add(id(value))
        if isinstance(value, dict):
            items: Iterable[object] = [*value.keys(), *value.values()]
        elif isinstance(value, list | tuple | set | frozenset):
            items = value
        else:  # a record
            names = getattr(value, "_fields", None)
            assert names is not None, type(value)
            items = [getattr(value, name) for name in names]
        for item in items:
            walk(item)

    walk(report)
    assert id(report.graph.tensors[-1]) in seen and id(report.ops[-1]) in seen  # (all walked)


def test_the_cli_prints_the_report_of_a_mapped_model_once(tmp_path: Path) -> None:
    import json

    from conftest import run_cli

    big = _large(tmp_path / "big.tflite", (FIXTURES / "demo_int8.tflite").read_bytes())
    small = tmp_path / "small.tflite"
    small.write_bytes((FIXTURES / "demo_int8.tflite").read_bytes())
    result = run_cli(str(big), "--format", "json")
    assert result.returncode == 0 and result.stderr == ""
    document = json.loads(result.stdout)  # one document: nothing written twice
    (model,) = document["models"]
    alone = json.loads(run_cli(str(small), "--format", "json").stdout)["models"][0]
    assert model["ops"] == alone["ops"] and model["findings"] == alone["findings"]


@pytest.mark.usefixtures("no_leases")
def test_an_internal_error_in_the_child_is_the_models_failure_or_raised_when_debugging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import coralcheck.pipeline.source
    from coralcheck.commands import workers as lint
    from coralcheck.outcome import ModelFailure

    big = _large(tmp_path / "big.tflite", (FIXTURES / "demo_int8.tflite").read_bytes())

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(coralcheck.pipeline.source, "analyze", broken)
    monkeypatch.delenv("CORALCHECK_DEBUG", raising=False)
    (failure,) = lint.check_all([(str(big), Options())])
    assert isinstance(failure, ModelFailure) and failure.internal
    assert "RuntimeError: a bug" in failure.problem
    monkeypatch.setenv("CORALCHECK_DEBUG", "1")
    with pytest.raises(RuntimeError, match="a bug"):
        lint.check_all([(str(big), Options())])


def test_check_model_moves_what_it_made_to_the_oldest_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not scanned by the collector when it is enabled again (5-10 ms after a large model),
    but not frozen either: cyclic garbage made during the check is still collected."""
    import coralcheck.pipeline.source

    made: list[weakref.ref] = []
    analyze = coralcheck.pipeline.source.analyze

    def with_a_cycle(*args: object) -> object:
        cycle: list[object] = []
        cycle.append(cycle)
        made.append(weakref.ref(_Cyclic(cycle)))
        return analyze(*args)

    monkeypatch.setattr(coralcheck.pipeline.source, "analyze", with_a_cycle)
    was_enabled = gc.isenabled()
    gc.enable()
    try:
        report = check_model(str(FIXTURES / "demo_int8.tflite"), Options())
        assert gc.isenabled() and gc.get_freeze_count() == 0
        assert any(o is report.findings for o in gc.get_objects(generation=2))
        gc.collect()
        assert made[0]() is None
        # Objects the caller keeps frozen stay frozen.
        gc.freeze()
        frozen = gc.get_freeze_count()
        check_model(str(FIXTURES / "demo_int8.tflite"), Options())
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
        (gc.enable if was_enabled else gc.disable)()


class _Cyclic:
    def __init__(self, other: object) -> None:
        self.me = self
        self.other = other


@pytest.mark.parametrize("leases", [True, False], ids=["leased", "no-lease"])
def test_the_parent_prepares_while_the_child_checks_and_only_once(
    leases: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`check_all(meanwhile=...)` runs the callable in the parent after the fork (so it overlaps
    the child's check) for a mapped model it cannot lease, before the check otherwise, and once
    either way."""
    from coralcheck.commands import workers

    if leases and not leases_work(tmp_path):
        pytest.skip("no read leases on this file system")
    if not leases:
        request.getfixturevalue("no_leases")
    big = _large(tmp_path / "big.tflite", (FIXTURES / "demo_int8.tflite").read_bytes())
    small = FIXTURES / "demo_int8.tflite"
    for path, in_child in ((big, not leases), (small, False)):
        calls: list[tuple[int, bool]] = []

        def meanwhile(calls: list[tuple[int, bool]] = calls) -> None:
            # Whether a child exists right now: the parent waits on its pipe after this call.
            children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text()
            calls.append((os.getpid(), bool(children.split())))

        (report,) = workers.check_all([(str(path), Options())], meanwhile=meanwhile)
        assert calls == [(os.getpid(), in_child)], path
        assert report.ops and report.summary
