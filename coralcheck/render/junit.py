"""`--format junit`: JUnit XML for CI systems that show test reports (GitLab, Jenkins, Azure).

One `<testsuite>` per model; one `<testcase>` per finding (a `<failure>` when it is at or above
fail-on and not in the baseline), one per gate (a `<failure>` when it failed), and a passing
`placement` case carrying the placement summary and the latency estimate, so a clean model still
shows up as a passed test. A model that could not be checked is a suite with one `<error>`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from coralcheck.outcome import Outcome
from coralcheck.render.phrases import latency_line, verdict_line, where
from coralcheck.report import Report

# Characters XML 1.0 cannot hold at all (model-provided names may contain anything).
_NOT_XML = re.compile(r"[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


def _xml_safe(root: ET.Element) -> None:
    for element in root.iter():
        if element.text:
            element.text = _NOT_XML.sub("\ufffd", element.text)
        for key, value in element.attrib.items():
            element.set(key, _NOT_XML.sub("\ufffd", value))


def _suite(parent: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(parent, "testsuite", name=name)


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name)


def _count(suite: ET.Element) -> tuple[int, int, int]:
    cases = suite.findall("testcase")
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    return len(cases), failures, errors


def render_junit(report: Report, outcome: Outcome) -> str:
    root = ET.Element("testsuites", name="coralcheck")
    for m, verdict in zip(report.models, outcome.verdicts, strict=True):
        suite = _suite(root, m.path)
        placement = _case(suite, m.path, "placement")
        estimate = latency_line(m)
        summary = verdict_line(m) if estimate is None else f"{verdict_line(m)}\n{estimate}"
        ET.SubElement(placement, "system-out").text = summary
        for i, f in enumerate(m.findings):
            case = _case(suite, m.path, f"{f.code} {where(m, f)}")
            text = f"{f.severity} {f.code} {where(m, f)}: {f.message}"
            if f.fix:
                text += f"\nfix: {f.fix}"
            if i in verdict.failing:
                failure = ET.SubElement(case, "failure", message=f.message, type=f.code)
                failure.text = text
            else:
                note = (
                    "in the baseline"
                    if i in verdict.known
                    else f"below fail-on ({verdict.fail_on})"
                )
                ET.SubElement(case, "system-out").text = f"{text}\n({note})"
        for gate in verdict.gates:
            case = _case(suite, m.path, f"gate {gate.name}")
            if gate.passed:
                ET.SubElement(case, "system-out").text = gate.message
            else:
                failure = ET.SubElement(
                    case, "failure", message=gate.message, type=f"gate/{gate.name}"
                )
                failure.text = f"gate {gate.name} failed: {gate.message}"
    for failure in outcome.failures:
        suite = _suite(root, failure.path)
        case = _case(suite, failure.path, "load")
        kind = "internal" if failure.internal else "input"
        ET.SubElement(case, "error", message=failure.problem, type=kind).text = failure.problem
    totals = [0, 0, 0]
    for suite in root.findall("testsuite"):
        for k, n in enumerate(_count(suite)):
            totals[k] += n
    root.set("tests", str(totals[0]))
    root.set("failures", str(totals[1]))
    root.set("errors", str(totals[2]))
    _xml_safe(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
