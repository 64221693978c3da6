#!/usr/bin/env bash
# LC-Rec against SASRec-CE on MovieLens-1M at CPU scale, in one command inside about 90 minutes on 2 cores:
#
#     bash benchmarks/cpu_quality_ml1m.sh [WORK_DIR]        # default /tmp/lcrec-ml1m
#
# The CPU recipe of params.yaml (a small Llama from scratch on collaborative codes, SEQ-all + MUT + ASY, the
# code-restricted loss, bf16 where the CPU has it) with budgets for the larger data set: the SASRec-CE that makes
# the collaborative codes trains to early stopping (EMBED_MINUTES at most) and is the baseline too (the baselines
# step scores that same model: same recipe, same split), LC-Rec trains for TRAIN_STEPS steps (TRAIN_MINUTES at
# most), and evaluate scores every test user on two SEQ-all templates plus valid and index -> title.
# Prints WORK_DIR/evaluate/comparison.md (NDCG@10 ratio, distinct top-1 items, top-10 coverage).
# Knobs: EMBED_MINUTES (35), TRAIN_STEPS (4000; 0 = one pass over the task rows), TRAIN_MINUTES (40) and EXTRA (more
# `--set` overrides for every step, e.g. EXTRA="--set sasrec.stride=0 --set quantize.autoencoder=false").
set -euo pipefail
WORK=${1:-/tmp/lcrec-ml1m}
EMBED_MINUTES=${EMBED_MINUTES:-35}
TRAIN_STEPS=${TRAIN_STEPS:-4000}
TRAIN_MINUTES=${TRAIN_MINUTES:-40}
LCREC=${LCREC:-lcrec}
S=(--set data.source=ml-1m --set "paths.work_dir=$WORK" --set tracking.enabled=false)
read -r -a X <<< "${EXTRA:-}"   # last on every command line, so EXTRA wins over the settings below
SAS=(--set sasrec.max_minutes="$EMBED_MINUTES")
t0=$SECONDS
stamp() { echo "[$(( (SECONDS - t0) / 60 )) min] $*"; }
stamp "ingest, split";   "$LCREC" ingest "${S[@]}" "${X[@]}" && "$LCREC" split "${S[@]}" "${X[@]}"
stamp "embed (SASRec-CE item vectors)"; "$LCREC" embed "${S[@]}" "${SAS[@]}" "${X[@]}"
stamp "quantize";        "$LCREC" quantize "${S[@]}" "${X[@]}"
stamp "tasks";           "$LCREC" tasks "${S[@]}" "${X[@]}"
stamp "train";           "$LCREC" train "${S[@]}" --set train.max_steps="$TRAIN_STEPS" --set train.max_minutes="$TRAIN_MINUTES" \
                             --set train.eval_steps=500 --set train.save_steps=500 "${X[@]}"
stamp "baselines";       "$LCREC" baselines "${S[@]}" "${SAS[@]}" "${X[@]}"
stamp "evaluate";        "$LCREC" evaluate "${S[@]}" --set evaluate.title_items=200 "${X[@]}"
stamp "done";            cat "$WORK/evaluate/comparison.md"
