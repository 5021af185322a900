"""The C rules of the compiler's runs and logs (facts.md §5).

- C030 (`--compile` without a compiler) and C041 (`--compile` on a compiled model), run by
  `coralcheck.api`;
- C031–C040: one rule per failure kind that `coralcheck.compiler.log` gives a compiler's output
  (`compiler_failure(kind, message)` picks it), for a `--compile` run and for `coralcheck log`;
- C050: a committed compiler log that disagrees with the prediction (`coralcheck log`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from coralcheck.edgetpu.knowledge import knowledge, parse_version
from coralcheck.registry import entry, failure_code, finding, functions, rule
from coralcheck.report import Finding


@rule("C030")
def compiler_unavailable(problem: str) -> Iterator[Finding]:
    """`--compile` was asked for, but edgetpu_compiler could not be run.

    The Edge TPU compiler exists only for x86-64 Debian-based Linux (apt package
    `edgetpu-compiler` from the Coral repository). Without it coralcheck reports its own
    prediction only. On other machines run the compiler in an x86-64 Linux container, or keep
    its `.log` beside the model and check it with `coralcheck log`.
    """
    yield finding("C030", f"{problem}; showing the prediction only")


@rule("C041")
def compile_compiled_model() -> Iterator[Finding]:
    """`--compile` on a model that is already compiled: the compiler was not run.

    Compiling a `*_edgetpu.tflite` again leaves its Edge TPU custom op on the CPU. Run
    `--compile` on the source model instead.
    """
    yield finding(
        "C041",
        "--compile skipped: this model is already compiled; compile its source model",
    )


# --- C031–C040: the compiler failed (facts.md §5: message, cause, and what users did) ---------
# Each reports one failure kind of coralcheck.compiler.log (catalogue `failure_kind`); the
# issue numbers are google-coral/edgetpu's. The C03x rules' evidence is the failure the compiler
# printed in this very run (tests/test_compiler_log.py parses every real failure log in ../shared).


@rule("C031")
def compiler_model_not_quantized(message: str, op: str | None, version: str | None) -> Finding:
    """The compiler rejected the model: it is not (fully) quantized.

    edgetpu_compiler accepts only models whose ops are all 8-bit quantized. Float,
    dynamic-range (weights-only) or partly quantized models give "Model not quantized"
    (google-coral/edgetpu #222, #391, #366).
    """
    return _failure("C031", message, op, version)


@rule("C032")
def compiler_op_version_unknown(message: str, op: str | None, version: str | None) -> Finding:
    """The compiler does not know an op version the converter wrote.

    The compiler embeds an old TensorFlow Lite; a newer converter writes newer op versions
    (REVERSE_V2 v3, RSQRT v2, EXP v2, CONV_2D v6, TRANSPOSE_CONV v3, ...) and parsing fails with
    "Didn't find op for builtin opcode ... version ..." (google-coral/edgetpu #340, #384, #147).
    The fix names a newer compiler only where one parses the version.
    """
    return _failure("C032", message, op, version)


@rule("C033")
def compiler_op_unknown(message: str, op: str | None, version: str | None) -> Finding:
    """The model uses an op newer than the compiler's schema.

    The op's builtin code is beyond the TFLite schema the compiler was built with, so the model
    cannot be parsed.
    """
    return _failure("C033", message, op, version)


@rule("C034")
def compiler_internal_error(message: str, op: str | None, version: str | None) -> Finding:
    """The compiler crashed ("Internal compiler error").

    A generic crash of edgetpu_compiler. Reported causes: rank-5 reshapes, very large models;
    sometimes it is not deterministic and a retry works (google-coral/edgetpu #173, #60, #211).
    """
    return _failure("C034", message, op, version)


@rule("C035")
def compiler_large_activations(message: str, op: str | None, version: str | None) -> Finding:
    """Compilation failed: activation tensors too large for the Edge TPU.

    Intermediate activations do not fit the on-chip memory (google-coral/edgetpu #439, #601,
    #651, #444).
    """
    return _failure("C035", message, op, version)


@rule("C036")
def compiler_dynamic_tensors(message: str, op: str | None, version: str | None) -> Finding:
    """Compilation failed: the model has dynamic-sized tensors.

    The Edge TPU delegate needs static shapes; a dynamic dimension (usually the batch, -1 or
    None) fails (google-coral/edgetpu #829, #831).
    """
    return _failure("C036", message, op, version)


@rule("C037")
def compiler_timeout(message: str, op: str | None, version: str | None) -> Finding:
    """The compiler did not finish in time.

    Compilation ran longer than the timeout (coralcheck's --compiler-timeout, and compiler
    16.0's own --timeout_sec, 180 s by default) and was stopped.
    """
    return _failure("C037", message, op, version)


@rule("C038")
def compiler_printed_version_only(message: str, op: str | None, version: str | None) -> Finding:
    """The compiler printed only its version and stopped.

    Compiler 15.0 does this with --num_segments on some models (EfficientDet-Lite3/4,
    google-coral/edgetpu #411): no model is written.
    """
    return _failure("C038", message, op, version)


@rule("C039")
def compiler_cannot_write_output(message: str, op: str | None, version: str | None) -> Finding:
    """The compiler could not write its output file.

    edgetpu_compiler printed "Unable to open output file": the output directory is not
    writable or does not exist, or the disk is full.
    """
    return _failure("C039", message, op, version)


@rule("C040")
def compiler_failed(message: str, op: str | None, version: str | None) -> Finding:
    """The compiler failed.

    edgetpu_compiler exited with an error, printed nothing coralcheck recognises, or wrote no
    compiled model. The message is the compiler's own.
    """
    return _failure("C040", message, op, version)


def compiler_failure(
    kind: str, message: str, op: str | None = None, compiler_version: str | None = None
) -> Finding:
    """The finding for one compiler failure `kind` (coralcheck.compiler.log) with the compiler's
    `message`, from the compiler `compiler_version` (None: unknown); `op` names the op the
    prediction blames, when there is one."""
    return functions()[failure_code(kind)](message, op, compiler_version)  # type: ignore[no-any-return]


def _failure(code: str, message: str, op: str | None, compiler_version: str | None) -> Finding:
    fix = failure_fix(entry(code)["failure_kind"], message, compiler_version)
    if op:
        fix = f"{op}: {fix}"
    text = " ".join(message.split()) or entry(code)["title"]
    return finding(code, f"edgetpu_compiler: {text}", fix=fix)


_UNKNOWN_OP_VERSION = re.compile(r"opcode '(\w+)' version '(\d+)'")


def failure_fix(kind: str, message: str, compiler_version: str | None) -> str:
    """The fix for a compiler failure, with a newer compiler offered only where one helps: the
    release that ran (`compiler_version`, None when unknown) decides, never a fixed "16.0"."""
    fix = entry(failure_code(kind))["fix"]
    if kind not in ("op_version_not_found", "version_only"):
        return fix
    releases = knowledge().releases
    newest = releases[-1]
    ran = parse_version(compiler_version) if compiler_version else None
    if ran is not None and ran >= newest.version:
        return fix
    older = "" if ran is not None else f"If your compiler is older than {newest.short}: "
    if kind == "version_only":
        return f"{older}Use compiler {newest.short}. {fix}"
    found = _UNKNOWN_OP_VERSION.search(message)
    if found is None:
        return f"{fix} {older}Compiler {newest.short} parses more op versions; try it."
    opcode, version = found.group(1), int(found.group(2))
    limits = knowledge().parse_limits.get(opcode, ())
    if not limits:  # no evidence either way: the newest may, or may not, parse it
        return f"{fix} {older}Compiler {newest.short} may parse it; try it."
    start = ran if ran is not None else releases[0].version
    for r in releases:
        if r.version > start and not any(
            r.version <= lim.until and version > lim.max_version for lim in limits
        ):
            return f"{fix} {older}Compiler {r.short} parses {opcode} version {version}."
    return fix  # no release parses it: a newer compiler is no way out


# --- C050: a committed compiler log ----------------------------------------------------------


@rule("C050")
def log_disagrees(disagreements: list[dict]) -> Iterator[Finding]:
    """The compiler log and coralcheck's prediction disagree on some op types.

    Per op type and status (for console output without the per-op table: in the totals, ops
    on the Edge TPU and on the CPU, segments), the counts the log reports differ from the
    prediction for the model. Either the model changed since the log was written (recompile
    and commit the new log), or the prediction is wrong for this model (report it).
    """
    if disagreements:
        shown = ", ".join(
            f"{_counted(d)}: predicted {d['predicted']}, logged {d['logged']}"
            for d in disagreements[:3]
        )
        what = "" if any("what" in d for d in disagreements) else " op type/status"
        yield finding(
            "C050",
            f"{len(disagreements)}{what} count(s) differ from the log: {shown}",
        )


def _counted(disagreement: dict) -> str:
    """What a C050 count is of: a total ("ops on the CPU") or an op type and status."""
    if "what" in disagreement:
        return str(disagreement["what"])
    return f"{disagreement['operator']} {disagreement['status']!r}"
