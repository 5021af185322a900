"""Open Google's Model Explorer on a model, its ops coloured by where they run (Edge TPU / CPU).

Needs the `view` extra (`pip install 'coralcheck[view]'`, which installs `ai-edge-model-explorer`);
without it, the command says so in one line and exits 2. The model is checked as `coralcheck
MODEL` would (same settings files), its `--format model-explorer` overlay is written to a
temporary file (or `--overlay FILE`), and Model Explorer's local server shows both until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from typing import Any

from coralcheck import __version__
from coralcheck import config as settings
from coralcheck.api import check_model
from coralcheck.commands.lint import add_target_arguments
from coralcheck.errors import UsageError
from coralcheck.model.isolation import call_isolated
from coralcheck.options import Options
from coralcheck.render import render
from coralcheck.report import Report

INSTALL_HINT = "needs Model Explorer: pip install 'coralcheck[view]' (ai-edge-model-explorer)"
# Model Explorer's own TFLite adapter, whose node ids the overlay uses (render.modelexplorer).
ADAPTER_ID = "builtin_tflite_flatbuffer"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="the .tflite model to show")
    parser.add_argument("--host", default="localhost", help="server address (default localhost)")
    parser.add_argument("--port", type=int, default=8080, help="server port (default 8080)")
    parser.add_argument(
        "--no-open", action="store_true", help="start the server without opening a browser"
    )
    parser.add_argument("--overlay", metavar="FILE", help="also keep the overlay JSON in FILE")
    add_target_arguments(parser)
    parser.add_argument("--config", metavar="FILE", help="settings file instead of the nearest")
    parser.add_argument("--isolated", action="store_true", help="ignore every configuration file")


def model_explorer() -> Any:
    """The `model_explorer` module, or None when the `view` extra is not installed."""
    try:
        import model_explorer as module
    except ImportError:
        return None
    return module


def overlay_text(path: str, options: Options) -> str:
    """The Model Explorer overlay of one model (`--format model-explorer`)."""

    checked = call_isolated([path], check_model, path, options._replace(graph=True))
    report = Report([checked], tool_version=__version__)
    return render(report, "model-explorer")


def run(args: argparse.Namespace) -> int:

    explorer = model_explorer()
    if explorer is None:
        raise UsageError("coralcheck view", INSTALL_HINT)
    cli = {
        "compiler_version": args.compiler_version,
        "runtime_version": args.runtime_version,
        "enable_multiple_subgraphs": args.enable_multiple_subgraphs,
    }
    config = settings.resolve(args.model, cli, config_file=args.config, isolated=args.isolated)
    text = overlay_text(args.model, config.options(Options()))
    with tempfile.TemporaryDirectory(prefix="coralcheck-view-") as tmp:
        overlay = args.overlay or os.path.join(tmp, "coralcheck-placement.json")
        try:
            with open(overlay, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise UsageError(overlay, f"cannot write the overlay: {e.strerror or e}") from None
        view = explorer.config().add_model_from_path(
            os.path.abspath(args.model), adapterId=ADAPTER_ID
        )
        view.add_node_data_from_path(os.path.abspath(overlay))
        print(f"coralcheck: Model Explorer on {args.model} (Ctrl-C stops it)", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):  # how the user stops the server
            explorer.visualize_from_config(
                view, host=args.host, port=args.port, no_open_in_browser=args.no_open
            )
    return 0
