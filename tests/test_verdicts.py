"""The verdict a CI job acts on (exit code, error findings) against the real compiler and
against models converted the way Coral users convert them.

- Every model the real compiler mapped completely (../shared/corpus/groundtruth.json: no op on
  the CPU) passes `coralcheck MODEL`, source and compiled; every model it mapped nothing of
  fails; a partly mapped model fails exactly when the ops the compiler really left on the CPU
  hold a real share of its compute (rules/catalogue.toml [verdict]).
- Every error-severity rule names its evidence, and the evidence exists.
- `CASES`: small Keras models converted with the real TensorFlow converter, with the exit code
  a Coral user expects and why (README "What fails the gate").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from conftest import CORPUS, FIXTURES
from helpers import user_conversions as uc

from coralcheck.analyze.cost import work
from coralcheck.analyze.placement import predict
from coralcheck.checks.catalogue import all_rules
from coralcheck.cli import main
from coralcheck.edgetpu.knowledge import knowledge
from coralcheck.edgetpu.target import target
from coralcheck.model import load
from coralcheck.options import Options

SHARED = CORPUS.parent


@cache
def truth() -> dict[str, dict[str, Any]]:
    """../shared/corpus/groundtruth.json, usable pairs only ({} without the corpus)."""
    path = CORPUS / "groundtruth.json"
    if not path.exists():
        return {}
    entries = json.loads(path.read_text(encoding="utf-8"))
    return {compiled: e for compiled, e in entries.items() if e.get("usable")}


def _fully_mapped() -> list[str]:
    paths = []
    for compiled, entry in truth().items():
        if entry["cpu_ops"] == 0:
            paths += [entry["source"], compiled]
    return sorted(set(paths))


def _nothing_mapped() -> list[str]:
    paths = []
    for compiled, entry in truth().items():
        if entry["tpu_ops"] == 0:
            paths += [entry["source"], compiled]
    return sorted(set(paths))


def _partly_mapped() -> list[str]:
    return sorted(compiled for compiled, e in truth().items() if e["cpu_ops"] and e["tpu_ops"])


def lint_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """`coralcheck ARGS --format json` in this process: exit code and the document."""
    code = main([*args, "--format", "json", "--isolated"])
    return code, json.loads(capsys.readouterr().out)


def errors_of(document: dict[str, Any]) -> list[str]:
    return [
        f"{f['code']} {f['message']}"
        for m in document["models"]
        for f in m["findings"]
        if f["severity"] == "error"
    ]


# --- the real compiler's verdict --------------------------------------------------------------


@pytest.mark.parametrize("path", _fully_mapped())
def test_a_model_the_compiler_mapped_completely_passes(
    path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No error rule fires on a model whose every op the real compiler put on the Edge TPU."""
    code, document = lint_json(capsys, str(CORPUS / path))
    assert errors_of(document) == []
    assert code == 0


def test_the_corpus_has_fully_mapped_models_of_every_kind(corpus_dir: Path) -> None:
    """The test above is not vacuous: it covers sources and compiled models, community
    conversions with an open batch (nrf20) and several compiler releases."""
    paths = _fully_mapped()
    assert len(paths) >= 40
    assert any(p.endswith("_edgetpu.tflite") for p in paths)
    assert any(load(CORPUS / p).main.tensors[0].is_dynamic for p in paths if "nrf20" in p)


@pytest.mark.parametrize("path", _nothing_mapped() or ["(none in the corpus)"])
def test_a_model_the_compiler_mapped_nothing_of_fails(
    path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if path.startswith("("):
        pytest.skip("no corpus pair with nothing mapped (the fixtures below cover the case)")
    code, document = lint_json(capsys, str(CORPUS / path))
    assert code == 1 and errors_of(document)


@pytest.mark.parametrize("name", ["float32.tflite", "float16.tflite", "dynamic_range.tflite"])
def test_a_model_nothing_of_which_can_map_fails_with_a_one_line_finding(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Float, float16 and dynamic-range models: the compiler says "Model not quantized" or maps
    nothing ("Number of Edge TPU subgraphs: 0", compiler-logs/12 and 19)."""
    code, document = lint_json(capsys, str(FIXTURES / name))
    assert code == 1
    (g003,) = [f for f in document["models"][0]["findings"] if f["code"] == "G003"]
    assert g003["severity"] == "error" and "\n" not in g003["message"]
    assert g003["message"].startswith("0 of ")


def _real_cpu_share(compiled: str) -> float:
    """The share of the source model's work (`cost.work`: its MACs) that the real compiler left
    on the CPU."""
    entry = truth()[compiled]
    prediction = predict(load(CORPUS / entry["source"]), target(Options().compiler_version))
    per_op = work(prediction.macs, prediction.views)
    cpu = {index for index, _, placement in entry["per_op"] if placement == "cpu"}
    return sum(per_op[i] for i in cpu) / sum(per_op)


@pytest.mark.parametrize("compiled", _partly_mapped())
def test_a_partly_mapped_model_fails_exactly_when_its_real_cpu_part_holds_compute(
    compiled: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real placement decides: CPU ops holding at least the [verdict] share of the compute
    cut the Edge TPU part short (G001, error); a cheaper CPU tail is a warning (G004)."""
    entry = truth()[compiled]
    share = _real_cpu_share(compiled)
    expected = int(share >= knowledge().verdict["compute_share"])
    several = ["-a"] if entry["segments"] > 1 else []  # compiled with -a
    code, document = lint_json(capsys, str(CORPUS / entry["source"]), *several)
    assert code == expected, (f"real CPU share {share:.2%}", errors_of(document))


def test_the_partly_mapped_corpus_has_both_verdicts(corpus_dir: Path) -> None:
    threshold = knowledge().verdict["compute_share"]
    single = [c for c in _partly_mapped() if truth()[c]["segments"] == 1]
    shares = [_real_cpu_share(c) for c in single]
    assert any(s >= threshold for s in shares) and any(s < threshold for s in shares)


# --- evidence behind every error ---------------------------------------------------------------

# The C03x rules report a failure the real compiler printed in this very run: the run is their
# evidence (tests/test_compiler_log.py parses every real failure log in ../shared).
_OBSERVED_FAILURES = re.compile(r"C03\d|C040")
_SHARED_PATH = re.compile(r"\.\./shared/([\w./-]+[\w/])")
_LOG_NAME = re.compile(r"\b(\d\d_[\w.-]+\.log)\b")


def _evidence(explanation: str) -> str:
    paragraphs = [p for p in explanation.split("\n\n") if p.startswith("Evidence:")]
    return paragraphs[0] if paragraphs else ""


def _error_rules() -> list[Any]:
    return [r for r in all_rules() if r.severity == "error"]


@pytest.mark.parametrize("rule", _error_rules(), ids=lambda r: r.code)
def test_every_error_rule_names_evidence_that_exists(rule: Any) -> None:
    if _OBSERVED_FAILURES.fullmatch(rule.code):
        return
    evidence = _evidence(rule.explanation)
    assert evidence, f"{rule.code}'s docstring has no 'Evidence:' paragraph"
    if not SHARED.exists():
        pytest.skip("../shared is not here")
    paths = [SHARED / p for p in _SHARED_PATH.findall(evidence)]
    paths += [SHARED / "edgetpu" / "compiler-logs" / name for name in _LOG_NAME.findall(evidence)]
    named_tests = re.findall(r"tests/(test_\w+\.py)", evidence)
    paths += [Path(__file__).parent / name for name in named_tests]
    assert paths or "LiteRT" in evidence, f"{rule.code} cites nothing checkable: {evidence}"
    missing = [str(p) for p in paths if not p.exists() and not p.with_suffix(".tflite").exists()]
    assert not missing, f"{rule.code} cites files that do not exist: {missing}"


def test_no_explanation_claims_a_compiler_failure_without_evidence() -> None:
    """Any rule (warnings included) saying the compiler fails cites where it was seen."""
    claims = re.compile(r"compiler (fails|rejects)|fails outright|compilation fails", re.I)
    unbacked = [
        r.code
        for r in all_rules()
        if claims.search(r.explanation)
        and not _evidence(r.explanation)
        and not _OBSERVED_FAILURES.fullmatch(r.code)
    ]
    assert not unbacked


# --- small Keras models, converted as users do ---------------------------------------------------


class Case(NamedTuple):
    """One Keras model and converter recipe, with the exit code a Coral user expects."""

    name: str
    build: Callable[[], Any]  # builds the Keras model (tests/helpers/user_conversions.py)
    recipe: str
    exit_code: int
    why: str
    decisive: frozenset[str] = frozenset()  # the rule codes that must be among the findings


CASES = (
    Case(
        "relu",
        uc.cnn,
        "int8",
        exit_code=0,
        why=(
            "everything maps; the batch left as None is S004, a warning: the compiler "
            "compiles the stored batch 1 (corpus nrf20)"
        ),
        decisive=frozenset({"S004"}),
    ),
    Case(
        "relu_batch1",
        partial(uc.cnn, batch=1),
        "int8",
        exit_code=0,
        why=("the recommended export: nothing to report"),
        decisive=frozenset(),
    ),
    Case(
        "silu",
        partial(uc.cnn, "swish", batch=1),
        "int8",
        exit_code=0,
        why=("LOGISTIC + MUL map; SiLU is advice (A001)"),
        decisive=frozenset({"A001"}),
    ),
    Case(
        "leaky_relu",
        partial(uc.cnn, "leaky", batch=1),
        "int8",
        exit_code=1,
        why=("LEAKY_RELU does not map: the convolutions after it run on the CPU"),
        decisive=frozenset({"G001", "A003"}),
    ),
    Case(
        "hard_swish",
        partial(uc.cnn, "hard_swish", batch=1),
        "int8",
        exit_code=1,
        why=("HARD_SWISH does not map: the convolutions after it run on the CPU"),
        decisive=frozenset({"G001", "A002"}),
    ),
    Case(
        "gelu",
        partial(uc.cnn, "gelu", batch=1),
        "int8",
        exit_code=1,
        why=("GELU does not map: the convolutions after it run on the CPU"),
        decisive=frozenset({"G001", "A004"}),
    ),
    Case(
        "elu",
        partial(uc.cnn, "elu", batch=1),
        "int8",
        exit_code=1,
        why=(
            "the converter keeps ELU in float (DEQUANTIZE -> ELU -> QUANTIZE): the "
            "convolutions after it run on the CPU"
        ),
        decisive=frozenset({"G001", "Q002"}),
    ),
    Case(
        "float",
        partial(uc.cnn, batch=1),
        "float",
        exit_code=1,
        why=("a float model: 'Model not quantized', or nothing maps"),
        decisive=frozenset({"Q001", "G003"}),
    ),
    Case(
        "dynamic_range",
        partial(uc.cnn, batch=1),
        "dynamic_range",
        exit_code=1,
        why=("int8 weights, float compute: nothing maps"),
        decisive=frozenset({"Q003", "G003"}),
    ),
    Case(
        "float16",
        partial(uc.cnn, batch=1),
        "float16",
        exit_code=1,
        why=("float16 weights, float compute: nothing maps"),
        decisive=frozenset({"Q004", "G003"}),
    ),
    Case(
        "int16x8",
        partial(uc.cnn, batch=1),
        "int16x8",
        exit_code=1,
        why=("16-bit activations: nothing maps"),
        decisive=frozenset({"Q005", "G003"}),
    ),
    Case(
        "float_io",
        partial(uc.cnn, batch=1),
        "int8_float_io",
        exit_code=0,
        why=(
            "int8 inside; the float QUANTIZE and DEQUANTIZE at the ends run on the CPU (I001, "
            "a warning; corpus nrf20 mnist4 compiled so)"
        ),
        decisive=frozenset({"I001"}),
    ),
    Case(
        "batch4",
        partial(uc.cnn, batch=4),
        "int8",
        exit_code=1,
        why=("batch 4: almost no op maps"),
        decisive=frozenset({"S003"}),
    ),
    Case(
        "dynamic_hw",
        partial(uc.cnn, hw=(None, None)),
        "int8",
        exit_code=1,
        why=("unknown height and width: the compiler would compile the stored 1x1 placeholder"),
        decisive=frozenset({"S001"}),
    ),
    Case(
        "reshape_open_batch",
        uc.reshape,
        "int8",
        exit_code=1,
        why=(
            "a Reshape on an open batch computes sizes at run time: 'dynamic-sized tensors' "
            "(compiler-logs/06)"
        ),
        decisive=frozenset({"S001"}),
    ),
    Case(
        "rank5_elementwise",
        uc.five_d_elementwise,
        "int8",
        exit_code=1,
        why=("5-D tensors at batch 1: no op maps"),
        decisive=frozenset({"G003", "S002"}),
    ),
    Case(
        "conv3d",
        uc.conv3d,
        "int8",
        exit_code=1,
        why=("CONV_3D stays in float and holds the compute"),
        decisive=frozenset({"G001"}),
    ),
    Case(
        "nchw_transposes",
        uc.nchw,
        "int8",
        exit_code=0,
        why=("channels-first input: TRANSPOSE maps from compiler 16.0 on"),
        decisive=frozenset(),
    ),
    Case(
        "small_resize",
        partial(uc.resize, (32, 32), convs_after=True),
        "int8",
        exit_code=0,
        why=("a 2x bilinear resize maps"),
        decisive=frozenset(),
    ),
    Case(
        "large_resize_at_end",
        partial(uc.resize, (1024, 1024), convs_after=False),
        "int8",
        exit_code=0,
        why=("a 64x resize at the end stays on the CPU: a tail (G004)"),
        decisive=frozenset({"G004", "O003"}),
    ),
    Case(
        "large_resize_mid",
        partial(uc.resize, (512, 512), convs_after=True),
        "int8",
        exit_code=1,
        why=("a 32x resize keeps the convolution after it on the CPU"),
        decisive=frozenset({"G001", "O003"}),
    ),
    Case(
        "multi_io",
        uc.multi_io,
        "int8",
        exit_code=0,
        why=("two inputs, two outputs: everything maps"),
        decisive=frozenset(),
    ),
)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("tensorflow")
    directory = tmp_path_factory.getbasetemp() / "user_conversions"
    return {case.name: uc.write(directory, case.name, case.build(), case.recipe) for case in CASES}


@pytest.mark.tensorflow
@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_keras_model_gets_the_verdict_a_coral_user_expects(
    case: Case, converted: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = lint_json(capsys, str(converted[case.name]))
    found = {f["code"] for f in document["models"][0]["findings"]}
    assert code == case.exit_code, (case.why, errors_of(document))
    assert case.decisive <= found, (case.why, found)
    if case.exit_code == 0:
        assert not errors_of(document)
