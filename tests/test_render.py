"""Renderers on hand-made reports (every field known: tests/helpers/reports.py) and on real
fixture reports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import FIXTURES, REPO
from helpers.reports import (
    ANSI,
    HOSTILE_NAME,
    UNSPECIFIED,
    clean,
    fake_rule,
    hostile,
    outcome_for,
    partly_mapped,
    report_of,
    report_schema,
    sarif_validator,
    segmented,
    validate_report_json,
)

from coralcheck.config import Config
from coralcheck.gates import GateResult
from coralcheck.outcome import ModelFailure, Outcome, judge
from coralcheck.render import FORMATS, render
from coralcheck.render.escape import printable
from coralcheck.render.phrases import verdict_line
from coralcheck.report import (
    Finding,
    IOTensor,
    Latency,
    LatencyDetail,
    LatencySegment,
    Memory,
    ModelReport,
    OpPlacement,
    Report,
    RootCause,
    Summary,
    TpuSegment,
)


def gated_outcome(report: Report) -> Outcome:
    """Gates set and failing, a known finding, a regression and a model that failed to load."""
    config = Config(fail_on="warning", max_cpu_ops=0, require_full_mapping=True)
    return outcome_for(
        report,
        config,
        failures=(ModelFailure("models/broken.tflite", "truncated file (12 of 40 bytes)"),),
        baseline="baseline.json",
        known=frozenset({0}),
        regressions=(GateResult("baseline", False, "new CPU op: ARG_MAX"),),
    )


@pytest.fixture
def fake_registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, SimpleNamespace]:
    """A registry with the codes the hand-made reports use."""
    rules = {
        c: fake_rule(c, s) for c, s in (("CC101", "error"), ("CC302", "warning"), ("CC900", "info"))
    }
    monkeypatch.setattr("coralcheck.registry.codes", lambda: sorted(rules))
    monkeypatch.setattr("coralcheck.registry.title", lambda code: rules[code].title)
    monkeypatch.setattr("coralcheck.checks.catalogue.all_rules", lambda: list(rules.values()))
    return rules


SAMPLES = {
    "partly_mapped": lambda: report_of(partly_mapped()),
    "clean": lambda: report_of(clean()),
    "hostile": lambda: report_of(hostile()),
    "several": lambda: report_of(partly_mapped(), clean(), hostile()),
    "segmented": lambda: report_of(segmented()),
}


# --- text --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("verbose", [False, True])
def test_plain_text_fits_80_columns_and_has_no_escape_codes(name: str, verbose: bool) -> None:
    report = SAMPLES[name]()
    text = render(report, "text", outcome=gated_outcome(report), verbose=verbose)
    assert not ANSI.search(text.replace(HOSTILE_NAME, ""))
    too_long = [line for line in text.splitlines() if len(line) > 80]
    assert not too_long


def test_colour_only_when_asked() -> None:
    report = report_of(partly_mapped())
    assert ANSI.search(render(report, "text", color=True))
    assert not ANSI.search(render(report, "text", color=False))


def test_verdict_line_names_the_first_cpu_op_and_the_segments() -> None:
    assert verdict_line(partly_mapped()) == (
        "27 of 30 ops on the Edge TPU (90% of MACs), 1 segment — 3 on CPU from op 27 "
        "RESIZE_BILINEAR"
    )
    assert verdict_line(clean()) == "All 5 ops on the Edge TPU, 1 segment"


def test_text_shows_each_segment_and_the_cpu_ops_between_them() -> None:
    text = render(report_of(segmented()), "text")
    assert verdict_line(segmented()).startswith("5 of 7 ops on the Edge TPU (100% of MACs), 2 seg")
    part = text[text.index("Edge TPU segments (2;") : text.index("Result:")]
    assert re.search(
        r"^\s+1\s+ops 0–2 \(3 ops, 1\.0 k MACs\)\s+op 3 GATHER, op 4 CAST$", part, re.M
    )
    assert re.search(r"^\s+2\s+ops 5–6 \(2 ops\)\s+end of the Edge TPU part$", part, re.M)
    # One segment: the verdict line says it all, no section.
    assert "Edge TPU segments" not in render(report_of(partly_mapped()), "text")


def test_json_lists_the_segments() -> None:
    doc = json.loads(render(report_of(segmented()), "json"))
    (model,) = doc["models"]
    assert model["segments"][0] == {
        "number": 1,
        "ops": [0, 1, 2],
        "inputs": [0],
        "outputs": [4],
        "cpu_after": [3, 4],
        "macs": 1000,
    }
    assert model["summary"]["tpu_segments"] == len(model["segments"]) == 2


def test_verdict_line_lists_separate_cpu_stretches() -> None:
    m = partly_mapped()
    ops = list(m.ops)
    ops[0] = ops[0]._replace(placement="cpu", status=UNSPECIFIED)
    m = m._replace(ops=ops, summary=Summary(30, 26, 4, 1))
    assert verdict_line(m).endswith("4 on CPU: op 0 QUANTIZE, 3 from op 27 RESIZE_BILINEAR")


def test_text_collapses_tpu_runs_but_shows_every_cpu_op_with_status_and_reason() -> None:
    report = report_of(partly_mapped())
    text = render(report, "text")
    ops_part = text[text.index("Ops") : text.index("Compiled model")]
    assert re.search(r"^\s+0–26\s+QUANTIZE, CONV_2D×13,", ops_part, re.M)
    for index in (27, 28, 29):
        assert re.search(rf"^\s+{index}\s+\S+\s+CPU\s", ops_part, re.M)
    flat = " ".join(ops_part.split())
    assert "but not mapped due to some unspecified limitation output 513x513x21 too big" in flat
    assert "after op 27 RESIZE_BILINEAR" in flat
    # -v: one row per op
    verbose = render(report, "text", verbose=True)
    ops_part = verbose[verbose.index("Ops") : verbose.index("Compiled model")]
    rows = re.findall(r"^\s+(\d+)\s+[A-Z_]", ops_part, re.M)
    assert [int(r) for r in rows] == list(range(30))


def test_text_io_table_and_formula_use_the_models_numbers() -> None:
    text = render(report_of(partly_mapped()), "text")
    assert re.search(r"input\s+sub_7\s+uint8\s+1x513x513x3\s+0\.0078125\s+128", text)
    assert re.search(r"output\s+probs\s+int8\s+\?x10\s+0\.00390625\s+-128", text)
    assert "q = round(x / 0.0078125) + 128" in text
    assert "x = 0.0078125 · (q − 128)" in text
    assert "q = round(x / 0.00390625) − 128" in text
    assert "x = 0.00390625 · (q + 128)" in text
    # a float output has no formula
    assert "round(x / —" not in text


def test_text_findings_are_grouped_by_severity_with_code_location_and_fix() -> None:
    text = render(report_of(partly_mapped()), "text")
    errors, warnings, info = (text.index(h) for h in ("Errors (1)", "Warnings (1)", "Info (1)"))
    assert errors < warnings < info
    error_part = " ".join(text[errors:warnings].split())
    assert "CC101 op 27 RESIZE_BILINEAR, tensor 'ResizeBilinear:0':" in error_part
    assert "fix: Resize to 257x257 on the TPU" in error_part
    assert "CC302 op 28 ARG_MAX: ARG_MAX runs on the CPU" in " ".join(text[warnings:].split())


def test_text_biggest_wins_shows_three_unless_verbose() -> None:
    report = report_of(partly_mapped())
    text = render(report, "text")
    assert "1.  op 27 RESIZE_BILINEAR: output too big" in text
    assert "fixing it alone brings 2 ops to the Edge TPU" in text
    assert "third cause" in text and "fourth cause" not in text
    assert "1 more root cause" in text
    assert "fourth cause" in render(report, "text", verbose=True)


def test_text_memory_compiled_facts_and_diff() -> None:
    text = render(report_of(partly_mapped()), "text")
    flat = " ".join(text.split())
    assert "Parameter memory 2.00 MiB: 2.00 MiB cached on-chip, 0 B streamed" in flat
    assert re.search(r"cpu ops\s+ARG_MAX, RESIZE_BILINEAR", text)
    assert re.search(r"segments\s+1 entry \(-v\)", text)
    verbose = render(report_of(partly_mapped()), "text", verbose=True)
    # the segment's own table, bytes also in KiB/MiB
    assert re.search(r"name\s+on chip parameter bytes\s+cycles", verbose)
    assert re.search(r"edgetpu-custom-op\s+3\.87 MiB \(4,055,040 B\)\s+0", verbose)
    assert re.search(r"Prediction vs compiler \(1 disagreement\)", text)
    assert re.search(r"28\s+ARG_MAX\s+tpu\s+cpu", text)


def test_text_result_line_states_why_it_failed() -> None:
    report = report_of(partly_mapped())
    assert "Result: FAILED — 1 error at or above fail-on (error)" in render(report, "text")
    passed = render(report, "text", outcome=outcome_for(report, Config(fail_on="never")))
    assert "Result: passed — 1 error, 1 warning, 1 info, none failing (fail-on: never)" in passed
    gated = render(report, "text", outcome=gated_outcome(report))
    assert re.search(r"FAILED\s+max-cpu-ops\s+3 ops on the CPU \(at most 0 allowed\)", gated)
    assert re.search(r"FAILED\s+baseline\s+new CPU op: ARG_MAX", gated)
    assert (
        "Result: FAILED — 1 warning at or above fail-on (warning); 3 gates failed: max-cpu-ops, "
        "require-full-mapping, baseline"
    ) in " ".join(gated.split())
    assert "[in baseline]" in gated  # finding 0 is known


def test_text_summary_table_for_several_models() -> None:
    report = report_of(partly_mapped(), clean())
    outcome = outcome_for(report, failures=(ModelFailure("bad.tflite", "empty file"),))
    text = render(report, "text", outcome=outcome)
    summary = text[text.index("Summary") :]
    assert re.search(
        r"models/deeplab_quant\.tflite\s+27/30\s+1 error, 1 warning, 1 info\s+FAILED", summary
    )
    assert re.search(r"models/clean\.tflite\s+5/5\s+—\s+ok", summary)
    assert re.search(r"bad\.tflite\s+—\s+—\s+error", summary)
    assert "3 models: 1 failed, 1 could not be checked" in summary
    assert "empty file" not in text  # the error itself is on stderr
    alone = report_of()
    assert render(alone, "text", outcome=outcome_for(alone, failures=outcome.failures)) == ""


def test_text_on_a_real_fixture_report() -> None:
    from coralcheck import check

    report = check(FIXTURES / "demo_int8.tflite")
    text = render(report, "text", verbose=True)
    assert str(FIXTURES / "demo_int8.tflite") in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "q = round(x / 0.0039215642) + 0" in text  # the fixture's input scale (manifest)


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.tflite")))
def test_real_reports_show_every_cpu_op_and_every_finding(fixture: str) -> None:
    from coralcheck import check

    m = check(FIXTURES / fixture).models[0]
    text = render(report_of(m), "text")
    ops_part = text[text.index("Ops") :]
    for op in m.ops:
        if op.placement == "cpu":
            row = rf"^\s+{op.index}\s+{re.escape(op.opcode)}\s+CPU\s+"
            assert re.search(row, ops_part, re.M), (fixture, op.index)
    flat = " ".join(text.split())
    assert " ".join(verdict_line(m).split()) in flat
    for f in m.findings:
        assert re.search(rf"^\s+{f.code}\s", text, re.M), (fixture, f.code)


def test_real_report_names_the_root_cause_in_the_verdict_line() -> None:
    """fixtures/README.md: GELU (op 2) is the root cause in gelu_int8."""
    from coralcheck import check

    m = check(FIXTURES / "gelu_int8.tflite").models[0]
    assert verdict_line(m).endswith("on CPU from op 2 GELU")


# --- json --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_json_validates_against_the_schema(name: str) -> None:
    report = SAMPLES[name]()
    for outcome in (outcome_for(report), gated_outcome(report)):
        doc = json.loads(render(report, "json", outcome=outcome))
        validate_report_json(doc)
        assert doc["exit_code"] == outcome.exit_code


def test_json_schema_is_valid_strict_and_shipped() -> None:
    import jsonschema

    schema = report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    report = report_of(partly_mapped())
    doc = json.loads(render(report, "json"))
    broken = json.loads(json.dumps(doc))
    broken["models"][0]["findings"][0]["severity"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        validate_report_json(broken)
    broken = json.loads(json.dumps(doc))
    broken["models"][0]["summary"]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate_report_json(broken)
    # the schema is package data, next to the code that writes the JSON
    from importlib.resources import files

    assert json.loads(files("coralcheck").joinpath("report.schema.json").read_text()) == schema
    assert '"coralcheck" = ["py.typed", "*.json"]' in (REPO / "pyproject.toml").read_text()


def test_json_schema_describes_every_report_field() -> None:
    """A field added to report.py without the schema would fail validation for everybody."""
    defs = report_schema()["$defs"]
    for cls, name in (
        (ModelReport, "model"),
        (Summary, "summary"),
        (OpPlacement, "op"),
        (Finding, "finding"),
        (IOTensor, "io_tensor"),
        (Memory, "memory"),
        (RootCause, "root_cause"),
        (TpuSegment, "segment"),
        (Latency, "latency"),
        (LatencyDetail, "latency_detail"),
        (LatencySegment, "latency_segment"),
    ):
        fields = set(cls._fields)
        assert fields <= set(defs[name]["properties"]), (
            name,
            fields - set(defs[name]["properties"]),
        )


def test_json_keeps_the_stable_contract_and_adds_the_verdict() -> None:
    report = report_of(partly_mapped())
    doc = json.loads(render(report, "json", outcome=gated_outcome(report)))
    assert doc["schema_version"] == 1
    model = doc["models"][0]
    assert model["path"] == "models/deeplab_quant.tflite"
    assert {"index", "opcode", "version", "placement", "status", "reason"} <= set(model["ops"][27])
    assert model["ops"][27]["placement"] == "cpu"
    assert model["summary"]["ops_tpu"] == 27 and model["summary"]["tpu_segments"] == 1
    finding = model["findings"][0]
    assert {"code", "severity", "message", "op", "tensor", "fix"} <= set(finding)
    assert finding["known"] is True and finding["fails"] is False  # known from the baseline
    assert model["findings"][1]["fails"] is True  # a warning with fail-on warning
    assert model["verdict"]["failed"] is True
    gates = {g["name"]: g["passed"] for g in model["verdict"]["gates"]}
    assert gates == {"max-cpu-ops": False, "require-full-mapping": False, "baseline": False}
    assert doc["errors"] == [
        {
            "path": "models/broken.tflite",
            "message": "truncated file (12 of 40 bytes)",
            "internal": False,
        }
    ]
    assert doc["exit_code"] == 2


def test_to_dict_writes_records_as_objects_in_field_order_and_tuples_as_lists() -> None:
    """Records are NamedTuples (tuples too): the JSON conversion must not write one as a list."""
    m = partly_mapped()
    m.io[0] = m.io[0]._replace(scale=float("nan"))  # from a corrupt file: JSON has no NaN
    m.compiled = {"pair": {"first": m.findings[0], "shape": (1, 2)}}  # records nested anywhere
    model = report_of(m).to_dict()["models"][0]
    assert list(model) == list(ModelReport._fields)
    assert list(model["summary"]) == [*Summary._fields, "tpu_mac_share"]
    assert model["summary"]["tpu_mac_share"] == 0.9
    assert list(model["ops"][27]) == list(OpPlacement._fields)
    assert model["ops"][27]["opcode"] == "RESIZE_BILINEAR"
    expected = dict(zip(Finding._fields, m.findings[0], strict=True)) | {"places": []}
    assert model["findings"][0] == expected
    assert model["io"][0]["shape"] == [1, 513, 513, 3] and model["io"][0]["scale"] is None
    assert model["memory"] == m.memory._asdict()
    assert model["compiled"]["pair"] == {"first": model["findings"][0], "shape": [1, 2]}
    assert m.io[0].shape == (1, 513, 513, 3)  # the report itself is left as it was


def test_printable_escapes_inside_records_and_keeps_their_types() -> None:
    report = report_of(hostile(), clean())
    shown = printable(report)
    assert shown is not report and shown.models[0] is not report.models[0]  # mutable: copies
    finding = shown.models[0].findings[0]
    assert type(finding) is Finding and "\\x1b[31m" in finding.message
    assert "\n" not in finding.tensor and "\x1b" not in finding.fix
    assert type(shown.models[0].io[0]) is IOTensor and "\x00" not in shown.models[0].io[0].name
    assert shown.models[0].ops[0] is report.models[0].ops[0]  # clean records kept as they are
    assert shown.models[1].summary is report.models[1].summary
    assert report.models[0].findings[0].message == HOSTILE_NAME  # the input is left alone
    outcome = Outcome([judge(m, Config()) for m in report.models], [ModelFailure("a\nb", "x")])
    assert printable(outcome).failures == [ModelFailure("a\\x0ab", "x")]


def test_fast_json_text_is_json_dumps_byte_for_byte() -> None:
    """`--format json` writes with render.json.dumps (C-encoded flat containers) instead of
    json.dumps(indent=2): the text must be the same for any JSON value, not just reports."""
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")
    from coralcheck.render.json import dumps, report_dict

    tricky = st.sampled_from(["},\n    {", '"}, {"', "\n", "\u2028", "\x1b[31m", "\\", "é", ""])
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8), tricky
    )
    flat_dict = st.dictionaries(st.text(max_size=4), scalars, min_size=1, max_size=4)
    values = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.lists(inner, max_size=4).map(tuple),
            st.lists(flat_dict, min_size=1, max_size=4),  # the ops: one C call, re-indented
            st.dictionaries(st.text(max_size=4), inner, max_size=4),
            st.dictionaries(st.integers(), inner, max_size=2),  # keys json.dumps converts
        ),
        max_leaves=24,
    )

    @hypothesis.settings(max_examples=400, deadline=None)
    @hypothesis.given(values)
    def same_text(value: object) -> None:
        assert dumps(value) == json.dumps(value, indent=2, ensure_ascii=False)

    same_text()
    report = report_of(partly_mapped(), hostile(), clean())
    doc = report_dict(report, gated_outcome(report))
    assert dumps(doc) == json.dumps(doc, indent=2, ensure_ascii=False)


def test_fingerprints_ignore_the_op_index() -> None:
    def prints(m: ModelReport) -> list[str]:
        doc = json.loads(render(report_of(m), "json"))
        return [f["fingerprint"] for f in doc["models"][0]["findings"]]

    before, after = prints(partly_mapped()), prints(partly_mapped(shift=3))
    assert before == after
    assert len(set(before)) == len(before)
    other_model = prints(partly_mapped(path="models/other.tflite"))
    assert not set(other_model) & set(before)


# --- sarif -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_sarif_validates_against_the_official_schema(name: str, fake_registry: dict) -> None:
    validator = sarif_validator()
    report = SAMPLES[name]()
    for outcome in (outcome_for(report), gated_outcome(report)):
        doc = json.loads(render(report, "sarif", outcome=outcome))
        errors = [e.message for e in validator.iter_errors(doc)]
        assert not errors
        assert doc["version"] == "2.1.0"
    # the validator is not vacuous
    doc["runs"][0]["results"][0]["level"] = "fatal"
    assert list(validator.iter_errors(doc))


def test_sarif_rules_come_from_the_registry(fake_registry: dict) -> None:
    report = report_of(partly_mapped())
    run = json.loads(render(report, "sarif", outcome=gated_outcome(report)))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    cc101 = next(r for r in rules if r["id"] == "CC101")
    assert cc101["name"] == "rule-cc101"
    assert cc101["shortDescription"]["text"] == "Title of CC101"
    assert "Why CC101 matters." in cc101["fullDescription"]["text"]
    assert "How to fix CC101." in cc101["help"]["text"]
    assert cc101["defaultConfiguration"]["level"] == "error"
    assert next(r for r in rules if r["id"] == "CC900")["defaultConfiguration"]["level"] == "note"
    gate_ids = {r["ruleId"] for r in run["results"] if r["ruleId"].startswith("gate/")}
    assert gate_ids == {"gate/max-cpu-ops", "gate/require-full-mapping", "gate/baseline"}
    assert run["invocations"][0]["exitCode"] == 2
    assert run["invocations"][0]["executionSuccessful"] is False
    assert (
        "models/broken.tflite"
        in run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]
    )
    states = [r.get("baselineState") for r in run["results"] if not r["ruleId"].startswith("gate/")]
    assert states == ["unchanged", "new", "new"]


def test_sarif_locations_and_fingerprints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    inside = partly_mapped(path=str(tmp_path / "models" / "deep lab.tflite"))
    outside = partly_mapped(path="/elsewhere/m.tflite")
    run = json.loads(render(report_of(inside, outside), "sarif"))["runs"][0]
    first = run["results"][0]["locations"][0]
    artifact = first["physicalLocation"]["artifactLocation"]
    assert artifact["uri"] == "models/deep%20lab.tflite"
    assert artifact["uriBaseId"] == "%SRCROOT%"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.as_uri() + "/"
    logical = first["logicalLocations"][0]
    assert (
        logical["fullyQualifiedName"]
        == "subgraph[0]/op[27]:RESIZE_BILINEAR/tensor:ResizeBilinear:0"
    )
    outside_uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"][3:]
    }
    assert outside_uris == {"file:///elsewhere/m.tflite"}

    def prints(m: ModelReport) -> list[str]:
        results = json.loads(render(report_of(m), "sarif"))["runs"][0]["results"]
        return [r["partialFingerprints"]["coralcheck/v1"] for r in results]

    shifted = partly_mapped(path=inside.path, shift=5)
    assert prints(inside) == prints(shifted)
    renamed = inside._replace(
        findings=[inside.findings[0]._replace(tensor="other"), *inside.findings[1:]],
    )
    assert prints(renamed)[0] != prints(inside)[0]
    assert prints(renamed)[1:] == prints(inside)[1:]


# --- github ------------------------------------------------------------------------------------

WORKFLOW_COMMAND = re.compile(r"^::(error|warning|notice) file=([^,:]*),title=([^,:]*)::(.*)$")


def unescape(text: str) -> str:
    for escaped, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(escaped, char)
    return text


def test_github_annotations_one_line_each_and_escaped() -> None:
    report = report_of(partly_mapped(), hostile())
    lines = render(report, "github", outcome=gated_outcome(report)).splitlines()
    parsed = [WORKFLOW_COMMAND.match(line) for line in lines]
    assert all(parsed), [line for line, p in zip(lines, parsed, strict=True) if not p]
    levels = [(p[1], p[3]) for p in parsed if p[3].startswith("CC")]
    assert levels == [
        ("error", "CC101"),
        ("warning", "CC302"),
        ("notice", "CC900"),
        ("error", "CC101"),
    ]
    hostile_line = next(p for p in parsed if unescape(p[2]) == "models/we,ird:name%.tflite")
    assert printable(HOSTILE_NAME) in unescape(hostile_line[4])
    assert "\x1b" not in unescape(hostile_line[4])  # no terminal escapes in the job log
    gates = [unescape(p[4]) for p in parsed if "gate" in unescape(p[3])]
    assert "gate max-cpu-ops failed: 3 ops on the CPU (at most 0 allowed)" in gates
    broken = [p for p in parsed if unescape(p[2]) == "models/broken.tflite"]
    assert broken and unescape(broken[0][4]) == "truncated file (12 of 40 bytes)"


# --- junit -------------------------------------------------------------------------------------


def test_junit_suites_cases_and_failures() -> None:
    import xml.etree.ElementTree as ET

    report = report_of(partly_mapped(), clean(), hostile())
    root = ET.fromstring(render(report, "junit", outcome=gated_outcome(report)))
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == [
        "models/deeplab_quant.tflite",
        "models/clean.tflite",
        "models/we,ird:name%.tflite",
        "models/broken.tflite",
    ]
    deeplab = suites["models/deeplab_quant.tflite"]
    failed = {c.get("name") for c in deeplab.findall("testcase") if c.find("failure") is not None}
    # fail-on warning: the known error passes, the warning fails, the info passes; gates fail
    assert failed == {
        "CC302 op 28 ARG_MAX",
        "gate max-cpu-ops",
        "gate require-full-mapping",
        "gate baseline",
    }
    for suite in root.findall("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("errors")) == sum(c.find("error") is not None for c in cases)
    clean_cases = suites["models/clean.tflite"].findall("testcase")
    assert clean_cases[0].get("name") == "placement"
    assert clean_cases[0].find("system-out").text == "All 5 ops on the Edge TPU, 1 segment"
    assert (
        suites["models/broken.tflite"].find("testcase/error").get("message").startswith("truncated")
    )
    assert int(root.get("failures")) == sum(int(s.get("failures")) for s in suites.values())


# --- markdown ----------------------------------------------------------------------------------


def table_rows(markdown: str, header_start: str) -> list[list[str]]:
    """Cells of the table whose header row starts with `header_start` (escaped pipes kept)."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_markdown_summary_table_and_sections() -> None:
    report = report_of(partly_mapped(), clean(), hostile())
    text = render(report, "markdown", outcome=gated_outcome(report))
    # every model fails: gated_outcome gives each one a baseline regression
    assert text.startswith("## ❌ coralcheck: 3 of 4 models failed, 1 could not be checked\n")
    rows = table_rows(text, "| Model |")
    assert [len(r) for r in rows] == [7, 7, 7, 7]  # Model, ops, segments, CPU, latency, ...
    assert rows[0][4] == "—"  # a hand-made report without a latency estimate
    assert rows[0][:4] == ["`models/deeplab_quant.tflite`", "27 / 30", "1", "3"]
    assert rows[1][-1] == "❌ failed"
    assert "⚠️ not checked" in rows[3][-1]
    findings = table_rows(text, "|  | Code |")
    assert all(len(r) == 5 for r in findings)  # hostile pipes are escaped
    assert "❌ gate **max-cpu-ops** failed: 3 ops on the CPU (at most 0 allowed)" in text
    assert "<details><summary>3 ops on the CPU</summary>" in text
    assert "<script>" not in text
    assert "1. op 27 RESIZE_BILINEAR (output too big): fixing it alone brings 2 ops" in text


def test_markdown_all_passed_headline() -> None:
    report = report_of(clean(), clean("models/b.tflite"))
    assert render(report, "markdown").startswith("## ✅ coralcheck: 2 models passed\n")


def test_every_format_renders_a_report_with_nothing_in_it() -> None:
    empty = ModelReport("m.tflite", "source", 100, "16.0", Summary(0, 0, 0, 0))
    for fmt in FORMATS:
        text = render(report_of(empty), fmt)
        assert text == "" if fmt == "github" else "m.tflite" in text


def test_statistics_count_per_code_most_frequent_first(fake_registry: dict) -> None:
    from coralcheck.render.json import render_statistics_json
    from coralcheck.render.text import render_statistics

    report = report_of(partly_mapped(), partly_mapped("models/b.tflite"), hostile())
    stats = json.loads(render_statistics_json(report))
    assert [(s["code"], s["count"]) for s in stats] == [("CC101", 3), ("CC302", 2), ("CC900", 2)]
    assert stats[0]["title"] == "Title of CC101"
    lines = render_statistics(report).splitlines()
    assert re.match(r"^\s*3\s+CC101\s+error\s+Title of CC101$", lines[1])
    assert render_statistics(report_of(clean())) == "No findings.\n"


def test_wide_compiled_facts_become_blocks_that_fit() -> None:
    wide = {f"parameter_{i}_bytes": i * 100_000 for i in range(12)}
    m = clean()._replace(compiled={"tpu_segments": 2, "executables": [wide, wide]})
    text = render(report_of(m), "text", verbose=True)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert re.search(r"^\s+#1$", text, re.M) and re.search(r"^\s+#2$", text, re.M)
    assert re.search(r"parameter 11 bytes\s+1\.05 MiB \(1,100,000 B\)", text)
    assert re.search(r"tpu segments\s+2", text)


def test_huge_names_and_shapes_are_cut_not_wrapped_for_seconds() -> None:
    import time

    name = "n" * 1_000_000
    m = hostile()
    m = m._replace(
        findings=[m.findings[0]._replace(tensor=name, message="shape " + "7x" * 60_000)],
        io=[m.io[0]._replace(name=name, shape=(2,) * 12_000, shape_signature=None)],
    )
    for fmt in ("text", "markdown", "github"):
        start = time.perf_counter()
        text = render(report_of(m), fmt, verbose=True)
        assert time.perf_counter() - start < 2, fmt
        assert "characters not shown" in text
        assert len(text) < 20_000
    text = render(report_of(m), "text")
    assert "2x2x… (12,000" in text and "dimensions)" in text
    # the machine formats keep every character
    assert name in render(report_of(m), "json")


def test_every_format_has_a_renderer_and_an_unknown_one_is_refused() -> None:
    from coralcheck.render import renderer

    for fmt in FORMATS:
        assert callable(renderer(fmt)), fmt
    with pytest.raises(ValueError, match="unknown format 'yaml'"):
        renderer("yaml")


@pytest.mark.parametrize("fmt", ["text", "markdown", "github", "junit", "html"])
def test_only_the_graph_formats_are_given_the_recorded_graph(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check()` records the data flow; the escaping walk and the renderers of formats that do
    not draw it never see it (it is as large as the tensor table), and the output is the one of
    a report without it."""
    import coralcheck
    import coralcheck.render as render_module

    with_graph = coralcheck.check(FIXTURES / "demo_int8.tflite")
    assert with_graph.models[0].graph is not None
    without = coralcheck.check(FIXTURES / "demo_int8.tflite", graph=False)
    assert without.models[0].graph is None
    seen: list[object] = []
    walk = render_module.printable

    def recording(value):  # type: ignore[no-untyped-def]
        seen.extend(m.graph for m in getattr(value, "models", []))
        return walk(value)

    monkeypatch.setattr(render_module, "printable", recording)
    text = render(with_graph, fmt)
    assert seen == [with_graph.models[0].graph if fmt == "html" else None]
    if fmt != "html":
        assert text == render(without, fmt)
