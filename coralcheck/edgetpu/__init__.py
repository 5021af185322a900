"""Edge TPU knowledge: the op table, constraints and compiler versions of rules/*.toml.

- `knowledge.knowledge()` / `knowledge.target(compiler_version, runtime_version)`: the data, typed.
- `constraints.CONSTRAINT_CHECKS`: the functions the data's constraints name.
- `layout`: how the Edge TPU reads a tensor shape (three innermost dimensions).
"""

from coralcheck.edgetpu.knowledge import Target, knowledge, target

__all__ = ["Target", "knowledge", "target"]
