#!/usr/bin/env bash
# The GPU speed benchmarks of benchmarks/RESULTS.md in one command, inside a wall-clock budget:
#
#     bash benchmarks/gpu_suite.sh [OUT_DIR] [BUDGET_S]     # defaults: bench_gpu/, 540 s
#
# Steps run in order of importance, each under its own time limit; a step starts only if its limit still fits in
# what is left of BUDGET_S, so the whole suite never runs longer than the budget (plus a few seconds of start-up).
# The default budget (9 minutes) holds the decode benchmark (ours vs HF generate + true trie vs the reference
# decode, peak memory per batch size) and the eager training throughputs (full fine-tuning, LoRA); a larger budget
# adds the torch.compile variants, quantizer assignment at 100k items and the serving latencies:
#
#     bash benchmarks/gpu_suite.sh bench_gpu 540      # decode + train (full, LoRA)
#     bash benchmarks/gpu_suite.sh bench_gpu2 600 more  # the rest: compile variants, index, serve
#
# Each benchmark writes OUT_DIR/<name>.json and OUT_DIR/<name>.log; one that fails or outlives its limit is
# reported and the others still run; a skipped step is listed with the command that runs it. Needs the project
# importable (`pip install -e .`, or PYTHONPATH=src with torch, transformers and peft present) and a CUDA device;
# no wheel and no download (the models are random, shaped like SmolLM2-135M).
set -u
OUT=${1:-bench_gpu}
BUDGET=${2:-540}
PART=${3:-first}
[ "$BUDGET" -gt 0 ] 2>/dev/null || BUDGET=540
case "$PART" in first|more|all) ;; *) echo "part must be first, more or all (got '$PART')" >&2; exit 2 ;; esac
PY=${PYTHON:-python}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this suite measures the GPU')" || exit 2
"$PY" -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__)" | tee "$OUT/device.txt"

failed=0
skipped=()
START=$SECONDS
step() {  # step GROUP NAME SECONDS CMD...: run CMD under a time limit if it fits the budget; log to OUT/NAME.log
    local group=$1 name=$2 limit=$3; shift 3
    [ "$PART" = all ] || [ "$PART" = "$group" ] || return 0
    local left=$((BUDGET - (SECONDS - START)))
    if [ "$limit" -gt "$left" ]; then
        echo "--- $name skipped: its limit (${limit}s) exceeds the ${left}s left of the budget"
        skipped+=("$name: $*")
        return 0
    fi
    local t0=$SECONDS
    echo "==> $name (limit ${limit}s, ${left}s of budget left): $*"
    if timeout --signal=INT --kill-after=15 "$limit" "$@" >"$OUT/$name.log" 2>&1; then
        echo "    ok in $((SECONDS - t0)) s"
    else
        echo "    FAILED (exit $?) after $((SECONDS - t0)) s; last lines of $OUT/$name.log:"
        tail -n 15 "$OUT/$name.log" | sed 's/^/    | /'
        failed=$((failed + 1))
    fi
}

TRAIN=(benchmarks/train_speed.py --device cuda --backbone smollm2-shape --batch-size 64 --seq 256 --steps 20)
step first decode 200 "$PY" benchmarks/decode_speed.py --device cuda --users 512 --beam 20 --topk 20 --batch 64 \
    --batch-sizes 32,128,256,512 --ref-users 64 --out "$OUT/decode.json"
step first train_full 150 "$PY" "${TRAIN[@]}" --mode full --out "$OUT/train_full.json"
step first train_lora 150 "$PY" "${TRAIN[@]}" --mode lora --out "$OUT/train_lora.json"
step more train_full_compile 180 "$PY" "${TRAIN[@]}" --mode full --compile --out "$OUT/train_full_compile.json"
step more train_lora_compile 180 "$PY" "${TRAIN[@]}" --mode lora --compile --out "$OUT/train_lora_compile.json"
step more index_scale 100 "$PY" benchmarks/index_bench.py scale --items 100000 --epochs 0 --device cuda \
    --out "$OUT/index_scale.json"
step more serve 120 "$PY" benchmarks/serve_latency.py --device cuda --cached 200 --uncached 64 --load 1000 \
    --reindex 10000 --out "$OUT/serve.json"

echo "done in $((SECONDS - START)) s: $failed failed, ${#skipped[@]} skipped; results in $OUT/"
for s in "${skipped[@]}"; do echo "  skipped: $s"; done
exit $((failed > 0))
