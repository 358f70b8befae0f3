"""Train the shipped SAE: a TopK sparse autoencoder (EleutherAI ``sparsify``'s ``SparseCoder``)
on ``lenscope-gelu-1l``'s MLP post-activations over the default models' training split.

    python scripts/train_default_sae.py --steps 3000

writes ``python/lenscope/models/saes/lenscope-gelu-1l-mlp-topk/``: the ``sparsify`` layout
(``blocks.0.mlp.hook_post/{cfg.json,sae.safetensors}``, float16 so the folder stays under
10 MB), ``lenscope.json`` (which model it reads), ``metrics.json`` and ``SAE_CARD.md`` with
its numbers on the held-out files (``lenscope.sae_metrics``).

Training follows ``sparsify``'s own ``Trainer`` for the ``fvu`` loss: the decoder bias starts at
the first batch's mean, decoder rows are kept unit-norm with the gradient's parallel part
removed, and dead latents (no firing for ``--dead-tokens`` tokens) get the AuxK loss. Its
``Trainer`` hooks Hugging Face modules by name, which a native TransformerLens model has none
of, so the loop is written out here around the library's ``SparseCoder``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from lenscope.models.heldout import eval_windows, token_stream
from lenscope.models.registry import load_model
from lenscope.models.stdlib_corpus import split_files
from lenscope.sae import load_sae
from lenscope.sae_metrics import sae_metrics

MODEL = "lenscope-gelu-1l"
HOOK = "blocks.0.mlp.hook_post"
NAME = "lenscope-gelu-1l-mlp-topk"
OUT = Path(__file__).resolve().parents[1] / "python" / "lenscope" / "models" / "saes" / NAME

CARD = """# {name}

A TopK sparse autoencoder on `{model}`'s MLP post-activations (`{hook}`), shipped so that
lenscope's SAE features work offline. Trained with EleutherAI `sparsify` {sparsify_version}'s
`SparseCoder` (see `scripts/train_default_sae.py`); stored in `sparsify`'s on-disk format.

| | |
|---|---|
| input | `{hook}`, d_in {d_in} |
| features | {d_sae} (TopK, k = {k}) |
| stored as | float16 ({size_mb:.1f} MB) |
| training data | {steps} steps of {batch} windows x {body} tokens ({tokens:,} activations, {epochs:.1f} epochs) |
| optimiser | Adam lr {lr:.2e}, AuxK alpha {auxk_alpha} |
| training time | {train_seconds:.0f} s wall-clock, {threads} CPU thread(s), on a machine busy with other work |

Measured on the held-out files (`../../default/held_out_files.txt`, {eval_tokens:,} tokens; the
BOS position is neither counted nor spliced):

| | |
|---|---|
| L0 (active features per token) | {l0:.2f} |
| explained variance | {explained_variance:.3f} |
| dead features (never fire on held-out) | {dead_share:.1%} |
| loss, clean | {loss_clean:.4f} nats |
| loss, reconstruction spliced in | {loss_spliced:.4f} nats (+{loss_increase:.4f}) |
| loss, MLP zero-ablated | {loss_zero_ablated:.4f} nats |
| loss recovered | {loss_recovered:.1%} |

Why 2,048 features and not 4,096: encoder and decoder are two `d_in x d_sae` matrices, and at
4,096 features they take 16 MB even in float16, over the 10 MB the package allows an SAE.
`tests/core/test_sae.py` re-measures L0, explained variance and the loss increase of these
weights and compares them with `metrics.json`. python {python}, torch {torch}.
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8, help="windows per step")
    ap.add_argument("--latents", type=int, default=2048)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--auxk-alpha", type=float, default=1 / 32)
    ap.add_argument("--dead-tokens", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--eval-windows", type=int, default=None, help="held-out windows to measure (default: all)")
    args = ap.parse_args()
    import sparsify
    from sparsify import SparseCoder, SparseCoderConfig

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = load_model(MODEL)
    tok = model.tokenizer
    bos = tok.bos_token_id
    split = split_files()

    def encode(text: str) -> list[int]:
        return tok(text, add_special_tokens=False)["input_ids"]

    train = token_stream(encode, split.root, split.train, bos)
    n_ctx = int(model.cfg.n_ctx)
    body = n_ctx - 1
    d_in = int(model.cfg.d_mlp)
    cfg = SparseCoderConfig(activation="topk", num_latents=args.latents, k=args.k, normalize_decoder=True)
    sae = SparseCoder(d_in, cfg)
    lr = args.lr or 2e-4 / (args.latents / 2**14) ** 0.5  # sparsify's default for Adam
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    since_fired = torch.zeros(args.latents, dtype=torch.int64)
    gen = np.random.default_rng(args.seed)
    grabbed: list[torch.Tensor] = []
    start = time.time()
    for step in range(args.steps):
        idx = gen.integers(0, len(train) - body, size=args.batch)
        x = torch.cat([torch.full((args.batch, 1), bos), torch.from_numpy(np.stack([train[i : i + body] for i in idx]))], dim=1)
        grabbed.clear()
        with torch.inference_mode():
            model.run_with_hooks(x, fwd_hooks=[(HOOK, lambda a, hook: grabbed.append(a[:, 1:].reshape(-1, d_in).float()))])
        acts = grabbed[0].clone()  # out of inference mode: it feeds autograd
        if step == 0:
            sae.b_dec.data = acts.mean(0)
        sae.set_decoder_norm_to_unit_norm()
        dead = since_fired > args.dead_tokens
        out = sae(acts, dead_mask=dead if args.auxk_alpha > 0 else None)
        loss = out.fvu + args.auxk_alpha * out.auxk_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        with torch.no_grad():
            did = torch.zeros(args.latents, dtype=torch.bool)
            did[out.latent_indices.flatten()] = True
            since_fired += acts.shape[0]
            since_fired[did] = 0
        if step % 100 == 0 or step == args.steps - 1:
            print(
                f"  step {step:5d}/{args.steps} fvu {float(out.fvu):.4f} "
                f"dead {float(dead.float().mean()):.3f} {time.time() - start:6.0f}s",
                flush=True,
            )
    train_seconds = time.time() - start
    sae.set_decoder_norm_to_unit_norm()

    out_dir: Path = args.out
    sae.to(torch.float16).save_to_disk(out_dir / HOOK)
    (out_dir / "lenscope.json").write_text(json.dumps({"name": NAME, "model": MODEL, "hook_point": HOOK}, indent=2) + "\n")
    loaded = load_sae(out_dir / HOOK, name=NAME)
    held = token_stream(encode, split.root, split.held_out, bos)
    windows = eval_windows(held, n_ctx, bos)[: args.eval_windows]
    metrics = {k: round(v, 5) if isinstance(v, float) else v for k, v in sae_metrics(model, loaded, windows).items()}
    size = sum(p.stat().st_size for p in (out_dir / HOOK).iterdir())
    record = {
        "name": NAME,
        "model": MODEL,
        "hook_point": HOOK,
        "d_in": d_in,
        "d_sae": args.latents,
        "k": args.k,
        "held_out": metrics,
        "training": {
            "steps": args.steps,
            "batch": args.batch,
            "body": body,
            "tokens": args.steps * args.batch * body,
            "lr": lr,
            "auxk_alpha": args.auxk_alpha,
            "dead_tokens": args.dead_tokens,
            "seed": args.seed,
            "threads": args.threads,
            "train_seconds": round(train_seconds, 1),
        },
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sparsify": getattr(sparsify, "__version__", "1.3.3"),
        "bytes": size,
    }
    (out_dir / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    t = record["training"]
    card = CARD.format(
        name=NAME, model=MODEL, hook=HOOK, sparsify_version=record["sparsify"], d_in=d_in, d_sae=args.latents, k=args.k,
        size_mb=size / 2**20, epochs=t["tokens"] / len(train), eval_tokens=metrics["tokens"], python=record["python"],
        torch=record["torch"],
        **{k: t[k] for k in ("steps", "batch", "body", "tokens", "lr", "auxk_alpha", "train_seconds", "threads")},
        **{k: v for k, v in metrics.items() if k != "tokens"},
    )  # fmt: skip
    (out_dir / "SAE_CARD.md").write_text(card)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
