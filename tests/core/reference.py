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


def random_multi_layer(tokenizer: Any, d_vocab: int, n_ctx: int = 24, seed: int = 0) -> Any:
    """Three layers, random weights, LayerNorm weights and biases moved away from 1 and 0, a short
    context (texts of a few lines take several windows): what the default models cannot show."""
    from lenscope.models.native import new_native_model, wrap_native

    config = dict(d_model=32, n_layers=3, n_heads=4, d_head=8, d_mlp=64, n_ctx=n_ctx, d_vocab=d_vocab,
                  act_fn="gelu_new", normalization_type="LN", seed=seed, default_prepend_bos=True)  # fmt: skip
    native = new_native_model(config)
    with torch.no_grad():
        for name, p in native.named_parameters():
            if "ln" in name:
                p.add_(torch.randn_like(p) * 0.3)
    return wrap_native(native, config, tokenizer, "random-3l").eval()


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
