"""``lenscope sweep``: rank every unit by its causal effect on a prediction, from a terminal.

    lenscope sweep tour.py --line 12 --col 9                  # the prediction after the token at 12:9
    lenscope sweep tour.py --line 12 --col 9 --target ")"     # ... of another next token
    lenscope sweep tour.py --lines 10:14                      # every prediction on lines 10-14: mean |Δ|
    lenscope sweep tour.py --line 12 --col 9 --estimate       # gradient x activation, for large models
    lenscope sweep tour.py --line 12 --col 9 --sae NAME       # the SAE's features too

Each unit zero-ablated alone (``lenscope.sweep``), listed by |Δ log-prob| beside its direct part
and rank (``lenscope why``'s numbers), with their rank correlation; ``--json`` prints the
``POST sweep`` response.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Literal

from lenscope.cli_common import named_sae, target_id
from lenscope.errors import LenscopeError


def visible(s: str) -> str:
    """Whitespace made visible, as ``lenscope why`` shows tokens."""
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace(" ", "·")


def line_range(spec: str) -> tuple[int, int]:
    """``A:B`` (1-based, inclusive) -> (A, B)."""
    try:
        a, _, b = spec.partition(":")
        return int(a), int(b or a)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lines takes A:B with line numbers, got {spec!r}") from None


def _offset(lines: list[str], line: int, col: int, what: str) -> int:
    if not 1 <= line <= len(lines) or not 1 <= col <= len(lines[line - 1].rstrip("\n")) + 1:
        raise LenscopeError(f"{what} {line}:{col} is outside the file ({len(lines)} lines)")
    return sum(len(x) for x in lines[: line - 1]) + col - 1


def place_of(text: str, args: argparse.Namespace) -> tuple[int, int | None]:
    """Character offsets: the one at ``--line/--col``, or the first and last of ``--lines A:B``
    (checked before the model loads)."""
    lines = text.splitlines(keepends=True)
    if args.lines is not None:
        a, b = args.lines
        if not 1 <= a <= b <= len(lines):
            raise LenscopeError(f"--lines {a}:{b} is outside the file's {len(lines)} lines")
        if args.target is not None:
            raise LenscopeError("--target goes with one prediction (--line/--col), not with --lines")
        return _offset(lines, a, 1, "--lines"), sum(len(x) for x in lines[:b]) - 1
    if args.line is None or args.col is None:
        raise LenscopeError("say where: --line L --col C (one prediction) or --lines A:B (a selection)")
    return _offset(lines, args.line, args.col, "--line/--col"), None


def positions_of(ends: Any, start: int, stop: int | None) -> tuple[int, int | None]:
    """The text token holding character ``start`` (one prediction: never the last token, which
    predicts nothing in the file), or the tokens from ``start`` to ``stop``."""
    import numpy as np

    n = len(ends)
    first = int(np.searchsorted(ends, start, side="right"))
    if stop is None:
        return max(0, min(first, n - 2)), None
    return min(first, n - 1), min(int(np.searchsorted(ends, stop, side="right")), n - 1)


def cmd_sweep(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from lenscope.models.registry import load_model
    from lenscope.sweep import note, sweep, sweep_to_wire
    from lenscope.tokens import split_context

    path = Path(args.path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LenscopeError(f"cannot read {path}: {exc}") from exc
    start, stop = place_of(text, args)
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    _, spans = split_context(model.tokenizer, "", text)
    position, last = positions_of(spans.end, start, stop)
    target = target_id(model.tokenizer, args.target)
    sae = named_sae(args.sae, model)
    method: Literal["exact", "estimate"] = "estimate" if args.estimate else "exact"
    r = sweep(model, text, position, last=last, target=target, method=method, sae=sae, model_name=args.model)
    if args.json:
        from lenscope.wire_codec import encode_json

        sys.stdout.buffer.write(encode_json(sweep_to_wire(r, args.top)) + b"\n")
        return 0
    console = Console(width=None if sys.stdout.isatty() else 160)

    def tok(i: int) -> str:
        return escape(visible(r.strings.get(i, str(i))))

    if r.selection:
        where = (
            f"{len(r.positions)} predictions, tokens {r.positions[0]}-{r.positions[-1]} ({path}:{args.lines[0]}-{args.lines[1]})"
        )
        console.print(f"{r.model}: {where}, each of its actual next token")
    else:
        token = text[int(spans.start[position]) : int(spans.end[position])]
        console.print(
            f"{r.model}: after {escape(visible(token))} (token {position}), {tok(r.targets[0])} at log-prob {r.logprob[0]:.3f}"
        )
    console.print(f"[bold]{escape(note(r))}[/bold]" if r.method == "estimate" else escape(note(r)))
    rho = r.rank_correlation()
    if rho is not None:
        console.print(f"rank correlation with direct attribution (Spearman, |effect| vs |direct part|): {rho:.3f}")
    units = r.units()
    measure = "mean |Δ log-prob|" if r.selection else "Δ log-prob"
    table = Table(title=f"Units by causal effect ({measure}{', estimated' if r.method == 'estimate' else ''})")
    for col in ("rank", "unit", measure, "direct part", "direct rank"):
        table.add_column(col, justify="left" if col == "unit" else "right")
    for u in units[: args.top]:
        sign = "" if r.selection else "+"  # a selection's values are means of magnitudes
        direct = "" if u.direct is None else f"{u.direct:{sign}.3f}"
        table.add_row(str(u.rank), u.label, f"{u.effect:{sign}.4f}", direct, "" if u.direct_rank is None else str(u.direct_rank))
    console.print(table)
    top = {u.label for u in units[: args.top]}
    missed = [u for u in sorted(units, key=lambda u: u.direct_rank or len(units) + 1)[: args.top]
              if u.direct_rank is not None and u.label not in top]  # fmt: skip
    if missed:
        console.print(
            f"in the direct top {args.top} but not the causal one: "
            + ", ".join(f"{u.label} (direct {u.direct_rank}, causal {u.rank})" for u in missed)
        )
    return 0


def add_parsers(sub: Any, default_model: str, dtype_names: tuple[str, ...]) -> None:
    sw = sub.add_parser(
        "sweep", help="every neuron, head (and SAE feature) ablated in turn: ranked by causal effect, beside direct attribution"
    )
    sw.add_argument("path")
    sw.add_argument("--line", type=int, help="1-based: with --col, the prediction after the token holding that character")
    sw.add_argument("--col", type=int, help="1-based")
    sw.add_argument("--lines", type=line_range, help="A:B, 1-based inclusive: every prediction on those lines (mean |Δ|)")
    sw.add_argument("--target", help="with --line/--col: this next token (its text) instead of the one in the file")
    sw.add_argument("--estimate", action="store_true", help="gradient x activation instead of the ablations (for large models)")
    sw.add_argument("--sae", help="also ablate every feature of this SAE (lenscope models lists them)")
    sw.add_argument("--model", default=default_model)
    sw.add_argument("--top", type=int, default=20, help="units listed")
    sw.add_argument("--device", default=None)
    sw.add_argument("--dtype", choices=dtype_names, help="load the model in this dtype (default: as stored)")
    sw.add_argument("--json", action="store_true", help="print the POST sweep response's JSON instead of a table")
    sw.set_defaults(func=cmd_sweep)
