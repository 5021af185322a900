"""Keras/SavedModel -> full-integer TFLite for the Edge TPU (the `[convert]` extra).

TensorFlow is imported only inside functions, through `import_tensorflow()`, so importing this
package (and the CLI) stays cheap and works without the extra.
"""

from __future__ import annotations

import os
from typing import Any

from coralcheck.errors import UsageError

CONVERT_EXTRA = "pip install 'coralcheck[convert]'"


def import_tensorflow(command: str = "convert") -> Any:
    """Import TensorFlow quietly, or fail in one line naming the extra to install."""
    # Keep TensorFlow's C++ INFO chatter and the oneDNN notice off the user's terminal; oneDNN
    # off also makes calibration numerics the same on every CPU. Users may still override both.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # conversion traces a tf.function
    try:
        import tensorflow as tf
    except ImportError:
        raise UsageError(command, f"needs TensorFlow: {CONVERT_EXTRA}") from None
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with TensorFlow; quietness is only a nicety
        pass
    return tf
