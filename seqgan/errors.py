"""The one exception type users see: its message is printed as a single line by the CLI."""
from __future__ import annotations


class UserError(Exception):
    """Bad input or a bad request: the message says what is wrong and what to do.

    The CLI prints ``error: <message>`` and exits with status 2, never a traceback.
    """


class TrainingError(UserError):
    """Training cannot go on (NaN loss or reward, bad objective output); the last good
    checkpoint is kept."""


def one_line(e: BaseException, limit: int = 160) -> str:
    """An exception's message on one line (torch's state-dict errors span several)."""
    return " ".join(str(e).split())[:limit]
