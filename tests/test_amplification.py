"""Small files that ask for huge work (issue 12, items 1-4 and 14): shared offsets in compiled
models, shared tensors, long compiler logs, long rule selections.

Each input is built here (tests/helpers/hostile.py), some tens or hundreds of KB, and each took from
7 s to over a minute (and up to 2 GB) before. The invariant is the fuzzing one
(`fuzzing.lint_in_process`: a report or a one-line `ModelError` naming the file, within 2 s and
140 MB of growth), plus what the result must say.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers import fuzzing, hostile
from helpers.edgetpu_builder import CustomOptionsSpec, custom_options, package_bytes

from coralcheck.model import load
from coralcheck.model.edgetpu import MAX_EXECUTABLES, decode_segments


def _write(tmp_path: Path, data: bytes, name: str = "hostile_edgetpu.tflite") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- item 1: one executable listed thousands of times ----------------------------------------


def test_thousands_of_executable_entries_are_refused_at_once(tmp_path: Path) -> None:
    """45 KB: 10,000 entries naming one executable of 1,000 layers (was 67 s and 2 GB)."""
    data = hostile.many_executables(count=10_000, layers=1_000)
    assert len(data) < 50_000
    path = _write(tmp_path, data)
    outcome = fuzzing.lint_in_process(path)
    assert outcome.kind == "error"
    assert "lists 10000 executables" in outcome.message
    assert f"more than {MAX_EXECUTABLES}" in outcome.message


def test_executables_up_to_the_limit_are_decoded_once(tmp_path: Path) -> None:
    """At the limit the package is still read (an executable set the runtime rejects: C006),
    and the repeated executable is one record."""
    data = hostile.many_executables(count=MAX_EXECUTABLES, layers=200)
    (segment,) = decode_segments(load(data))
    executables = segment.package.executables
    assert len(executables) == MAX_EXECUTABLES
    assert all(e is executables[0] for e in executables)
    path = _write(tmp_path, data)
    assert fuzzing.lint_in_process(path).kind == "report"
    from coralcheck.api import check

    assert "C006" in {f.code for f in check(path).models[0].findings}


def test_a_layer_table_named_a_million_times_spends_the_budget(tmp_path: Path) -> None:
    """4 MB: one executable whose input-layer vector names one layer 1,000,000 times (each
    becomes a record: 6.5 s and 470 MB before the read budget stopped it)."""
    package = package_bytes([hostile._executable(0, layers=1_000_000)])
    path = _write(tmp_path, hostile._one_segment(custom_options(CustomOptionsSpec(package))))
    outcome = fuzzing.lint_in_process(path)
    assert outcome.kind == "error"
    assert "input_layers" in outcome.message and "again and again" in outcome.message


def test_compare_refuses_the_same_package_in_one_line(tmp_path: Path) -> None:
    """`coralcheck compare` lints each model the same way (it took as long as the lint)."""
    path = _write(tmp_path, hostile.many_executables(count=20_000, layers=1_000))
    other = fuzzing.FIXTURES / "demo_int8.tflite"
    run = fuzzing.run_cli_measured(["compare", str(other), str(path)], timeout=60)
    problem = fuzzing.check_error_contract(run, str(path))
    assert "20000 executables" in problem
    assert run.seconds < 10 and run.rss_mb < 200


# --- item 2: custom options shared by many ops ------------------------------------------------


def test_shared_large_custom_options_are_charged_to_the_read_budget(tmp_path: Path) -> None:
    """340 KB: 2,000 Edge TPU ops whose large_custom_options_offset/size name one package
    (13 s and 500 MB before: each op decoded its own copy)."""
    data = hostile.shared_large_custom_options(ops=2_000, parameter_bytes=64 << 10, layers=1_000)
    assert len(data) < 400_000
    outcome = fuzzing.lint_in_process(_write(tmp_path, data))
    assert outcome.kind == "error"
    assert "large custom options of operator" in outcome.message
    assert "again and again" in outcome.message


@pytest.mark.parametrize("shape", ["shared_large_custom_options", "shared_custom_options"])
def test_ops_sharing_one_package_decode_it_once(shape: str, tmp_path: Path) -> None:
    """Within the read budget (3 ops), the ops share one decoded package."""
    data = hostile.SHAPES[shape](ops=3, parameter_bytes=1024, layers=100)
    segments = decode_segments(load(data))
    assert [s.op_index for s in segments] == [0, 1, 2]
    assert all(s.packages is segments[0].packages for s in segments)
    assert fuzzing.lint_in_process(_write(tmp_path, data)).kind == "report"


def test_shared_custom_options_vector_many_times_is_refused(tmp_path: Path) -> None:
    outcome = fuzzing.lint_in_process(_write(tmp_path, hostile.shared_custom_options(2_000)))
    assert outcome.kind == "error" and "again and again" in outcome.message


# --- item 3: one tensor read by many ops --------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "args"),
    [("fan_out", (10_000,)), ("repeated_inputs", (3_000, 60))],
    ids=["10k-consumers", "3k-ops-x60-inputs"],
)
def test_float_island_grouping_is_linear(shape: str, args: tuple, tmp_path: Path) -> None:
    """760 KB / 980 KB (7.8 s and 36 s before): one float island of every op, through the CLI
    in under 3 s."""
    path = _write(tmp_path, hostile.SHAPES[shape](*args), "fan_out.tflite")
    run = fuzzing.run_cli_measured([str(path), "--format", "json"])
    assert run.exit_code in (0, 1), run.stderr
    assert run.seconds < 3.0, f"{run.seconds:.1f} s"
    n_ops = len(load(path).main.operators)
    assert run.stdout.count('"code": "Q002"') == 1
    assert f"float island of {n_ops} ops" in run.stdout


# --- item 4: thousands of distinct compiler errors ---------------------------------------------


def test_a_log_of_20000_distinct_errors_is_read_in_linear_time(tmp_path: Path) -> None:
    """269 KB of `ERROR:` lines (28 s before); 10 failures kept, the rest counted."""
    from coralcheck.compiler.failures import MAX_FAILURES
    from coralcheck.compiler.log import parse_log

    text = "Edge TPU Compiler version 16.0.384591198\n"
    text += "".join(f"ERROR: op {i} failed\n" for i in range(20_000)) + "Compilation failed!\n"
    start = time.perf_counter()
    log = parse_log(text)
    assert time.perf_counter() - start < 2.0
    assert len(log.failures) == MAX_FAILURES
    assert log.more_failures == 20_000 - MAX_FAILURES
    assert [f.message for f in log.failures[:2]] == ["ERROR: op 0 failed", "ERROR: op 1 failed"]

    path = tmp_path / "big_edgetpu.log"
    path.write_text(text)
    run = fuzzing.run_cli_measured(["log", str(path)])
    assert run.exit_code == 1 and run.seconds < 5
    assert "... and 19,990 more distinct compiler errors" in run.stdout
    assert run.stdout.count("C040") == MAX_FAILURES


def test_repeated_error_lines_are_one_failure() -> None:
    from coralcheck.compiler.log import parse_log

    log = parse_log("ERROR: the same\n" * 5000 + "Compilation failed!\n")
    assert [f.message for f in log.failures] == ["ERROR: the same"] and log.more_failures == 0


# --- item 14: a selection of 50,000 codes -------------------------------------------------------


def test_a_long_select_list_is_deduplicated_and_linear(tmp_path: Path) -> None:
    """50,000 select entries and 5,000 findings (32 s before)."""
    from coralcheck.config_keys import parse_codes
    from coralcheck.registry import codes as known_codes

    codes = known_codes()
    assert parse_codes(codes * 1000, "x", "select", codes) == tuple(codes)
    model = tmp_path / "custom5k.tflite"
    from helpers.tflite_builder import OpSpec, TensorSpec, build_model

    int8 = {"scale": [0.5], "zero_point": [0]}
    tensors = [TensorSpec(f"t{i}", [1, 4], "INT8", **int8) for i in range(5_001)]
    ops = [OpSpec("CUSTOM:my_op", [0], [i + 1]) for i in range(5_000)]
    model.write_bytes(build_model(tensors=tensors, ops=ops, inputs=[0], outputs=[1]))
    selection = (codes * (50_000 // len(codes) + 1))[:50_000]
    (tmp_path / "coralcheck.toml").write_text(f"select = {selection!r}\n".replace("'", '"'))
    run = fuzzing.run_cli_measured([str(model), "--format", "json"], cwd=tmp_path)
    assert run.exit_code in (0, 1), run.stderr
    assert run.seconds < 10, f"{run.seconds:.1f} s"
    # One finding for the 5,000 custom ops (grouped repeats), with every place in JSON.
    (o006,) = [f for f in json.loads(run.stdout)["models"][0]["findings"] if f["code"] == "O006"]
    assert len(o006["places"]) == 5_000
