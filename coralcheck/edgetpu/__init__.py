"""Edge TPU knowledge: rules/*.toml as typed data, and the functions the data names.

- `knowledge.knowledge()`: the data, typed; `target.target(compiler_version, runtime_version)`:
  what one compiler release maps;
- `opview`: an op with its tensors as the constraint functions see it;
- `constraints`: the constraint functions by name (`CONSTRAINT_CHECKS`) and the documented
  constraints of Coral's op table; `limits`: the inferred size limits;
- `layout`: how the Edge TPU reads a tensor shape (three innermost dimensions);
- `devices`: the Coral devices and the latency model's coefficients (rules/devices.toml);
- `statuses`: the statuses edgetpu_compiler gives an op ("Mapped to Edge TPU", ...).

Importing the package registers every constraint function (`constraints` and `limits`).
"""

from coralcheck.edgetpu import constraints, limits
from coralcheck.edgetpu.knowledge import knowledge
from coralcheck.edgetpu.target import Target, target

__all__ = ["Target", "constraints", "knowledge", "limits", "target"]
