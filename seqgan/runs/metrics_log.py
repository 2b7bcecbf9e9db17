"""``RUN/metrics.jsonl``: one JSON object per evaluation, appended as training goes.

A record is ``{"phase", "epoch", "seconds", "metrics": {name: value | null}}`` (population
runs add ``"cell"``). Appends are all or nothing (:func:`seqgan.files.append_line`); a line
cut by a kill, or bytes changed on disk, cost only that line. A checkpoint records how many
lines it has seen, so a resumed run first drops the lines logged after it
(:meth:`MetricsLog.truncate`) and logs them again. A log is never deleted: a run that has
to start again moves it aside (:meth:`MetricsLog.set_aside`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from seqgan.files import append_line, atomic_write_bytes
from seqgan.errors import UserError


def free_name(path: Path) -> Path:
    """``path`` with the first suffix ``.1``, ``.2``, ... that names nothing yet."""
    k = 1
    while path.with_name(f"{path.name}.{k}").exists():
        k += 1
    return path.with_name(f"{path.name}.{k}")


def set_aside(path: Path) -> Path | None:
    """Move ``path`` (a file or folder) to :func:`free_name`; the new path, or None if absent."""
    if not path.exists():
        return None
    dest = free_name(path)
    os.replace(path, dest)
    return dest


class MetricsLog:
    """The metrics log of one run (``label``: the run's name in messages)."""

    def __init__(self, path: Path, label: str | None = None):
        self.path = Path(path)
        self.label = label or str(self.path.parent)

    def lines(self) -> list[dict | None]:
        """Each line as a record, None where it is damaged."""
        if not self.path.exists():
            return []
        out: list[dict | None] = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            out.append(rec if isinstance(rec, dict) else None)
        return out

    def count(self) -> int:
        """The number of lines in the log, damaged ones included."""
        return len(self.lines())

    def read(self) -> list[dict]:
        """The intact records, in order."""
        return [r for r in self.lines() if r is not None]

    def truncate(self, n: int) -> int:
        """Keep the records of the first ``n`` lines (those the restored checkpoint had
        seen), dropping damaged lines; rewrites the file only if that changes it.
        Returns how many of those ``n`` lines were damaged or missing."""
        lines = self.lines()
        kept = [r for r in lines[:n] if r is not None]
        if len(kept) != len(lines):
            text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept)
            try:
                atomic_write_bytes(self.path, text.encode())
            except OSError as e:
                raise UserError(f"{self.label}: could not rewrite {self.path.name}: {e.strerror or e}; "
                                f"it is unchanged; free some space and run the command again") from None
        return n - len(kept)

    def append(self, record: dict) -> None:
        """Append ``record`` as one JSON line (sorted keys), all or nothing; a UserError naming the
        run when the write fails."""
        try:
            append_line(self.path, json.dumps(record, sort_keys=True))
        except OSError as e:
            raise UserError(f"{self.label}: could not append to {self.path.name}: {e.strerror or e}; "
                            f"the log and the last checkpoint are intact; free some space and run the "
                            f"same command again to resume") from None

    def set_aside(self) -> Path | None:
        """Move the log to ``metrics.jsonl.N`` (never delete it); the new path or None."""
        return set_aside(self.path)
