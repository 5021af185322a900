"""Names inside a model are untrusted: they must not inject lines into CI logs or terminals."""

from __future__ import annotations

import numpy as np
import pytest
from tflite_builder import OpSpec, TensorSpec, build_model

from coralcheck.cli import main

HOSTILE = "relu\n::error file=.github/workflows/ci.yml,line=1::pwned\r\x1b[2J"


@pytest.fixture
def hostile_model(tmp_path):
    data = build_model(
        tensors=[
            TensorSpec("x", [1, 4], "INT8", scale=[0.5], zero_point=[0]),
            TensorSpec("w", [2, 4], "INT8", data=np.ones((2, 4), np.int8), scale=[0.1]),
            TensorSpec(HOSTILE, [1, 2], "INT8", scale=[0.0], zero_point=[0]),
        ],
        ops=[OpSpec("FULLY_CONNECTED", [0, 1, -1], [2])],
        inputs=[0],
        outputs=[2],
    )
    path = tmp_path / "hostile.tflite"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("fmt", ["text", "markdown", "junit", "github"])
def test_a_newline_in_a_tensor_name_cannot_start_a_workflow_command(
    hostile_model, fmt, capsys
) -> None:
    assert main([str(hostile_model), "--format", fmt, "-v"]) == 1  # Q009: scale 0 is an error
    out = capsys.readouterr().out
    assert "pwned" in out  # the name is shown...
    lines = out.splitlines()
    # ...but only coralcheck's own annotations may start a line with "::", none carries the name.
    assert not [ln for ln in lines if ln.startswith("::") and "pwned" in ln.split("::", 2)[1]]
    assert not [ln for ln in lines if ln.lstrip().startswith("::error file=.github")]
    assert "\x1b[2J" not in out


def test_junit_stays_well_formed_xml_with_control_characters_in_names(
    hostile_model, capsys
) -> None:
    import xml.etree.ElementTree as ET

    assert main([str(hostile_model), "--format", "junit"]) == 1
    root = ET.fromstring(capsys.readouterr().out)  # raises on a raw ESC (not allowed in XML 1.0)
    assert any("pwned" in (case.get("name") or "") for case in root.iter("testcase"))
