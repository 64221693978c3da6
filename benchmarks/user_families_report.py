"""The table of benchmarks/user_families.sh: reads WORK/base and WORK/user (env WORK) and prints markdown."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from statistics import fmean

from lcrec.evaluate.metrics import ndcg_at_k
from lcrec.evaluate.user_tasks import paired


def per_user(path: Path, pool: str) -> dict[str, float]:
    """Per user, NDCG@10 averaged over the ``pool``'s wordings in ranks.jsonl."""
    scores: dict[str, list[float]] = defaultdict(list)
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if r["template"].rpartition("/")[0] == pool:
            scores[str(r["user_id"])].append(ndcg_at_k(r["rank"], 10))
    return {u: fmean(v) for u, v in scores.items()}


def main() -> None:
    work = Path(os.environ.get("WORK", "/tmp/lcrec-users"))
    base_m = json.loads((work / "base" / "evaluate" / "metrics.json").read_text())
    user_m = json.loads((work / "user" / "evaluate" / "metrics.json").read_text())
    trains = {a: json.loads((work / a / "train" / "train_metrics.json").read_text()) for a in ("base", "user")}
    base = per_user(work / "base" / "evaluate" / "ranks.jsonl", "seqall")
    with_user = per_user(work / "user" / "evaluate" / "ranks.jsonl", "useq")
    without = per_user(work / "user" / "evaluate" / "ranks.jsonl", "seqall")
    users = sorted(set(base) & set(with_user) & set(without))
    b = [base[u] for u in users]
    print(f"{len(users)} test users; steps base {trains['base']['steps']}, user {trains['user']['steps']}; train "
          f"minutes base {trains['base']['train_runtime_s'] / 60:.1f}, user {trains['user']['train_runtime_s'] / 60:.1f}")
    print("| model | prompt | NDCG@10 | vs base (paired SE) |\n|---|---|---|---|")
    print(f"| base ({', '.join(trains['base']['families'])}) | history | {fmean(b):.4f} | - |")
    for name, scores in (("user's code + history", with_user), ("history only", without)):
        a = [scores[u] for u in users]
        d = paired(a, b)
        print(f"| + useq, user | {name} | {fmean(a):.4f} | {d['diff']:+.4f} ({d['se']:.4f}), "
              f"{100 * d['diff'] / fmean(b):+.1f}% |")
    pred = user_m.get("user_prediction")
    if pred:
        print(f"user prediction ({pred['rows']} test users, {pred['users']} candidates): NDCG@10 "
              f"{pred['model']['ndcg@10']:.4f} HR@10 {pred['model']['hr@10']:.4f}; most active users NDCG@10 "
              f"{pred['most_active']['ndcg@10']:.4f} HR@10 {pred['most_active']['hr@10']:.4f}")
    rating = user_m.get("rating")
    if rating:
        print(f"rating ({rating['rows']} test users): RMSE / MAE expected stars {rating['expected']['rmse']:.4f} / "
              f"{rating['expected']['mae']:.4f}, most likely {rating['most_likely']['rmse']:.4f} / "
              f"{rating['most_likely']['mae']:.4f}, user mean {rating['user_mean']['rmse']:.4f} / "
              f"{rating['user_mean']['mae']:.4f}")
    print(f"base seq mean NDCG@10 {base_m['seq']['mean']['ndcg@10']:.4f}")


if __name__ == "__main__":
    main()
