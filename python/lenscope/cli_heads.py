"""``lenscope heads`` and ``lenscope probe induction``: heads found by their role, from a terminal.

    lenscope heads --model lenscope-gelu-2l            # every head: its role scores, its top role
    lenscope heads --model M --file tour.py            # the same scores on a file's text
    lenscope probe induction --model lenscope-gelu-2l  # in-context gain and the top induction heads
    lenscope head L1.H3 --model lenscope-gelu-2l       # one head's card: role scores, OV / QK pairs, positional QK

Both print ``--json`` (the ``GET heads/{model}/scores`` schema) on request.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROLE_LABELS = {"previous_token": "prev-token", "duplicate_token": "duplicate", "induction": "induction", "bos": "BOS sink",
               "diffuse": "none (diffuse)"}  # fmt: skip


def _scores(args: argparse.Namespace, model: Any, ablate: Sequence[tuple[int, int]] = ()) -> Any:
    from lenscope.headscores import induction_probe, text_scores
    from lenscope.models.frequent import frequent_tokens, shipped_token_counts
    from lenscope.models.shape import shape_of

    if getattr(args, "file", None):
        return text_scores(model, Path(args.file).read_text(encoding="utf-8"), model_name=args.model)
    pool = frequent_tokens(model, counts=shipped_token_counts(args.model, shape_of(model).d_vocab))
    return induction_probe(model, model_name=args.model, length=args.length, seed=args.seed, pool=pool, ablate=ablate)


def cmd_heads(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from lenscope.headscores import ROLES, scores_to_wire
    from lenscope.models.registry import load_model

    model = load_model(args.model, device=args.device)
    result = _scores(args, model)
    if args.json:
        print(json.dumps(scores_to_wire(result)))
        return 0
    on = f"{args.file}" if result.on == "text" else f"repeated random tokens ({result.extra['length']} x 2, seed {args.seed})"
    table = Table(title=f"{args.model}: head roles on {on}")
    for col in ("head", *(ROLE_LABELS[r] for r in ROLES), "top role"):
        table.add_column(col, justify="right" if col != "top role" else "left")
    layers, heads = result.scores[ROLES[0]].shape
    for layer in range(layers):
        for head in range(heads):
            role, value = result.role_of(layer, head)
            cells = [f"{result.scores[r][layer, head]:.2f}" for r in ROLES]
            table.add_row(f"L{layer}.H{head}", *cells, f"{ROLE_LABELS[role]} {value:.2f}")
    console = Console()
    console.print(table)
    if result.in_context_gain is not None:
        console.print(f"in-context gain: {result.in_context_gain:+.2f} nats (loss {result.loss_first:.2f} on the first copy, "
                      f"{result.loss_second:.2f} on the second)")  # fmt: skip
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from lenscope.headscores import scores_to_wire
    from lenscope.models.registry import load_model

    model = load_model(args.model, device=args.device)
    result = _scores(args, model)
    if args.json:
        out = scores_to_wire(result)
        if args.ablate:
            ablated = _scores(args, model, ablate=args.ablate)
            out["ablated"] = {"heads": [f"L{la}.H{h}" for la, h in args.ablate], "in_context_gain": ablated.in_context_gain,
                              "loss_second": ablated.loss_second}  # fmt: skip
        print(json.dumps(out))
        return 0
    assert result.in_context_gain is not None and result.loss_first is not None and result.loss_second is not None
    print(f"{args.model}: repeated random tokens ({args.length} frequent tokens, then the same again; "
          f"{result.sequences} sequences, seed {args.seed})")  # fmt: skip
    print(f"  loss on the first copy  {result.loss_first:6.2f} nats")
    print(f"  loss on the second copy {result.loss_second:6.2f} nats")
    print(
        f"  in-context gain         {result.in_context_gain:+6.2f} nats"
        + ("  (copies from context)" if result.in_context_gain >= 1 else "")
    )
    print("  top induction heads (attention from a repeated token to the one after its first occurrence):")
    for layer, head, score in result.top("induction", args.top):
        print(f"    L{layer}.H{head}  {score:.2f}")
    print("  top previous-token heads:")
    for layer, head, score in result.top("previous_token", args.top):
        print(f"    L{layer}.H{head}  {score:.2f}")
    if args.ablate:
        heads = ", ".join(f"L{la}.H{h}" for la, h in args.ablate)
        ablated = _scores(args, model, ablate=args.ablate)
        assert ablated.in_context_gain is not None
        kept = ablated.in_context_gain / result.in_context_gain if result.in_context_gain > 0 else float("nan")
        print(f"  with {heads} zero-ablated: in-context gain {ablated.in_context_gain:+6.2f} nats "
              f"({kept:.0%} of it left), loss on the second copy {ablated.loss_second:.2f}")  # fmt: skip
    return 0


def parse_head(ref: str) -> tuple[int, int]:
    """``L1.H3`` (also ``1.3``, ``l1h3``) as ``(layer, head)``."""
    import re

    m = re.fullmatch(r"\s*[lL]?\s*(\d+)\s*[.:\s]?\s*[hH]?\s*(\d+)\s*", ref)
    if not m or not re.search(r"[lL.:\s]|[hH]", ref.strip()):
        raise argparse.ArgumentTypeError(f"a head is written L1.H3 (layer 1, head 3); got {ref!r}")
    return int(m.group(1)), int(m.group(2))


def head_report(model: Any, name: str, layer: int, head: int, *, vocab: str = "frequent", top: int = 10,
                source: str | None = None, query: str | None = None, length: int = 50, seed: int = 0
                ) -> dict[str, Any]:  # fmt: skip
    """One head's card for the terminal: its role scores on the induction probe, its circuits
    (``head_card_wire``) and its positional QK summary (the matrix itself left out)."""
    from lenscope.circuits import head_card_wire
    from lenscope.headscores import ROLES, induction_probe
    from lenscope.models.frequent import frequent_tokens, shipped_token_counts
    from lenscope.models.shape import shape_of

    card = head_card_wire(model, name, layer, head, top=top, vocab=vocab, source=source, query=query)
    pool = frequent_tokens(model, counts=shipped_token_counts(name, shape_of(model).d_vocab))
    length = min(length, (shape_of(model).n_ctx - 1) // 2)
    probe = induction_probe(model, model_name=name, length=length, seed=seed, pool=pool)
    role, value = probe.role_of(layer, head)
    values = {r: float(probe.scores[r][layer, head]) for r in ROLES}
    card["roles"] = {r: (None if v != v else v) for r, v in values.items()}  # NaN (no target): None
    card["role"] = {"role": role, "score": value}
    card["in_context_gain"] = probe.in_context_gain
    if card["positional"] is not None:
        card["positional"] = {k: v for k, v in card["positional"].items() if k != "scores"}
    return card


def cmd_head(args: argparse.Namespace) -> int:
    from lenscope.models.registry import load_model

    layer, head = args.head
    model = load_model(args.model, device=args.device)
    card = head_report(model, args.model, layer, head, vocab=args.vocab, top=args.top, source=args.source,
                       query=args.query, length=args.length, seed=args.seed)  # fmt: skip
    if args.json:
        print(json.dumps(card))
        return 0
    names = dict(zip(card["strings"]["ids"], card["strings"]["values"]))

    def tok(i: int) -> str:
        return repr(names.get(i, f"#{i}"))

    over = f"the {card['tokens_read']:,} most frequent tokens" if card["vocab"] == "frequent" else "the whole vocabulary"
    print(f"L{layer}.H{head} of {args.model}")
    print(f"  role: {ROLE_LABELS[card['role']['role']]} {card['role']['score']:.2f}   (repeated random tokens, seed {args.seed})")
    print("  " + "  ".join(f"{ROLE_LABELS[r]} {'-' if v is None else f'{v:.2f}'}" for r, v in card["roles"].items()))
    print(f"  copying score: {card['copying_score_frequent']:+.3f} on the {card['frequent_tokens']:,} frequent tokens, "
          f"{card['copying_score']:+.3f} on the whole vocabulary")  # fmt: skip
    print(f"  OV, over {over}: a source token attended to -> the output it raises most")
    for p in card["ov_top"]:
        print(f"    {tok(p['source']):>16} -> {tok(p['target']):<16} {p['value']:+.2f}")
    print(f"  QK, over {over}: a query token -> the key it attends to most")
    for p in card["qk_top"]:
        print(f"    {tok(p['source']):>16} -> {tok(p['target']):<16} {p['value']:+.2f}")
    if card["source_row"]:
        row = card["source_row"]
        raised = ", ".join(f"{tok(r['id'])} {r['value']:+.2f}" for r in row["boosted"])
        print(f"  attending to {tok(row['token'])} it raises: {raised}")
        print("    and lowers: " + ", ".join(f"{tok(r['id'])} {r['value']:+.2f}" for r in row["suppressed"]))
    if card["query_row"]:
        row = card["query_row"]
        print(f"  a query {tok(row['token'])} looks for: " + ", ".join(f"{tok(r['id'])} {r['value']:+.2f}" for r in row["keys"]))
    pos = card["positional"]
    if pos is None:
        print("  positional QK: no learned positional embedding")
    else:
        s = pos["summary"]
        cap = f" (the first {pos['positions']} of {pos['n_ctx']} positions)" if pos["capped"] else ""
        print(f"  positional QK{cap}: mean score on key i-1 {s['previous']:+.2f}, on key i {s['diagonal']:+.2f}, "
              f"on earlier keys {s['other']:+.2f}; with position alone, weight on i-1 {s['previous_weight']:.2f}, "
              f"i-1 highest for {s['previous_argmax_share']:.0%} of queries")  # fmt: skip
    return 0


def add_parsers(sub: Any, default_model: str) -> None:
    hd = sub.add_parser("heads", help="every head's role scores (previous-token, duplicate, induction, BOS) and its top role")
    hd.add_argument("--model", default=default_model)
    hd.add_argument("--file", help="score the heads on this file's text (default: the repeated-random-token probe)")
    hd.add_argument("--length", type=int, default=50, help="probe: random tokens per copy")
    hd.add_argument("--seed", type=int, default=0)
    hd.add_argument("--device", default=None)
    hd.add_argument("--json", action="store_true")
    hd.set_defaults(func=cmd_heads)
    pr = sub.add_parser("probe", help="a built-in probe of a mechanism: induction (repeated random tokens)")
    pr.add_argument("kind", choices=["induction"])
    pr.add_argument("--model", default=default_model)
    pr.add_argument("--length", type=int, default=50, help="random tokens per copy")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--top", type=int, default=3, help="heads listed per role")
    pr.add_argument(
        "--ablate",
        nargs="+",
        type=parse_head,
        default=[],
        metavar="HEAD",
        help="heads to zero-ablate in a second run (e.g. L1.H3 L1.H5): how much of the gain they carry",
    )
    pr.add_argument("--device", default=None)
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=cmd_probe)
    one = sub.add_parser("head", help="one head's card: role scores, OV / QK pairs on frequent tokens, positional QK summary")
    one.add_argument("head", type=parse_head, help="the head, e.g. L1.H3")
    one.add_argument("--model", default=default_model)
    one.add_argument("--vocab", choices=["frequent", "all"], default="frequent",
                     help="read the pairs over the 1,000 most frequent tokens of the index corpus, or all tokens")  # fmt: skip
    one.add_argument("--source", help="a token (text or id): what the head writes when it attends to it")
    one.add_argument("--query", help="a token (text or id): the keys a query of it looks for")
    one.add_argument("--top", type=int, default=10, help="pairs listed")
    one.add_argument("--length", type=int, default=50, help="probe: random tokens per copy")
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--device", default=None)
    one.add_argument("--json", action="store_true")
    one.set_defaults(func=cmd_head)
