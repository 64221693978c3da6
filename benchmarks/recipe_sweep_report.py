"""The table of benchmarks/recipe_sweep.sh: one row per recipe folder under SWEEP (argv[1]), in argv[2:] order.

Test NDCG@10 is compared with the first recipe's, paired per (user, wording) over the prompts both scored."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import fmean

from lcrec.evaluate.metrics import ndcg_at_k
from lcrec.evaluate.user_tasks import paired


def per_prompt(path: Path) -> dict[tuple[str, str], float]:
    rows = (json.loads(line) for line in path.read_text().splitlines())
    return {(str(r["user_id"]), r["template"]): ndcg_at_k(r["rank"], 10) for r in rows}


def against(ranks: dict[tuple[str, str], float], first: dict[tuple[str, str], float]) -> str:
    """``+diff (SE)`` of mean NDCG@10 against ``first``, paired over the prompts both scored; ``-`` for itself."""
    if ranks is first:
        return "-"
    keys = sorted(set(first) & set(ranks))
    d = paired([ranks[k] for k in keys], [first[k] for k in keys])
    return f"{d['diff']:+.4f} ({d['se']:.4f})"


def main(sweep: Path, names: list[str]) -> None:
    print("| recipe | train min | steps | best step | valid NDCG@10 | test NDCG@10 | test HR@10 | vs first (paired SE) "
          "| distinct top-1 | top-10 coverage |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    first = None
    for name in names:
        m = json.loads((sweep / name / "evaluate" / "metrics.json").read_text())
        t = json.loads((sweep / name / "train" / "train_metrics.json").read_text())
        ranks = per_prompt(sweep / name / "evaluate" / "ranks.jsonl")
        first = first if first is not None else ranks
        versus = against(ranks, first)
        div = m["seq"]["diversity"]
        valid = m.get("valid", {}).get("ndcg@10", float("nan"))
        print(f"| {name} | {t['train_runtime_s'] / 60:.1f} | {t['steps']} | {t.get('best_checkpoint', '-')} | "
              f"{valid:.4f} | {m['seq']['mean']['ndcg@10']:.4f} | {m['seq']['mean']['hr@10']:.4f} | {versus} | "
              f"{div['distinct_top1']:.0f} | {100 * div['coverage@10']:.1f}% |")
    print(f"test: mean of {m['seq']['templates']} wordings over {m['seq']['users']} users; "
          f"mean test NDCG@10 per recipe {fmean(first.values()):.4f} for the first")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
