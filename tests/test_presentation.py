"""What the text report shows (issue 11): caveats of ops that map, tensor shapes with -v, the
op and status columns on a wide terminal, plurals, and messages that end before "Fix:"."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from helpers.nets import Net
from helpers.reports import MAPPED, clean, report_of, validate_report_json
from helpers.tflite_builder import build_model

from coralcheck.api import check
from coralcheck.cli import main
from coralcheck.config import Config
from coralcheck.model import load
from coralcheck.options import Options
from coralcheck.outcome import Outcome, judge
from coralcheck.render import render
from coralcheck.render.phrases import verdict_line, with_fix
from coralcheck.report import Finding, OpPlacement, Summary

RANK5 = FIXTURES / "rank5_int8.tflite"  # RESHAPE to 1x2x8x16x8 ... RESHAPE back: CPU ops


def wide_fc_model(tmp_path: Path) -> Path:
    """A 14400-wide FULLY_CONNECTED: it maps, with rules/ops.toml's "large input" caveat."""
    net = Net()
    x = net.input([1, 14400])
    w = net.const(np.zeros((180, 14400), np.int8))
    h = net.op("FULLY_CONNECTED", [x, w, net.const(np.zeros(180, np.int32))], [1, 180])
    w2 = net.const(np.zeros((10, 180), np.int8))
    y = net.op("FULLY_CONNECTED", [h, w2, net.const(np.zeros(10, np.int32))], [1, 10])
    path = tmp_path / "wide_fc.tflite"
    path.write_bytes(build_model(net.tensors, net.ops, net.inputs, [y]))
    return path


def test_the_caveat_of_an_op_that_maps_is_in_the_text_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = wide_fc_model(tmp_path)
    (first, second) = check(model).models[0].ops
    assert first.placement == "tpu" and "14400-wide FULLY_CONNECTED" in first.reason
    assert second.placement == "tpu" and not second.reason
    assert main([str(model)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "14400-wide FULLY_CONNECTED (14400x180) was reported too large to map" in text
    # The op with the caveat has a row of its own: it is not folded into a run of mapped ops.
    assert "FULLY_CONNECTED×2" not in text


def test_verbose_shows_each_ops_tensor_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(RANK5), "-v", "--fail-on", "never"]) == 0
    verbose = capsys.readouterr().out
    assert "1x16x16x8 → 1x2x8x16x8" in verbose  # op 2 RESHAPE to 5-D
    wide = render(check(RANK5, options=Options(op_shapes=True)), "text", verbose=True, width=160)
    assert "1x2x8x16x8, 1x2x8x16x8 → 1x2x8x16x8" in wide  # op 4 ADD of two tensors
    assert main([str(RANK5), "--fail-on", "never"]) == 0
    assert "→ 1x2x8x16x8" not in capsys.readouterr().out

    assert main([str(RANK5), "-v", "--format", "json", "--fail-on", "never"]) == 0
    doc = json.loads(capsys.readouterr().out)
    validate_report_json(doc)
    shapes = doc["models"][0]["op_shapes"]
    sg = load(RANK5).main
    assert len(shapes) == len(sg.operators)
    for op, (inputs, outputs) in zip(sg.operators, shapes, strict=True):
        assert outputs == [list(sg.tensors[i].shape) for i in op.outputs]
        assert inputs == [
            list(sg.tensors[i].shape) for i in op.inputs if i >= 0 and not sg.tensors[i].is_constant
        ]
    assert main([str(RANK5), "--format", "json", "--fail-on", "never"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["op_shapes"] is None


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_op_column_is_as_wide_as_its_names_and_the_status_takes_the_rest(width: int) -> None:
    report = check(RANK5, options=Options()).models[0]
    text = render(report_of(report), "text", width=width)
    lines = text.splitlines()
    header = next(line for line in lines if re.match(r"\s+#\s+op\s+on\s+status", line))
    op_start, on_start = header.index("op"), header.index(" on ") + 1
    longest = max(len(op.opcode) for op in report.ops)
    runs = max(len(line.split("  ")[2]) for line in lines if "QUANTIZE, CONV_2D" in line)
    assert on_start - op_start <= max(longest, runs) + 2
    assert all(len(line) <= width for line in lines)
    if width >= 200:
        # Wide enough: each status and each reason on one line of its own.
        statuses = {op.status for op in report.ops} | {op.reason for op in report.ops} - {""}
        for status in statuses:
            assert any(status in line for line in lines), status


def test_one_op_and_one_finding_are_singular(tmp_path: Path) -> None:
    one = clean()._replace(
        ops=[OpPlacement(0, "CONV_2D", 3, "tpu", MAPPED, "")], summary=Summary(1, 1, 0, 1)
    )
    assert verdict_line(one) == "The only op on the Edge TPU, 1 segment"
    stuck = one._replace(
        ops=[OpPlacement(0, "ELU", 1, "cpu", "Operation not supported", "")],
        summary=Summary(1, 0, 1, 0),
    )
    assert verdict_line(stuck).startswith("0 of 1 op on the Edge TPU")
    (gate,) = judge(stuck, Config(max_cpu_ops=0)).gates
    assert gate.message == "1 op on the CPU (at most 0 allowed)"
    text = render(report_of(one, stuck), "text")
    assert not re.search(r"\b1 (ops|models|findings|segments)\b", text)


def test_baseline_count_is_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes((FIXTURES / "float32.tflite").read_bytes())
    main([str(model), "--write-baseline", str(tmp_path / "b.json"), "--select", "Q001"])
    assert re.search(r"wrote \S+: 1 finding in 1 model$", capsys.readouterr().err.strip())


def test_fix_starts_a_sentence_of_its_own_in_sarif_and_github() -> None:
    assert (
        with_fix("it runs on the CPU too", "Use ReLU.") == "it runs on the CPU too. Fix: Use ReLU."
    )
    assert with_fix("Done.", "Nothing.") == "Done. Fix: Nothing."
    assert with_fix("no fix", "") == "no fix"
    finding = Finding(
        "CC101", "warning", "3 supported ops after it run on the CPU too", op=0, fix="Use ReLU."
    )
    model = clean()._replace(findings=[finding])
    report = report_of(model)
    outcome = Outcome([judge(model, Config())])
    github = render(report, "github", outcome=outcome)
    sarif = json.loads(render(report, "sarif", outcome=outcome))
    (result,) = sarif["runs"][0]["results"]
    for text in (github, result["message"]["text"]):
        assert "on the CPU too. Fix: Use ReLU." in text and "too Fix" not in text
