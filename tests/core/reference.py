"""An independent computation of what ``analyze`` reports, straight from TransformerLens.

Deliberately naive: one ``run_with_cache`` over the whole sequence, a full ``log_softmax``, a
full sort of the vocabulary for ranks, and a full sort of all neurons per token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Reference:
    ids: list[int]  # the token ids of the text (after BOS + context)
    context_ids: list[int]
    logprobs: torch.Tensor  # [n + 1, vocab]: row j = distribution over text token j
    ranks: list[int]  # rank of text token j in row j, from a full sort
    neurons: torch.Tensor  # [n, layers * d_mlp] post-activations at each text token


@torch.no_grad()
def reference(model: Any, text: str, context: str = "") -> Reference:
    tok = model.tokenizer
    bos = tok.bos_token_id
    # context + text tokenized as one string; the text's tokens are those ending after the
    # context (by the tokenizer's own offsets, not lenscope's span code)
    enc = tok(context + text, add_special_tokens=False, return_offsets_mapping=True)
    split = next((i for i, (_, end) in enumerate(enc["offset_mapping"]) if end > len(context)), len(enc["input_ids"]))
    ctx, ids = enc["input_ids"][:split], enc["input_ids"][split:]
    seq = torch.tensor([[bos, *ctx, *ids]])
    names = [f"blocks.{layer}.mlp.hook_post" for layer in range(model.cfg.n_layers)]
    logits, cache = model.run_with_cache(seq, names_filter=lambda n: n in names)
    lp = torch.log_softmax(logits[0].float(), dim=-1)[len(ctx) :]  # rows: BOS/last ctx .. last token
    ranks = []
    for j, t in enumerate(ids):
        order = torch.argsort(lp[j], descending=True)
        ranks.append(int((order == t).nonzero()[0, 0]) + 1)
    acts = [cache[n][0, 1 + len(ctx) :].float() for n in names if n in cache]
    neurons = torch.cat(acts, dim=-1) if acts else torch.zeros(len(ids), 0)
    return Reference(ids=ids, context_ids=ctx, logprobs=lp, ranks=ranks, neurons=neurons)


def random_multi_layer(tokenizer: Any, d_vocab: int, n_ctx: int = 24, seed: int = 0, n_layers: int = 3) -> Any:
    """Three layers (or ``n_layers``), random weights, LayerNorm weights and biases moved away from 1
    and 0, a short context (texts of a few lines take several windows): what the default models
    cannot show."""
    from lenscope.models.native import new_native_model, wrap_native

    config = dict(d_model=32, n_layers=n_layers, n_heads=4, d_head=8, d_mlp=64, n_ctx=n_ctx, d_vocab=d_vocab,
                  act_fn="gelu_new", normalization_type="LN", seed=seed, default_prepend_bos=True)  # fmt: skip
    native = new_native_model(config)
    with torch.no_grad():
        for name, p in native.named_parameters():
            if "ln" in name:
                p.add_(torch.randn_like(p) * 0.3)
    return wrap_native(native, config, tokenizer, f"random-{n_layers}l").eval()


def save_tiny_gpt2(folder: Any, tokenizer: Any, n_ctx: int = 64) -> Any:
    """A 2-layer GPT-2-architecture model as a user's download would be: ``transformers``'
    ``save_pretrained`` (config.json, model.safetensors) and the tokenizer's files. Returns the
    Hugging Face model (eval mode), the independent reference for what lenscope computes."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=n_ctx, n_embd=64, n_layer=2, n_head=4,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return model


def save_tl_legacy(folder: Any, model: Any, tokenizer_files: bool = True, tokenizer_name: str | None = None) -> None:
    """``model`` (a TL-native bridge) as a legacy TransformerLens checkpoint repo has it: a TL-style
    ``config.json`` (no ``model_type``), the weights as ``model_final.pth`` in ``HookedTransformer``
    property format (``embed.W_E``, ``blocks.0.attn.W_Q`` [heads, d_model, d_head], ...) written
    from the bridge's own stacked properties, and the tokenizer's files unless ``tokenizer_files``
    is false (then only ``tokenizer_name`` names it, as the hub repos do)."""
    import json
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg, sd = model.cfg, model.state_dict()
    with torch.no_grad():
        out = {"embed.W_E": model.W_E, "pos_embed.W_pos": model.W_pos, "ln_final.w": sd["ln_final.weight"],
               "ln_final.b": sd["ln_final.bias"], "unembed.W_U": model.W_U, "unembed.b_U": model.b_U}  # fmt: skip
        for layer in range(cfg.n_layers):
            pre = f"blocks.{layer}"
            out[f"{pre}.ln1.w"], out[f"{pre}.ln1.b"] = sd[f"{pre}.ln1.weight"], sd[f"{pre}.ln1.bias"]
            for p in ("W_Q", "b_Q", "W_K", "b_K", "W_V", "b_V", "W_O", "b_O"):
                out[f"{pre}.attn.{p}"] = getattr(model, p)[layer]
            out[f"{pre}.attn.mask"] = torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool))  # buffers HT saved
            out[f"{pre}.attn.IGNORE"] = torch.tensor(-1e5)
            if not cfg.attn_only:
                out[f"{pre}.ln2.w"], out[f"{pre}.ln2.b"] = sd[f"{pre}.ln2.weight"], sd[f"{pre}.ln2.bias"]
                for p in ("W_in", "b_in", "W_out", "b_out"):
                    out[f"{pre}.mlp.{p}"] = getattr(model, p)[layer]
    torch.save({k: v.detach().clone().contiguous() for k, v in out.items()}, folder / "model_final.pth")
    config = {"model_name": folder.name, "d_model": cfg.d_model, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads,
              "d_head": cfg.d_head, "d_mlp": None if cfg.attn_only else cfg.d_mlp, "n_ctx": cfg.n_ctx,
              "d_vocab": cfg.d_vocab, "d_vocab_out": cfg.d_vocab, "act_fn": None if cfg.attn_only else cfg.act_fn,
              "attn_only": bool(cfg.attn_only), "normalization_type": cfg.normalization_type,
              "positional_embedding_type": "standard", "tokenizer_name": tokenizer_name, "seed": 0}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    if tokenizer_files:
        model.tokenizer.save_pretrained(str(folder))
