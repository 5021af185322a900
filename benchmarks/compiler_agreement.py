"""Agreement of coralcheck's placement prediction with the real Edge TPU compiler.

For every usable (source, compiled) pair in ../shared/corpus/groundtruth.json, predict the placement
of each op of the source model for the compiler release that made the compiled twin (see
`compiler_evidence`: the pair's `compiler`, else the documented fallbacks), with `-a`
(`--enable_multiple_subgraphs`) where the compiled twin has more than one Edge TPU segment, and
compare it with the real placement derived from the compiled model. Where the pair has a compiler
log (pairs.csv `log_path`), also compare per-op-type status counts with the log.

Prints one line per model, then per-op and exact-model agreement (every op and the number of Edge
TPU segments) per compiler release and per compile mode (single segment / `-a`), every op that
still differs (predicted vs real placement) and every segment count that does, and the totals.
The last line is the total op agreement, e.g. `total: 3907/3907 ops agree (100.0%)` (a hook reads
it). Run: `python3 benchmarks/compiler_agreement.py [-v]` (`-v`: the log status mismatches).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
sys.path.insert(0, str(REPO))

# The compiler release of each pair is found here, and only here (tests import these functions).
#
# 1. The pair's `compiler` field (groundtruth.json): the release its compiler log names.
# 2. The pairs recorded before that field existed (no `compiler` key: Google's test data and the
#    YOLO exports) were made by one release per folder, as corpus/README.md says. Diploria2's
#    "≈ 2.0 (2019-09)" is the September 2019 build, 2.0.267685300 (the January 2020 build is the
#    newest 2.0, which "2.0" names).
LEGACY_FOLDER_COMPILERS = {
    "coral_edgetpu_diploria2": "2.0.267685300",
    "coral_edgetpu_eel": "2.1",
    "coral_test_data_frogfish": "15.0",
    "coral_test_data_grouper": "16.0",
    "coralmicro": "16.0",
    "goalbuddy": "16.0",
    "sandhya_modelnew": "16.0",
}
# 3. A pair whose `compiler` is null takes the release that the logs of the other pairs from the
#    same repository name, when they all name one (one author, one installed compiler).
# 4. Else its `min_runtime`, read as corpus/README.md reads it: 10 ≈ compiler 1.x, 12 ≈ 2.x-15.0
#    (the newest of that range is used), 14 = 16.0.
MIN_RUNTIME_COMPILERS = {10: "1.0", 12: "15.0", 14: "16.0"}


@cache
def _truth(corpus: Path) -> dict[str, dict]:
    return json.loads((corpus / "groundtruth.json").read_text(encoding="utf-8"))


@cache
def _pairs_csv(corpus: Path) -> dict[str, dict[str, str]]:
    """pairs.csv rows by compiled path (rows without a compiled model left out)."""
    path = corpus / "pairs.csv"
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {row["compiled_path"]: row for row in csv.DictReader(f) if row["compiled_path"]}


def usable_pairs(corpus: Path = CORPUS) -> list[tuple[str, dict]]:
    """(compiled path, ground-truth entry) of every usable pair, in file order."""
    return [(compiled, entry) for compiled, entry in _truth(corpus).items() if entry.get("usable")]


def _repository(entry: dict) -> str:
    """The corpus folder of a pair: `models/<folder>/...`."""
    return Path(entry["source"]).parts[1]


def compiler_evidence(entry: dict, corpus: Path = CORPUS) -> tuple[str, str]:
    """The compiler release that made a pair's compiled twin, and the evidence (see above)."""
    if entry.get("compiler"):
        return str(entry["compiler"]), "log"
    folder = _repository(entry)
    if "compiler" not in entry and folder in LEGACY_FOLDER_COMPILERS:
        return LEGACY_FOLDER_COMPILERS[folder], "README folder"
    siblings = {
        str(e["compiler"])
        for e in _truth(corpus).values()
        if e.get("compiler") and _repository(e) == folder
    }
    if len(siblings) == 1:
        return siblings.pop(), "repository logs"
    runtime = entry.get("min_runtime")
    if runtime in MIN_RUNTIME_COMPILERS:
        return MIN_RUNTIME_COMPILERS[runtime], "min runtime"
    raise LookupError(f"{entry['source']}: no evidence of the compiler release")


def compiler_for(entry: dict, corpus: Path = CORPUS) -> str:
    """The compiler release of a pair (`compiler_evidence` without the evidence)."""
    return compiler_evidence(entry, corpus)[0]


def multiple_subgraphs(entry: dict) -> bool:
    """Whether the pair was compiled with `-a`: its twin has more than one Edge TPU segment."""
    return int(entry.get("segments", 1)) > 1


def log_for(compiled: str, corpus: Path = CORPUS) -> Path | None:
    """The compiler's .log of a pair (pairs.csv `log_path`), when the corpus has it."""
    row = _pairs_csv(corpus).get(compiled)
    if not row or not row["log_path"]:
        return None
    path = corpus / row["log_path"]
    return path if path.is_file() else None


def compare(compiled: str, entry: dict, corpus: Path = CORPUS) -> dict:
    """Prediction vs the real placement (and the log, if any) for one pair."""
    from coralcheck.analyze.placement import predict
    from coralcheck.edgetpu.target import target
    from coralcheck.errors import UsageError
    from coralcheck.model import load

    model = load(corpus / entry["source"])
    version, evidence = compiler_evidence(entry, corpus)
    real = {index: placement for index, _, placement in entry["per_op"]}
    try:
        tgt = target(version)
    except UsageError as e:  # a release coralcheck does not know: nothing is predicted
        return {
            "model": compiled,
            "compiler": version,
            "evidence": evidence,
            "multiple_subgraphs": multiple_subgraphs(entry),
            "segments": entry.get("segments", 1),
            "segments_predicted": 0,
            "ops": len(real),
            "agree": 0,
            "disagreements": [(i, op, p, "none", str(e)) for i, op, p in entry["per_op"]],
            "status_mismatches": None,
        }
    release = tgt.release.name
    prediction = predict(model, tgt, multiple_subgraphs(entry))
    disagreements = [
        (op.index, op.opcode, real.get(op.index), op.placement, op.status)
        for op in prediction.ops
        if real.get(op.index) != op.placement
    ]
    result = {
        "model": compiled,
        "compiler": release,
        "evidence": evidence,
        "multiple_subgraphs": multiple_subgraphs(entry),
        "segments": entry.get("segments", 1),
        "segments_predicted": prediction.tpu_segments,
        "ops": len(prediction.ops),
        "agree": len(prediction.ops) - len(disagreements),
        "disagreements": disagreements,
        "status_mismatches": None,
    }
    log = log_for(compiled, corpus)
    if log is not None:
        from coralcheck.analyze.logcompare import differences, logged_counts
        from coralcheck.compiler.log import parse_log

        rows = parse_log(log.read_text(encoding="utf-8")).rows
        predicted = Counter((op.opcode, op.status) for op in prediction.ops)
        result["status_mismatches"] = {
            f"{c.operator} / {c.key}": (c.logged, c.placed)
            for c in differences(logged_counts(rows), predicted)
        }
    return result


class Tally:
    """Ops and models that agree, for one group of pairs."""

    __slots__ = ("agree", "exact", "models", "ops")

    def __init__(self) -> None:
        self.agree = self.ops = self.exact = self.models = 0

    def add(self, r: dict) -> None:
        self.agree += r["agree"]
        self.ops += r["ops"]
        self.exact += r["agree"] == r["ops"] and r["segments_predicted"] == r["segments"]
        self.models += 1

    def line(self, label: str) -> str:
        share = 100.0 * self.agree / self.ops if self.ops else 100.0
        return (
            f"  {label:<26} ops {self.agree:5d}/{self.ops:<5d} ({share:5.1f}%)   "
            f"exact models {self.exact:3d}/{self.models}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print the log mismatches")
    args = parser.parse_args(argv)
    if not (CORPUS / "groundtruth.json").exists():
        print(f"no corpus at {CORPUS}")
        print("total: 0/0 ops agree (corpus missing)")
        return 0
    started = time.perf_counter()
    total = Tally()
    by_release: dict[str, Tally] = {}
    by_mode: dict[str, Tally] = {}
    status_models = status_ok = 0
    differs: list[str] = []
    for compiled, entry in usable_pairs():
        r = compare(compiled, entry)
        mode = "-a (several segments)" if r["multiple_subgraphs"] else "single segment"
        for tally in (total, by_release.setdefault(r["compiler"], Tally())):
            tally.add(r)
        by_mode.setdefault(mode, Tally()).add(r)
        share = 100.0 * r["agree"] / r["ops"] if r["ops"] else 100.0
        flag = " -a" if r["multiple_subgraphs"] else ""
        line = f"{r['agree']:4d}/{r['ops']:<4d} {share:5.1f}%  [{r['compiler']}{flag}] {compiled}"
        if r["status_mismatches"] is not None:
            status_models += 1
            status_ok += not r["status_mismatches"]
            line += (
                "  (log statuses: " + ("match" if not r["status_mismatches"] else "differ") + ")"
            )
        print(line)
        if r["segments_predicted"] != r["segments"]:
            differs.append(
                f"  {compiled}: {r['segments_predicted']} Edge TPU segments predicted, "
                f"{r['segments']} real"
            )
        for index, opcode, real, predicted, status in r["disagreements"]:
            differs.append(
                f"  {compiled}: op {index} {opcode}: predicted {predicted} ({status}), real {real}"
            )
        if args.verbose:
            for key, (logged, predicted) in (r["status_mismatches"] or {}).items():
                print(f"    log {key}: logged {logged}, predicted {predicted}")
    print("by compiler release (evidence: corpus/groundtruth.json, see compiler_evidence):")
    for release in sorted(by_release, key=lambda v: tuple(int(p) for p in v.split("."))):
        print(by_release[release].line(release))
    print("by compile mode:")
    for mode in sorted(by_mode, reverse=True):
        print(by_mode[mode].line(mode))
    print(f"still differs ({len(differs)}; op: predicted vs real placement, or segment counts):")
    print("\n".join(differs) if differs else "  nothing")
    elapsed = time.perf_counter() - started
    print(f"status counts match the compiler log for {status_ok}/{status_models} logged models")
    print(f"models: {total.exact}/{total.models} exact; time: {elapsed:.2f} s")
    share = 100.0 * total.agree / total.ops if total.ops else 100.0
    print(f"total: {total.agree}/{total.ops} ops agree ({share:.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
