#!/usr/bin/env bash
# Every GPU speed benchmark of benchmarks/RESULTS.md in one command (each step has a time limit; together at
# most 19 minutes):
#
#     bash benchmarks/gpu_suite.sh [OUT_DIR]        # default OUT_DIR: bench_gpu/
#
# decode speed (ours vs HF generate + true trie vs the reference decode, peak memory per batch size), train
# throughput (full / full + compile / LoRA + compile), quantizer assignment at 100k items and the serving
# latencies. Each benchmark writes OUT_DIR/<name>.json and OUT_DIR/<name>.log; one that fails or outlives its
# time limit is reported and the others still run. Needs the project installed (`pip install -e .` or
# `make .venv`) and a CUDA device; no wheel or download (the models are random, shaped like SmolLM2-135M).
set -u
OUT=${1:-bench_gpu}
PY=${PYTHON:-python}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this suite measures the GPU')" || exit 2
"$PY" -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__)" | tee "$OUT/device.txt"

failed=0
step() {  # step NAME SECONDS CMD...: run CMD under a time limit, log to OUT/NAME.log
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    echo "==> $name (limit ${limit}s): $*"
    if timeout --signal=INT --kill-after=20 "$limit" "$@" >"$OUT/$name.log" 2>&1; then
        echo "    ok in $((SECONDS - t0)) s"
    else
        echo "    FAILED (exit $?) after $((SECONDS - t0)) s; last lines of $OUT/$name.log:"
        tail -n 15 "$OUT/$name.log" | sed 's/^/    | /'
        failed=$((failed + 1))
    fi
}

step decode 240 "$PY" benchmarks/decode_speed.py --device cuda --users 512 --beam 20 --topk 20 --batch 64 \
    --batch-sizes 32,128,256,512 --ref-users 64 --out "$OUT/decode.json"
step train_full 120 "$PY" benchmarks/train_speed.py --device cuda --mode full --backbone smollm2-shape \
    --batch-size 64 --seq 256 --steps 20 --out "$OUT/train_full.json"
step train_full_compile 240 "$PY" benchmarks/train_speed.py --device cuda --mode full --backbone smollm2-shape \
    --batch-size 64 --seq 256 --steps 20 --compile --out "$OUT/train_full_compile.json"
step train_lora_compile 240 "$PY" benchmarks/train_speed.py --device cuda --mode lora --backbone smollm2-shape \
    --batch-size 64 --seq 256 --steps 20 --compile --out "$OUT/train_lora_compile.json"
step index_scale 120 "$PY" benchmarks/index_bench.py scale --items 100000 --epochs 0 --device cuda \
    --out "$OUT/index_scale.json"
step serve 180 "$PY" benchmarks/serve_latency.py --device cuda --cached 200 --uncached 64 --load 1000 \
    --reindex 10000 --out "$OUT/serve.json"

echo "done: $failed failed; results in $OUT/"
exit $((failed > 0))
