"""Item-indexing benchmarks: collisions, utilisation, meaningfulness and time of embed + quantize + assign.

    # MovieLens-1M (needs `lcrec ingest/split --set data.source=ml-1m --set paths.work_dir=/tmp/ml1m` first)
    python benchmarks/index_bench.py ml1m --work-dir /tmp/ml1m [--device cuda] [--epochs 200]
    # synthetic catalogues (dim 384): train on a sample, assign every item
    python benchmarks/index_bench.py scale --items 100000 1000000 [--device cuda]
    # incremental: add 10k new items to a 1M-item index with the frozen quantizer
    python benchmarks/index_bench.py incremental --base 1000000 --add 10000

Every run prints one JSON line per measurement (and appends it to --out when given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lcrec.config import EmbedConfig, QuantizeConfig, load_params  # noqa: E402


def _emit(row: dict, out: str | None) -> None:
    row = {"machine": f"{platform.node()} ({os.cpu_count()} cpu)", **row}
    line = json.dumps(row, default=lambda v: round(v, 4) if isinstance(v, float) else str(v))
    print(line, flush=True)
    if out:
        with open(out, "a") as fh:
            fh.write(line + "\n")


NOISE = 0.3


def synthetic(n: int, dim: int = 384, clusters: int = 2000, seed: int = 0) -> np.ndarray:
    """Unit vectors around ``clusters`` random centres (a catalogue with topical structure), float32."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for i in range(0, n, 100_000):
        m = min(100_000, n - i)
        x = centres[rng.integers(0, clusters, m)] + NOISE * rng.standard_normal((m, dim), dtype=np.float32)
        out[i : i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def bench_ml1m(args) -> None:
    from lcrec.embed.embed import do_embed, read_embeddings
    from lcrec.quantize.quantize import do_quantize

    params = load_params(None, [f"paths.work_dir={args.work_dir}"])
    items_path = params.paths.step("split") / "items.parquet"
    embed_dir, index_dir = params.paths.step("embed"), params.paths.step("index")
    import pandas as pd

    items = pd.read_parquet(items_path)
    t0 = time.perf_counter()
    if args.reuse_embeddings and (embed_dir / "item_emb.npy").exists():
        emb_stats = {"seconds": None, "reused": True}
    else:
        emb_stats = do_embed(EmbedConfig(device=args.device), items, embed_dir)
    t_embed = time.perf_counter() - t0
    emb, ids, meta = read_embeddings(embed_dir)
    cfg = QuantizeConfig(epochs=args.epochs, device=args.device, threads=args.threads)
    t0 = time.perf_counter()
    stats = do_quantize(cfg, emb, ids, index_dir, meta)
    _emit({
        "bench": "ml1m", "device": args.device, "items": len(ids), "dim": int(emb.shape[1]), "epochs": args.epochs,
        "embed_s": emb_stats.get("seconds") or t_embed, "train_s": stats["train_seconds"],
        "assign_s": stats["assign_seconds"], "quantize_total_s": time.perf_counter() - t0,
        **{k: v for k, v in stats.items() if k.startswith(("collision", "utilisation", "perplexity", "nn_", "moved", "left", "reconstruction"))},
    }, args.out)


def _train_assign(emb: np.ndarray, cfg: QuantizeConfig, out_dir: Path, nn_sample: int):
    from lcrec.quantize.quantize import do_quantize

    t0 = time.perf_counter()
    stats = do_quantize(cfg, emb, [str(i) for i in range(len(emb))], out_dir, progress=False, nn_sample=nn_sample)
    return stats, time.perf_counter() - t0


def _scale_cfg(args) -> QuantizeConfig:
    return QuantizeConfig(epochs=args.epochs, train_sample=args.train_sample, device=args.device, threads=args.threads,
                          sk_rounds=args.sk_rounds)


def bench_scale(args) -> None:
    for n in args.items:
        emb = synthetic(n)
        with tempfile.TemporaryDirectory() as tmp:
            stats, total = _train_assign(emb, _scale_cfg(args), Path(tmp), args.nn_sample)
        _emit({
            "bench": "scale", "device": args.device, "items": n, "train_sample": min(n, args.train_sample),
            "epochs": args.epochs, "train_s": stats["train_seconds"], "assign_s": stats["assign_seconds"],
            "total_s": total, **{k: v for k, v in stats.items() if k.startswith(("collision", "utilisation", "nn_", "moved", "left"))},
        }, args.out)
        del emb


def bench_incremental(args) -> None:
    from lcrec.quantize.assign import OccupiedCodes, code_keys
    from lcrec.quantize.incremental import assign_new_codes
    from lcrec.quantize.index_file import read_index
    from lcrec.quantize.rqvae import load_quantizer

    emb = synthetic(args.base + args.add)
    base, new = emb[: args.base], emb[args.base :]
    with tempfile.TemporaryDirectory() as tmp:
        _train_assign(base, _scale_cfg(args), Path(tmp), 0)
        index = read_index(tmp)
        quantizer = load_quantizer(Path(tmp) / "quantizer.pt")
    k = index.codebook_size
    before = index.codes.copy()
    import torch

    torch.set_num_threads(args.threads or torch.get_num_threads())
    quantizer.latents(new[:16])  # warm the encoder once (first-call allocations)
    t0 = time.perf_counter()
    occupied = OccupiedCodes.from_codes(index.codes, k)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    codes = assign_new_codes(new, quantizer, occupied)
    t_add = time.perf_counter() - t0
    t0 = time.perf_counter()
    codes_again = assign_new_codes(new, quantizer, index.codes)  # from a plain array: builds the set inside
    t_add_cold = time.perf_counter() - t0
    all_keys = np.concatenate([code_keys(index.codes, k), code_keys(codes, k)])
    _emit({
        "bench": "incremental", "base_items": args.base, "added": args.add, "build_occupied_s": t_build,
        "add_s_with_prebuilt_set": t_add, "add_s_from_codes_array": t_add_cold,
        "collisions": int(len(all_keys) - len(np.unique(all_keys))),
        "existing_changed": int((index.codes != before).any(axis=1).sum()),
        "new_vs_cold_equal": bool(np.array_equal(codes, codes_again)),
    }, args.out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="bench", required=True)
    for name in ("ml1m", "scale", "incremental"):
        s = sub.add_parser(name)
        s.add_argument("--device", default="cpu", help="cpu | cuda")
        s.add_argument("--threads", type=int, default=1, help="torch CPU threads while training (0 = default)")
        s.add_argument("--out", default=None, help="append JSON lines here")
        if name == "ml1m":
            s.add_argument("--work-dir", default="/tmp/ml1m")
            s.add_argument("--epochs", type=int, default=200)
            s.add_argument("--reuse-embeddings", action="store_true")
        else:
            s.add_argument("--epochs", type=int, default=3)
            s.add_argument("--train-sample", type=int, default=50_000)
            # incremental: the base index is only the occupied set; building it without Sinkhorn rounds saves minutes
            s.add_argument("--sk-rounds", type=int, default=20 if name == "scale" else 0)
        if name == "scale":
            s.add_argument("--items", type=int, nargs="+", default=[100_000, 1_000_000])
            s.add_argument("--nn-sample", type=int, default=100)
        if name == "incremental":
            s.add_argument("--base", type=int, default=1_000_000)
            s.add_argument("--add", type=int, default=10_000)
    args = p.parse_args(argv)
    {"ml1m": bench_ml1m, "scale": bench_scale, "incremental": bench_incremental}[args.bench](args)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
