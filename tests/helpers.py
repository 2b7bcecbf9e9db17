"""Shared test helpers: run the CLI in-process and check how it ended."""
from __future__ import annotations

import traceback
from pathlib import Path

from click.testing import CliRunner, Result

from seqgan.cli import main


def invoke(*args, catch: bool = True) -> Result:
    """Run the CLI in-process with ``args`` (any objects, made strings)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=catch)


def traceback_of(r: Result) -> str:
    """The tail of the traceback of what ``r`` raised (else of its output), for a failed assert."""
    if r.exc_info is None:
        return r.output[-2000:]
    return "".join(traceback.format_exception(*r.exc_info)[-8:])


def succeeds(r: Result) -> str:
    """Exit 0 and no traceback; what the command said on stderr."""
    assert r.exception is None or isinstance(r.exception, SystemExit), traceback_of(r)
    assert r.exit_code == 0, r.output[-2000:]
    assert "Traceback" not in r.output
    return r.stderr


def error_line(r: Result) -> str:
    """The one ``error:`` line of a result that failed cleanly: exit 2, no traceback, stderr
    ending with exactly one ``error:`` line."""
    assert r.exception is None or isinstance(r.exception, SystemExit), traceback_of(r)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output[-2000:]
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), r.stderr[-2000:]
    assert sum(line.startswith("error:") for line in lines) == 1, r.stderr[-2000:]
    return lines[-1]


def fails_cleanly(r: Result, *words: str) -> str:
    """:func:`error_line`, which must hold each of ``words``."""
    line = error_line(r)
    for w in words:
        assert w in line, (w, line)
    return line


def no_temp_left(out: Path) -> None:
    """No ``.NAME.*.creating`` temp folder (nor any other ``.*.creating``) beside ``out``."""
    assert not list(out.parent.glob(".*.creating")), list(out.parent.iterdir())


def no_run_left(out: Path) -> None:
    """A command that failed left neither the run folder ``out`` nor a temp folder beside it."""
    assert not out.exists(), f"{out} was left behind by a failed command"
    no_temp_left(out)
