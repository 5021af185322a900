"""`--format model-explorer` and `coralcheck view` against the real `ai-edge-model-explorer`
package (the `view` extra): the overlay's ids are the ones Model Explorer's own TFLite adapter
gives the model's graph and nodes, and every op has a value."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, FIXTURES
from helpers.tflite_builder import OpSpec, SignatureSpec, TensorSpec, build_model

import coralcheck
from coralcheck.cli import main
from coralcheck.commands.view import ADAPTER_ID

view = pytest.mark.view


def adapter_graphs(path: Path) -> dict[str, dict[str, Any]]:
    """Model Explorer's graphs of `path` as its default TFLite adapter builds them: graph id ->
    node id -> node."""
    from model_explorer.builtin_tflite_flatbuffer_adapter import BuiltinTfliteFlatbufferAdapter

    adapter = BuiltinTfliteFlatbufferAdapter()
    assert adapter.metadata.id == ADAPTER_ID
    collections = adapter.convert(str(path), {})["graphCollections"]
    return {g["id"]: {n["id"]: n for n in g["nodes"]} for c in collections for g in c.graphs}


def overlay_of(path: Path, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "overlay.json"
    assert main([str(path), "--format", "model-explorer", "-o", str(out), "--isolated"]) in (0, 1)
    return json.loads(out.read_text(encoding="utf-8"))


def corpus_models() -> list[Path]:
    """From the corpus record: the smallest one-subgraph source model with ops on both sides,
    and its compiled twin (whose Edge TPU segments are custom ops)."""
    record = CORPUS / "groundtruth.json"
    if not record.exists():
        return []
    pairs = json.loads(record.read_text(encoding="utf-8"))
    candidates = []
    for compiled, pair in pairs.items():
        source = CORPUS / pair.get("source", "")
        if pair.get("usable") and pair["tpu_ops"] and pair["cpu_ops"] and source.is_file():
            candidates.append((source.stat().st_size, source, CORPUS / compiled))
    for _, source, compiled in sorted(candidates):
        if len(coralcheck.load(source).subgraphs) == 1:
            return [source, compiled]
    return []


@view
@pytest.mark.parametrize("model", corpus_models(), ids=lambda p: p.name)
def test_every_overlay_id_is_in_model_explorers_graph(model: Path, tmp_path: Path) -> None:
    graphs = adapter_graphs(model)
    overlay = overlay_of(model, tmp_path)
    report = coralcheck.check(model).models[0]
    ((graph_id, data),) = overlay.items()
    assert graph_id in graphs
    nodes = graphs[graph_id]
    assert set(data["results"]) <= set(nodes)  # every id exists in Model Explorer's graph
    # Every op of the model has a value, on the node Model Explorer draws for that op.
    assert set(data["results"]) == {str(op.index) for op in report.ops}
    for op in report.ops:
        node = nodes[str(op.index)]
        value = data["results"][str(op.index)]["value"]
        if not op.opcode.startswith("CUSTOM:"):
            assert node["label"] == op.opcode.lower()
        expected = "Edge TPU" if op.placement == "tpu" else "CPU"
        assert value.startswith(expected) and op.status in value
    assert any(v["value"].startswith("CPU") for v in data["results"].values())


@view
@pytest.mark.parametrize(
    ("subgraph_name", "signature", "graph_id"),
    [
        ("backbone", None, "backbone"),
        ("", "serving_default", "serving_default"),
        ("", None, "main"),
    ],
)
def test_the_graph_id_follows_the_adapter(
    subgraph_name: str, signature: str | None, graph_id: str, tmp_path: Path
) -> None:
    data = build_model(
        tensors=[
            TensorSpec("x", [1, 4], "INT8", scale=[0.5], zero_point=[0]),
            TensorSpec("y", [1, 4], "INT8", scale=[0.5], zero_point=[0]),
            TensorSpec("z", [1, 4], "FLOAT32"),
        ],
        ops=[OpSpec("RELU", [0], [1]), OpSpec("DEQUANTIZE", [1], [2])],
        inputs=[0],
        outputs=[2],
        name=subgraph_name,
        signature_defs=[SignatureSpec(signature, {"x": 0}, {"z": 2})] if signature else [],
    )
    model = tmp_path / "named.tflite"
    model.write_bytes(data)
    assert list(adapter_graphs(model)) == [graph_id]
    overlay = overlay_of(model, tmp_path)
    assert list(overlay) == [graph_id]
    assert set(overlay[graph_id]["results"]) == {"0", "1"}


@view
def test_view_opens_model_explorer_with_the_overlay(monkeypatch, tmp_path: Path) -> None:
    import model_explorer

    seen: dict[str, Any] = {}

    def visualize(config, **kwargs):  # instead of starting a server
        seen["models"] = config.model_sources
        seen["overlay"] = json.loads(Path(config.node_data_sources[0]).read_text())
        seen["kwargs"] = kwargs

    monkeypatch.setattr(model_explorer, "visualize_from_config", visualize)
    model = FIXTURES / "dynamic_batch_int8.tflite"
    kept = tmp_path / "kept.json"
    argv = ["view", str(model), "--no-open", "--port", "8123", "--overlay", str(kept)]
    assert main([*argv, "--isolated"]) == 0
    assert seen["models"] == [{"url": str(model.resolve()), "adapterId": ADAPTER_ID}]
    assert seen["overlay"] == overlay_of(model, tmp_path) == json.loads(kept.read_text())
    assert seen["kwargs"]["no_open_in_browser"] is True and seen["kwargs"]["port"] == 8123


@view
def test_view_takes_the_lints_target_options(monkeypatch, tmp_path: Path) -> None:
    """`view -a` shows the placement `edgetpu_compiler -a` makes (as `--format model-explorer
    -a` writes it): on a model with ops after a CPU op, other than without `-a`."""
    import model_explorer

    record = CORPUS / "groundtruth.json"
    if not record.exists():
        pytest.skip("the shared corpus is not here")
    pairs = json.loads(record.read_text())
    entry = next(v for v in pairs.values() if v.get("usable") and v["segments"] > 1)
    model = CORPUS / entry["source"]
    seen: list[dict] = []
    monkeypatch.setattr(
        model_explorer,
        "visualize_from_config",
        lambda config, **kw: seen.append(json.loads(Path(config.node_data_sources[0]).read_text())),
    )
    for flags in ([], ["-a"]):
        assert main(["view", str(model), "--no-open", "--isolated", *flags]) == 0
    out = tmp_path / "a.json"
    main([str(model), "--format", "model-explorer", "-a", "-o", str(out), "--isolated"])
    assert seen[1] == json.loads(out.read_text()) and seen[0] == overlay_of(model, tmp_path)
    assert seen[0] != seen[1]


def test_view_without_the_extra_says_how_to_install_it(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "model_explorer", None)  # as if not installed
    assert main(["view", str(FIXTURES / "demo_int8.tflite")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'coralcheck[view]'" in err


def test_an_overlay_is_for_one_model(capsys) -> None:
    models = [str(FIXTURES / "demo_int8.tflite"), str(FIXTURES / "silu_int8.tflite")]
    assert main([*models, "--format", "model-explorer"]) == 2
    assert "is for one model" in capsys.readouterr().err
