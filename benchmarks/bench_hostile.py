"""Every hostile input of issue 12, through the real CLI: wall time, peak RSS, exit code, stderr.

    python benchmarks/bench_hostile.py            # the table (markdown) of every input
    python benchmarks/bench_hostile.py --only 1,4  # the inputs of items 1 and 4

Each input is built in a temporary directory (tests/helpers/hostile.py,
tests/helpers/tflite_builder.py, byte edits of corpus models), never committed. Each command runs
as its own process, measured by tests/helpers/fuzzing.run_cli_measured (wall time from fork to
exit; the child's own peak RSS from wait4). The target: under 3 s and 500 MB, exit 0, 1 or 2,
and exactly one `coralcheck: error:` line on stderr when the exit is 2. A `--compile` input runs
the stand-in compiler of tests/fake_compiler (the shared corpus must be beside the checkout).
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conftest import cli_env  # noqa: E402  (tests/ is put on the path just above)
from helpers import fuzzing, hostile  # noqa: E402
from helpers.tflite_builder import (  # noqa: E402
    OpSpec,
    TensorSpec,
    add_model,
    build_model,
    with_identifier,
)

TIME_LIMIT_S = 3.0
RSS_LIMIT_MB = 500
CORPUS = fuzzing.CORPUS
SLIM = "coral_test_data_grouper/deeplab_mobilenet_edgetpu_slim_cityscapes_quant"
FLOAT = add_model()
FOREIGN = REPO / "README.md"  # a file outside the compiler's output directory


class Case:
    """One input: `build(dir)` writes what it needs and returns the CLI arguments."""

    def __init__(
        self, item: int, name: str, build: Callable[[Path], list[str]], env: dict | None = None
    ) -> None:
        self.item, self.name, self.build, self.env = item, name, build, env or {}


def _file(folder: Path, name: str, data: bytes) -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)


def _model_and(folder: Path, *args: str) -> list[str]:
    return [_file(folder, "m.tflite", FLOAT), *args]


def _patched(base: str, patches: dict[int, int]) -> bytes:
    data = bytearray((CORPUS / base).read_bytes())
    for at, value in patches.items():
        data[at] = value
    return bytes(data)


def _log(folder: Path) -> list[str]:
    text = "Edge TPU Compiler version 16.0.384591198\n"
    text += "".join(f"ERROR: op {i} failed\n" for i in range(20_000)) + "Compilation failed!\n"
    return ["log", _file(folder, "big_edgetpu.log", text.encode())]


def _undecodable(folder: Path, *args: str) -> list[str]:
    models = folder / "models"
    models.mkdir()
    with open(os.path.join(os.fsencode(models), b"m\xff.tflite"), "wb") as f:
        f.write(FLOAT)
    return [str(models), *[a.replace("{dir}", str(folder)) for a in args]]


def _config(folder: Path, text: bytes) -> list[str]:
    _file(folder, "coralcheck.toml", text)
    return [_file(folder, "m.tflite", FLOAT)]


def _baseline(folder: Path, text: bytes) -> list[str]:
    return _model_and(folder, "--baseline", _file(folder, "baseline.json", text))


def _glob_loop(folder: Path) -> list[str]:
    tree = folder / "dir" / "a" / "b"
    tree.mkdir(parents=True)
    _file(folder / "dir" / "a", "m.tflite", FLOAT)
    for name in ("up", "up2", "up3"):
        (tree / name).symlink_to("../..")
    return [str(folder / "dir" / "**" / "*.tflite")]


def _fifo(folder: Path, *args: str) -> list[str]:
    fifo = folder / "m_edgetpu.log"
    os.mkfifo(fifo)
    return [a.replace("{fifo}", str(fifo)) for a in args]


def _fifo_baseline(folder: Path) -> list[str]:
    return _model_and(folder, *_fifo(folder, "--baseline", "{fifo}"))


def _hard_link(folder: Path) -> list[str]:
    args = _model_and(folder)
    os.link(args[0], folder / "r.txt")
    return [args[0], "-o", str(folder / "r.txt")]


def _select_50k(folder: Path) -> list[str]:
    from coralcheck.registry import codes as known_codes

    codes = known_codes()
    selection = (codes * (50_000 // len(codes) + 1))[:50_000]
    _file(folder, "coralcheck.toml", f"select = {selection!r}\n".replace("'", '"').encode())
    int8 = {"scale": [0.5], "zero_point": [0]}
    tensors = [TensorSpec(f"t{i}", [1, 4], "INT8", **int8) for i in range(5_001)]
    ops = [OpSpec("CUSTOM:my_op", [0], [i + 1]) for i in range(5_000)]
    data = build_model(tensors=tensors, ops=ops, inputs=[0], outputs=[1])
    return [_file(folder, "custom5k.tflite", data)]


def _poetry(folder: Path) -> list[str]:
    (folder / "pyproject.toml").write_text('tool = "poetry"\n')
    return _model_and(folder)


def _named(folder: Path, name: str, *args: str) -> list[str]:
    return [_file(folder, name, FLOAT), *args]


def _markdown(folder: Path) -> list[str]:
    hostile_name = "@octo-org/team https://evil.example $x^2$ &lt; \u202eabc"
    data = build_model(
        tensors=[
            TensorSpec("x", [1, 4], "INT8", scale=[0.5], zero_point=[0]),
            TensorSpec(hostile_name, [1, 4], "INT8", scale=[0.0], zero_point=[0]),
        ],
        ops=[OpSpec("RELU", [0], [1])],
        inputs=[0],
        outputs=[1],
    )
    return [_file(folder, "m.tflite", data), "--format", "markdown"]


def _compile(folder: Path, mode: str, *args: str) -> list[str]:
    """x.tflite (a corpus model) and `--compile` with the stand-in compiler in `mode`."""
    model = folder / "x.tflite"
    shutil.copyfile(CORPUS / f"{SLIM}.tflite", model)
    if mode == "overwrite":
        shutil.copyfile(CORPUS / f"{SLIM}_edgetpu.tflite", folder / "x_edgetpu.tflite")
        return [str(folder), "--compile", "--compile-output", str(folder)]
    return [str(model), "--compile", *args]


CASES = [
    Case(1, "10,000 entries naming one executable (45 KB)", lambda d: [
        _file(d, "a_edgetpu.tflite", hostile.many_executables(10_000, layers=1_000))]),
    Case(1, "100,000 entries naming one executable (405 KB)", lambda d: [
        _file(d, "a_edgetpu.tflite", hostile.many_executables(100_000, layers=1_000))]),
    Case(1, "the 45 KB package through compare", lambda d: [
        "compare", str(fuzzing.FIXTURES / "demo_int8.tflite"),
        _file(d, "a_edgetpu.tflite", hostile.many_executables(10_000, layers=1_000))]),
    Case(2, "2,000 ops sharing large custom options (340 KB)", lambda d: [
        _file(d, "b_edgetpu.tflite", hostile.shared_large_custom_options(2_000))]),
    Case(3, "one float tensor read by 10,000 RELUs (760 KB)", lambda d: [
        _file(d, "c.tflite", hostile.fan_out(10_000))]),
    Case(3, "3,000 ops reading one tensor 60 times (980 KB)", lambda d: [
        _file(d, "c.tflite", hostile.repeated_inputs(3_000, 60))]),
    Case(4, "coralcheck log: 20,000 distinct ERROR lines (589 KB)", _log),
    Case(5, "m\\xff.tflite --format json (stdout strict UTF-8)",
         lambda d: _undecodable(d, "--format", "json"), {"PYTHONIOENCODING": "utf-8:strict"}),
    Case(5, "m\\xff.tflite --format sarif -o", lambda d: _undecodable(
        d, "--format", "sarif", "-o", "{dir}/r.sarif")),
    Case(5, "m\\xff.tflite --write-baseline", lambda d: _undecodable(
        d, "--write-baseline", "{dir}/b.json")),
    Case(6, "config: invalid UTF-8", lambda d: _config(d, b'select = ["Q\xff"]\n')),
    Case(6, "config: arrays nested 100,000 deep", lambda d: _config(
        d, b"select = " + b"[" * 100_000 + b"]" * 100_000 + b"\n")),
    Case(6, "config: a 5,000-digit integer", lambda d: _config(
        d, b"max-cpu-ops = " + b"9" * 5_000 + b"\n")),
    Case(6, "pyproject.toml: tool = \"poetry\"", lambda d: _poetry(d)),
    Case(6, "baseline nested 100,000 deep", lambda d: _baseline(
        d, b"[" * 100_000 + b"]" * 100_000)),
    Case(6, "baseline with Infinity", lambda d: _baseline(
        d, b'{"coralcheck_baseline": 1, "models": {"m": {"ops_total": Infinity}}}')),
    Case(6, "baseline with 1e400", lambda d: _baseline(
        d, b'{"coralcheck_baseline": 1, "models": {"m": {"ops_total": 1e400}}}')),
    Case(6, "--baseline /dev/zero", lambda d: _model_and(d, "--baseline", "/dev/zero")),
    Case(7, "--compile --compile-output DIR over X_edgetpu.tflite",
         lambda d: _compile(d, "overwrite")),
    Case(8, "glob through three symlink loops", _glob_loop),
    Case(9, "a model named ::error title=x::pwned.tflite",
         lambda d: _named(d, "::error title=x::pwned.tflite")),
    Case(10, "a model named with ESC sequences (error line)", lambda d: [
        _file(d, "bad\x1b]0;owned\x07\x1b[2J.tflite", b"not a model, just text")]),
    Case(11, "coralcheck log FIFO", lambda d: _fifo(d, "log", "{fifo}")),
    Case(11, "--baseline FIFO", _fifo_baseline),
    Case(11, "a compiler leaving a FIFO as its .log", lambda d: _compile(d, "fifo-log"),
         {"FAKE_EDGETPU_MODE": "fifo-log"}),
    Case(11, "a compiler hanging on --version, --compiler-timeout 1",
         lambda d: _compile(d, "", "--compiler-timeout", "1"),
         {"FAKE_EDGETPU_MODE": "version-hang"}),
    Case(12, "-o onto a hard link of the model", _hard_link),
    Case(13, '--select ""', lambda d: _model_and(d, "--select", "")),
    Case(14, "select of 50,000 codes, 5,000 findings", _select_50k),
    Case(15, "markdown of a tensor named @team https:// $x$ &lt; U+202E", _markdown),
    Case(16, "a compiler that floods its output", lambda d: _compile(d, "flood"),
         {"FAKE_EDGETPU_MODE": "flood"}),
    Case(16, "a compiler that leaves only a symlink out of the directory",
         lambda d: _compile(d, "symlink-output"),
         {"FAKE_EDGETPU_MODE": "symlink-output", "FAKE_EDGETPU_LINK_TARGET": str(FOREIGN)}),
    Case(17, "identifier 'TFL2'", lambda d: [
        _file(d, "m.tflite", with_identifier(FLOAT, b"TFL2"))]),
    Case(18, "nrf20/mnist4_edgetpu.tflite bytes 96-97 = 08 21", lambda d: [
        _file(d, "m_edgetpu.tflite", _patched("nrf20/mnist4_edgetpu.tflite", {96: 8, 97: 0x21}))]),
    Case(18, "eel mobilenet_edgetpu_0.75 bytes 80-81 = 50 30", lambda d: [_file(
        d, "m_edgetpu.tflite", _patched(
            "coral_edgetpu_eel/mobilenet_edgetpu_0.75_224_post_training_quant_edgetpu.tflite",
            {80: 0x50, 81: 0x30}))]),
    Case(18, "frogfish mobilenet_v2 bit 5 of byte 90", lambda d: [_file(
        d, "m_edgetpu.tflite", _patched(
            "coral_test_data_frogfish/mobilenet_v2_1.0_224_quant_edgetpu.tflite", {90: 0x20}))]),
]  # fmt: skip


def _fake_compiler_on_path(folder: Path) -> str:
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "edgetpu_compiler"
    fake = REPO / "tests" / "fake_compiler" / "edgetpu_compiler.py"
    exe.write_text(
        f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(fake)!r}, run_name='__main__')\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def run_case(case: Case) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        args = case.build(folder)
        env = cli_env() | case.env
        env["PATH"] = _fake_compiler_on_path(folder)
        run = fuzzing.measure_process(
            [sys.executable, "-m", "coralcheck", *args], folder, env, timeout=120
        )
    lines = run.stderr.splitlines()
    one_line = run.exit_code != 2 or (len(lines) == 1 and lines[0].startswith("coralcheck: error:"))
    ok = (
        run.exit_code in (0, 1, 2)
        and one_line
        and run.seconds < TIME_LIMIT_S
        and run.rss_mb < RSS_LIMIT_MB
    )
    return {
        "item": case.item,
        "input": case.name,
        "exit": run.exit_code,
        "stderr lines": len(lines),
        "s": run.seconds,
        "MB": run.rss_mb,
        "ok": ok,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated item numbers")
    args = parser.parse_args()
    only = {int(i) for i in args.only.split(",")} if args.only else None
    print("| item | input | exit | stderr lines | s | peak MB | within limits |")
    print("|---:|---|---:|---:|---:|---:|---|")
    failed = 0
    for case in CASES:
        if only and case.item not in only:
            continue
        row = run_case(case)
        failed += not row["ok"]
        print(
            f"| {row['item']} | {row['input']} | {row['exit']} | {row['stderr lines']} | "
            f"{row['s']:.2f} | {row['MB']:.0f} | {'yes' if row['ok'] else 'NO'} |",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
