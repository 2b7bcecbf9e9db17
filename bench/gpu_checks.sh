#!/usr/bin/env bash
# Every check that needs a GPU, in one call of about 9 minutes on an H100: the GPU tests,
# then the adversarial speed benchmark. Logs and the benchmark's JSON go to OUT_DIR.
#
#   bash bench/gpu_checks.sh OUT_DIR [--repeats N]
#
# Works without installing the package (PYTHONPATH=.), so a machine that has torch,
# click, safetensors, tqdm and pytest but no network is enough. Each part has its own
# time limit, so a hang in one still leaves the other's results.
set -u
out=${1:?usage: bash bench/gpu_checks.sh OUT_DIR [--repeats N]}
shift
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$out/device.txt" 2>&1
python -c "import torch; print(torch.__version__, torch.version.cuda)" >> "$out/device.txt" 2>&1
git rev-parse --short HEAD >> "$out/device.txt" 2>/dev/null

timeout 200 python -m pytest -q -p no:cacheprovider tests/test_gpu.py > "$out/test_gpu.log" 2>&1
echo "test_gpu exit $?" | tee -a "$out/test_gpu.log"

timeout 330 python bench/bench_adversarial.py --device cuda --out "$out/adversarial.json" "$@" \
    > "$out/bench_adversarial.log" 2>&1
echo "bench_adversarial exit $?" | tee -a "$out/bench_adversarial.log"
tail -n 20 "$out/test_gpu.log" "$out/bench_adversarial.log"
