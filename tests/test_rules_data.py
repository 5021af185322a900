"""The knowledge base in rules/*.toml: well-formed, consistent with the code that reads it, and
not contradicted by the real compiler's output in the shared corpus."""

from __future__ import annotations

import json
import re

import pytest
import tflite
from conftest import REPO
from helpers.agreement import agreement

from coralcheck.edgetpu.constraints import CONSTRAINT_CHECKS
from coralcheck.edgetpu.knowledge import knowledge, load_toml, parse_version
from coralcheck.edgetpu.target import target
from coralcheck.model import load

BUILTINS = {k for k, v in vars(tflite.BuiltinOperator).items() if isinstance(v, int)}
RELEASES = ["1.0", "2.0", "2.0.267685300", "2.1", "14.1", "15.0", "16.0"]


def test_data_files_ship_in_the_rules_package() -> None:
    names = {p.name for p in (REPO / "rules").glob("*.toml")}
    assert {"compilers.toml", "ops.toml", "activations.toml", "catalogue.toml"} <= names
    assert (REPO / "rules" / "__init__.py").exists()


def test_every_op_and_advice_names_a_tflite_builtin() -> None:
    kb = knowledge()
    assert set(kb.ops) <= BUILTINS
    assert set(kb.unsupported_advice) <= BUILTINS
    assert not set(kb.ops) & set(kb.unsupported_advice)
    for facts in kb.activations.values():
        assert set(facts["ops"]) <= BUILTINS


def _constraints():
    kb = knowledge()
    return [*(c for spec in kb.ops.values() for c in spec.constraints), *kb.common_constraints]


def test_every_constraint_names_a_check_and_says_where_it_comes_from() -> None:
    assert knowledge().common_constraints  # the row limit applies to every op
    for c in _constraints():
        assert c.check in CONSTRAINT_CHECKS, (c.op, c.check)
        assert c.kind in ("documented", "inferred"), (c.op, c.check)
        assert c.effect in ("unmap", "note"), (c.op, c.check)
        assert c.text and c.source, (c.op, c.check)
        if c.effect == "unmap":
            assert c.fix, (c.op, c.check)
        if c.inferred:
            assert c.confidence in ("inferred", "analogy", "unknown"), (c.op, c.check)


def test_shared_limits_resolve_to_numbers() -> None:
    for c in _constraints():
        if "limit" in c.params:
            assert isinstance(c.params["limit"], int) and c.params["limit"] > 0


def test_releases_are_ordered_and_unique() -> None:
    versions = [r.version for r in knowledge().releases]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    for text in RELEASES:
        assert target(text).release.short == ".".join(text.split(".")[:2])


@pytest.mark.parametrize(
    "given,release",
    [
        ("1.0", "1.0.249710469"),
        ("1", "1.0.249710469"),
        ("1.0.249710469", "1.0.249710469"),
        ("2.0", "2.0.291256449"),  # the newest 2.0 build
        ("2.0.267685300", "2.0.267685300"),
        ("2.0.280000000", "2.0.267685300"),  # the newest build not newer than it
        ("2.0.1", "2.0.267685300"),  # older than every build of its line: the oldest
        ("2", "2.1.302470888"),
        ("14", "14.1.317412892"),
        (" 16.0 ", "16.0.384591198"),
        ("16.0.999999999", "16.0.384591198"),
    ],
)
def test_a_major_minor_names_the_newest_build_and_a_full_version_that_build(
    given: str, release: str
) -> None:
    assert knowledge().release(given).name == release


def test_every_since_is_a_version() -> None:
    for spec in knowledge().ops.values():
        assert spec.since and parse_version(".".join(map(str, spec.since))) == spec.since


def test_version_limits_name_supported_ops() -> None:
    kb = knowledge()
    for limits in (kb.version_limits, kb.parse_limits):
        for op, rows in limits.items():
            assert op in BUILTINS
            assert all(row.max_version >= 1 and row.source for row in rows)


def test_catalogue_codes_follow_their_family_letter() -> None:
    catalogue = load_toml("catalogue.toml")
    for code, text in catalogue["rule"].items():
        assert code[0] in catalogue["families"], code
        assert text["severity"] in ("error", "warning", "info"), code


# --- the data against the real compiler --------------------------------------------------------


def _mapped_ops(corpus_dir) -> list[tuple[str, str, int]]:
    """(compiler, opcode, version) of every op the real compiler mapped in the corpus."""
    mapped = []
    for _, entry in agreement.usable_pairs(corpus_dir):
        model = load(corpus_dir / entry["source"])
        compiler = agreement.compiler_for(entry, corpus_dir)
        for index, _, placement in entry["per_op"]:
            if placement == "tpu":
                op = model.main.operators[index]
                mapped.append((compiler, op.opcode, op.version))
    return mapped


def test_every_op_the_compiler_mapped_is_supported_by_that_release(corpus_dir) -> None:
    contradictions = {
        (compiler, opcode)
        for compiler, opcode, _ in _mapped_ops(corpus_dir)
        if not target(compiler).supports(opcode)
    }
    assert not contradictions


def test_no_version_limit_contradicts_a_mapped_op(corpus_dir) -> None:
    contradictions = set()
    for compiler, opcode, version in _mapped_ops(corpus_dir):
        t = target(compiler)
        for limit in (t.version_limit(opcode), t.parse_limit(opcode)):
            if limit is not None and version > limit.max_version:
                contradictions.add((compiler, opcode, version))
    assert not contradictions


def test_every_corpus_pair_has_a_compiler_release_coralcheck_knows(corpus_dir) -> None:
    truth = json.loads((corpus_dir / "groundtruth.json").read_text(encoding="utf-8"))
    for entry in truth.values():
        release = target(agreement.compiler_for(entry, corpus_dir)).release
        if entry.get("compiler"):  # the release the pair's log names
            assert release.short == entry["compiler"], entry["source"]


def test_the_legacy_folder_releases_are_those_the_corpus_readme_names(corpus_dir) -> None:
    # corpus/README.md: "`coral_edgetpu_diploria2` ≈ 2.0 (2019-09), ..., `coralmicro`,
    # `goalbuddy` (YOLOv8n, 16.0), ...": the first version written after each folder's name.
    readme = (corpus_dir / "README.md").read_text(encoding="utf-8")
    for folder, version in agreement.LEGACY_FOLDER_COMPILERS.items():
        found = re.search(rf"`{re.escape(folder)}`.*?(\d+\.\d+)", readme, re.DOTALL)
        assert found is not None, folder
        assert target(version).release.short == found.group(1), folder


def test_the_min_runtime_fallback_agrees_with_the_pairs_of_known_release(corpus_dir) -> None:
    # Where a pair's log names its compiler, the release that its recorded minimum runtime
    # would give (the fallback for pairs without a log) is no newer than the real one.
    truth = json.loads((corpus_dir / "groundtruth.json").read_text(encoding="utf-8"))
    checked = 0
    for entry in truth.values():
        runtime = entry.get("min_runtime")
        if entry.get("compiler") and runtime in agreement.MIN_RUNTIME_COMPILERS:
            guessed = target(agreement.MIN_RUNTIME_COMPILERS[runtime]).release.version
            assert target(entry["compiler"]).release.version <= guessed, entry["source"]
            checked += 1
    assert checked


@pytest.mark.parametrize("name", ["row_elements", "reshape_elements"])
def test_inferred_limits_lie_between_the_corpus_evidence(name: str) -> None:
    # The evidence intervals written in ops.toml [limits]: mapped <= limit < not mapped.
    bounds = {"row_elements": (176400, 230400), "reshape_elements": (408000, 1632000)}
    low, high = bounds[name]
    assert low <= knowledge().limits[name] < high
