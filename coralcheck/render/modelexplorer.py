"""`--format model-explorer`: a node data overlay for Google's Model Explorer
(`ai-edge-model-explorer`), colouring every op of the model by where it runs.

The file is Model Explorer's node data JSON ("ModelNodeData": `{graph id: {"name", "results":
{node id: {"value", "bgColor"}}, ...}}`), keyed as Model Explorer's own TFLite adapter
(`builtin_tflite_flatbuffer`, the default for `.tflite`) names things:

- the graph id of subgraph 0 is its name in the file, else the key of the signature that runs
  it, else `main`;
- an op's node id is its index in the subgraph (`"0"`, `"1"`, ...); graph inputs, outputs and
  constants get ids after the ops, and carry no value here.

Each op's value is its placement and the compiler's status, with the reason: `Edge TPU: Mapped
to Edge TPU`, `CPU: <status>: <reason>`, or `CPU boundary: ...` for a CPU op that exchanges a
tensor with an Edge TPU op (`OpGraph.boundary`). Load it with `coralcheck view MODEL`, or in
Model Explorer's UI next to the model.
"""

from __future__ import annotations

import json
import os
from typing import Any

from coralcheck.report import ModelReport, Report

OVERLAY_NAME = "coralcheck placement"
TPU_COLOUR = "#bfe9d2"
CPU_COLOUR = "#f7b267"
BOUNDARY_COLOUR = "#e4572e"
TEXT_COLOUR = "#1c2230"
DEFAULT_GRAPH_ID = "main"


def graph_id(m: ModelReport) -> str:
    """The id Model Explorer's TFLite adapter gives the main subgraph."""
    g = m.graph
    if g is None:
        return DEFAULT_GRAPH_ID
    return g.subgraph or g.signature or DEFAULT_GRAPH_ID


def node_values(m: ModelReport) -> dict[str, dict[str, Any]]:
    """Node id -> {value, bgColor, textColor} for every op of the report."""
    boundary = frozenset(m.graph.boundary) if m.graph is not None else frozenset()
    results = {}
    for op in m.ops:
        if op.placement == "tpu":
            value = f"Edge TPU: {op.status}"
            colour = TPU_COLOUR
        elif op.index in boundary:
            value = f"CPU boundary: {op.status}"
            colour = BOUNDARY_COLOUR
        else:
            value = f"CPU: {op.status}"
            colour = CPU_COLOUR
        if op.reason:
            value += f": {op.reason}"
        results[str(op.index)] = {"value": value, "bgColor": colour, "textColor": TEXT_COLOUR}
    return results


def overlay(m: ModelReport) -> dict[str, Any]:
    """One model's overlay (Model Explorer's ModelNodeData)."""
    return {
        graph_id(m): {
            "name": f"{OVERLAY_NAME} ({os.path.basename(m.path)})",
            "results": node_values(m),
            "showExpandedSummaryOnGroupNode": True,
            "showLabelCountColumnsInChildrenStatsTable": True,
        }
    }


def render_model_explorer(report: Report) -> str:
    """The overlay of the report's one model (`{}` when it could not be checked)."""
    if len(report.models) > 1:
        raise ValueError("a Model Explorer overlay is for one model")
    doc = overlay(report.models[0]) if report.models else {}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
