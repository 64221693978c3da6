"""Training throughput of the train step: tokens/s and MFU, ours vs a naive reference, in the same run.

    python benchmarks/train_speed.py --device cpu --mode lora --backbone smollm2 --steps 5
    python benchmarks/train_speed.py --device cuda --mode full --backbone smollm2-shape --batch-size 64 --compile

"ours" is what ``lcrec train`` runs: packed rows (no padding), logits and cross-entropy only at response
positions (``logits_to_keep``), bf16 autocast on CUDA, fused AdamW, optional torch.compile.
"reference" is the usual recipe the issue's numbers come from: rows padded to ``--seq``, eager, the model's
own full-vocabulary loss over every position.

Rows: ``--tasks`` (a train.jsonl/parquet written by ``lcrec tasks``, e.g. MovieLens-1M) or synthetic rows shaped
like MovieLens-1M SEQ examples (20-item histories of 4-token codes + the Alpaca prompt, a 4-token answer).
tokens/s counts real (non-padding) tokens. MFU uses the convention of the issue's reference numbers:
6 x all parameters x tokens/s for full fine-tuning (4 x for LoRA: no weight gradients) over the GPU's peak;
"HFU" counts the FLOPs actually executed (the output projection only where logits are computed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def synthetic_rows(n: int, seed: int = 0) -> list[dict]:
    from lcrec.tasks.templates import render_prompt

    rng = random.Random(seed)

    def code():
        return "".join(f"<{lvl}_{rng.randrange(256)}>" for lvl in "abcd")

    rows = []
    for _ in range(n):
        hist = ", ".join(code() for _ in range(rng.randint(5, 20)))
        rows.append({"task": "seq", "instruction": render_prompt(
            f"Here is what a user interacted with, oldest first: {hist}. Predict the item they will choose next."),
            "response": code()})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--mode", choices=["lora", "full"], default="lora")
    ap.add_argument("--backbone", default="smollm2", help="registry name (smollm2-shape needs no wheel)")
    ap.add_argument("--tasks", default="", help="train.jsonl/parquet from `lcrec tasks`; default synthetic rows")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256, help="max length (the reference pads to it)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (compile, allocator)")
    ap.add_argument("--compile", action="store_true", help="torch.compile our variant")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H100 SXM: 989)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default="", help="write the results as JSON here")
    args = ap.parse_args()

    import torch

    from lcrec.config import TrainConfig
    from lcrec.model.code_tokens import code_tokens_from_index
    from lcrec.train.collator import InstructionDataset, PackedCollator, PaddedCollator, read_rows
    from lcrec.train.trainer import build_model, response_loss

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    rows = read_rows(Path(args.tasks)) if args.tasks else synthetic_rows(4096)
    random.Random(0).shuffle(rows)
    tokens = [f"<{lvl}_{k}>" for lvl in "abcd" for k in range(256)]
    if args.tasks and (Path(args.tasks).parent.parent / "index" / "index.json").exists():
        tokens = code_tokens_from_index(Path(args.tasks).parent.parent / "index" / "index.json")
    cfg = TrainConfig(backbone=args.backbone, mode=args.mode, lora_dropout=0.0)
    model, tok, _ = build_model(cfg, tokens)
    model.to(dev).train()
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    n_all = sum(p.numel() for n, p in base.named_parameters() if "lora_" not in n and "trainable_tokens" not in n)
    hc = base.config
    d, layers, vocab = hc.hidden_size, hc.num_hidden_layers, base.get_output_embeddings().weight.shape[0]
    n_nonemb = n_all - vocab * d * (1 if getattr(hc, "tie_word_embeddings", False) else 2)
    ds = InstructionDataset(rows, tok, args.seq, ["seq", "mut", "asy", "ite", "per", "neg"])
    bf16 = dev.type == "cuda"
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, fused=dev.type == "cuda")
    fwd_model = torch.compile(model, dynamic=True) if args.compile else model
    k_factor = 6 if args.mode == "full" else 4

    def run(variant: str) -> dict:
        collate = PackedCollator(args.seq, tok.pad_token_id) if variant == "ours" else PaddedCollator(tok.pad_token_id, pad_to_multiple_of=1)
        times, toks, logit_pos, attn, cursor = [], 0, 0, 0, 0
        for step in range(args.warmup + args.steps):
            ex = [ds[(cursor + i) % len(ds)] for i in range(args.batch_size)]
            cursor += args.batch_size
            lens = [len(e["input_ids"]) for e in ex]
            if variant == "reference":  # every row padded to --seq, as a fixed-shape recipe does
                ex.append({"input_ids": [tok.pad_token_id] * args.seq, "labels": [-100] * args.seq, "task": -1})
            batch = collate(ex)
            if variant == "reference":
                batch = {k: v[:-1] for k, v in batch.items()}
            batch = {k: v.to(dev) for k, v in batch.items()}
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                if variant == "ours":
                    s, n, _, _ = response_loss(fwd_model, batch)
                    loss = s / n
                else:
                    loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                 labels=batch["labels"]).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if step >= args.warmup:
                times.append(time.perf_counter() - t0)
                toks += sum(lens)
                if variant == "ours":
                    logit_pos += int((batch["labels"][:, 1:] != -100).sum())
                    attn += batch["input_ids"].shape[0] * batch["input_ids"].shape[1] ** 2  # masked blocks count
                else:
                    logit_pos += args.seq * len(lens)
                    attn += args.seq * args.seq * len(lens)
        wall = sum(times)
        tps = toks / wall
        computed = toks if variant == "ours" else args.seq * args.batch_size * args.steps
        executed = k_factor * n_nonemb * computed + 6 * d * vocab * logit_pos + k_factor * layers * d * attn
        out = {"variant": variant, "tokens_per_s": tps, "step_s": statistics.median(times),
               "tokens_per_step": toks / args.steps}
        if dev.type == "cuda":
            out["mfu"] = k_factor * n_all * tps / (args.peak_tflops * 1e12)
            out["hfu"] = executed / wall / (args.peak_tflops * 1e12)
            out["max_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
        return out

    results = [run("ours")]
    if not args.no_reference:
        results.append(run("reference"))
    print(f"device={args.device} mode={args.mode} backbone={args.backbone} params={n_all / 1e6:.1f}M "
          f"trainable={sum(p.numel() for p in params) / 1e6:.2f}M batch={args.batch_size} seq<={args.seq} "
          f"rows={'synthetic ML-1M-shaped SEQ' if not args.tasks else args.tasks} threads={torch.get_num_threads()}")
    for r in results:
        extra = f"  MFU {r['mfu']:.1%}  HFU {r['hfu']:.1%}  mem {r['max_mem_gib']:.1f} GiB" if "mfu" in r else ""
        print(f"  {r['variant']:<9} {r['tokens_per_s']:>10,.0f} tokens/s  {r['step_s'] * 1e3:8.1f} ms/step  "
              f"{r['tokens_per_step']:,.0f} tokens/step{extra}")
    if len(results) == 2:
        print(f"  ours / reference: {results[0]['tokens_per_s'] / results[1]['tokens_per_s']:.2f}x tokens/s")
    if args.out:
        setup = {k: v for k, v in vars(args).items() if k != "out"}
        Path(args.out).write_text(json.dumps({"setup": setup, "params": n_all, "results": results}, indent=1))


if __name__ == "__main__":
    main()
