"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class GreenbenchError(Exception):
    """A problem with the user's input or machine, with the fix named in the message."""


class SuiteError(GreenbenchError):
    """A suite file or flag that does not validate: where, which key, and what to do."""

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: key '{key}'" if key else source
        super().__init__(f"{where}: {problem}")


def one_line(error: BaseException) -> str:
    """An exception as one line for records and the terminal: its type and its message."""
    text = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {text}"[:500]


class GreenbenchWarning(UserWarning):
    """Something skipped (a bad row, an unreadable run) that the user should know about.

    The CLI prints each as one line, `greenbench: warning: ...`; the rest of the work goes on.
    """
