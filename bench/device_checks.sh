#!/usr/bin/env bash
# Everything that needs the lent GPU machine, in one call of at most ~9 minutes:
#  - on the GPU, one after another: the GPU-marked tests, the adversarial speed benchmark
#    (batched vs prefix-shared rewards, D implementations), stacked populations (K = 1/4/9,
#    one 3x3 generation), data-parallel training and coevolution over NCCL with one rank;
#  - at the same time on the machine's CPU cores: the main job's tuning grid
#    (bench/tune_main_job.py, one single-threaded process per row).
# Usage (repo root; .whl holds music21/nltk/pretty_midi wheels for Python 3.12, runs/tune
# the prepared MLE runs):  bash bench/device_checks.sh OUT_DIR [GRID_JOBS]
set -u
out=${1:?usage: bash bench/device_checks.sh OUT_DIR [GRID_JOBS]}
jobs=${2:-13}
log=/tmp/device_logs
mkdir -p "$out" "$log"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl > "$log/pip.log" 2>&1
  export PYTHONPATH="$PWD:/tmp/site"
else
  export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda)"
  nproc; lscpu | grep -m1 "Model name"; git rev-parse --short HEAD; date -u; } > "$log/device.txt" 2>&1

# the CPU grid, in the background
if [ -d runs/tune ]; then
  ( timeout 450 python3 bench/tune_main_job.py --jobs "$jobs" > "$log/tune.log" 2>&1
    echo "tune exit $?" >> "$log/tune.log"
    python3 bench/tune_main_job.py --table >> "$log/tune.log" 2>&1
    cp runs/tune/results.* "$log/" 2>/dev/null ) &
  grid=$!
fi

step() {  # step NAME SECONDS CMD...
  local name=$1 secs=$2; shift 2
  local t0=$(date +%s)
  timeout "$secs" "$@" > "$log/$name.log" 2>&1
  echo "$name exit $? in $(( $(date +%s) - t0 )) s" | tee -a "$log/summary.txt"
}
step gpu_tests 150 python3 -m pytest -q -p no:cacheprovider -m gpu -o addopts="" \
    tests/test_gpu.py tests/test_stacked.py tests/test_ddp.py tests/test_prefix_scores.py \
    tests/test_snapshots.py tests/test_batched_cells.py tests/test_objectives.py tests/test_bleu.py
step bench_adversarial 170 python3 bench/bench_adversarial.py --device cuda --repeats 3 \
    --skip-loop-epoch --out "$log/adversarial.json"
step bench_population 90 python3 bench/bench_population.py --device cuda
step bench_generation 60 python3 bench/bench_population.py --device cuda --what generation
step bench_ddp 60 python3 bench/bench_ddp.py --device cuda --workers 1 --data-parallel-one
# coevolution over NCCL with one rank (torchrun), on a tiny oracle run
rm -rf /tmp/pop
step coevolve_nccl 90 bash -c "python3 -m seqgan pretrain --data oracle --preset quick --out /tmp/pop --device cuda --epochs 2 && torchrun --nproc-per-node 1 -m seqgan coevolve /tmp/pop --grid 2x2 --generations 2 --device cuda && python3 -m seqgan evaluate /tmp/pop --metrics nll-oracle,nll-test --device cuda"

[ -n "${grid:-}" ] && wait "$grid"
tail -n 3 "$log"/*.log > "$log/tails.txt" 2>/dev/null
tar -czf "$out/device_logs.tgz" -C /tmp device_logs
cp "$log/summary.txt" "$out/"; cp "$log"/results.md "$out/" 2>/dev/null
cat "$log/summary.txt"
