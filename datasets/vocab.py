"""Vocabulary: the tokens of a corpus, its special ids, and its JSON form on disk.

``kind`` says how sequences decode: ``"ids"`` (SeqGAN's oracle: 5000 plain ids, no
specials), ``"text"`` (words; EOS ends a sentence, PAD fills the rest) or ``"music"``
(pitch / HOLD / REST tokens on a time grid). ``meta`` carries what decoding needs (the
tokenizer and lower-casing of a text corpus, the grid of a music corpus).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from seqgan.errors import UserError

KINDS = ("ids", "text", "music")


@dataclass
class Vocabulary:
    """The tokens of a corpus (id = position), its special ids (None where absent), its
    ``kind`` and decoding ``meta``; see the module docstring."""

    tokens: list[str]
    kind: str = "ids"
    pad: int | None = None
    bos: int | None = None
    eos: int | None = None
    unk: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"vocabulary kind {self.kind!r} unknown; valid: {', '.join(KINDS)}")
        if not self.tokens:
            raise UserError("vocabulary is empty")
        n = len(self.tokens)
        for name in ("pad", "bos", "eos", "unk"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int) and 0 <= v < n):
                raise UserError(f"vocabulary: special id {name}={v!r} outside 0..{n - 1}")
        self._index = {t: i for i, t in enumerate(self.tokens)}
        if len(self._index) != n:
            raise UserError("vocabulary has duplicate tokens")

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def plain_ids(cls, n: int, start_token: int = 0) -> "Vocabulary":
        """SeqGAN's oracle vocabulary: ids 0..n-1 as their own names, no specials."""
        return cls([str(i) for i in range(n)], kind="ids", meta={"start_token": start_token})

    def index(self, token: str) -> int:
        """The id of ``token``: ``unk`` for an unknown one, or a KeyError without ``unk``."""
        i = self._index.get(token)
        if i is None:
            if self.unk is None:
                raise KeyError(token)
            return self.unk
        return i

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """The ids of ``tokens`` (see :meth:`index`)."""
        return [self.index(t) for t in tokens]

    def strip(self, ids: Sequence[int]) -> list[int]:
        """Cut at the first EOS and drop PAD and BOS: the content tokens of a sequence."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos:
                break
            if i == self.pad or i == self.bos:
                continue
            out.append(i)
        return out

    def decode(self, ids: Sequence[int]) -> list[str]:
        """The content tokens of ``ids``: cut at the first EOS, PAD and BOS dropped (:meth:`strip`)."""
        return [self.tokens[i] for i in self.strip(ids)]

    # -- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON form: kind, tokens, pad, bos, eos, unk and meta."""
        return {"kind": self.kind, "tokens": self.tokens, "pad": self.pad, "bos": self.bos,
                "eos": self.eos, "unk": self.unk, "meta": self.meta}

    @classmethod
    def from_dict(cls, d: Any) -> "Vocabulary":
        """A vocabulary from its JSON form (:meth:`to_dict`); a UserError for a malformed one
        (no ``tokens`` list, unknown keys, non-string tokens, a bad kind or special id)."""
        if not isinstance(d, dict) or not isinstance(d.get("tokens"), list):
            raise UserError("vocabulary JSON must be an object with a 'tokens' list")
        extra = set(d) - {"kind", "tokens", "pad", "bos", "eos", "unk", "meta"}
        if extra:
            raise UserError(f"vocabulary JSON has unknown key(s): {', '.join(sorted(extra))}")
        if not all(isinstance(t, str) for t in d["tokens"]):
            raise UserError("vocabulary JSON: every token must be a string")
        if not isinstance(d.get("meta") or {}, dict):
            raise UserError("vocabulary JSON: 'meta' must be an object")
        return cls(tokens=list(d["tokens"]), kind=d.get("kind", "ids"), pad=d.get("pad"),
                   bos=d.get("bos"), eos=d.get("eos"), unk=d.get("unk"),
                   meta=dict(d.get("meta") or {}))

    def save(self, path: str | Path) -> None:
        """Write the JSON form to ``path``, atomically."""
        from seqgan.files import atomic_write_json

        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        """The vocabulary stored at ``path``; a one-line UserError if it is missing or malformed."""
        from seqgan.files import read_json

        return cls.from_dict(read_json(path))
