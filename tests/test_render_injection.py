"""Names inside a model are untrusted: they must not inject lines into CI logs or terminals."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.tflite_builder import OpSpec, TensorSpec, build_model

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


# --- issue 12: workflow commands, escape sequences, pull-request comments ---------------------

ESC = "\x1b]0;owned\x07\x1b[2J"


def _command_lines(text: str) -> list[str]:
    """Lines GitHub Actions would run as workflow commands (leading blanks are trimmed)."""
    return [line for line in text.splitlines() if line.lstrip().startswith("::")]


def _small_model(tmp_path, name: str):  # type: ignore[no-untyped-def]
    data = build_model(
        tensors=[TensorSpec("x", [1, 4], "FLOAT32"), TensorSpec("y", [1, 4], "FLOAT32")],
        ops=[OpSpec("RELU", [0], [1])],
        inputs=[0],
        outputs=[1],
    )
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("fmt", ["text", "markdown", "junit"])
def test_a_model_named_like_a_workflow_command_starts_no_line(
    tmp_path, fmt, capsys, monkeypatch
) -> None:
    path = _small_model(tmp_path, "::error title=x::pwned.tflite")
    monkeypatch.chdir(tmp_path)  # the name as given: the first thing on the report's first line
    assert main([path.name, "--format", fmt, "-v"]) == 1
    out = capsys.readouterr().out
    assert "pwned" in out and not _command_lines(out)


def test_statistics_start_no_workflow_command(tmp_path, capsys) -> None:
    path = _small_model(tmp_path, "m.tflite")
    from coralcheck.render.escape import no_workflow_commands

    assert no_workflow_commands("a\n  ::error::x\n\x1b[1m::warning::y\n") == (
        "a\n  \\x3a:error::x\n\x1b[1m\\x3a:warning::y\n"
    )
    assert main([str(path), "--statistics"]) == 1
    assert not _command_lines(capsys.readouterr().out)


def test_log_rows_named_like_workflow_commands_start_no_line(tmp_path, capsys) -> None:
    """`coralcheck log` prints operator names at the start of its rows."""
    log = tmp_path / "m_edgetpu.log"
    log.write_text(
        "Edge TPU Compiler version 16.0.384591198\n"
        "Operator                       Count      Status\n"
        "::error::pwned                 1          Mapped to Edge TPU\n"
        f"CONV_2D{ESC}                   2          Mapped to Edge TPU\n"
    )
    assert main(["log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "pwned" in out and not _command_lines(out)
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;owned" in out


def test_error_lines_escape_terminal_sequences_in_file_names(tmp_path, capsys) -> None:
    path = tmp_path / f"bad{ESC}.tflite"
    path.write_bytes(b"not a model at all, just text that is long enough")
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "\x07" not in err
    assert "bad\\x1b]0;owned\\x07\\x1b[2J.tflite" in err


def test_compare_headers_escape_terminal_sequences_and_markup(tmp_path, capsys) -> None:
    first = _small_model(tmp_path, f"a{ESC}.tflite")
    second = _small_model(tmp_path, "[bold]b.tflite")  # not rich markup either
    assert main(["compare", str(first), str(second)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "a\\x1b]0;owned" in out.replace("\n", "")
    assert "[bold]b.tflite" in out.replace(" ", "").replace("\n", "")


def test_markdown_cannot_mention_link_typeset_or_reverse(tmp_path, capsys) -> None:
    """Model data in a pull-request comment: no @mention, no autolink, no math, no entity,
    no right-to-left override."""
    name = "@octo-org/team see https://evil.example www.evil.example $x^2$ &lt; \u202eabc"
    data = build_model(
        tensors=[
            TensorSpec("x", [1, 4], "INT8", scale=[0.5], zero_point=[0]),
            TensorSpec(name, [1, 4], "INT8", scale=[0.0], zero_point=[0]),
        ],
        ops=[OpSpec("RELU", [0], [1])],
        inputs=[0],
        outputs=[1],
    )
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    assert main([str(path), "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert "see https" in out  # the name is there...
    assert "@octo-org" not in out and "<span>@</span>octo-org/team" in out
    assert "https://" not in out and "https\\://evil.example" in out
    assert "www.evil" not in out and "www\\.evil.example" in out
    assert "$x" not in out.replace("<span>$</span>", "") and "<span>$</span>x^2" in out
    assert "&lt;" not in out.replace("&amp;lt;", "") and "&amp;lt;" in out
    assert "\u202e" not in out and "\\u202eabc" in out


def test_escaping_a_long_list_of_records_still_escapes_the_one_that_needs_it() -> None:
    """`printable` checks a long list of records a column at a time (the op placements of a
    large model); a control character or an over-long string in any record is still escaped or
    cut, and the clean records are kept as they are."""
    from coralcheck.render.escape import LONGEST_SHOWN, printable
    from coralcheck.report import OpPlacement

    clean = [OpPlacement(i, "ADD", 1, "tpu", "Mapped to Edge TPU", "", None) for i in range(30)]
    assert printable(clean) == clean and all(
        a is b for a, b in zip(printable(clean), clean, strict=True)
    )
    for bad, shown in [
        ("reads \x1b[2J", "reads \\x1b[2J"),
        ("x" * (LONGEST_SHOWN + 50), "characters not shown"),
    ]:
        ops = [*clean]
        ops[17] = ops[17]._replace(reason=bad)
        escaped_ops = printable(ops)
        assert shown in escaped_ops[17].reason and escaped_ops[17].reason != bad
        assert escaped_ops[:17] == clean[:17] and escaped_ops[18:] == clean[18:]
    # A None in a text column, numbers alone: kept; a tuple of numbers is returned as it is.
    assert printable([*clean, clean[0]._replace(opcode=None)])[-1].opcode is None
    numbers = tuple(range(100))
    assert printable(numbers) is numbers
