#!/usr/bin/env bash
# Train and score several recipes on one prepared work folder (same split, codes and tasks), one after another:
#
#     bash benchmarks/recipe_sweep.sh WORK_DIR "name|overrides" ["name|overrides" ...]
#     bash benchmarks/recipe_sweep.sh /tmp/exp "base|" "d02|--set train.dropout=0.2"
#
# WORK_DIR holds the steps up to `tasks` (e.g. `lcrec ingest/validate/split/embed/quantize/baselines/tasks
# --set paths.work_dir=WORK_DIR --set tracking.enabled=false`). Each recipe trains into WORK_DIR/sweep/<name>/train
# and is scored into WORK_DIR/sweep/<name>/evaluate with params.yaml's evaluate section (all test users); a recipe
# whose overrides name tasks.* gets its own tasks folder first. Prints one row per recipe: train minutes, steps,
# valid and test NDCG@10, test HR@10, distinct top-1, top-10 coverage, and test NDCG@10 against the first recipe
# with the paired standard error over the same users and wordings.
set -euo pipefail
WORK=$1; shift
LCREC=${LCREC:-lcrec}
names=()
for spec in "$@"; do
  name=${spec%%|*}; over=${spec#*|}; names+=("$name")
  out="$WORK/sweep/$name"
  if [ -e "$out/evaluate/metrics.json" ]; then echo "$name: kept"; continue; fi
  mkdir -p "$out"
  dirs="train: $out/train, evaluate: $out/evaluate"
  case "$over" in *tasks.*) dirs="$dirs, tasks: $out/tasks";; esac
  # shellcheck disable=SC2206
  args=(--set paths.work_dir="$WORK" --set tracking.enabled=false --set "paths.dirs={$dirs}" $over)
  if [[ "$over" == *tasks.* ]]; then "$LCREC" tasks "${args[@]}" > "$out/tasks.log" 2>&1 || { tail -20 "$out/tasks.log"; exit 1; }; fi
  start=$SECONDS
  "$LCREC" train "${args[@]}" > "$out/train.log" 2>&1 || { tail -20 "$out/train.log"; exit 1; }
  "$LCREC" evaluate "${args[@]}" > "$out/evaluate.log" 2>&1 || { tail -20 "$out/evaluate.log"; exit 1; }
  echo "$name: done in $(( SECONDS - start )) s"
done
python "$(dirname "$0")/recipe_sweep_report.py" "$WORK/sweep" "${names[@]}"
