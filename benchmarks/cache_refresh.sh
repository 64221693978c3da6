#!/usr/bin/env bash
# The cache-topk step's refresh on a trained work folder (`make demo` leaves one: MovieLens-100K, 943 users):
#   1. a full pass (every user decoded),
#   2. a second pass with nothing changed (every row kept, nothing pushed),
#   3. a re-index of NEW new items (re-releases of catalogue films), then a pass that merges them into the rows
#      they can enter, and a full pass on the new index as the reference: the merged rows must equal it.
# Prints rows kept / merged / recomputed and seconds of each pass, and the merged-vs-full agreement.
#   WORK=work REPO=feature_repo NEW=10 bash benchmarks/cache_refresh.sh
set -euo pipefail
WORK=${WORK:-work}
REPO=${REPO:-feature_repo}
NEW=${NEW:-10}
OUT=${OUT:-$WORK/cache_bench}
LCREC=${LCREC:-lcrec}
mkdir -p "$OUT"
S=(--set "paths.work_dir=$WORK" --set "paths.feature_repo=$REPO" --set tracking.enabled=false)

"$LCREC" cache-topk "${S[@]}" --full >"$OUT/1_full.json"
"$LCREC" cache-topk "${S[@]}" >"$OUT/2_unchanged.json"
python - "$WORK" "$NEW" "$OUT/new_items.csv" <<'PY'
import sys

import pandas as pd

work, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
items = pd.read_parquet(f"{work}/split/items.parquet").head(n)
pd.DataFrame({"item_id": [f"rerelease-{i}" for i in items["item_id"]],
              "title": [f"{t} (re-release)" for t in items["title"]],
              "text": items["text"] if "text" in items else items["title"]}).to_csv(out, index=False)
PY
"$LCREC" reindex "${S[@]}" --items "$OUT/new_items.csv" >"$OUT/reindex.json"
"$LCREC" cache-topk "${S[@]}" >"$OUT/3_merged.json"
python - "$REPO" "$WORK" "$OUT/merged_rows.json" <<'PY'
import json, sys

import pandas as pd

from lcrec.features.store import get_topk, open_store

repo, work, out = sys.argv[1:4]
users = [str(u) for u in pd.read_parquet(f"{work}/split/sequences.parquet")["user_id"]]
rows = get_topk(open_store(repo), users)
json.dump({u: r["item_ids"] for u, r in rows.items() if r}, open(out, "w"))
PY
"$LCREC" cache-topk "${S[@]}" --full >"$OUT/4_full_after.json"
python - "$REPO" "$WORK" "$OUT" <<'PY'
import json, sys

import pandas as pd

from lcrec.features.store import get_topk, open_store

repo, work, out = sys.argv[1:4]
users = [str(u) for u in pd.read_parquet(f"{work}/split/sequences.parquet")["user_id"]]
full = {u: r["item_ids"] for u, r in get_topk(open_store(repo), users).items() if r}
merged = json.load(open(f"{out}/merged_rows.json"))
same = sum(merged.get(u) == full[u] for u in full)
new = sum(any(i.startswith("rerelease-") for i in full[u]) for u in full)
print("| pass | users | kept | merged (with a new item) | decoded | rows pushed | seconds |")
print("|---|---|---|---|---|---|---|")
for name in ("1_full", "2_unchanged", "3_merged", "4_full_after"):
    s = json.load(open(f"{out}/{name}.json"))
    print(f"| {name} | {s['users']:,} | {s['kept']:,} | {s['merged']:,} ({s['merged_with_new_items']:,}) | "
          f"{s['recomputed']:,} | {s['pushed']:,} | {s['seconds']:.1f} |")
print(f"\nmerged rows equal to decoding again on the new index: {same:,} of {len(full):,} users; "
      f"rows holding a new item: {new:,}")
PY
