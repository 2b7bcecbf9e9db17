"""Parsing a source's items: in a pool of worker processes, or serially, with a progress bar.

:func:`parse_all` runs :func:`~seqgan.datasets.music_readers.parse_item` over every item.
With ``workers`` > 1 it uses a :class:`concurrent.futures.ProcessPoolExecutor` on a
``forkserver`` context (``spawn`` where there is no forkserver), so no worker is forked
from a process that holds torch's threads. Items go to the workers in chunks
(:func:`chunk_size`) and come back, pickled, in order. A worker unpickles the parse
function by reference and so imports only this module's dependencies: the standard
library, numpy, :mod:`seqgan.errors` and :mod:`seqgan.datasets.music_readers` (the
``seqgan.datasets`` package imports no torch either); music21 or pretty_midi load when the
first item of their format is read.

When a worker dies (:class:`~concurrent.futures.process.BrokenProcessPool`) or the pool
cannot start, the items not answered yet are parsed serially in the caller, with the
same function, so the result never depends on the workers.

As with every ``multiprocessing`` program, a script that parses with workers must keep
its top-level code under ``if __name__ == "__main__":``: ``spawn`` and the forkserver
import the caller's main script (not ``python -m`` modules) in the new processes.
"""
from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, Callable

from seqgan.datasets.music_readers import parse_item
from seqgan.errors import one_line

log = logging.getLogger("seqgan.music")

MAX_CHUNK = 64  # items a worker parses per round trip (at most)
CHUNKS_PER_WORKER = 4  # at least this many chunks a worker, so that the work stays balanced

Parse = Callable[[tuple, int, Any], tuple]  # (item, steps_per_quarter, instrument) -> result


def chunk_size(n_items: int, workers: int) -> int:
    """Items per chunk: about ``CHUNKS_PER_WORKER`` chunks a worker, 1..``MAX_CHUNK``."""
    return max(1, min(MAX_CHUNK, n_items // (workers * CHUNKS_PER_WORKER)))


def pool_context() -> Any:
    """The ``forkserver`` multiprocessing context, or ``spawn`` where it is unavailable."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def parse_all(items: list, spq: int, instrument: Any, workers: int, progress: bool, desc: str,
              parse: Parse = parse_item) -> list[tuple]:
    """``parse(item, spq, instrument)`` for every item, in ``workers`` processes when > 1.

    Returns the results in the items' order. ``parse`` must be a module-level function
    (workers import it by name); it is :func:`parse_item` except in tests.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), desc=desc, unit="tune", leave=False,
               disable=(not progress) or len(items) < 200 or None)
    results: list[tuple | None] = [None] * len(items)
    try:
        if workers > 1 and len(items) > 1:
            run_pool(partial(parse, spq=spq, instrument=instrument), items,
                     min(workers, len(items)), results, bar.update)
        for i, it in enumerate(items):  # serial, or what the pool left undone
            if results[i] is None:
                results[i] = parse(it, spq, instrument)
                bar.update()
    finally:
        bar.close()
    return results  # type: ignore[return-value]


def run_pool(fn: Callable[[Any], tuple], items: list, workers: int, results: list,
             tick: Callable[[], Any]) -> None:
    """Fill ``results[i] = fn(items[i])`` from a process pool, calling ``tick()`` per answer.

    Stops at the first item a dead worker left unanswered (or when the pool cannot
    start) and logs it; the unanswered items stay ``None`` for the caller to redo.
    """
    pool = None
    try:
        try:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=pool_context())
            answers = pool.map(fn, items, chunksize=chunk_size(len(items), workers))
        except Exception as e:  # no processes here (no /dev/shm, a failed forkserver, ...)
            log.warning("cannot start music parsing workers (%s: %s); parsing serially",
                        type(e).__name__, one_line(e))
            return
        try:
            for i, result in enumerate(answers):
                results[i] = result
                tick()
        except BrokenProcessPool as e:
            left = sum(r is None for r in results)
            log.warning("a music parsing worker died (%s); parsing the %d tunes not answered "
                        "yet serially", one_line(e), left)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
