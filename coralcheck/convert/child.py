"""The TensorFlow converter runs in a child process: its crash is one line, not our death.

TensorFlow's converter is native code. On some models it does not raise, it dies: full-integer
calibration of a Keras 3 LSTM (a WHILE loop) ends the process with SIGSEGV. In a child, that
becomes `the TensorFlow converter crashed (signal 11, SIGSEGV) on LSTM layer 'lstm' while
calibrating …: try …`, exit 2, and the parent (which never imports TensorFlow) is unharmed.

Protocol: the parent starts `python -c CHILD_CODE FD`, writes the request (JSON) to the child's
stdin and reads pickled messages from the pipe FD until it closes:

- `("phase", text)`: what the child is doing now (the crash message names it);
- `("recurrent", [(class, name), ...])`: the Keras model's recurrent layers;
- `("note", text)`: a line for the user's stderr;
- `("error", path, problem)`: a UsageError (one line, exit 2);
- `("internal", text)`: an unexpected exception (a bug; exit 3);
- `("result", bytes, facts)`: the converted model.

The child's stdout goes to stderr: TensorFlow's own prints never mix with the report.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

from coralcheck.convert import CONVERT_EXTRA
from coralcheck.convert.ptq import refuse_float_ops, to_tflite
from coralcheck.convert.source import load_source, static_inputs, swapped_source
from coralcheck.errors import UsageError
from coralcheck.numeric.samples import load_samples

# Layer classes that Keras 3 turns into a WHILE loop when converted.
RECURRENT_LAYERS = frozenset(
    {"LSTM", "GRU", "SimpleRNN", "RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
)

# os._exit: the result is sent; TensorFlow's teardown only costs time (and can crash).
CHILD_CODE = """
import os, sys
from coralcheck.convert.child import serve
code = serve(int(sys.argv[1]))
sys.stdout.flush(); sys.stderr.flush()
os._exit(code)
"""


class ChildOutcome(NamedTuple):
    """What a child said before it ended, and how it ended."""

    messages: list[tuple[Any, ...]]
    returncode: int

    def last(self, kind: str) -> tuple[Any, ...] | None:
        found = [m for m in self.messages if m[0] == kind]
        return found[-1] if found else None


def run_child(
    code: str, request: dict[str, Any], on_message: Callable[[tuple[Any, ...]], None]
) -> ChildOutcome:
    """Run `python -c code FD` with `request` on stdin; collect its messages from pipe FD.

    `on_message` sees each message as it arrives (notes are printed while the child works).
    The child is killed if the parent is interrupted.
    """
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    read_fd, write_fd = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=2,
            pass_fds=(write_fd,),
            env=env,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    messages: list[tuple[Any, ...]] = []
    try:
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a child that died at start
            process.stdin.write(json.dumps(request).encode("utf-8"))
            process.stdin.close()
        with os.fdopen(read_fd, "rb") as pipe:
            while True:
                try:
                    message = pickle.load(pipe)
                except Exception:  # EOF (done or died), or a message cut short by a death
                    break
                messages.append(message)
                on_message(message)
        returncode = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    return ChildOutcome(messages, returncode)


def convert_in_child(request: dict[str, Any], notify: Callable[[str], None]) -> tuple[bytes, dict]:
    """Convert as `request` says in a child process: (TFLite bytes, facts) or a UsageError."""
    import importlib.util

    try:
        found = importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        found = False
    if not found:  # before a child is started for nothing
        raise UsageError("convert", f"needs TensorFlow: {CONVERT_EXTRA}")

    def on_message(message: tuple[Any, ...]) -> None:
        if message[0] == "note":
            notify(message[1])

    outcome = run_child(CHILD_CODE, request, on_message)
    result = outcome.last("result")
    if result is not None:  # complete, whatever happened after it was sent
        return result[1], result[2]
    error = outcome.last("error")
    if error is not None:
        raise UsageError(error[1], error[2])
    internal = outcome.last("internal")
    if internal is not None:
        raise RuntimeError(f"in the converter process: {internal[1]}")
    raise UsageError(request["model"], crash_message(outcome, request))


def crash_message(outcome: ChildOutcome, request: dict[str, Any]) -> str:
    """One line: how the converter process ended, on what, while doing what, and what to try."""
    code = outcome.returncode
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        how = f"crashed (signal {-code}, {name})"
    else:
        how = f"ended with exit status {code} without a result"
    phase_message = outcome.last("phase")
    phase = phase_message[1] if phase_message else "starting"
    recurrent_message = outcome.last("recurrent")
    recurrent = list(recurrent_message[1]) if recurrent_message else []
    on = ""
    if recurrent:
        kind, layer = recurrent[0]
        more = f" (and {len(recurrent) - 1} more recurrent layers)" if len(recurrent) > 1 else ""
        on = f" on {kind} layer '{layer}'{more}"
    hint = _what_to_try(code, phase, recurrent, request)
    return f"the TensorFlow converter {how}{on} while {phase}: try {hint}"


def _what_to_try(
    code: int, phase: str, recurrent: list[tuple[str, str]], request: dict[str, Any]
) -> str:
    calibrating = phase.startswith("calibrating")
    if code == -signal.SIGKILL:
        return (
            "again with more free memory (SIGKILL usually means the system ran out of memory), "
            "or with fewer --samples"
        )
    if recurrent and calibrating:
        kinds = {kind for kind, _ in recurrent}
        lstm = (
            "building the LSTM with tf_keras instead (pip install tf-keras; "
            "tf_keras.layers.LSTM converts to the fused UNIDIRECTIONAL_SEQUENCE_LSTM, see "
            "`coralcheck rule G002`), or "
            if "LSTM" in kinds
            else ""
        )
        return (
            f"{lstm}keeping the recurrent part out of the Edge TPU model: Keras 3 converts "
            f"{'/'.join(sorted(kinds))} to a WHILE loop, which the int8 calibration crashes on "
            "and the Edge TPU cannot run (--float converts without calibration)"
        )
    if calibrating and not request.get("float"):
        return (
            "--float (no calibration) to see whether the float conversion works, then "
            "another TensorFlow version; report the crash to TensorFlow with the model"
        )
    return "another TensorFlow version, and report the crash to TensorFlow with the model"


# --- the child ----------------------------------------------------------------------------------


def serve(fd: int) -> int:
    """The child: read the request on stdin, convert, send messages to `fd`. Exit 0."""
    # Ctrl-C reaches the whole process group: the parent stops us, without our traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with os.fdopen(fd, "wb") as pipe:

        def send(*message: Any) -> None:
            pickle.dump(message, pipe, protocol=pickle.HIGHEST_PROTOCOL)
            pipe.flush()

        try:
            request = json.loads(sys.stdin.read())
            data, facts = _convert(request, send)
        except UsageError as e:
            send("error", e.path, e.problem)
        except Exception as e:
            send("internal", f"{type(e).__name__}: {' '.join(str(e).split())[:500]}")
        else:
            send("result", data, facts)
    return 0


def recurrent_layers(model: Any) -> list[tuple[str, str]]:
    """(class, name) of every recurrent layer of a Keras model, nested models and wrappers too."""
    found: list[tuple[str, str]] = []
    seen: set[int] = set()

    def walk(layer: Any) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        kind = type(layer).__name__
        if kind in RECURRENT_LAYERS:
            found.append((kind, layer.name))
        for attribute in ("forward_layer", "backward_layer", "layer"):  # Bidirectional, wrappers
            inner = getattr(layer, attribute, None)
            if inner is not None and hasattr(inner, "name") and inner is not layer:
                walk(inner)
        for inner in getattr(layer, "layers", None) or ():
            walk(inner)

    walk(model)
    return found


def _convert(request: dict[str, Any], send: Callable[..., None]) -> tuple[bytes, dict]:

    send("phase", "loading the model")
    source = load_source(request["model"])
    if source.kind == "keras":
        send("recurrent", recurrent_layers(source.model))
    if request["swaps"]:
        source = swapped_source(source, request["swaps"], notify=lambda text: send("note", text))
    inputs = static_inputs(source.inputs, request["input_shape"])
    if request["float"]:
        data = to_tflite(source, inputs, None, on_phase=lambda text: send("phase", text))
        return data, {}
    send("phase", "reading the calibration samples")
    samples = load_samples(
        request["calibration"],
        inputs,
        limit=request["samples"],
        image_range=tuple(request["image_range"]),  # type: ignore[arg-type]
    )
    data = to_tflite(
        source,
        inputs,
        samples,
        io_type=request["io_type"],
        on_phase=lambda text: send("phase", text),
    )
    send("phase", "checking the result")
    refuse_float_ops(request["model"], data)
    return data, {"samples": len(samples)}
