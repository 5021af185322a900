"""The bounded fuzzing run: mutated real models through the whole lint (load → rules →
placement → every renderer), deterministic, about two minutes. The engine is
tests/helpers/fuzzing.py; `benchmarks/fuzz_long.py --hours N` runs the same engine for hours.

Invariant for every mutant: a report, or a `ModelError` whose message is one line naming the
file; no other exception, at most 2 s, and (through the real CLI, for a sample) exit 0/1/2,
exactly one stderr line on 2, at most 200 MB peak RSS.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from helpers import fuzzing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.fuzz

# Mutants per strategy in the hypothesis run (14 strategies); with the exhaustive sweeps below
# this keeps the whole module near two minutes on one CI core.
EXAMPLES_PER_STRATEGY = 600
# Seeds for the exhaustive sweeps: a converter fixture, a small source model with a
# multi-output op, and two compiled models (current format and the 2019 compiler's).
SWEEP_SEEDS = (
    "demo_int8.tflite",
    "while_loop.tflite",
    "coral_test_data_grouper/split_concat_edgetpu.tflite",
    "coral_edgetpu_diploria2/mobilenet_v1_0.25_128_quant_edgetpu.tflite",
)
# The structure the reader must read to build the graph: a cut or a forged length there has to
# be a ModelError, never a report built from whatever bytes were left.
REQUIRED = re.compile(
    r"^((operator_codes|subgraphs|buffers)(\[\d+\])?"
    r"(\.(tensors|operators|inputs|outputs|data)(\[\d+\])?)?|description)$"
)


@pytest.fixture(scope="module")
def seeds() -> dict[str, tuple[bytes, list[fuzzing.Node]]]:
    out = {}
    for name in fuzzing.seed_names(small=True):
        data = fuzzing.seed_data(name)
        out[name] = (data, fuzzing.walk(data))
    return out


@pytest.fixture(scope="module")
def mutant_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "mutant.tflite"


def _fail(name: str, strategy: str, seed: int, what: str, err: fuzzing.Violation) -> None:
    pytest.fail(
        f"{name}, {strategy} seed {seed} ({what}): {err}\n"
        f"replay: fuzzing.mutate(<{name}>, walk(...), {strategy!r}, {seed})",
        pytrace=False,
    )


def test_seed_models_lint_cleanly(seeds: dict, mutant_path: Path) -> None:
    """Every unmutated seed gives a report: otherwise the mutants below test nothing."""
    assert len(seeds) >= 5
    for name, (data, nodes) in seeds.items():
        assert len(nodes) > 50, f"the walker found almost no structure in {name}"
        mutant_path.write_bytes(data)
        outcome = fuzzing.lint_in_process(mutant_path)
        assert outcome.kind == "report", f"{name}: {outcome.message}"


def test_walker_reaches_the_compiled_executables(seeds: dict) -> None:
    """The engine must see inside compiled models, or the Edge TPU decoder goes unfuzzed."""
    compiled = [n for n in seeds if n.endswith("_edgetpu.tflite")]
    if not compiled:
        pytest.skip("no compiled model in the shared corpus")
    for name in compiled:
        labels = {n.label.rsplit(":", 1)[-1].split(".")[0] for n in seeds[name][1]}
        assert {"Package", "MultiExecutable", "Executable"} <= labels, name


def _applies(strategy: str, data: bytes, nodes: list[fuzzing.Node]) -> bool:
    """Whether `strategy` finds something to mutate in this seed (within a few tries)."""
    for seed in range(8):
        try:
            fuzzing.mutate(data, nodes, strategy, seed)
        except fuzzing.NoTarget:
            continue
        return True
    return False


@pytest.mark.parametrize("strategy", fuzzing.ALL_STRATEGIES)
def test_mutants_keep_the_invariant(strategy: str, seeds: dict, mutant_path: Path) -> None:
    names = [n for n in sorted(seeds) if _applies(strategy, *seeds[n])]
    if not names:
        pytest.skip(f"no seed model has anything {strategy} can mutate")
    counts = {"report": 0, "error": 0}

    @settings(
        max_examples=EXAMPLES_PER_STRATEGY,
        derandomize=True,
        database=None,
        deadline=None,  # the 2 s limit is checked by lint_in_process itself
        suppress_health_check=list(HealthCheck),
    )
    @given(name=st.sampled_from(names), seed=st.integers(0, 2**32 - 1))
    def mutant(name: str, seed: int) -> None:
        data, nodes = seeds[name]
        try:
            mutated, what = fuzzing.mutate(data, nodes, strategy, seed)
        except fuzzing.NoTarget:
            return
        mutant_path.write_bytes(mutated)
        try:
            counts[fuzzing.lint_in_process(mutant_path).kind] += 1
        except fuzzing.Violation as err:
            _fail(name, strategy, seed, what, err)

    mutant()
    assert counts["report"] + counts["error"] >= EXAMPLES_PER_STRATEGY // 2, counts


PAIRS = (
    "coral_test_data_grouper/split_concat",
    "coral_test_data_grouper/keras_lstm_mnist_ptq",
)


@pytest.mark.parametrize("side", ["source", "compiled"])
def test_pair_mode_with_one_side_mutated(side: str, seeds: dict, tmp_path: Path) -> None:
    """`--compiled`: a real source with a mutated compiled twin, and the other way round."""
    pairs = [p for p in PAIRS if f"{p}.tflite" in seeds and f"{p}_edgetpu.tflite" in seeds]
    if not pairs:
        pytest.skip("the shared corpus is not here")
    source, compiled = tmp_path / "model.tflite", tmp_path / "model_edgetpu.tflite"

    @settings(
        max_examples=EXAMPLES_PER_STRATEGY // 4,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        pair=st.sampled_from(pairs),
        strategy=st.sampled_from(fuzzing.ALL_STRATEGIES),
        seed=st.integers(0, 2**32 - 1),
    )
    def mutant(pair: str, strategy: str, seed: int) -> None:
        name = f"{pair}_edgetpu.tflite" if side == "compiled" else f"{pair}.tflite"
        other = f"{pair}.tflite" if side == "compiled" else f"{pair}_edgetpu.tflite"
        data, nodes = seeds[name]
        try:
            mutated, what = fuzzing.mutate(data, nodes, strategy, seed)
        except fuzzing.NoTarget:
            return
        (compiled if side == "compiled" else source).write_bytes(mutated)
        (source if side == "compiled" else compiled).write_bytes(seeds[other][0])
        try:
            fuzzing.lint_in_process(source, compiled=compiled)
        except fuzzing.Violation as err:
            _fail(name, strategy, seed, f"{side} side of the pair: {what}", err)

    mutant()


def _sweep(seeds: dict, name: str) -> tuple[bytes, list[fuzzing.Node]]:
    if name not in seeds:
        pytest.skip(f"{name} is not here (shared corpus absent?)")
    return seeds[name]


@pytest.mark.parametrize("name", SWEEP_SEEDS)
def test_truncation_at_every_table_boundary(name: str, seeds: dict, mutant_path: Path) -> None:
    data, nodes = _sweep(seeds, name)
    required = {
        n.pos for n in nodes if n.kind in fuzzing.BOUNDARY_KINDS and REQUIRED.match(n.label)
    }
    cuts = fuzzing.boundaries(nodes)
    assert len(cuts) > 50
    for cut in cuts:
        mutant_path.write_bytes(data[:cut])
        try:
            outcome = fuzzing.lint_in_process(mutant_path)
        except fuzzing.Violation as err:
            _fail(name, "truncate", cut, f"truncated to {cut} bytes", err)
        if cut in required:
            assert outcome.kind == "error", f"{name} cut at {cut} (a table it reads) linted"


@pytest.mark.parametrize("name", SWEEP_SEEDS)
def test_every_offset_pointed_outside_the_file(name: str, seeds: dict, mutant_path: Path) -> None:
    data, nodes = _sweep(seeds, name)
    offsets = [n for n in nodes if n.kind == "uoffset"]
    assert offsets
    for node in offsets:
        buf = bytearray(data)
        buf[node.pos : node.pos + 4] = (len(data) - node.pos + 4).to_bytes(4, "little")
        mutant_path.write_bytes(bytes(buf))
        try:
            outcome = fuzzing.lint_in_process(mutant_path)
        except fuzzing.Violation as err:
            _fail(name, "offset_outside", node.pos, node.label, err)
        if REQUIRED.match(node.label):
            assert outcome.kind == "error", f"{name}: {node.label} points outside, yet it linted"


@pytest.mark.parametrize("name", SWEEP_SEEDS)
def test_every_vector_length_inflated_to_2_31(name: str, seeds: dict, mutant_path: Path) -> None:
    data, nodes = _sweep(seeds, name)
    vectors = [n for n in nodes if n.kind in ("vector", "string")]
    assert vectors
    for node in vectors:
        buf = bytearray(data)
        buf[node.pos : node.pos + 4] = (2**31).to_bytes(4, "little")
        mutant_path.write_bytes(bytes(buf))
        try:
            outcome = fuzzing.lint_in_process(mutant_path)
        except fuzzing.Violation as err:
            _fail(name, "vector_inflate", node.pos, node.label, err)
        if REQUIRED.match(node.label):
            assert outcome.kind == "error", f"{name}: {node.label} claims 2^31 items, yet linted"


def test_cli_on_a_sample_of_mutants(seeds: dict, tmp_path: Path) -> None:
    """The real CLI in a subprocess: exit 0/1/2, one stderr line on 2, ≤ 2 s, ≤ 200 MB RSS,
    and the same verdict (report or error) as the in-process lint."""
    rng = random.Random(7)
    names = sorted(seeds)
    kinds = set()
    for i in range(24):
        name = names[i % len(names)]
        strategy = fuzzing.ALL_STRATEGIES[i % len(fuzzing.ALL_STRATEGIES)]
        data, nodes = seeds[name]
        seed = rng.randrange(2**32)
        try:
            mutated, what = fuzzing.mutate(data, nodes, strategy, seed)
        except fuzzing.NoTarget:
            continue
        path = tmp_path / f"mutant{i}.tflite"
        path.write_bytes(mutated)
        try:
            cli = fuzzing.lint_subprocess(path)
            in_process = fuzzing.lint_in_process(path)
        except fuzzing.Violation as err:
            _fail(name, strategy, seed, what, err)
        assert cli.kind == in_process.kind, f"{name} {strategy} {seed}: CLI and API disagree"
        kinds.add(cli.kind)
    assert kinds == {"report", "error"}, "the sample should hold both outcomes"


CRASHERS = fuzzing.crashers()


@pytest.mark.parametrize("fixture", CRASHERS, ids=[p.name.split(".")[0] for p in CRASHERS])
def test_crashers_stay_fixed(fixture: Path, tmp_path: Path) -> None:
    """Every mutant that once broke the invariant (tests/crashers/) keeps it now."""
    note = fixture.parent / (fixture.name.split(".")[0] + ".txt")
    assert note.is_file(), f"{fixture.name} has no note"
    assert len(note.read_text(encoding="utf-8").strip().splitlines()) == 1
    try:
        data = fuzzing.load_crasher(fixture)
    except fuzzing.BaseMissing as e:
        pytest.skip(f"its base model {e} (shared corpus) is not here")
    path = tmp_path / "crasher.tflite"
    path.write_bytes(data)
    fuzzing.lint_in_process(path)


def test_crashers_directory_is_not_empty() -> None:
    """The replay above must have something to replay (the fixtures are committed)."""
    assert CRASHERS, "tests/crashers/ holds no regression fixtures"
