#!/usr/bin/env bash
# Time the main job (`seqgan run`) at an old commit and at this checkout, one after the
# other on this machine, each with an empty music cache, and print a table of wall time
# and phase times (issue 19.5: the new one at least 1.7x faster than 8c621b9).
#
#   bench/time_main_job.sh [OLD_COMMIT]        # default 8c621b9; ~5 minutes on 2 cores
#
# The old code runs from a `git worktree` in a temporary folder with PYTHONPATH pointing
# at it (no install needed: `python -m seqgan.cli`, whose package maps datasets/ and
# objectives/ from the checkout); the new one the same way from this checkout. Each run
# gets SEQGAN_CACHE_DIR=<a new empty folder>, so both parse the Essen tunes from music21.
# Phase times come from each run's metrics.jsonl ("seconds": training time of MLE, D
# pretraining and adversarial epochs, evaluations excluded); "other" is the rest of the
# wall time (imports, parsing the data, evaluations, samples, MIDI, the final table).
# Set KEEP=1 to keep the temporary folder (runs and logs); THREADS=N sets OMP_NUM_THREADS.
set -euo pipefail
OLD=${1:-8c621b9}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/seqgan-time.XXXXXX)
cleanup() {
  git -C "$ROOT" worktree remove --force "$WORK/old" >/dev/null 2>&1 || true
  [ "${KEEP:-0}" = 1 ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
git -C "$ROOT" worktree add --detach "$WORK/old" "$OLD" >/dev/null 2>&1
NEW_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- . ':!runs' 2>/dev/null || echo "+changes")
[ -n "${THREADS:-}" ] && export OMP_NUM_THREADS=$THREADS

run_one() {  # run_one NAME SOURCE_DIR
  local name=$1 src=$2
  mkdir -p "$WORK/cache-$name"
  (cd "$WORK" && PYTHONPATH="$src" python -c "import seqgan.cli, sys; sys.stderr.write('code: ' + seqgan.cli.__file__ + '\n')" \
     && SEQGAN_CACHE_DIR="$WORK/cache-$name" PYTHONPATH="$src" /usr/bin/env time -f "%e %U %S" -o "$WORK/time-$name" \
        python -m seqgan.cli run --out "$WORK/run-$name" --device cpu) > "$WORK/log-$name" 2>&1 \
    || { echo "$name failed; its log:"; tail -20 "$WORK/log-$name"; exit 1; }
}

echo "machine: $(getconf _NPROCESSORS_ONLN) cores, $(uname -m), $(python -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
run_one old "$WORK/old"
echo "load between: $(cut -d' ' -f1-3 /proc/loadavg)"
run_one new "$ROOT"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python - "$WORK" "$OLD" "$NEW_COMMIT" <<'EOF'
import json, sys
from pathlib import Path
work, old, new = Path(sys.argv[1]), sys.argv[2], sys.argv[3]

def phases(run):
    last, out = {}, {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        last[r["phase"]] = r["seconds"]
    prev = 0.0
    for p in ("mle", "d-pretrain", "adversarial"):
        if p in last:
            out[p], prev = last[p] - prev, last[p]
    return out

rows = {}
for name, label in (("old", old), ("new", new)):
    wall, user, sys_ = (float(x) for x in (work / f"time-{name}").read_text().split()[-3:])
    ph = phases(work / f"run-{name}")
    res = json.loads((work / f"run-{name}" / "results.json").read_text())
    rows[name] = (label, wall, user + sys_, ph, wall - sum(ph.values()), res)
print()
print("| | commit | wall s | CPU s | MLE s | D pretrain s | adversarial s | other s |")
print("|---|---|---|---|---|---|---|---|")
for name, (label, wall, cpu, ph, other, _) in rows.items():
    print(f"| {name} | {label} | {wall:.0f} | {cpu:.0f} | {ph.get('mle', 0):.0f} | {ph.get('d-pretrain', 0):.0f} "
          f"| {ph.get('adversarial', 0):.0f} | {other:.0f} |")
print(f"\nspeed-up (old wall / new wall): {rows['old'][1] / rows['new'][1]:.2f}x")
for name, (label, *_, res) in rows.items():
    print(f"\n{name} ({label}) results.json:")
    cols = ["ratio_of_steps", "notes_per_bar", "pitch_class_entropy", "diversity"]
    print("| row | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    order = ["training data", "MLE generator", "selected generator", "final generator"]
    for row, m in sorted(res.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 9):
        print(f"| {row} | " + " | ".join(f"{m[c]:.3f}" if c in m else "" for c in cols) + " |")
EOF
