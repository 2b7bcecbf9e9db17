"""The toroidal grid of a population and its von Neumann neighbourhoods.

Cells of an R×C torus are numbered row-major, ``cell = r·C + c``. The neighbourhood of a
cell is itself and its four neighbours (north, south, west, east), wrapping around the
edges; on small grids the same cell can be reached twice (on a 1×3 torus north and south
are the cell itself, west and east the other two), and duplicates are removed, keeping
the first occurrence in the order (self, N, S, W, E). Sizes: 1×1 → 1 member, 1×2 → 2,
1×3 → 3, 2×2 → 3, 3×3 and larger → 5.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from seqgan.errors import UserError

MAX_CELLS = 10_000


@dataclass(frozen=True)
class Torus:
    """An R×C torus of cells (any R, C ≥ 1)."""

    rows: int
    cols: int

    def __post_init__(self):
        if self.rows < 1 or self.cols < 1 or self.rows * self.cols > MAX_CELLS:
            raise UserError(f"a grid needs 1..{MAX_CELLS} cells of R, C >= 1; got {self.rows}x{self.cols}")

    @classmethod
    def parse(cls, text: str) -> "Torus":
        """``"3x3"`` or ``"2x5"`` (``RxC``) as a torus; a UserError for anything else."""
        m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(text))
        if not m:
            raise UserError(f"--grid {text!r}: expected ROWSxCOLS, e.g. 3x3 or 2x4")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.rows}x{self.cols}"

    @property
    def size(self) -> int:
        """The number of cells, R·C."""
        return self.rows * self.cols

    def position(self, cell: int) -> tuple[int, int]:
        """(row, column) of a cell number."""
        return divmod(cell, self.cols)

    def neighbourhood(self, cell: int) -> list[int]:
        """The cell and its von Neumann neighbours on the torus, duplicates removed."""
        r, c = self.position(cell)
        R, C = self.rows, self.cols
        around = [(r, c), ((r - 1) % R, c), ((r + 1) % R, c), (r, (c - 1) % C), (r, (c + 1) % C)]
        out: list[int] = []
        for rr, cc in around:
            k = rr * C + cc
            if k not in out:
                out.append(k)
        return out

    def neighbourhoods(self) -> list[list[int]]:
        """Every cell's neighbourhood, indexed by cell."""
        return [self.neighbourhood(k) for k in range(self.size)]
