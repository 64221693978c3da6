#!/usr/bin/env bash
# The GPU side of benchmarks/gpu_prepare.sh, as two calls issued back to back:
#
#     bash benchmarks/gpu_run.sh stage             # call 1: keep the first GGUF half in /root/smol
#     bash benchmarks/gpu_run.sh run WORK_DIR      # call 2: join, convert, train + evaluate (<= 9 min), results in $OUT
#
# Call 2 needs nothing but the repository (PYTHONPATH=src), torch, transformers and peft on the machine: the
# `gguf` wheel comes in .device/smol1 and goes to /tmp/site. Its steps run under their own limits so the whole call
# stays inside BUDGET_S (default 540): convert (~22 s on an H200), then gpu_quality.sh with TRAIN_MINUTES and
# SASREC_MINUTES sized to what is left. Results are copied to $OUT (the folder that comes back) when it is set.
set -euo pipefail
cd "$(dirname "$0")/.."
SMOL=${SMOL:-/root/smol}
case "${1:-}" in
stage)
    mkdir -p "$SMOL" && cp .device/smol0/part0 "$SMOL/part0" && ls -l "$SMOL"
    exit 0 ;;
run) ;;
*) echo "usage: gpu_run.sh stage | run WORK_DIR" >&2; exit 2 ;;
esac
WORK=${2:?usage: gpu_run.sh run WORK_DIR}
BUDGET_S=${BUDGET_S:-540}
t0=$SECONDS
[ -e "$SMOL/part0" ] || { echo "$SMOL/part0 is missing: call 1 (gpu_run.sh stage) ran on another machine; run both calls back to back" >&2; exit 2; }
mkdir -p "$SMOL/gguf"
cat "$SMOL/part0" .device/smol1/part1 > "$SMOL/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"
[ "$(sha256sum "$SMOL/gguf/SmolLM2-135M-Instruct.Q4_1.gguf" | cut -d' ' -f1)" = "$(cat .device/smol1/sha256)" ] \
    || { echo "the joined GGUF does not match the prepared checksum" >&2; exit 2; }
python -m pip install -q --no-index --no-deps --target /tmp/site .device/smol1/gguf-*.whl
export PYTHONPATH="/tmp/site:$PWD/src:${PYTHONPATH:-}" LCREC_SMOLLM2_GGUF="$SMOL/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"
export LCREC_SMOLLM2_DIR="$SMOL/hf" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python - <<'PY'
import importlib, sys
missing = [m for m in ("torch", "transformers", "peft", "numpy", "pandas", "pyarrow", "yaml", "tqdm", "matplotlib")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing on this machine: {', '.join(missing)}; carry their wheels and pip install them into /tmp/site")
from lcrec.model.backbones import smollm2_hf_dir
print("SmolLM2 HF copy:", smollm2_hf_dir())
PY
left=$(( (BUDGET_S - (SECONDS - t0)) ))
# train gets what is left after tasks (~40 s), the evaluation (~90 s) and a margin; SASRec-CE runs beside it
train_min=$(( (left - 200) / 60 ))
[ "$train_min" -ge 2 ] || { echo "only ${left}s left: too little for a run" >&2; exit 2; }
echo "[$((SECONDS - t0)) s] converted; ${left}s left: training for ${train_min} min"
mkdir -p /tmp/lcrec-bin && printf '#!/bin/sh\nexec python -m lcrec.cli "$@"\n' > /tmp/lcrec-bin/lcrec
chmod +x /tmp/lcrec-bin/lcrec  # the CLI without installing the package
TRAIN_MINUTES=$train_min SASREC_MINUTES=$train_min LCREC=/tmp/lcrec-bin/lcrec \
    timeout $((left - 10)) bash benchmarks/gpu_quality.sh "$WORK"
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT" && cp "$WORK"/evaluate/{comparison.md,metrics.json} "$WORK"/train/train_metrics.json "$OUT"/ || true
    cp "$WORK/baselines/metrics.json" "$OUT/baselines_metrics.json" 2>/dev/null || true
fi
cat "$WORK/evaluate/comparison.md"
