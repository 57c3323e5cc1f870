"""Errors a user can act on.

Every failure caused by input (a file, a URL, a config value, an existing store)
is raised as :class:`InputError` with one line that names the input, says what is
wrong and what to do. The CLI prints that line and exits non-zero, without a
traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class InsceneError(Exception):
    """Base class of the errors inscene raises on purpose."""

    exit_code = 1


class InputError(InsceneError):
    """Bad user input: one line naming the input, what is wrong, what to do."""

    exit_code = 2

    def __init__(self, subject: str, problem: str, hint: str = "") -> None:
        self.subject = str(subject)
        self.problem = problem
        self.hint = hint
        line = f"{self.subject}: {problem}"
        if hint:
            line += f" ({hint})"
        super().__init__(line)

    def __reduce__(self):  # picklable (errors come back from worker processes)
        return type(self), (self.subject, self.problem, self.hint)


class SourceError(InputError):
    """A source could not be opened or stopped delivering frames."""


class StoreError(InputError):
    """A result store cannot be created, opened or resumed."""


class ConfigError(InputError):
    """An invalid configuration value or file."""


class StageError(InsceneError):
    """A stage failed while processing; wraps the original exception."""

    def __init__(self, stage: str, index: int | None, cause: BaseException) -> None:
        self.stage = stage
        self.index = index
        self.cause = cause
        where = f"frame {index}" if index is not None else "setup"
        super().__init__(f"stage '{stage}' failed at {where}: {type(cause).__name__}: {cause}")


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` folded to a single line."""
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
