"""ORGAN's music objectives (Guimaraes et al. 2017) as batched tensor functions.

Every objective maps melodies on the toolkit's time grid, ``tokens: LongTensor (B, T)``,
to ``FloatTensor (B,)`` in [0, 1] on the tokens' device, without a Python loop over the
batch or over time.

**Notes and intervals.** A pitch token starts a note; HOLD extends it (it is not a new
note); REST is silence, and so are PAD, BOS, ids outside the vocabulary, and a HOLD with
nothing sounding. The melody is the sequence of note *onsets*; an interval is the
difference in semitones ``d = p_k - p_{k-1}`` between consecutive onsets (a repeated note
gives ``d = 0``, which counts as an interval that is neither a fifth nor a step).
By default a REST does **not** break the chain: the note after a rest forms an interval
with the note before it, as in ORGAN's ABC code, whose note list simply drops rests.
``make_objective(..., rest_breaks=True)`` counts only intervals between notes with no
silence between them.

With ``n`` intervals and ``h`` of them of the wanted kind, the value is ``h / n``; fewer
than two notes (``n = 0``) give 0.

Relation to ORGAN's code (gablg1/ORGAN, ``organ/music_metrics.py`` and its variants):

* ABC version: the notes are ABC letters with accidentals stripped (so intervals are
  between natural notes); a fifth / fourth / sixth is a frequency ratio
  ``f(succ) / f(note)`` in (1.45, 1.55) / (1.28, 1.38) / (1.62, 1.72), i.e. **ascending**
  +7 / +5 / +9 semitones in equal temperament; a step is a neighbour in the diatonic
  list ``C, D, ..., b'`` in either direction (1 or 2 semitones). Rests are dropped.
* MIDI version: 48 pitch tokens and a hold token; the note list repeats the held note at
  every held step, so a held step adds a unison "interval" to the denominator; a step is
  exactly one semitone; a batch's values are min-max rescaled (``remap``).

Here intervals are between onsets (holds never count), pitches are exact MIDI numbers,
a step is 1 or 2 semitones either way; ``both_directions`` also counts descending
fifths / fourths / sixths, and ``rescale`` applies ORGAN's batch min-max ``remap``.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable

import torch

from seqgan.datasets.music import hold_id, token_pitches
from seqgan.errors import UserError
from seqgan.objectives import register_objective

__all__ = ["tonality", "melodicity", "ratio_of_steps", "make_objective", "pitch_lut",
           "intervals", "minmax_rescale", "INTERVAL_SETS"]

# objective name -> (semitone set, whether the set is ascending-only by default)
INTERVAL_SETS: dict[str, tuple[tuple[int, ...], bool]] = {
    "tonality": ((7,), True),  # ascending perfect fifth
    "melodicity": ((5, 7, 9), True),  # ascending perfect fourth, fifth, major sixth
    "ratio_of_steps": ((1, 2), False),  # a semitone or a whole tone, either way
}


# -- token id -> MIDI pitch, cached per vocabulary and device ----------------------------
_LUT_CACHE: dict[int, tuple[Any, dict[str, tuple[torch.Tensor, int]]]] = {}


def _token_pitches(vocab: Any) -> tuple[list[int], int]:
    """MIDI pitch per token (-1 if none) and the HOLD id (-1 if none) of a vocabulary."""
    return token_pitches(vocab), int(hold_id(vocab, default=-1))


def pitch_lut(vocab: Any, device: torch.device | str) -> tuple[torch.Tensor, int]:
    """``(lut, hold)``: ``lut[id]`` = MIDI pitch or -1 (HOLD, REST, PAD, BOS), length V + 1.

    The extra last entry (-1) is where out-of-range ids are sent. Cached per vocabulary
    object and device (the cache entry dies with the vocabulary).
    """
    kind = getattr(vocab, "kind", None)
    if kind not in (None, "music"):
        raise UserError(f"music objectives and metrics need a music run; this run's data is {kind}")
    device = torch.device(device)
    key = id(vocab)
    entry = _LUT_CACHE.get(key)
    if entry is None or entry[0]() is not vocab:
        try:
            ref = weakref.ref(vocab, lambda _r, k=key: _LUT_CACHE.pop(k, None))
        except TypeError:  # not weak-referenceable: rebuild every call
            pitches, hold = _token_pitches(vocab)
            return torch.tensor(pitches + [-1], dtype=torch.long, device=device), hold
        entry = (ref, {})
        _LUT_CACHE[key] = entry
    per_device = entry[1]
    dkey = str(device)
    if dkey not in per_device:
        pitches, hold = _token_pitches(vocab)
        per_device[dkey] = (torch.tensor(pitches + [-1], dtype=torch.long, device=device), hold)
    return per_device[dkey]


# -- intervals ---------------------------------------------------------------------------
def intervals(tokens: torch.Tensor, vocab: Any, rest_breaks: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Intervals between consecutive note onsets.

    Returns ``(d, valid)``, both (B, T): at every onset ``t`` that has a previous onset
    (and, with ``rest_breaks``, no silence since it), ``d[b, t]`` is the interval in
    semitones from that previous onset and ``valid[b, t]`` is True.
    """
    if tokens.dim() != 2:
        raise UserError(f"objective expects tokens of shape (B, T), got {tuple(tokens.shape)}")
    lut, hold = pitch_lut(vocab, tokens.device)
    V = lut.shape[0] - 1
    ids = torch.where((tokens >= 0) & (tokens < V), tokens, torch.full_like(tokens, V))
    pitch = lut[ids]  # (B, T) MIDI pitch at onsets, -1 elsewhere
    onset = pitch >= 0  # (B, T)
    B, T = tokens.shape
    steps = torch.arange(T, device=tokens.device).expand(B, T)  # (B, T)
    # events the chain looks back to: onsets, and with rest_breaks also silence
    event = onset | ((ids != hold) if rest_breaks else torch.zeros_like(onset))
    last = torch.cummax(torch.where(event, steps, torch.full_like(steps, -1)), dim=1).values
    prev = torch.cat([torch.full_like(last[:, :1], -1), last[:, :-1]], dim=1)  # (B, T) last event < t
    prev_pitch = pitch.gather(1, prev.clamp(min=0))  # (B, T)
    valid = onset & (prev >= 0) & (prev_pitch >= 0)  # (B, T)
    d = torch.where(valid, pitch - prev_pitch, torch.zeros_like(pitch))
    return d, valid


def minmax_rescale(values: torch.Tensor, group_size: int | None = None) -> torch.Tensor:
    """ORGAN's ``remap``: ``(x - min) / (max - min)`` over the batch; all 0 when
    ``max == min`` or ``max == 0``. The result depends on the batch it is given.

    ``group_size`` G: rescale each run of G consecutive values (one generator batch, or one
    (prefix, rollout) group of the Monte Carlo completions) on its own; default: all.
    """
    G = group_size or values.shape[0]
    if G <= 0 or values.shape[0] % G:
        raise ValueError(f"{values.shape[0]} values do not split into groups of {group_size}")
    v = values.reshape(-1, G)  # (groups, G)
    lo, hi = v.min(dim=1, keepdim=True).values, v.max(dim=1, keepdim=True).values
    span = hi - lo
    ok = (span > 0) & (hi != 0)
    out = torch.where(ok, (v - lo) / torch.where(ok, span, torch.ones_like(span)), torch.zeros_like(v))
    return out.reshape(values.shape)


def _fraction(tokens: torch.Tensor, vocab: Any, semitones: tuple[int, ...], both: bool,
              rest_breaks: bool) -> torch.Tensor:
    d, valid = intervals(tokens, vocab, rest_breaks)  # (B, T), (B, T)
    dd = d.abs() if both else d
    hit = torch.zeros_like(valid)
    for s in semitones:
        hit |= dd == s
    n = valid.sum(1)  # (B,)
    h = (hit & valid).sum(1)  # (B,)
    return torch.where(n > 0, h.float() / n.clamp(min=1).float(),
                       torch.zeros_like(h, dtype=torch.float32))


def make_objective(name: str, both_directions: bool | None = None, rescale: bool = False,
                   rest_breaks: bool = False) -> Callable[[torch.Tensor, Any], torch.Tensor]:
    """Build a variant of ``tonality``, ``melodicity`` or ``ratio_of_steps``.

    ``both_directions`` (default: False for tonality / melodicity, as in ORGAN; steps are
    always counted both ways) counts descending intervals too; ``rescale`` min-max
    rescales the batch (ORGAN's MIDI version); ``rest_breaks`` stops intervals at rests.
    """
    if name not in INTERVAL_SETS:
        raise UserError(f"unknown music objective {name!r}; choose one of: {', '.join(INTERVAL_SETS)}")
    semitones, ascending = INTERVAL_SETS[name]
    both = (not ascending) if both_directions is None else bool(both_directions)
    if not ascending:
        both = True

    def objective(tokens: torch.Tensor, vocab: Any, group_size: int | None = None) -> torch.Tensor:
        """The share of matching intervals (B,) in [0, 1], rescaled per ``group_size`` if ``rescale``."""
        v = _fraction(tokens, vocab, semitones, both, rest_breaks)
        return minmax_rescale(v, group_size) if rescale else v

    objective.batch_relative = rescale  # type: ignore[attr-defined]  # value depends on the batch

    suffix = ("_both" if both and ascending else "") + ("_rescaled" if rescale else "")
    objective.__name__ = name + suffix
    objective.__doc__ = (f"{name}: share of intervals in {set(semitones)} semitones"
                         f"{' either way' if both else ' ascending'}"
                         f"{', batch min-max rescaled' if rescale else ''}; "
                         f"see seqgan.objectives.music.")
    return objective


# -- the registered objectives -----------------------------------------------------------
@register_objective("tonality")
def tonality(tokens: torch.Tensor, vocab: Any) -> torch.Tensor:
    """Share of intervals that are an ascending perfect fifth (+7 semitones).

    ``tonality = #{k : p_k - p_{k-1} = +7} / #intervals``, 0 with fewer than two notes.
    ORGAN: ``is_perf_fifth``, a frequency ratio in (1.45, 1.55). Range [0, 1].
    """
    return _fraction(tokens, vocab, (7,), False, False)


@register_objective("melodicity")
def melodicity(tokens: torch.Tensor, vocab: Any) -> torch.Tensor:
    """Share of intervals that ascend a perfect fourth, fifth or major sixth (+5, +7, +9).

    ORGAN: ``is_harmonic`` = ratio in (1.28, 1.38), (1.45, 1.55) or (1.62, 1.72).
    0 with fewer than two notes. Range [0, 1].
    """
    return _fraction(tokens, vocab, (5, 7, 9), False, False)


@register_objective("ratio_of_steps")
def ratio_of_steps(tokens: torch.Tensor, vocab: Any) -> torch.Tensor:
    """Share of intervals that are a step: 1 or 2 semitones, up or down.

    ORGAN's ABC version: neighbours in the diatonic note list (1 or 2 semitones); its
    MIDI version: exactly one semitone. 0 with fewer than two notes. Range [0, 1].
    """
    return _fraction(tokens, vocab, (1, 2), True, False)


register_objective("tonality_both")(make_objective("tonality", both_directions=True))
register_objective("melodicity_both")(make_objective("melodicity", both_directions=True))
for _name in INTERVAL_SETS:
    register_objective(f"{_name}_rescaled")(make_objective(_name, rescale=True))
del _name
