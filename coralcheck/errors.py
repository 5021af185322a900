"""The errors a user can cause, and the exit codes (README "Exit codes"). Each error becomes
`coralcheck: error: <file>: <problem>`, exit 2."""

from __future__ import annotations

from typing import Any

EXIT_OK = 0  # nothing at or above --fail-on, every gate passed
EXIT_FINDINGS = 1  # findings at or above --fail-on, or a gate failed
EXIT_USAGE = 2  # usage error or bad input
EXIT_INTERNAL = 3  # a bug in coralcheck


class CoralcheckError(Exception):
    """Base class of every error coralcheck reports to a user instead of a traceback."""

    exit_code = EXIT_USAGE

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as it is, whatever a subclass's __init__ takes: a worker process raises it in
        # the process that started it (coralcheck.model.isolation).
        return _rebuilt, (type(self), self.args, self.__dict__)

    def one_line(self) -> str:
        """The message as the CLI prints it (no newlines, whatever the problem text held)."""
        text = f"{self.path}: {self.problem}"
        return " ".join(text.split())


def _rebuilt(kind: type[CoralcheckError], args: tuple, fields: dict[str, Any]) -> CoralcheckError:
    error = kind.__new__(kind)
    error.args = args
    error.__dict__.update(fields)
    return error


class ModelError(CoralcheckError):
    """A file that cannot be read as a valid TFLite model (missing, empty, truncated, corrupt)."""


class UsageError(CoralcheckError):
    """Bad arguments or configuration: the path is the option or config file concerned."""
