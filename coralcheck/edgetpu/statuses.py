"""The statuses edgetpu_compiler gives an op in its Operator / Count / Status table (the 7 seen
in real logs, facts.md §4.3), each with a short stable key.

The placement predictor speaks the compiler's words (`coralcheck.analyze.placement`), the log
parser reads them (`coralcheck.compiler.log`), and the compiled model's report calls its Edge
TPU segments "Mapped to Edge TPU": all of them take the strings from here.
"""

from __future__ import annotations

MAPPED_STATUS = "Mapped to Edge TPU"
MORE_THAN_ONE_SUBGRAPH = "More than one subgraph is not supported"
UNSPECIFIED = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
DATA_TYPE = "Operation is working on an unsupported data type"
NOT_SUPPORTED = "Operation not supported"
VERSION = "Operation version not supported"
RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"

# The known statuses, in facts.md's order, with their keys.
STATUS_KEYS: dict[str, str] = {
    MAPPED_STATUS: "mapped",
    MORE_THAN_ONE_SUBGRAPH: "more_than_one_subgraph",
    UNSPECIFIED: "unspecified_limitation",
    DATA_TYPE: "unsupported_data_type",
    NOT_SUPPORTED: "operation_not_supported",
    VERSION: "version_not_supported",
    RANK: "unsupported_rank",
}
KNOWN_STATUSES: tuple[str, ...] = tuple(STATUS_KEYS)
UNKNOWN_STATUS_KEY = "unknown"


def status_key(status: str) -> str:
    """Short stable key of a known status string (e.g. "mapped"), "unknown" for any other."""
    return STATUS_KEYS.get(status.strip(), UNKNOWN_STATUS_KEY)
