"""``lenscope heads`` and ``lenscope probe induction``: heads found by their role, from a terminal.

    lenscope heads --model lenscope-gelu-2l            # every head: its role scores, its top role
    lenscope heads --model M --file tour.py            # the same scores on a file's text
    lenscope probe induction --model lenscope-gelu-2l  # in-context gain and the top induction heads

Both print ``--json`` (the ``GET heads/{model}/scores`` schema) on request.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROLE_LABELS = {"previous_token": "prev-token", "duplicate_token": "duplicate", "induction": "induction", "bos": "BOS sink",
               "diffuse": "none (diffuse)"}  # fmt: skip


def _scores(args: argparse.Namespace, model: Any) -> Any:
    from lenscope.headscores import frequent_tokens, induction_probe, shipped_token_counts, text_scores
    from lenscope.models.shape import shape_of

    if getattr(args, "file", None):
        return text_scores(model, Path(args.file).read_text(encoding="utf-8"), model_name=args.model)
    pool = frequent_tokens(model, counts=shipped_token_counts(args.model, shape_of(model).d_vocab))
    return induction_probe(model, model_name=args.model, length=args.length, seed=args.seed, pool=pool)


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
        print(json.dumps(scores_to_wire(result)))
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
    pr.add_argument("--device", default=None)
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=cmd_probe)
