"""Tests of the edgetpu_compiler output parser against every real log in ../shared.

Expected numbers were read off the log files by hand (sizes: value × 1024ⁿ, rounded half up);
the synthetic texts below are quoted from public google-coral/edgetpu issues where noted.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from coralcheck.compiler.blocks import parse_size
from coralcheck.compiler.failures import FAILURE_KINDS, classify_error
from coralcheck.compiler.log import parse_log
from coralcheck.compiler.records import CompilerLog, OpRow
from coralcheck.edgetpu.statuses import KNOWN_STATUSES, status_key

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
COMPILER_LOGS = SHARED / "edgetpu" / "compiler-logs"
CORPUS = SHARED / "corpus"

V14 = "14.1.317412892"
V15 = "15.0.340273435"
V16 = "16.0.384591198"

MOS = "More than one subgraph is not supported"
UNSPECIFIED = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
MAPPED = "Mapped to Edge TPU"


def shared_log_paths() -> list[Path]:
    """Every log file in the shared folders (empty when shared/ is absent)."""
    return sorted(COMPILER_LOGS.glob("*.log")) + sorted((CORPUS / "logs").rglob("*.log"))


def corpus_log_versions() -> dict[Path, str]:
    """The compiler version of each corpus log, as corpus/pairs.csv records it."""
    path = CORPUS / "pairs.csv"
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["log_path"]]
    return {CORPUS / row["log_path"]: row["log_compiler_version"] for row in rows}


def _log_id(path: Path) -> str:
    """A test id: the path below compiler-logs/ or corpus/logs/ (file names repeat there)."""
    for folder in (COMPILER_LOGS, CORPUS / "logs"):
        if path.is_relative_to(folder):
            return str(path.relative_to(folder))
    return path.name


def compiler_log(number: str) -> CompilerLog:
    """Parse shared/edgetpu/compiler-logs/<number>_*.log, skipping when shared/ is absent."""
    matches = sorted(COMPILER_LOGS.glob(f"{number}_*.log"))
    if not matches:
        pytest.skip(f"{COMPILER_LOGS} has no {number}_*.log (shared/ absent)")
    assert len(matches) == 1
    return parse_log(matches[0].read_text(encoding="utf-8"))


def corpus_log(relative: str) -> CompilerLog:
    """Parse shared/corpus/logs/<relative>, skipping when shared/ is absent."""
    path = CORPUS / "logs" / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return parse_log(path.read_text(encoding="utf-8"))


def rows_of(log: CompilerLog, operator: str) -> list[tuple[int, str]]:
    """(count, status) of each row of `operator`, in table order."""
    return [(row.count, row.status) for row in log.rows if row.operator == operator]


# ---------------------------------------------------------------------------------------------
# Every shared file
# ---------------------------------------------------------------------------------------------

VERSION_IN_NAME = {
    "v16": V16,
    "v15": V15,
    "v14_1": V14,
    "v2_1": "2.1.302470888",
    "v2_0": "2.0.291256449",
}


@pytest.mark.parametrize("path", shared_log_paths(), ids=_log_id)
def test_every_shared_log_is_understood_line_by_line(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    log = parse_log(text)

    assert log.recognised
    # Every line is understood; only 25's "." elision lines are not compiler output.
    expected_unrecognised = (".", ".", ".") if path.name.startswith("25_") else ()
    assert log.unrecognised_lines == expected_unrecognised
    # The version the file name announces (fragments 21 and 26 quote no version line).
    name_version = re.match(r"\d\d_(v\d+(?:_\d)?)_", path.name)
    if "Edge TPU Compiler version" not in text:
        assert log.compiler_version is None
    elif name_version:
        assert log.compiler_version == VERSION_IN_NAME[name_version.group(1)]
    else:  # the corpus logs: the version corpus/pairs.csv records for each
        assert log.compiler_version == corpus_log_versions()[path]
    # Table counts always split into TPU and CPU by the rows' statuses.
    if log.rows and log.rows_complete is not False:
        assert log.ops_tpu == sum(row.count for row in log.rows if row.status == MAPPED)
        assert log.ops_cpu == sum(row.count for row in log.rows if row.status != MAPPED)
    assert set(log.failure_kinds) <= set(FAILURE_KINDS)
    assert json.loads(json.dumps(log.to_dict())) == log.to_dict()


def test_the_shared_folders_hold_the_expected_number_of_logs() -> None:
    paths = shared_log_paths()
    if not paths:
        pytest.skip("shared/ is absent")
    # facts.md §10 counts the compiler-logs files; corpus/pairs.csv names every corpus log.
    facts = (SHARED / "edgetpu" / "facts.md").read_text(encoding="utf-8")
    announced = re.search(r"`compiler-logs/\*\.log` \((\d+) files", facts)
    assert announced is not None
    assert len(list(COMPILER_LOGS.glob("*.log"))) == int(announced.group(1))
    assert set((CORPUS / "logs").rglob("*.log")) == set(corpus_log_versions())


# ---------------------------------------------------------------------------------------------
# Console output
# ---------------------------------------------------------------------------------------------


def test_01_search_delegate_retries_then_three_subgraphs() -> None:
    log = compiler_log("01")

    assert (log.kind, log.compiler_version, log.succeeded) == ("console", V16, True)
    assert log.delegate_search_step == 1
    assert log.timeout_sec == 180
    assert log.compile_time_ms == 912
    # 17 tries, cutting one op each time, from 135 down to 119; only the last one compiled.
    assert [attempt.ops for attempt in log.delegate_search] == list(range(135, 118, -1))
    assert [attempt.succeeded for attempt in log.delegate_search] == [False] * 16 + [True]
    assert log.delegate_search[0].intermediate_tensors == ()
    assert log.delegate_search[1].intermediate_tensors == ("Identity1",)
    assert log.delegate_search[2].intermediate_tensors == (
        "MobileRetinaNet/concat",
        "MobileRetinaNet/concat_1",
    )
    assert len(log.delegate_search[9].intermediate_tensors) == 10
    assert log.delegate_search[0].errors == ("Compilation failed!",)
    # The retries' failures are logged, but the run succeeded: no failure to report.
    assert log.errors == ("Compilation failed!",) * 16
    assert log.failures == ()

    (model,) = log.models
    assert model.input_model == "model_input/model.tflite"
    assert model.output_model == "model_output/model_edgetpu.tflite"
    assert model.input_size is not None and model.input_size.text == "2.87MiB"
    assert model.input_size.num_bytes == 3_009_413
    assert model.output_size is not None and model.output_size.num_bytes == 3_628_073
    assert model.on_chip_used is not None and model.on_chip_used.num_bytes == 4_047_503
    assert model.on_chip_remaining is not None and model.on_chip_remaining.num_bytes == 3_837_788
    assert model.on_chip_available is None
    assert model.off_chip_streamed is not None and model.off_chip_streamed.num_bytes == 0
    assert (model.tpu_subgraphs, model.total_ops) == (3, 135)
    assert (model.ops_tpu, model.ops_cpu, model.ops_counts_derived) == (132, 3, False)
    assert model.operation_log == "model_output/model_edgetpu.log"

    assert len(log.rows) == 11
    assert log.rows[0] == OpRow("PAD", 5, MAPPED, True)
    assert rows_of(log, "CONCATENATION") == [(2, MOS), (1, MAPPED)]
    assert rows_of(log, "ADD") == [(1, MOS), (11, MAPPED)]
    assert model.rows == log.rows
    assert log.rows_complete is True
    assert (log.ops_tpu, log.ops_cpu) == (132, 3)


def test_02_all_mapped_run_prints_no_counts_so_they_are_derived() -> None:
    log = compiler_log("02")

    assert log.succeeded is True
    assert [attempt.ops for attempt in log.delegate_search] == [134]
    assert log.delegate_search[0].succeeded is True
    (model,) = log.models
    assert model.tpu_subgraphs == 1
    assert (model.ops_tpu, model.ops_cpu, model.ops_counts_derived) == (134, 0, True)
    assert model.on_chip_remaining is not None and model.on_chip_remaining.num_bytes == 4_016_046
    assert len(log.rows) == 9
    assert all(row.mapped and row.status_key == "mapped" for row in log.rows)
    assert rows_of(log, "CONV_2D") == [(83, MAPPED)]
    assert (log.ops_tpu, log.ops_cpu, log.rows_complete) == (134, 0, True)


@pytest.mark.parametrize(
    ("number", "kind", "message"),
    [
        ("06", "dynamic_sized_tensors", "ERROR: Attempting to use a delegate that only supports"),
        ("07", "large_activation_tensors", "Compilation failed: Compilation failed due to large"),
        ("09", "large_activation_tensors", "Compilation failed: Compilation failed due to large"),
        ("10", "internal_error", "Internal compiler error. Aborting!"),
        ("11", "internal_error", "Internal compiler error. Aborting!"),
        ("12", "model_not_quantized", "Model not quantized"),
    ],
)
def test_error_logs_fail_with_their_cause(number: str, kind: str, message: str) -> None:
    log = compiler_log(number)

    assert log.kind == "console"
    assert log.succeeded is False
    (failure,) = log.failures
    assert failure.kind == kind
    assert failure.message.startswith(message)
    assert failure.message in log.errors
    assert (log.models, log.rows, log.ops_tpu, log.ops_cpu) == ((), (), None, None)


def test_06_errors_are_kept_verbatim_and_wrappers_add_no_failure() -> None:
    log = compiler_log("06")

    assert log.errors == (
        "ERROR: Attempting to use a delegate that only supports static-sized tensors with a graph "
        "that has dynamic-sized tensors.",
        "Compilation failed: Model failed in Tflite interpreter. Please ensure model can be "
        "loaded/run in Tflite interpreter.",
        "Compilation failed!",
    )
    assert log.failure_kinds == ("dynamic_sized_tensors",)
    assert log.timeout_sec == 180


def test_10_and_11_differ_only_by_a_blank_line() -> None:
    assert compiler_log("10").to_dict() == compiler_log("11").to_dict()


def test_12_invalid_model_line_is_an_error_but_not_the_cause() -> None:
    log = compiler_log("12")

    assert log.compiler_version == V14
    assert log.errors == ("Invalid model: keras_model_2-3-0.tflite", "Model not quantized")
    assert log.failure_kinds == ("model_not_quantized",)


@pytest.mark.parametrize(
    ("number", "version", "op", "op_version"),
    [("13", V15, "REVERSE_V2", 3), ("14", V16, "EXP", 2)],
)
def test_op_version_not_found_names_op_and_version(
    number: str, version: str, op: str, op_version: int
) -> None:
    log = compiler_log(number)

    assert log.compiler_version == version
    assert log.succeeded is False
    (failure,) = log.failures
    assert (failure.kind, failure.op, failure.version) == ("op_version_not_found", op, op_version)
    assert len(log.errors) == 4  # Didn't find op, Registration failed, Invalid model, not parsed
    assert log.errors[-1] == "Model could not be parsed"


def test_08_every_retry_failed_on_large_activations() -> None:
    log = compiler_log("08")

    assert [attempt.ops for attempt in log.delegate_search] == [424, 423]
    assert [attempt.succeeded for attempt in log.delegate_search] == [False, False]
    assert log.delegate_search[1].intermediate_tensors == ("tfl.dequantize", "Sigmoid1")
    assert len(log.delegate_search[1].errors) == 3
    assert log.succeeded is False
    # The same cause twice is one failure.
    assert log.failure_kinds == ("large_activation_tensors",)


def test_retries_that_fail_then_succeed_leave_no_run_failure() -> None:
    """A -d search (step 30, as Ultralytics exports use) that cuts ops after large activations."""
    text = "\n".join(
        [
            f"Edge TPU Compiler version {V16}",
            "Searching for valid delegate with step 30",
            "Try to compile segment with 300 ops",
            "Started a compilation timeout timer of 180 seconds.",
            "ERROR: Restored original execution plan after delegate application failure.",
            "Compilation failed: Compilation failed due to large activation tensors in model.",
            "Compilation child process completed within timeout period.",
            "Compilation failed! ",
            "Try to compile segment with 270 ops",
            "Intermediate tensors: a,b",
            "Started a compilation timeout timer of 180 seconds.",
            "",
            "Model compiled successfully in 1234 ms.",
        ]
    )
    log = parse_log(text)

    assert log.succeeded is True
    assert log.failures == ()
    assert len(log.errors) == 3
    first, second = log.delegate_search
    assert [failure.kind for failure in first.failures] == ["large_activation_tensors"]
    assert (first.succeeded, second.succeeded, second.failures) == (False, True, ())
    assert log.compile_time_ms == 1234


def test_15_only_the_version_line_is_the_version_only_failure() -> None:
    log = compiler_log("15")

    assert log.compiler_version == V15
    assert log.succeeded is False
    assert log.failure_kinds == ("version_only",)
    assert log.failures[0].message == f"Edge TPU Compiler version {V15}"
    assert log.errors == ()


def test_16_truncated_table_defers_to_the_printed_counts() -> None:
    log = compiler_log("16")

    assert log.compiler_version == "2.1.302470888"
    assert log.compile_time_ms == 347
    (model,) = log.models
    assert model.input_model == "models/deeplab_take2.tflite"
    assert model.on_chip_used is not None and model.on_chip_used.num_bytes == 191_488  # 187 KiB
    assert model.on_chip_remaining is not None
    assert model.on_chip_remaining.num_bytes == 7_161_774  # 6.83 MiB
    assert (model.total_ops, model.ops_tpu, model.ops_cpu) == (113, 26, 87)
    # What is there of the table is kept ...
    assert [(row.operator, row.count, row.mapped) for row in log.rows] == [
        ("CONCATENATION", 1, False),
        ("MUL", 10, False),
        ("QUANTIZE", 1, True),
    ]
    # ... but 12 rows' ops are not 113: the totals come from the summary instead.
    assert log.rows_complete is False
    assert (log.ops_tpu, log.ops_cpu) == (26, 87)


def test_17_old_2_0_layout_has_available_before_used_and_no_remaining() -> None:
    log = compiler_log("17")

    assert log.compiler_version == "2.0.291256449"
    (model,) = log.models
    assert model.on_chip_available is not None
    assert (model.on_chip_available.text, model.on_chip_available.num_bytes) == (
        "7.69MiB",
        8_063_549,
    )
    assert model.on_chip_used is not None and model.on_chip_used.num_bytes == 747_008  # 729.5 KiB
    assert model.on_chip_remaining is None
    assert model.input_size is not None and model.input_size.num_bytes == 490_148  # 478.66 KiB
    assert (model.total_ops, model.ops_tpu, model.ops_cpu) == (90, 39, 51)
    assert log.rows == (OpRow("CONCATENATION", 6, MOS, False),)
    assert (log.ops_tpu, log.ops_cpu) == (39, 51)


def test_18_off_chip_streaming() -> None:
    log = compiler_log("18")

    (model,) = log.models
    assert model.off_chip_streamed is not None
    assert model.off_chip_streamed.num_bytes == 1_279_263  # 1.22 MiB
    assert model.on_chip_remaining is not None and model.on_chip_remaining.num_bytes == 7_936
    assert log.compile_time_ms == 12264
    assert rows_of(log, "CONCATENATION") == [(1, MOS), (3, MAPPED)]
    assert (log.ops_tpu, log.ops_cpu) == (83, 10)


def test_19_zero_subgraphs_and_cut_off_cpu_count_is_derived() -> None:
    log = compiler_log("19")

    (model,) = log.models
    assert model.tpu_subgraphs == 0
    assert model.on_chip_used is not None and model.on_chip_used.num_bytes == 0
    assert model.input_size is not None and model.input_size.num_bytes == 24_515_707  # 23.38 MiB
    # "...on CPU" was cut off; total 42 minus 0 on the TPU.
    assert (model.ops_tpu, model.ops_cpu, model.ops_counts_derived) == (0, 42, True)
    assert log.rows == ()
    assert (log.ops_tpu, log.ops_cpu) == (0, 42)


def test_21_fragment_of_counts_and_table_without_header_lines() -> None:
    log = compiler_log("21")

    assert log.compiler_version is None
    assert log.kind == "console"
    (model,) = log.models
    assert (model.ops_tpu, model.ops_cpu, model.input_model) == (2, 153, None)
    assert len(log.rows) == 10  # two blank lines after the header do not end the table
    assert log.rows[0] == OpRow("TRANSPOSE", 70, "Operation not supported", False)
    assert log.rows[0].status_key == "operation_not_supported"
    assert rows_of(log, "PAD") == [(1, MAPPED), (17, MOS)]
    assert log.rows_complete is True  # 2 + 153 == the rows' 155
    assert (log.ops_tpu, log.ops_cpu) == (2, 153)


def test_22_num_segments_output_names_its_segment() -> None:
    log = compiler_log("22")

    assert log.delegate_search_step == 10
    assert [attempt.ops for attempt in log.delegate_search] == [84]
    (model,) = log.models
    assert model.segment == (0, 2)
    assert model.output_model == "rede_modelo3_73_segment_0_of_2_edgetpu.tflite"
    assert model.on_chip_used is not None and model.on_chip_used.num_bytes == 6_312_428
    # All mapped (no "not all operations" paragraph before the table header).
    assert (model.ops_tpu, model.ops_cpu, model.ops_counts_derived) == (84, 0, True)
    assert log.rows == ()
    assert log.to_dict()["models"][0]["segment"] == [0, 2]


def test_23_truncated_all_mapped_table() -> None:
    log = compiler_log("23")

    (model,) = log.models
    assert model.off_chip_streamed is not None
    assert model.off_chip_streamed.num_bytes == 42_752  # 41.75 KiB
    assert rows_of(log, "LOGISTIC") == [(64, MAPPED)]
    assert sum(row.count for row in log.rows) == 106
    assert log.rows_complete is False
    assert (log.ops_tpu, log.ops_cpu) == (246, 0)


def test_24_without_show_operations_there_is_no_table() -> None:
    log = compiler_log("24")

    assert log.rows == ()
    assert log.rows_complete is None
    (model,) = log.models
    assert model.on_chip_used is not None and model.on_chip_used.num_bytes == 81_920  # 80 KiB
    assert (log.ops_tpu, log.ops_cpu) == (1, 190)


def test_25_elided_console_output_keeps_the_row_and_the_unknown_lines() -> None:
    log = compiler_log("25")

    assert (log.kind, log.compiler_version, log.succeeded) == ("console", V14, None)
    assert log.rows == (OpRow("TRANSPOSE", 42, "Operation not supported", False),)
    assert (log.ops_tpu, log.ops_cpu) == (0, 42)


def test_26_lone_row_with_other_padding() -> None:
    log = compiler_log("26")

    assert (log.kind, log.compiler_version, log.recognised) == ("unknown", None, True)
    (row,) = log.rows
    assert (row.operator, row.count, row.mapped) == ("CONV_2D", 6, False)
    assert row.status == "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"
    assert row.status_key == "unsupported_rank"


# ---------------------------------------------------------------------------------------------
# Op-log files
# ---------------------------------------------------------------------------------------------


def test_03_oplog_with_three_statuses_for_one_op() -> None:
    log = compiler_log("03")

    assert (log.kind, log.compiler_version, log.succeeded) == ("oplog", V14, None)
    (model,) = log.models
    assert (model.input_model, model.output_model) == (
        "tiny_yolo.tflite",
        "tiny_yolo_edgetpu.tflite",
    )
    assert model.input_size is None and model.total_ops is None
    assert len(log.rows) == 8
    assert rows_of(log, "QUANTIZE") == [(1, UNSPECIFIED), (1, MOS), (2, MAPPED)]
    assert rows_of(log, "RESIZE_NEAREST_NEIGHBOR") == [(1, "Operation version not supported")]
    assert [row.status_key for row in log.rows if row.operator == "QUANTIZE"] == [
        "unspecified_limitation",
        "more_than_one_subgraph",
        "mapped",
    ]
    assert (log.ops_tpu, log.ops_cpu) == (19, 6)


@pytest.mark.parametrize(
    ("number", "rows", "tpu", "cpu"), [("04", 7, 8, 2), ("05", 5, 8, 0), ("20", 10, 192, 1)]
)
def test_oplog_totals_come_from_rows(number: str, rows: int, tpu: int, cpu: int) -> None:
    log = compiler_log(number)

    assert log.kind == "oplog"
    assert len(log.rows) == rows
    assert (log.ops_tpu, log.ops_cpu) == (tpu, cpu)


def test_04_and_20_unsupported_data_type() -> None:
    assert rows_of(compiler_log("04"), "DEQUANTIZE") == [
        (1, "Operation is working on an unsupported data type")
    ]
    custom = [row for row in compiler_log("20").rows if row.operator == "CUSTOM"]
    assert [(row.count, row.status_key, row.mapped) for row in custom] == [
        (1, "unsupported_data_type", False)
    ]


def test_yolov8n_oplog() -> None:
    log = corpus_log("goalbuddy/yolov8n_full_integer_quant_edgetpu.log")

    assert (log.kind, log.compiler_version) == ("oplog", V16)
    assert log.models[0].input_model == "yolov8n_saved_model/yolov8n_full_integer_quant.tflite"
    assert len(log.rows) == 26
    assert rows_of(log, "CONV_2D") == [(1, MOS), (63, MAPPED)]
    assert rows_of(log, "CONCATENATION") == [(1, UNSPECIFIED), (16, MAPPED), (1, MOS)]
    assert rows_of(log, "SOFTMAX") == [(1, MOS)]
    assert (log.ops_tpu, log.ops_cpu) == (233, 23)


@pytest.mark.parametrize(
    ("relative", "rows", "tpu", "cpu"),
    [
        ("goalbuddy/yolov8n_full_integer_quant_edgetpu.log", 26, 233, 23),
        ("goalbuddy/yolov8s_full_integer_quant_edgetpu.log", 26, 233, 23),
        ("goalbuddy/yolov8m_full_integer_quant_edgetpu.log", 26, 299, 23),
        ("sandhya_modelnew/yolov5n-int8_edgetpu.log", 18, 240, 16),
    ],
)
def test_corpus_oplog_totals(relative: str, rows: int, tpu: int, cpu: int) -> None:
    log = corpus_log(relative)

    assert len(log.rows) == rows
    assert (log.ops_tpu, log.ops_cpu) == (tpu, cpu)
    assert {row.status_key for row in log.rows} == {
        "mapped",
        "more_than_one_subgraph",
        "unspecified_limitation",
    }


def test_corpus_logs_agree_with_the_compiled_models_cpu_ops() -> None:
    """The log's unmapped rows, per op, are the builtins left in the compiled model (pairs.csv)."""
    pairs_csv = CORPUS / "pairs.csv"
    if not pairs_csv.is_file():
        pytest.skip("shared/corpus/pairs.csv is absent")
    with pairs_csv.open(encoding="utf-8", newline="") as handle:
        pairs = [row for row in csv.DictReader(handle) if row["log_path"] and row["source_ops"]]
    assert pairs  # every pair with both a log and a compiled model

    for pair in pairs:
        log = parse_log((CORPUS / pair["log_path"]).read_text(encoding="utf-8"))
        listed = filter(None, pair["compiled_cpu_builtin_ops"].split(";"))  # "" when none
        items = (item.split(":") for item in listed)
        expected_cpu = Counter({op: int(count) for op, count in items})
        log_cpu: Counter[str] = Counter()
        for row in log.rows:
            if not row.mapped:
                log_cpu[row.operator] += row.count
        assert log_cpu == expected_cpu, pair["pair_id"]
        assert (log.ops_tpu or 0) + (log.ops_cpu or 0) == int(pair["source_ops"])
        assert log.compiler_version == pair["log_compiler_version"]


# ---------------------------------------------------------------------------------------------
# Layouts the shared files do not cover (texts from public google-coral/edgetpu issues)
# ---------------------------------------------------------------------------------------------

# google-coral/edgetpu#458 (a co-compile of two models; the excerpt's 16.0 ending completed).
CO_COMPILE = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Models compiled successfully in 524 ms.

Input model: temp_models/1.tflite
Input size: 1.91MiB
Output model: temp_models/co-compiled/2/1_edgetpu.tflite
Output size: 2.52MiB
On-chip memory used for caching model parameters: 2.27MiB
On-chip memory remaining for caching model parameters: 1.07MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 57
Operation log: temp_models/co-compiled/2/1_edgetpu.log
See the operation log file for individual operation details.

Input model: temp_models/2.tflite
Input size: 1.87MiB
Output model: temp_models/co-compiled/2/2_edgetpu.tflite
Output size: 2.06MiB
On-chip memory used for caching model parameters: 2.00MiB
On-chip memory remaining for caching model parameters: 1.07MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 6
Operation log: temp_models/co-compiled/2/2_edgetpu.log
See the operation log file for individual operation details.
Compilation child process completed within timeout period.
Compilation succeeded!
"""


def test_co_compile_gives_one_block_per_model() -> None:
    log = parse_log(CO_COMPILE)

    assert log.co_compiled
    assert log.compile_time_ms == 524
    assert log.succeeded is True
    first, second = log.models
    assert first.input_model == "temp_models/1.tflite"
    assert second.output_model == "temp_models/co-compiled/2/2_edgetpu.tflite"
    assert first.input_size is not None and first.input_size.num_bytes == 2_002_780  # 1.91 MiB
    assert second.on_chip_used is not None and second.on_chip_used.num_bytes == 2_097_152
    assert (first.total_ops, second.total_ops) == (57, 6)
    # Neither printed a "not all operations" paragraph: both fully mapped.
    assert (first.ops_tpu, first.ops_cpu, second.ops_tpu, second.ops_cpu) == (57, 0, 6, 0)
    assert (log.ops_tpu, log.ops_cpu) == (63, 0)


def test_co_compile_without_blank_lines() -> None:
    """google-coral/edgetpu#518 pasted a co-compile with every blank line removed."""
    text = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.
Models compiled successfully in 3498 ms.
Input model: cnn_first_edge.tflite
Input size: 8.00MiB
Output model: cnn_first_edgetpu.tflite
Output size: 9.31MiB
On-chip memory used for caching model parameters: 1.75MiB
On-chip memory remaining for caching model parameters: 3.75KiB
Off-chip memory used for streaming uncached model parameters: 6.97MiB
Number of Edge TPU subgraphs: 1
Total number of operations: 313
Operation log: cnn_first_edgetpu.log
See the operation log file for individual operation details.
Input model: rnn_second.tflite
Input size: 2.97MiB
Output model: rnn_second_edgetpu.tflite
Output size: 4.79MiB
On-chip memory used for caching model parameters: 5.29MiB
On-chip memory remaining for caching model parameters: 3.75KiB
Off-chip memory used for streaming uncached model parameters: 158.06KiB
Number of Edge TPU subgraphs: 1
Total number of operations: 78
Operation log: rnn_second_edgetpu.log
See the operation log file for individual operation details.
"""
    log = parse_log(text)

    assert [model.input_model for model in log.models] == [
        "cnn_first_edge.tflite",
        "rnn_second.tflite",
    ]
    streamed = [model.off_chip_streamed for model in log.models]
    assert [size.num_bytes for size in streamed if size] == [7_308_575, 161_853]
    assert (log.ops_tpu, log.ops_cpu) == (313 + 78, 0)


def test_co_compile_tables_belong_to_the_model_they_follow() -> None:
    model_block = "Input model: {0}.tflite\nTotal number of operations: {1}\n"
    text = (
        "Edge TPU Compiler version 16.0.384591198\n\nModels compiled successfully in 5 ms.\n\n"
        + model_block.format("a", 3)
        + "\nOperator                       Count      Status\n\n"
        + "CONV_2D                        3          Mapped to Edge TPU\n\n"
        + model_block.format("b", 2)
        + "\nOperator                       Count      Status\n\n"
        + "SOFTMAX                        2          Operation not supported\n"
    )
    log = parse_log(text)

    a, b = log.models
    assert [row.operator for row in a.rows] == ["CONV_2D"]
    assert [row.operator for row in b.rows] == ["SOFTMAX"]
    assert [row.operator for row in log.rows] == ["CONV_2D", "SOFTMAX"]
    assert (log.rows_complete, log.ops_tpu, log.ops_cpu) == (True, 3, 2)


def test_timeout_in_a_delegate_search_that_never_succeeds() -> None:
    """The message of google-coral/edgetpu#686."""
    text = (
        "Edge TPU Compiler version 16.0.384591198\n"
        "Searching for valid delegate with step 1\n"
        "Try to compile segment with 16 ops\n"
        "Intermediate tensors: UNET/ENC1C2_relu/Relu;UNET/ENC1C2_bn/FusedBatchNormV3,UNET/x\n"
        "Started a compilation timeout timer of 180 seconds.\n"
        "Compilation timeout. This is usually caused by large activations.\n"
        "Compilation failed! \n"
    )
    log = parse_log(text)

    (attempt,) = log.delegate_search
    # Tensor names may hold ";" (fused TF names); only "," separates them.
    assert attempt.intermediate_tensors == (
        "UNET/ENC1C2_relu/Relu;UNET/ENC1C2_bn/FusedBatchNormV3",
        "UNET/x",
    )
    assert attempt.succeeded is False
    assert log.succeeded is False
    assert log.failure_kinds == ("timeout",)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (
            "ERROR: Op builtin_code out of range: 150. Are you using old TFLite binary with newer "
            "model?",
            "builtin_code_out_of_range",
        ),
        ("Unable to open output file", "unable_to_open_output"),
        # google-coral/edgetpu#728: the C++ runtime's crash is the compiler's internal error.
        (
            "libc++abi: terminating with uncaught exception of type std::out_of_range: vector",
            "internal_error",
        ),
        ("ERROR: Encountered unresolved custom op: Atan.", "other"),
    ],
)
def test_error_line_kinds(line: str, kind: str) -> None:
    log = parse_log(f"Edge TPU Compiler version {V16}\n{line}\nCompilation failed! \n")

    assert log.succeeded is False
    assert log.failure_kinds == (kind,)
    assert log.failures[0].message == line


def test_builtin_code_is_parsed() -> None:
    failure = classify_error("ERROR: Op builtin_code out of range: 150. Are you using ...")
    assert failure is not None and failure.builtin_code == 150


def test_wrapper_lines_alone_still_fail_as_other() -> None:
    """google-coral/edgetpu#800: no reason given at all."""
    log = parse_log(
        f"Edge TPU Compiler version {V16}\nStarted a compilation timeout timer of 180 seconds.\n"
        "Compilation child process completed within timeout period.\nCompilation failed! \n"
    )

    assert log.succeeded is False
    assert log.failure_kinds == ("other",)
    assert log.failures[0].message == "Compilation failed!"


def test_unknown_status_is_kept_verbatim_and_counts_on_the_cpu() -> None:
    status = "Filter, bias, or other param is not constant at compile-time"
    text = (
        "Operator                       Count      Status\n\n"
        f"FULLY_CONNECTED                4          {status}\n"
        "ADD                            2          Mapped to Edge TPU\n"
    )
    log = parse_log(text)

    assert log.rows[0] == OpRow("FULLY_CONNECTED", 4, status, False)
    assert log.rows[0].status_key == "unknown"
    assert status_key(status) == "unknown"
    assert (log.ops_tpu, log.ops_cpu) == (2, 4)
    assert log.to_dict()["rows"][0] == {
        "operator": "FULLY_CONNECTED",
        "count": 4,
        "status": status,
        "mapped": False,
    }


def test_crlf_and_indented_output_parse_the_same() -> None:
    path = next(COMPILER_LOGS.glob("01_*.log"), None)
    if path is None:
        pytest.skip("shared/ is absent")
    text = path.read_text(encoding="utf-8")
    windows = "\r\n".join("  " + line for line in text.splitlines())

    assert parse_log(windows) == parse_log(text)
    assert parse_log(text.encode("utf-8")) == parse_log(text)


# ---------------------------------------------------------------------------------------------
# Garbage never raises
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n   \n",
        "hello world\nthis is not a compiler log 3 times over\n",
        "".join(map(chr, range(256))) * 4,
        "Total number of operations: " + "9" * 5000,
        "Input size: lots\nOperator Count\nCONV_2D",
    ],
    ids=["empty", "blank", "prose", "control-chars", "huge-number", "broken-fields"],
)
def test_garbage_is_not_recognised(text: str) -> None:
    log = parse_log(text)

    assert log.recognised is False
    assert (log.kind, log.compiler_version, log.succeeded) == ("unknown", None, None)
    assert (log.rows, log.models, log.failures, log.errors) == ((), (), (), ())
    assert log.unrecognised_lines == tuple(
        line.strip() for line in text.splitlines() if line.strip()
    )
    json.dumps(log.to_dict())


def test_binary_junk_bytes_do_not_raise() -> None:
    junk = bytes(range(256)) * 64 + b"\xff\xfe\x00Edge TPU Compiler version 16.0.384591198\x00"
    log = parse_log(junk)

    assert log.rows == ()
    assert log.compiler_version == V16  # found inside the junk, without the NUL after it


def test_random_text_and_shuffled_real_lines_never_raise() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    strategies = pytest.importorskip("hypothesis.strategies")
    real_lines = [
        line
        for path in shared_log_paths()
        for line in path.read_text(encoding="utf-8").splitlines()
    ] or ["Edge TPU Compiler version 16.0.384591198"]

    @hypothesis.settings(max_examples=300, deadline=None)
    @hypothesis.given(
        strategies.lists(
            strategies.one_of(strategies.sampled_from(real_lines), strategies.text(max_size=40)),
            max_size=40,
        )
    )
    def parse_anything(lines: list[str]) -> None:
        log = parse_log("\n".join(lines))
        json.dumps(log.to_dict())
        assert set(log.failure_kinds) <= set(FAILURE_KINDS)
        assert all(row.mapped == (row.status == MAPPED) for row in log.rows)

    parse_anything()


# ---------------------------------------------------------------------------------------------
# Statuses and sizes
# ---------------------------------------------------------------------------------------------


def test_known_statuses_are_those_of_facts_section_4_3() -> None:
    facts = SHARED / "edgetpu" / "facts.md"
    if not facts.is_file():
        pytest.skip("shared/ is absent")
    text = facts.read_text(encoding="utf-8")
    section = text[text.index("### 4.3") : text.index("## 5.")]
    numbered = re.findall(r"^\d\. `([^`]+)`", section, flags=re.MULTILINE)

    assert tuple(numbered) == KNOWN_STATUSES
    assert len(KNOWN_STATUSES) == 7


def test_status_keys_are_short_distinct_and_stable() -> None:
    assert [status_key(status) for status in KNOWN_STATUSES] == [
        "mapped",
        "more_than_one_subgraph",
        "unspecified_limitation",
        "unsupported_data_type",
        "operation_not_supported",
        "version_not_supported",
        "unsupported_rank",
    ]
    assert status_key("  Mapped to Edge TPU ") == "mapped"
    assert status_key("mapped to edge tpu") == "unknown"
    assert status_key("") == "unknown"


@pytest.mark.parametrize(
    ("text", "num_bytes"),
    [
        ("0.00B", 0),
        ("187.00KiB", 191_488),
        ("2.87MiB", 3_009_413),
        ("7.75KiB", 7_936),
        ("1.50GiB", 1_610_612_736),
        ("787.74 KiB", 806_646),
    ],
)
def test_parse_size(text: str, num_bytes: int) -> None:
    size = parse_size(text)
    assert size is not None
    assert (size.text, size.num_bytes) == (text, num_bytes)


@pytest.mark.parametrize("text", ["", "MiB", "2.87", "2.87 parsecs", "-1B", "1e9B"])
def test_parse_size_rejects_non_sizes(text: str) -> None:
    assert parse_size(text) is None


def test_to_dict_has_the_agreed_keys() -> None:
    keys = set(parse_log("").to_dict())
    assert {
        "compiler_version",
        "ops_tpu",
        "ops_cpu",
        "rows",
        "kind",
        "succeeded",
        "failures",
    } <= keys
