#!/usr/bin/env bash
# The user families against none, at equal training steps, on the same split, item codes and user codes:
#
#     bash benchmarks/user_families.sh [WORK_DIR]                  # default /tmp/lcrec-users, MovieLens-100K
#     DATA=ml-1m bash benchmarks/user_families.sh /tmp/users1m
#
# Shared steps (run once, skipped when their folder exists): ingest -> split -> embed -> quantize -> baselines ->
# user-index. Then two arms, each tasks -> train -> evaluate on all test users:
#   base: params.yaml's tasks.families;
#   user: the same + useq (SEQ-all with the user's code in the prompt) + user (history -> user, user prediction,
#         rating prediction), trained for exactly as many optimizer steps as base (train.max_steps).
# Prints next-item NDCG@10 / HR@10 of base, of user prompted with and without the user's code, the paired
# standard errors (per user, over the same test users and wordings), user prediction against the most active
# users and rating RMSE/MAE against the user's mean. Knobs: DATA (ml-100k), LCREC (lcrec), USER_CAP (3000: most
# user.predict and user.rating examples kept), EVAL_TEMPLATES ([seqall/0,seqall/1]), TRAIN_MINUTES (0: no
# wall-clock stop, so a loaded machine cannot cut one arm's schedule short), STEPS (0: the base arm's own schedule;
# N: both arms stop after N optimizer steps, for a data set whose one pass is longer than the time at hand) and
# EXTRA (more `--set` overrides for every step, e.g. a cap on the SASRec-CE that makes the item vectors:
# EXTRA="--set sasrec.stride=0 --set sasrec.max_minutes=15").
set -euo pipefail
WORK=${1:-/tmp/lcrec-users}
DATA=${DATA:-ml-100k}
LCREC=${LCREC:-lcrec}
USER_CAP=${USER_CAP:-3000}
EVAL_TEMPLATES=${EVAL_TEMPLATES:-[seqall/0,seqall/1]}
TRAIN_MINUTES=${TRAIN_MINUTES:-0}  # no wall-clock stop: both arms run their planned steps
STEPS=${STEPS:-0}
read -r -a EXTRA_SET <<< "${EXTRA:-}"
BASE=$(python -c "import yaml; print(','.join(yaml.safe_load(open('params.yaml'))['tasks']['families']))")
CAPS=$(python -c "import yaml; c = yaml.safe_load(open('params.yaml'))['tasks']['caps']; print(','.join(f'{k}: {v}' for k, v in c.items()))")
COMMON=(--set data.source="$DATA" --set tracking.enabled=false --set evaluate.valid=false --set evaluate.title_items=0
        --set "evaluate.templates=$EVAL_TEMPLATES" --set train.max_minutes="$TRAIN_MINUTES" ${EXTRA_SET[@]+"${EXTRA_SET[@]}"})
t0=$SECONDS
stamp() { echo "[$(( (SECONDS - t0) / 60 )) min] $*"; }
mkdir -p "$WORK/shared"
for step in ingest split embed quantize baselines user-index; do
  folder=$(python -c "print({'ingest': 'data', 'quantize': 'index', 'user-index': 'user_index'}.get('$step', '$step'))")
  if [ -e "$WORK/shared/$folder" ]; then stamp "$step: kept"; continue; fi
  stamp "$step"
  "$LCREC" "$step" "${COMMON[@]}" --set "paths.work_dir=$WORK/shared" > "$WORK/$step.log" 2>&1 \
    || { tail -20 "$WORK/$step.log"; exit 1; }
done
arm() {  # name, families, extra overrides...
  local name=$1 families=$2; shift 2
  mkdir -p "$WORK/$name"
  for folder in data split embed index baselines user_index; do ln -sfn "$WORK/shared/$folder" "$WORK/$name/$folder"; done
  for step in tasks train evaluate; do
    stamp "$name: $step"
    "$LCREC" "$step" "${COMMON[@]}" --set "paths.work_dir=$WORK/$name" --set "tasks.families=[$families]" "$@" \
      > "$WORK/$name.$step.log" 2>&1 || { tail -20 "$WORK/$name.$step.log"; exit 1; }
  done
}
arm base "$BASE" --set "train.max_steps=$STEPS"
BASE_STEPS=$(python -c "import json; print(json.load(open('$WORK/base/train/train_metrics.json'))['steps'])")
arm user "$BASE,useq,user" --set "train.max_steps=$BASE_STEPS" \
  --set "tasks.caps={$CAPS, user.predict: $USER_CAP, user.rating: $USER_CAP}"
stamp "done"
WORK="$WORK" python benchmarks/user_families_report.py
