#!/usr/bin/env bash
# The GPU runs, planned to fit a lent GPU's time (30 minutes in all, at most 10 minutes a part):
# each part writes its log and JSON into $OUT (or benchmarks/results/gpu when OUT is unset).
#
#   bash benchmarks/gpu_session.sh tests       # the CUDA test module + fit's CUDA paths (~4 min)
#   bash benchmarks/gpu_session.sh speed       # model speed vs torchvision, fit vs loops (~8 min)
#   bash benchmarks/gpu_session.sh reproduce   # the reproduction table, every row, seed 0 (~10 min)
#
# The machine needs torch and torchvision with CUDA (the rest of cnnzoo's dependencies are pure
# Python) and Fashion-MNIST's four IDX files in $CNNZOO_DATA (default: ./.data, copied there from
# /usr/share/datasets/fashion-mnist beforehand, since a GPU machine may reach no network).
set -uo pipefail
cd "$(dirname "$0")/.."

part="${1:?name a part: tests, speed or reproduce}"
out="${OUT:-benchmarks/results/gpu}"
mkdir -p "$out"
export CNNZOO_DATA="${CNNZOO_DATA:-$PWD/.data}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

newest() {  # copy the newest result of a benchmark into $out (a machine may hold older ones)
    local file
    file=$(ls -t benchmarks/results/"$1"-*.json 2>/dev/null | head -n 1)
    [ -n "$file" ] && cp "$file" "$out/"
}

"$python" - <<'EOF' | tee "$out/device.txt"
import platform, torch, torchvision
print(f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}")
print("cuda available:", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu:", torch.cuda.get_device_name(0), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
EOF

case "$part" in
tests)
    "$python" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_checkpoint.py \
        tests/test_wrapped_models.py --junitxml="$out/cuda_tests.xml" 2>&1 | tee "$out/cuda_tests.txt"
    ;;
speed)
    timeout 240 "$python" benchmarks/model_speed.py --device cuda --batch-size 64 --warmup 5 \
        --steps 20 2>&1 | tee "$out/model_speed.txt"
    timeout 120 "$python" benchmarks/model_speed.py --device cuda --small --batch-size 256 \
        --warmup 5 --steps 20 2>&1 | tee "$out/model_speed_small.txt"
    timeout 180 "$python" benchmarks/throughput.py --device cuda --images 20000 --batch-size 256 \
        2>&1 | tee "$out/throughput.txt"
    newest model_speed-small
    ls -t benchmarks/results/model_speed-2*.json 2>/dev/null | head -n 1 | xargs -r cp -t "$out/"
    newest throughput
    ;;
reproduce)
    timeout 580 "$python" benchmarks/reproduce.py --models all --seeds 0 --device cuda 2>&1 \
        | tee "$out/reproduce.txt"
    newest reproduce
    ;;
*)
    echo "unknown part $part: tests, speed or reproduce" >&2
    exit 2
    ;;
esac
