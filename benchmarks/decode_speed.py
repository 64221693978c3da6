"""Decode speed: our trie beam search vs HF generate (true trie, batch 1) vs the reference per-position decode.

Builds a SmolLM2-135M-shaped random Llama from a config (hidden 576, 30 layers, 9 heads / 3 KV heads, vocab
49152 + 1024 code tokens, tied embeddings), random ~160-token prompts and a random index of 3,706 items x 4 codes
(level l, code k -> token 49152 + 256 l + k), then measures in one run, on the same model and prompts:

- ours: :func:`lcrec.decode.beam_search.trie_beam_search` (batched, one prefill per user), per KV mode and per
  batch size (peak GPU memory per batch size on cuda);
- HF generate + true-trie ``prefix_allowed_tokens_fn``, batch 1 (on ``--ref-users`` users);
- the reference-style decode (per-position token sets, batch 1, EOS step) on the same ``--ref-users`` users;

and prints users/s, the speed ratios, invalid-item counts, and top-K agreement of ours with HF + true trie in
fp32 (``--agree-users`` users; the model is cast to fp32 for that check whatever ``--dtype`` is).

    python benchmarks/decode_speed.py --device cuda --users 512 --beam 20 --topk 20 --batch 64
    python benchmarks/decode_speed.py --device cpu --layers 2 --users 64 --ref-users 8   # a 2-core CPU

Weights are random, so only speed and agreement mean anything here, not the recommendations.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BASE_VOCAB = 49152


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--users", type=int, default=512, help="prompts decoded by our beam search")
    p.add_argument("--beam", type=int, default=20)
    p.add_argument("--topk", type=int, default=20)
    p.add_argument("--batch", type=int, default=64, help="users per batch (the headline figure)")
    p.add_argument(
        "--batch-sizes", default="", help="comma list of extra batch sizes to time (peak memory each), e.g. 32,128,256"
    )
    p.add_argument("--kv-modes", default="shared,expand", help="comma list of kv modes of our search to time")
    p.add_argument("--layers", type=int, default=30, help="decoder layers (30 = SmolLM2-135M; fewer on a CPU)")
    p.add_argument("--items", type=int, default=3706)
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--codebook", type=int, default=256)
    p.add_argument("--prompt-len", type=int, default=160, help="mean prompt length (+-10 tokens)")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16"], default="auto", help="auto: bf16 on cuda, fp32 on cpu")
    p.add_argument("--ref-users", type=int, default=0, help="users for the batch-1 HF baselines (0: min(users, 64))")
    p.add_argument("--agree-users", type=int, default=0, help="users for the fp32 agreement check (0: ref users)")
    p.add_argument("--init-std", type=float, default=0.02, help="initializer_range of the random model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="", help="write the results as JSON here")
    return p.parse_args(argv)


def build_model(args: argparse.Namespace):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(args.seed)
    cfg = LlamaConfig(
        vocab_size=BASE_VOCAB + args.levels * args.codebook,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=args.layers,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=2048,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        initializer_range=args.init_std,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        attn_implementation="sdpa",
    )
    return LlamaForCausalLM(cfg).eval()


def build_index(args: argparse.Namespace) -> dict[str, tuple[int, ...]]:
    rng = random.Random(args.seed)
    seen: set[tuple[int, ...]] = set()
    codes: dict[str, tuple[int, ...]] = {}
    while len(codes) < args.items:
        code = tuple(BASE_VOCAB + lvl * args.codebook + rng.randrange(args.codebook) for lvl in range(args.levels))
        if code not in seen:
            seen.add(code)
            codes[str(len(codes))] = code
    return codes


def build_prompts(args: argparse.Namespace, n: int) -> list[list[int]]:
    rng = random.Random(args.seed + 1)
    return [
        [rng.randrange(3, BASE_VOCAB) for _ in range(args.prompt_len + rng.randint(-10, 10))] for _ in range(n)
    ]


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def timed(device: str, fn):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    import torch

    from lcrec.decode.beam_search import DecodeResult, trie_beam_search
    from lcrec.decode.trie import CodeTrie
    from lcrec.testing.hf_generate import hf_trie_generate, reference_generate

    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is visible to torch; use --device cpu")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}.get(args.dtype)
    if dtype is None:
        dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    ref_users = args.ref_users or min(args.users, 64)
    agree_users = args.agree_users or ref_users
    torch.set_grad_enabled(False)

    t0 = time.perf_counter()
    model = build_model(args).to(args.device, dtype)
    codes = build_index(args)
    trie = CodeTrie.from_sequences(codes)
    prompts = build_prompts(args, max(args.users, ref_users, agree_users))
    setup_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model: {args.layers} layers, {n_params / 1e6:.1f} M params, {str(dtype).split('.')[-1]} on {args.device}; "
        f"index: {len(trie)} items x {args.levels} codes; prompts ~{args.prompt_len} tokens; "
        f"beam {args.beam}, top-{args.topk}; setup {setup_s:.1f} s",
        flush=True,
    )
    if args.device == "cuda":
        print(f"device: {torch.cuda.get_device_name()}", flush=True)

    def count_invalid(result) -> int:
        return sum(1 for recs in result.recommendations for r in recs if not r.items)

    results: dict = {"args": vars(args), "dtype": str(dtype), "ours": []}
    batch_sizes = [args.batch] + [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    modes = [m.strip() for m in args.kv_modes.split(",") if m.strip()]
    users = prompts[: args.users]
    # warm-up (kernels, allocator) on one batch
    trie_beam_search(model, trie, users[: args.batch], args.beam, args.topk, args.batch)
    kept: dict = {}  # the first timed result, reused for the agreement check when it ran in fp32
    for mode in modes:
        for bs in batch_sizes:
            if args.device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            res, secs = timed(
                args.device, lambda bs=bs, mode=mode: trie_beam_search(model, trie, users, args.beam, args.topk, bs, mode)
            )
            row = {
                "kv_mode": mode,
                "batch": bs,
                "users": len(users),
                "seconds": secs,
                "users_per_s": len(users) / secs,
                "invalid": count_invalid(res),
                "returned": sum(len(r) for r in res.recommendations),
            }
            if args.device == "cuda":
                row["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
            results["ours"].append(row)
            kept.setdefault("ours", res)
            mem = f", peak GPU {row['peak_gpu_mib']:.0f} MiB" if "peak_gpu_mib" in row else ""
            print(
                f"ours  kv={mode:6s} batch {bs:4d}: {row['users_per_s']:9.1f} users/s ({secs:.2f} s for {len(users)}), "
                f"invalid {row['invalid']}/{row['returned']}{mem}",
                flush=True,
            )

    ref_prompts = prompts[:ref_users]
    hf, hf_s = timed(args.device, lambda: hf_trie_generate(model, trie, ref_prompts, args.beam, args.topk))
    ref, ref_s = timed(args.device, lambda: reference_generate(model, trie, ref_prompts, args.beam, args.topk))
    results["hf_trie"] = {
        "users": ref_users,
        "seconds": hf_s,
        "users_per_s": ref_users / hf_s,
        "invalid": count_invalid(hf),
        "returned": sum(len(r) for r in hf.recommendations),
    }
    results["reference"] = {
        "users": ref_users,
        "seconds": ref_s,
        "users_per_s": ref_users / ref_s,
        "invalid": ref.invalid_count,
        "returned": ref.total_count,
    }
    print(
        f"HF generate + true trie, batch 1: {ref_users / hf_s:9.2f} users/s ({hf_s:.1f} s for {ref_users}), "
        f"invalid {results['hf_trie']['invalid']}/{results['hf_trie']['returned']}",
        flush=True,
    )
    print(
        f"reference (per-position sets), batch 1: {ref_users / ref_s:9.2f} users/s ({ref_s:.1f} s for {ref_users}), "
        f"invalid {ref.invalid_count}/{ref.total_count} ({100 * ref.invalid_count / max(ref.total_count, 1):.1f} %)",
        flush=True,
    )
    head = next(r for r in results["ours"] if r["batch"] == args.batch)
    best = max(results["ours"], key=lambda r: r["users_per_s"])
    results["ratio_vs_hf_trie"] = head["users_per_s"] / results["hf_trie"]["users_per_s"]
    results["ratio_vs_reference"] = head["users_per_s"] / results["reference"]["users_per_s"]
    print(
        f"ratio ours(kv={head['kv_mode']}, batch {args.batch}) / HF+trie = {results['ratio_vs_hf_trie']:.1f}x, "
        f"/ reference = {results['ratio_vs_reference']:.1f}x; best ours: kv={best['kv_mode']} batch {best['batch']} "
        f"{best['users_per_s']:.1f} users/s",
        flush=True,
    )

    # fp32 agreement: same prompts, ours vs HF generate + true trie (the timed results when those were fp32)
    agree_prompts = prompts[:agree_users]
    if dtype == torch.float32 and agree_users <= min(ref_users, len(users)):
        ours32 = DecodeResult(kept["ours"].recommendations[:agree_users])
        hf32 = DecodeResult(hf.recommendations[:agree_users])
    else:
        model32 = model.float()
        ours32 = trie_beam_search(model32, trie, agree_prompts, args.beam, args.topk, args.batch, modes[0])
        hf32 = hf_trie_generate(model32, trie, agree_prompts, args.beam, args.topk)
    same_lists = same_sets = 0
    max_diff = 0.0
    for a, b in zip(ours32.recommendations, hf32.recommendations, strict=True):
        same_lists += [r.code for r in a] == [r.code for r in b]
        same_sets += {r.code for r in a} == {r.code for r in b}
        common = {r.code: r.score for r in a}
        for r in b:
            if r.code in common:
                max_diff = max(max_diff, abs(common[r.code] - r.score))
    results["agreement_fp32"] = {
        "users": agree_users,
        "identical_top_k_lists": same_lists,
        "identical_top_k_sets": same_sets,
        "max_abs_score_diff": max_diff,
    }
    print(
        f"fp32 agreement with HF generate + true trie on {agree_users} users: identical top-{args.topk} lists "
        f"{same_lists}/{agree_users}, identical sets {same_sets}/{agree_users}, max |score diff| {max_diff:.2e}",
        flush=True,
    )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
