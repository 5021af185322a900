"""Agreement of coralcheck's placement prediction with the real Edge TPU compiler.

For every usable (source, compiled) pair in ../shared/corpus/groundtruth.json, predict the placement
of each op of the source model for the compiler release that made the compiled twin, and compare it
with the real placement derived from the compiled model. Where the pair has a compiler log
(corpus/logs), also compare per-op-type status counts with the log.

Prints one line per model, then the totals; the last line is the total op agreement, e.g.
`total: 2391/2391 ops agree (100.0%)`. Run: `python3 benchmarks/compiler_agreement.py [-v]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
sys.path.insert(0, str(REPO))

# The compiler release that compiled each corpus folder (corpus/README.md).
COMPILER_BY_FOLDER = {
    "coral_edgetpu_diploria2": "2.0",
    "coral_edgetpu_eel": "2.1",
    "coral_test_data_frogfish": "15.0",
    "coral_test_data_grouper": "16.0",
    "coralmicro": "16.0",
    "goalbuddy": "16.0",
    "sandhya_modelnew": "16.0",
}


def compiler_for(source: str) -> str:
    """The compiler version of a corpus source path ("models/<folder>/<file>")."""
    return COMPILER_BY_FOLDER[Path(source).parts[1]]


def usable_pairs(corpus: Path = CORPUS) -> list[tuple[str, dict]]:
    """(compiled path, ground-truth entry) of every usable pair, in file order."""
    truth = json.loads((corpus / "groundtruth.json").read_text(encoding="utf-8"))
    return [(compiled, entry) for compiled, entry in truth.items() if entry.get("usable")]


def log_for(source: str, corpus: Path = CORPUS) -> Path | None:
    """The compiler's .log for a source model, when the corpus has it."""
    stem = Path(source).stem
    matches = sorted((corpus / "logs").glob(f"*/{stem}_edgetpu.log"))
    return matches[0] if matches else None


def log_counts(path: Path) -> Counter[tuple[str, str]]:
    """(operator, status) → count from an `_edgetpu.log` operator table."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1].isdigit() and parts[0].isupper():
            counts[(parts[0], parts[2].strip())] += int(parts[1])
    return counts


def compare(compiled: str, entry: dict, corpus: Path = CORPUS) -> dict:
    """Prediction vs the real placement (and the log, if any) for one pair."""
    from coralcheck.analyze.placement import predict
    from coralcheck.edgetpu.knowledge import target
    from coralcheck.model import load

    model = load(corpus / entry["source"])
    version = compiler_for(entry["source"])
    prediction = predict(model, target(version))
    real = {index: placement for index, _, placement in entry["per_op"]}
    disagreements = [
        (op.index, op.opcode, real.get(op.index), op.placement, op.status)
        for op in prediction.ops
        if real.get(op.index) != op.placement
    ]
    result = {
        "model": compiled,
        "compiler": version,
        "ops": len(prediction.ops),
        "agree": len(prediction.ops) - len(disagreements),
        "disagreements": disagreements,
        "status_mismatches": None,
    }
    log = log_for(entry["source"], corpus)
    if log is not None:
        predicted = Counter((op.opcode, op.status) for op in prediction.ops)
        logged = log_counts(log)
        result["status_mismatches"] = {
            f"{op} / {status}": (logged[(op, status)], predicted[(op, status)])
            for op, status in sorted(set(predicted) | set(logged))
            if predicted[(op, status)] != logged[(op, status)]
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="list every disagreement")
    args = parser.parse_args(argv)
    if not (CORPUS / "groundtruth.json").exists():
        print(f"no corpus at {CORPUS}")
        print("total: 0/0 ops agree (corpus missing)")
        return 0
    started = time.perf_counter()
    total = agree = status_models = status_ok = 0
    for compiled, entry in usable_pairs():
        r = compare(compiled, entry)
        total += r["ops"]
        agree += r["agree"]
        share = 100.0 * r["agree"] / r["ops"] if r["ops"] else 100.0
        line = f"{r['agree']:4d}/{r['ops']:<4d} {share:5.1f}%  [{r['compiler']:>4}] {compiled}"
        if r["status_mismatches"] is not None:
            status_models += 1
            status_ok += not r["status_mismatches"]
            line += (
                "  (log statuses: "
                + ("all match" if not r["status_mismatches"] else "differ")
                + ")"
            )
        print(line)
        if args.verbose:
            for index, opcode, real, predicted, status in r["disagreements"]:
                print(f"    op {index} {opcode}: real {real}, predicted {predicted} ({status})")
            for key, (logged, predicted) in (r["status_mismatches"] or {}).items():
                print(f"    log {key}: logged {logged}, predicted {predicted}")
    elapsed = time.perf_counter() - started
    print(f"status counts match the compiler log for {status_ok}/{status_models} logged models")
    print(f"time: {elapsed:.2f} s")
    share = 100.0 * agree / total if total else 100.0
    print(f"total: {agree}/{total} ops agree ({share:.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
