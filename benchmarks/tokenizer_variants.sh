#!/usr/bin/env bash
# Tokenizer variants on the same collaborative (SASRec-CE) item vectors, one command:
#
#     bash benchmarks/tokenizer_variants.sh [WORK_DIR]       # default /tmp/lcrec-tokenizers
#     DATA=ml-100k TRAIN=1 bash benchmarks/tokenizer_variants.sh /tmp/tok100k
#
# ingest -> split -> embed (SASRec-CE vectors) run once; then quantize once per variant, each into its own index
# folder: {RQ-VAE, no autoencoder} x {LLM alignment off, on} (+ cosine distance without the autoencoder).
# Prints reconstruction MSE, first-level utilisation and perplexity, nearest-neighbour first-code agreement and
# the collision rate per variant. TRAIN=1 also runs tasks -> train -> evaluate per variant (params.yaml's recipe,
# its own folders) after one baselines step, and adds valid/test NDCG@10 and MRR@10.
# Knobs: DATA (ml-1m), TRAIN (0), VARIANTS (all), ALIGN_WEIGHT (0.1), ALIGN_BACKBONE (smollm2), EMBED_MINUTES (15),
# STEPS (0: params.yaml's schedule and wall-clock cap; N: every variant trains exactly N optimizer steps with no
# wall-clock stop, so a loaded machine cannot give one variant fewer steps) and EXTRA (more `--set` overrides for
# every step, e.g. EXTRA="--set sasrec.stride=0" for tiled SASRec-CE windows, more epochs inside EMBED_MINUTES).
# Test NDCG@10 is compared with the first variant's, paired per (user, wording).
set -euo pipefail
WORK=${1:-/tmp/lcrec-tokenizers}
DATA=${DATA:-ml-1m}
TRAIN=${TRAIN:-0}
ALIGN_WEIGHT=${ALIGN_WEIGHT:-0.1}
ALIGN_BACKBONE=${ALIGN_BACKBONE:-smollm2}
EMBED_MINUTES=${EMBED_MINUTES:-15}
VARIANTS=${VARIANTS:-"rqvae rqvae_align noae noae_align noae_cosine"}
STEPS=${STEPS:-0}
LCREC=${LCREC:-lcrec}
read -r -a EXTRA_SET <<< "${EXTRA:-}"
S=(--set data.source="$DATA" --set "paths.work_dir=$WORK" --set tracking.enabled=false --set sasrec.max_minutes="$EMBED_MINUTES"
   ${EXTRA_SET[@]+"${EXTRA_SET[@]}"})
if [ "$STEPS" != 0 ]; then S+=(--set train.max_steps="$STEPS" --set train.max_minutes=0); fi
t0=$SECONDS
stamp() { echo "[$(( (SECONDS - t0) / 60 )) min] $*"; }

variant_sets() {
  case "$1" in
    rqvae)        echo "" ;;
    rqvae_align)  echo "--set quantize.align_weight=$ALIGN_WEIGHT --set quantize.align_backbone=$ALIGN_BACKBONE" ;;
    noae)         echo "--set quantize.autoencoder=false" ;;
    noae_align)   echo "--set quantize.autoencoder=false --set quantize.align_weight=$ALIGN_WEIGHT --set quantize.align_backbone=$ALIGN_BACKBONE" ;;
    noae_cosine)  echo "--set quantize.autoencoder=false --set quantize.distance=cosine" ;;
    *) echo "unknown variant $1 (rqvae rqvae_align noae noae_align noae_cosine)" >&2; exit 2 ;;
  esac
}

stamp "ingest, split, embed ($DATA)"
[ -f "$WORK/embed/item_emb.npy" ] || { "$LCREC" ingest "${S[@]}" && "$LCREC" split "${S[@]}" && "$LCREC" embed "${S[@]}"; }
if [ "$TRAIN" = 1 ] && [ ! -f "$WORK/baselines/metrics.json" ]; then stamp "baselines"; "$LCREC" baselines "${S[@]}"; fi
for v in $VARIANTS; do
  if [ -f "$WORK/evaluate_$v/metrics.json" ]; then stamp "$v: kept"; continue; fi
  # shellcheck disable=SC2046
  D=(--set "paths.dirs.index=$WORK/index_$v" $(variant_sets "$v"))
  stamp "quantize $v"; "$LCREC" quantize "${S[@]}" "${D[@]}" > /dev/null
  if [ "$TRAIN" = 1 ]; then
    D+=(--set "paths.dirs.tasks=$WORK/tasks_$v" --set "paths.dirs.train=$WORK/train_$v" --set "paths.dirs.evaluate=$WORK/evaluate_$v")
    stamp "tasks, train, evaluate $v"
    "$LCREC" tasks "${S[@]}" "${D[@]}" > /dev/null && "$LCREC" train "${S[@]}" "${D[@]}" > /dev/null && \
      "$LCREC" evaluate "${S[@]}" "${D[@]}" --set evaluate.title_items=100 > /dev/null
  fi
done
stamp "done"
WORK="$WORK" VARIANTS="$VARIANTS" BENCH="$(dirname "$0")" python - <<'EOF'
import json, os, sys
from pathlib import Path
sys.path.insert(0, os.environ["BENCH"])
from recipe_sweep_report import against, per_prompt
work = Path(os.environ["WORK"])
cols = ["reconstruction_mse", "utilisation_a", "perplexity_a", "nn_first_code_agreement", "collision_rate"]
print("| variant | " + " | ".join(cols) + " | steps | valid NDCG@10 | test NDCG@10 | test MRR@10 | test vs first (paired SE) |")
print("|---" * (len(cols) + 6) + "|")
first = None
for v in os.environ["VARIANTS"].split():
    m = json.loads((work / f"index_{v}" / "report.json").read_text())["metrics"]
    row = [f"{m[c]:.4f}" if isinstance(m.get(c), float) else str(m.get(c)) for c in cols]
    ev = work / f"evaluate_{v}" / "metrics.json"
    if ev.exists():
        e = json.loads(ev.read_text())
        steps = json.loads((work / f"train_{v}" / "train_metrics.json").read_text())["steps"]
        test, valid = e["seq"]["mean"], e.get("valid", {})
        ranks = per_prompt(work / f"evaluate_{v}" / "ranks.jsonl")
        first = first if first is not None else ranks
        versus = against(ranks, first)
        row += [str(steps), f"{valid.get('ndcg@10', float('nan')):.4f}", f"{test['ndcg@10']:.4f}",
                f"{test['mrr@10']:.4f}", versus]
    else:
        row += ["-"] * 5
    print(f"| {v} | " + " | ".join(row) + " |")
EOF
