#!/usr/bin/env bash
# Rank mode against generative decoding: the same model, split and test users, one command:
#
#     bash benchmarks/rank_vs_generate.sh [WORK_DIR]                 # default /tmp/lcrec-rank, MovieLens-100K
#     DATA=ml-1m bash benchmarks/rank_vs_generate.sh /tmp/rank1m
#
# params.yaml's recipe with the rank family added (tasks.families + rank; RANK_EXAMPLES training prefixes drawn
# for it; train.max_len 384 holds a whole rank prompt): ingest -> split -> embed -> quantize -> baselines (its SASRec-CE is the retriever) -> tasks -> train ->
# evaluate. evaluate scores both modes on the same test users: generate = trie-constrained beam search over
# the whole catalogue; rank = the retriever's top 20 re-ordered by one forward pass. Prints NDCG@10, MRR@10 and
# users/s of both, the retriever alone and its recall@20. SERVE=1 then serves the trained model (with its
# retriever) and runs benchmarks/serve_latency.py --folder on it: uncached p50/p99 of both modes at
# concurrency 1, 8, 32.
# Knobs: DATA (ml-100k), RANK_EXAMPLES (5000), TRAIN_MINUTES (params.yaml's), SERVE (1), LCREC (lcrec), RUN (the
# steps to run, in order; e.g. RUN="tasks evaluate" re-scores a trained folder after a change to the rank rows).
set -euo pipefail
WORK=${1:-/tmp/lcrec-rank}
DATA=${DATA:-ml-100k}
RANK_EXAMPLES=${RANK_EXAMPLES:-5000}
SERVE=${SERVE:-1}
LCREC=${LCREC:-lcrec}
FAMILIES=$(python -c "import yaml; print(','.join(yaml.safe_load(open('params.yaml'))['tasks']['families'] + ['rank']))")
S=(--set data.source="$DATA" --set "paths.work_dir=$WORK" --set tracking.enabled=false
   --set "tasks.families=[$FAMILIES]" --set tasks.rank.max_examples="$RANK_EXAMPLES" --set train.max_len=384)
[ -n "${TRAIN_MINUTES:-}" ] && S+=(--set train.max_minutes="$TRAIN_MINUTES")
t0=$SECONDS
stamp() { echo "[$(( (SECONDS - t0) / 60 )) min] $*"; }

for step in ${RUN:-ingest split embed quantize baselines tasks train evaluate}; do
  stamp "$step"
  "$LCREC" "$step" "${S[@]}" > "$WORK.$step.log" 2>&1 || { tail -20 "$WORK.$step.log"; exit 1; }
done
stamp "done"
WORK="$WORK" python - <<'EOF'
import json, os
from pathlib import Path
m = json.loads((Path(os.environ["WORK"]) / "evaluate" / "metrics.json").read_text())
seq, rank = m["seq"], m["rank"]
first = next(iter(seq["per_template"]))
gen = seq["per_template"][first]
print(f"test users: {seq['users']} (generate: template {first}; rank: {rank['users']} users, "
      f"{rank['candidates']} candidates, retriever recall@{rank['candidates']} {rank['retriever']['recall']:.4f})")
print("| mode | NDCG@10 | HR@10 | MRR@10 | users/s |\n|---|---|---|---|---|")
print(f"| generate (beam search, whole catalogue) | {gen['ndcg@10']:.4f} | {gen['hr@10']:.4f} | {gen['mrr@10']:.4f} "
      f"| {seq['users_per_s']:.1f} |")
llm = rank.get("llm", {}).get("overall", rank["overall"])
print(f"| rank, LLM letters alone (retriever top {rank['candidates']}, one forward pass) | {llm['ndcg@10']:.4f} | "
      f"{llm['hr@10']:.4f} | {llm['mrr@10']:.4f} | {rank['users_per_s']:.1f} |")
if "weight" in rank:
    o = rank["overall"]
    print(f"| rank, letters + {rank['weight']:g} x retriever prior (decode.rank_retriever_weight) | {o['ndcg@10']:.4f} "
          f"| {o['hr@10']:.4f} | {o['mrr@10']:.4f} | {rank['users_per_s']:.1f} |")
r = rank["retriever"]["overall"]
print(f"| the retriever's own order (SASRec-CE) | {r['ndcg@10']:.4f} | {r['hr@10']:.4f} | {r['mrr@10']:.4f} | - |")
sweep = rank.get("weights", {})
if "valid" in sweep:
    print(f"\nretriever weight sweep ({sweep['valid_users']} valid users; best on valid: {sweep['best_on_valid']:g})")
    print("| weight | valid NDCG@10 | valid MRR@10 | test NDCG@10 | test MRR@10 |\n|---|---|---|---|---|")
    for w in sorted(sweep["test"], key=float):
        v, t = sweep["valid"][w], sweep["test"][w]
        print(f"| {float(w):g} | {v['ndcg@10']:.4f} | {v['mrr@10']:.4f} | {t['ndcg@10']:.4f} | {t['mrr@10']:.4f} |")
if "rank_only" in rank:
    llm_only = rank.get("llm", {}).get("rank_only")
    print(f"rank-only (target among the candidates): rank mode NDCG@10 {rank['rank_only']['ndcg@10']:.4f}"
          + (f", LLM letters alone {llm_only['ndcg@10']:.4f}" if llm_only else "")
          + f", retriever {rank['retriever']['rank_only']['ndcg@10']:.4f}")
EOF
if [ "$SERVE" = 1 ]; then
  stamp "serving folder + serve_latency"
  WORK="$WORK" python - <<'EOF'
import os
import pandas as pd
from pathlib import Path
from lcrec.serve.model_version import build_serving_folder
w = Path(os.environ["WORK"])
items = pd.read_parquet(w / "split" / "items.parquet")[["item_id", "title"]]
build_serving_folder(w / "train" / "model", w / "index", items, w / "serving", retriever_dir=w / "baselines" / "retriever")
EOF
  python benchmarks/serve_latency.py --folder "$WORK/serving" --cached 200 --uncached 32 --load 500 \
    --out "$WORK/serve_latency.json"
fi
