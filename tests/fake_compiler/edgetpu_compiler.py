"""A stand-in for `edgetpu_compiler` (x86-64 Linux only, not installable here), for tests.

Tests install it as an executable named `edgetpu_compiler` first on PATH (see
`tests/test_compiler_run.py`). It behaves like the real compiler 16.0 on the models of the
shared corpus, from what the real compiler left there:

- `--version` prints the real version line ("Edge TPU Compiler version 16.0.384591198").
- Given a corpus source model (recognised by content, whatever its path), it copies the real
  compiled twin into the output directory as `<stem>_edgetpu.tflite`, copies the real recorded
  `.log` where the corpus has one, and prints the real 16.0 console layout: version, timeout
  timer, "Model compiled successfully", the model block (input/output paths and sizes, number of
  subgraphs and operations, operation log), the "not all operations" paragraph with the TPU/CPU
  counts of the corpus ground truth, the `-s` table of the recorded log, and the closing lines.
  The three memory lines are left out: their values were not recorded for these pairs.
- Any other model: "Invalid model: <path>" / "Model could not be parsed", exit 1.

Flags are read as gflags does (`-o DIR`, `--out_dir=DIR`, `--out_dir DIR`, ...). Faults, chosen
with the environment variable FAKE_EDGETPU_MODE:

- `exit`: prints the version line and "ERROR: simulated crash" on stderr, exits 3;
  `exit-silent`: the same without the error line.
- `hang`: starts a grandchild that sleeps (its pid goes to FAKE_EDGETPU_PIDFILE), then sleeps.
- `garbage`: prints bytes that are not compiler output, exits 0, writes nothing.
- `corrupt-output`: writes a truncated compiled model.
- `recorded:<file>`: prints the real failure log `shared/edgetpu/compiler-logs/<file>` and
  exits 1 (no model written).
- `bad-version`: `--version` prints nothing recognisable.
- `version-hang`: `--version` never answers (sleeps).
- `flood`: prints without end (as fast as it can).
- `many-errors`: prints 20,000 distinct `ERROR:` lines, then "Compilation failed!", exit 1.
- `fifo-log`: compiles, but leaves a FIFO where the `.log` goes.
- `symlink-output`: prints no output path and writes no `<stem>_edgetpu.tflite`, only a
  symbolic link `other_edgetpu.tflite` to the file named by FAKE_EDGETPU_LINK_TARGET.

FAKE_EDGETPU_VERSION replaces the version (a version below 16 rejects `--timeout_sec` as the
real 14.x/15.x do). FAKE_EDGETPU_ARGV_LOG: a file each call appends its argv to (JSON).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared"
CORPUS = Path(os.environ.get("FAKE_EDGETPU_CORPUS", SHARED / "corpus"))
LOGS = SHARED / "edgetpu" / "compiler-logs"
VERSION = os.environ.get("FAKE_EDGETPU_VERSION", "16.0.384591198")
MODE = os.environ.get("FAKE_EDGETPU_MODE", "")
VALUE_FLAGS = {
    "-o": "out_dir",
    "--out_dir": "out_dir",
    "-m": "min_runtime_version",
    "--min_runtime_version": "min_runtime_version",
    "-t": "timeout_sec",
    "--timeout_sec": "timeout_sec",
    "-i": "intermediate_tensors",
    "--intermediate_tensors": "intermediate_tensors",
    "-n": "num_segments",
    "--num_segments": "num_segments",
    "-k": "delegate_search_step",
    "--delegate_search_step": "delegate_search_step",
}
BOOL_FLAGS = {
    "-s",
    "--show_operations",
    "-a",
    "--enable_multiple_subgraphs",
    "-d",
    "--search_delegate",
    "-v",
    "--version",
    "-h",
    "--help",
}


def parse(argv: list[str]) -> tuple[dict[str, str], set[str], list[str]]:
    values, bools, models = {}, set(), []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in VALUE_FLAGS:
            if not eq:
                i += 1
                value = argv[i] if i < len(argv) else ""
            values[VALUE_FLAGS[name]] = value
        elif arg in BOOL_FLAGS:
            bools.add(arg)
        elif arg.startswith("-"):
            print(f"ERROR: unknown command line flag '{arg.lstrip('-')}'")
            sys.exit(1)
        else:
            models.append(arg)
        i += 1
    return values, bools, models


def size_text(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.2f}B"


def find_pair(model: Path) -> dict[str, str] | None:
    size = model.stat().st_size
    digest = None
    with open(CORPUS / "pairs.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            source = CORPUS / row["source_path"] if row["source_path"] else None
            if source is None or not source.is_file() or source.stat().st_size != size:
                continue
            digest = digest or hashlib.sha256(model.read_bytes()).hexdigest()
            if hashlib.sha256(source.read_bytes()).hexdigest() == digest:
                return row
    return None


def recorded(name: str) -> str:
    lines = (LOGS / name).read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.startswith("#")) + "\n"


def main() -> int:
    argv = sys.argv[1:]
    if os.environ.get("FAKE_EDGETPU_ARGV_LOG"):
        with open(os.environ["FAKE_EDGETPU_ARGV_LOG"], "a", encoding="utf-8") as f:
            f.write(json.dumps(argv) + "\n")
    values, bools, models = parse(argv)
    if bools & {"-v", "--version"}:
        if MODE == "version-hang":
            time.sleep(600)
        print("welcome" if MODE == "bad-version" else f"Edge TPU Compiler version {VERSION}")
        return 0
    major = int(VERSION.split(".")[0])
    if "timeout_sec" in values and major < 16:
        print("ERROR: unknown command line flag 'timeout_sec'")
        return 1
    if MODE in ("exit", "exit-silent"):
        print(f"Edge TPU Compiler version {VERSION}")
        if MODE == "exit":
            print("ERROR: simulated crash", file=sys.stderr)
        return 3
    if MODE == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        if os.environ.get("FAKE_EDGETPU_PIDFILE"):
            Path(os.environ["FAKE_EDGETPU_PIDFILE"]).write_text(str(child.pid))
        time.sleep(600)
        return 0
    if MODE == "flood":
        line = b"ERROR: flooding the console with output, again and again\n" * 1024
        while True:
            sys.stdout.buffer.write(line)
    if MODE == "many-errors":
        print(f"Edge TPU Compiler version {VERSION}")
        sys.stdout.write("".join(f"ERROR: op {i} failed\n" for i in range(20_000)))
        print("Compilation failed!")
        return 1
    if MODE == "symlink-output":
        out_dir = Path(values.get("out_dir", "."))
        (out_dir / "other_edgetpu.tflite").symlink_to(os.environ["FAKE_EDGETPU_LINK_TARGET"])
        print(f"Edge TPU Compiler version {VERSION}")
        return 0
    if MODE == "garbage":
        sys.stdout.buffer.write(b"\x00\xff\xfe garbage \x80\x81\n" * 50)
        return 0
    if MODE.startswith("recorded:"):
        sys.stdout.write(recorded(MODE.removeprefix("recorded:")))
        return 1
    if len(models) != 1:
        print("Usage: edgetpu_compiler [options] model...")
        return 1
    model = Path(models[0])
    print(f"Edge TPU Compiler version {VERSION}")
    pair = find_pair(model) if model.is_file() else None
    if pair is None:
        print(f"Invalid model: {model}\nModel could not be parsed")
        return 1
    print(f"Started a compilation timeout timer of {values.get('timeout_sec', '180')} seconds.")
    out_dir = Path(values.get("out_dir", "."))
    stem = model.name.removesuffix(".tflite")
    out_model, out_log = out_dir / f"{stem}_edgetpu.tflite", out_dir / f"{stem}_edgetpu.log"
    twin = CORPUS / pair["compiled_path"]
    try:
        if MODE == "corrupt-output":
            out_model.write_bytes(twin.read_bytes()[:5000])
        else:
            shutil.copyfile(twin, out_model)
        if MODE == "fifo-log":
            os.mkfifo(out_log)
        elif pair["log_path"]:
            shutil.copyfile(CORPUS / pair["log_path"], out_log)
    except OSError:
        print("Unable to open output file")
        return 1
    truth = json.loads((CORPUS / "groundtruth.json").read_text(encoding="utf-8"))
    entry = truth[pair["compiled_path"]]
    total = len(entry["per_op"])
    print(f"\nModel compiled successfully in {17 + total} ms.\n")
    print(f"Input model: {model}\nInput size: {size_text(model.stat().st_size)}")
    print(f"Output model: {out_model}\nOutput size: {size_text(out_model.stat().st_size)}")
    print(f"Number of Edge TPU subgraphs: {entry['segments']}")
    print(f"Total number of operations: {total}")
    if pair["log_path"]:
        print(f"Operation log: {out_log}")
    if entry["cpu_ops"]:
        print(
            "\nModel successfully compiled but not all operations are supported by the Edge "
            "TPU. A percentage of the model will instead run on the CPU, which is slower. If "
            "possible, consider updating your model to use only operations supported by the "
            "Edge TPU. For details, visit g.co/coral/model-reqs."
        )
        print(f"Number of operations that will run on Edge TPU: {entry['tpu_ops']}")
        print(f"Number of operations that will run on CPU: {entry['cpu_ops']}")
    if bools & {"-s", "--show_operations"} and pair["log_path"]:
        table = (CORPUS / pair["log_path"]).read_text(encoding="utf-8").split("Operator", 1)[1]
        print("\nOperator" + table.rstrip("\n"))
    elif pair["log_path"]:
        print("See the operation log file for individual operation details.")
    print("Compilation child process completed within timeout period.\nCompilation succeeded! ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
