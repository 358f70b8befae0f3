"""``lenscope`` command line: analyze a file (or some of its lines) from the terminal."""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lenscope import defaults
from lenscope.cli_common import named_sae, target_id
from lenscope.errors import LenscopeError

DTYPE_NAMES = ("float32", "float16", "bfloat16", "float64")  # lenscope.models.registry.DTYPES, without importing torch


def _line_range(spec: str) -> tuple[int, int]:
    """``A:B`` (1-based, inclusive; either side may be left out) -> (A, B)."""
    try:
        a, _, b = spec.partition(":")
        return (int(a) if a else 1, int(b) if b else sys.maxsize)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lines takes A:B with line numbers, got {spec!r}") from None


def visible(s: str) -> str:
    """Whitespace made visible: a token's leading space or newline matters."""
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace(" ", "·")


def select_lines(text: str, lines: tuple[int, int] | None) -> tuple[str, str]:
    """(context, selection): the lines before the range condition the predictions."""
    if lines is None:
        return "", text
    all_lines = text.splitlines(keepends=True)
    a, b = lines
    if a < 1 or b < a or a > len(all_lines):
        raise LenscopeError(f"--lines {a}:{b} is outside the file's {len(all_lines)} lines")
    return "".join(all_lines[: a - 1]), "".join(all_lines[a - 1 : b])


def read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LenscopeError(f"cannot read {path}: {exc}") from exc


def cmd_analyze(args: argparse.Namespace) -> int:
    from lenscope.analysis import analyze
    from lenscope.models.registry import load_model

    path = Path(args.path)
    text = read_file(path)
    context, selection = select_lines(text, args.lines)
    interventions = [parse_intervention(spec) for spec in args.ablate]
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    kwargs: dict[str, Any] = {"context": context, "top_k": args.top_k, "top_neurons": args.top_neurons, "model_name": args.model}
    if args.sae:
        kwargs["sae"] = named_sae(args.sae, model)
    result = analyze(model, selection, interventions=interventions, **kwargs)
    if args.json:
        from lenscope.wire import encode_json, to_wire

        sys.stdout.buffer.write(encode_json(to_wire(result)) + b"\n")
        return 0
    if interventions:
        _print_changes(analyze(model, selection, **kwargs), result, args.top)
        return 0
    _print_table(result)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from lenscope.models.registry import list_models
    from lenscope.models.sae_registry import list_saes

    dirs = tuple(Path(d) for d in args.model_dir)
    table = Table(title="models")
    for col in ("name", "source", "loadable", "layers", "d_model", "neurons/layer", "vocab", "n_ctx", "why not"):
        table.add_column(col, overflow="fold")
    for m in list_models(dirs):
        sh = m.shape
        dims = [
            str(v) if v is not None else "-"
            for v in ((sh.n_layers, sh.d_model, sh.d_mlp, sh.d_vocab, sh.n_ctx) if sh else (None,) * 5)
        ]
        table.add_row(m.name, m.source, "yes" if m.loadable else "no", *dims, m.reason)
    saes = Table(title="SAEs")
    for col in ("name", "model", "hook point", "features", "k", "format", "why not"):
        saes.add_column(col, overflow="fold")
    for sa in list_saes(dirs):
        saes.add_row(
            sa.name, sa.model or "-", sa.hook_point or "-", str(sa.d_sae or "-"), str(sa.k or "-"), sa.format or "-", sa.reason
        )
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)
    console.print(saes)
    return 0


def parse_intervention(spec: str) -> Any:
    """``L0.N123`` (zero it), ``L0.N123=mean``, ``L0.H3=scale:0.5``, ``L0.N5=steer:4``, ``L0.N5=set:2``."""
    from lenscope.interventions import OPS, Intervention, parse_component

    what, _, how = spec.partition("=")
    component, layer, index = parse_component(what)
    op, _, value = (how or "zero").partition(":")
    if op not in OPS[component] or op == "patch":
        raise LenscopeError(f"--ablate {spec}: a {component} can be {', '.join(o for o in OPS[component] if o != 'patch')}")
    try:
        number = float(value) if value else (1.0 if op in ("scale", "steer") else 0.0)
    except ValueError as exc:
        raise LenscopeError(f"--ablate {spec}: {value!r} is not a number") from exc
    return Intervention(component, layer, index, op, number)  # type: ignore[arg-type]


def _print_changes(plain: Any, changed: Any, top: int) -> None:
    """The tokens whose actual log-prob the interventions changed most, with the top prediction before and after."""
    import numpy as np
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    n = len(plain.token_texts)
    before, after = plain.predictions.actual_logprob[:n], changed.predictions.actual_logprob[:n]
    delta = after - before
    labels = ", ".join(
        a["label"] + (f" (mean over the {a['mean_from']})" if a["mean_from"] else "") for a in changed.interventions
    )
    table = Table(title=f"{changed.model} with {labels}: the {min(top, n)} tokens that changed most")
    for col in ("#", "token", "lp before", "lp after", "change", "top-1 before", "top-1 after"):
        table.add_column(col)
    for i in np.argsort(-np.abs(np.nan_to_num(delta)))[:top]:
        t_before, t_after = int(plain.predictions.top_ids[i, 0]), int(changed.predictions.top_ids[i, 0])
        table.add_row(str(i), escape(visible(plain.token_texts[i])), f"{before[i]:.2f}", f"{after[i]:.2f}", f"{delta[i]:+.2f}",
                      escape(visible(plain.strings[t_before])), escape(visible(changed.strings[t_after])))  # fmt: skip
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    print(f"mean change of the actual token's log-prob over {n} tokens: {float(np.nanmean(delta)):+.3f} nats")


def _print_table(result: object) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from lenscope.analysis import AnalysisResult
    from lenscope.units import unit_name

    assert isinstance(result, AnalysisResult)
    p, strings = result.predictions, result.strings
    table = Table(
        title=f"{result.model}: {len(result.token_texts)} tokens" + (f", {result.windows} windows" if result.windowed else "")
    )
    shown = min(5, result.predictions.top_ids.shape[1])
    sae = result.sae
    for col in ("#", "token", "next lp", "rank", f"top-{shown} next", "top-3 neurons (=act)") + (
        (f"top-3 features of {sae.name} (F=act)",) if sae else ()
    ):
        table.add_column(col, overflow="fold")
    for i, tok in enumerate(result.token_texts):
        row = i + 1  # the prediction made at token i
        lp = p.actual_logprob[row]
        top = "  ".join(
            f"{visible(strings[int(t)])} {float(v):.2f}" for t, v in zip(p.top_ids[row][:shown], p.top_logprobs[row][:shown])
        )
        neurons = "  ".join(
            f"{unit_name('neuron', int(la), int(ix))}={float(v):.2f}"
            for la, ix, v in zip(p.neuron_layer[i][:3], p.neuron_index[i][:3], p.neuron_activation[i][:3])
        )
        features = "  ".join(
            f"F{int(f)}={float(v):.2f}" for f, v in zip(p.feature_index[i][:3], p.feature_activation[i][:3]) if f >= 0
        )
        table.add_row(
            str(i),
            escape(visible(tok)),
            "" if lp != lp else f"{float(lp):.2f}",
            "" if not p.actual_rank[row] else str(int(p.actual_rank[row])),
            escape(top),
            neurons,
            *((features,) if sae else ()),
        )
    # Piped output has no terminal width to fit: use a wide one rather than folding every cell.
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    t = result.timings_ms
    print(f"tokenize {t['tokenize']:.1f} ms, forward {t['forward']:.1f} ms, derive {t['derive']:.1f} ms")


def cmd_why(args: argparse.Namespace) -> int:
    """Why the model predicted what it did after the token at --line/--col: direct logit attribution."""
    import numpy as np
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from lenscope.attribution import attribute, top_parts
    from lenscope.models.registry import load_model
    from lenscope.tokens import split_context
    from lenscope.units import unit_name

    path = Path(args.path)
    text = read_file(path)
    lines = text.splitlines(keepends=True)
    if not 1 <= args.line <= len(lines) or not 1 <= args.col <= len(lines[args.line - 1].rstrip("\n")) + 1:
        raise LenscopeError(f"--line {args.line} --col {args.col} is outside {path} ({len(lines)} lines)")
    offset = sum(len(line) for line in lines[: args.line - 1]) + args.col - 1
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    _, spans = split_context(model.tokenizer, "", text)
    position = max(0, int(np.searchsorted(spans.end, offset, side="right")))
    position = min(position, len(spans.ids) - 2)
    target = target_id(model.tokenizer, args.target)
    r = attribute(model, text, position, target=target, model_name=args.model, sae=named_sae(args.sae, model))
    s = r.strings
    token = text[int(spans.start[position]) : int(spans.end[position])]
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(
        f"after {escape(visible(token))!s} ({path}:{args.line}:{args.col}), why {escape(visible(s[r.target]))}: "
        f"centred logit {r.value:.3f} = parts {r.total():.3f}; final LayerNorm scale frozen at {r.ln_scale:.3f}"
    )
    biases = r.constant + r.attn_bias.sum() + r.mlp_bias.sum()
    console.print(
        f"embedding {r.embed:+.3f}   position {r.pos_embed:+.3f}   biases {biases:+.3f}"
        f"   heads {r.heads.sum():+.3f}   neurons {r.neurons.sum():+.3f}"
    )
    parts = top_parts(r, args.top)
    heads = Table(title="Heads, by |direct part|: where each reads from")
    for col in ("head", "part", "top sources (token: part, attention)"):
        heads.add_column(col)
    for (layer, head), value in parts["heads"]:
        order = np.argsort(-np.abs(r.head_sources[layer, head]))[:3]
        part, attention = r.head_sources[layer, head], r.pattern[layer, head]
        reads = "  ".join(
            f"{visible(s[r.source_tokens[i]]) if i else '<bos>'}: {part[i]:+.2f}, {attention[i]:.2f}" for i in order
        )
        heads.add_row(unit_name("head", layer, head), f"{value:+.3f}", escape(reads))
    console.print(heads)
    if parts["neurons"]:
        neurons = Table(title="Neurons, by |direct part|")
        for col in ("neuron", "part"):
            neurons.add_column(col)
        for (layer, index), value in parts["neurons"]:
            neurons.add_row(unit_name("neuron", layer, index), f"{value:+.3f}")
        console.print(neurons)
    if r.features is not None:
        f = r.features
        console.print(f"{f.sae} re-splits L{f.layer}'s MLP part {r.neurons[f.layer].sum():+.3f} = features {f.parts.sum():+.3f}"
                      f" + decoder bias {f.bias:+.3f} + error {f.error:+.3f}")  # fmt: skip
        features = Table(title="Features, by |direct part|")
        for col in ("feature", "part", "activation"):
            features.add_column(col)
        for i in [i for i in np.argsort(-np.abs(f.parts)) if f.activations[i] > 0][: args.top]:
            features.add_row(unit_name("feature", None, int(i)), f"{f.parts[i]:+.3f}", f"{f.activations[i]:.3f}")
        console.print(features)
    return 0


def cmd_act(args: argparse.Namespace) -> int:
    """One unit's activation at every token of a file: a table, the strongest tokens in context, or JSON."""
    from lenscope.activations import unit_activations, unit_activations_to_wire
    from lenscope.models.registry import load_model
    from lenscope.units import parse_unit

    unit = parse_unit(args.unit)
    if unit.kind == "feature" and not args.sae:
        raise LenscopeError(f"{unit.name} is a feature: name its SAE with --sae (lenscope models lists them)")
    path = Path(args.path)
    context, selection = select_lines(read_file(path), args.lines)
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    result = unit_activations(model, selection, [unit], named_sae(args.sae, model), context, model_name=args.model)
    if args.json:
        from lenscope.wire_codec import encode_json

        sys.stdout.buffer.write(encode_json(unit_activations_to_wire(result)) + b"\n")
        return 0
    _print_activations(result, path, args.top)
    return 0


def _print_activations(result: Any, path: Path, top: int | None) -> None:
    """A summary line, then every token's activation with a bar (or, with ``top``, the strongest
    tokens where it fires, each with the text around it, the token in [[ ]])."""
    import numpy as np
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    acts, texts = result.activations[:, 0], result.token_texts
    n, fires = len(acts), int((acts > 0).sum())
    peak = int(np.argmax(acts))
    of = f" of {result.sae.name}" if result.sae is not None else ""
    print(f"{result.model} {result.units[0].name}{of} on {path}: {n} tokens, fires (> 0) on {fires} ({fires / n:.1%}), "
          f"max {acts[peak]:.3f} at token {peak} {visible(texts[peak])!r}")  # fmt: skip
    scale = float(np.abs(acts).max()) or 1.0
    table = Table()
    for col in ("#", "token", "activation", "") if top is None else ("#", "activation", "in context"):
        table.add_column(col, overflow="fold")
    order = range(n) if top is None else [i for i in np.argsort(-acts, kind="stable")[:top] if acts[i] > 0]
    for i in order:
        if top is None:
            table.add_row(str(i), escape(visible(texts[i])), f"{acts[i]:.3f}", "█" * round(10 * abs(acts[i]) / scale))
        else:
            around = "".join(texts[max(0, i - 8) : i]) + "[[" + texts[i] + "]]" + "".join(texts[i + 1 : i + 4])
            table.add_row(str(i), f"{acts[i]:.3f}", escape(visible(around)))
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _corpus(args: argparse.Namespace) -> Any:
    """The files named on the command line, relative to --root (as the help says) or absolute
    paths under it, checked."""
    from lenscope.paths import relative_to_root
    from lenscope.workspace import read_corpus

    where = f"--root {args.root}"
    paths = [relative_to_root(Path(args.root), p, where=where) for p in args.paths]
    corpus = read_corpus(Path(args.root).resolve(), paths, where=where)
    for s in corpus.skipped:
        print(f"skipped {s.path}: {s.reason}", file=sys.stderr)
    return corpus


def _progress_bar(label: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("tokens"), TimeRemainingColumn())


def cmd_index(args: argparse.Namespace) -> int:
    from lenscope.index.shard_store import shards_dir_for
    from lenscope.index.store import changed_files
    from lenscope.models.registry import load_model
    from lenscope.workspace import build_index_over

    corpus = _corpus(args)
    out = Path(args.out)
    changed = changed_files(out, corpus.docs)
    if changed == [] and not args.force:
        print(f"{out} is up to date ({len(corpus.docs)} files unchanged); --force rebuilds it")
        return 0
    if args.force or args.no_shards:
        shutil.rmtree(shards_dir_for(out), ignore_errors=True)  # a full rebuild: no stored shard is reused
    elif changed:
        listed = ", ".join(changed[:5]) + ("..." if len(changed) > 5 else "")
        print(f"{len(changed)} files changed since {out} was built ({listed}): updating")
    engine = None
    if args.engine == "ray":
        from lenscope.index.ray_engine import ray_engine_for

        engine = ray_engine_for(
            args.model, device=args.device, dtype=args.dtype, sae_name=args.sae, address=args.address, workers=args.workers
        )
    sae = None
    if args.sae:
        from lenscope.models.sae_registry import load_named_sae

        sae = load_named_sae(args.sae)
        if args.device:
            sae.to(args.device)
    with _progress_bar("indexing") as bar:
        task = bar.add_task("index", total=None)
        result = build_index_over(
            lambda: load_model(args.model, device=args.device, dtype=args.dtype),
            args.model,
            corpus,
            out,
            k=args.k,
            progress=lambda p: bar.update(task, completed=p["tokens_done"], total=p["tokens_total"]),
            root_label=str(corpus.root),
            sae=sae,
            engine=engine,
            keep_shards=not args.no_shards,
        )
    unit = f"feature of {sae.name}" if sae else "neuron"
    reused = f", {result['shards_reused']} of {result['shards']} shards reused" if result["shards_reused"] else ""
    print(f"wrote {out}: {result['files']} files, {result['tokens']:,} tokens, {args.k} examples per {unit}"
          f" ({args.engine} engine, {result['seconds']:.1f} s{reused})")  # fmt: skip
    return 0


def _scan_for(name: str, docs: list[Any], scans_dir: Path, device: str | None, dtype: str | None = None) -> Any:
    """The stored scan of these files by ``name``, or a new one (then stored): a join, not a re-run."""
    from lenscope.compare import scan_path, stored_or_new_scan
    from lenscope.models.registry import load_model

    result, reused = stored_or_new_scan(lambda: load_model(name, device=device, dtype=dtype), name, docs, scans_dir)
    if reused:
        _say_reused(name, scan_path(scans_dir, name))
    return result


def _say_reused(name: str, path: Path) -> None:
    """One line for `scan` and `compare` alike: a stored scan stood in for running the model."""
    print(f"{name}: reusing the scan in {path}", file=sys.stderr)


def cmd_scan(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from lenscope.compare import good_at

    corpus = _corpus(args)
    result = _scan_for(args.model, corpus.docs, corpus.root / args.scans, args.device, args.dtype)
    groups, confident = good_at(result, min_count=args.min_count)
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"What {args.model} is good at: mean log-prob over the corpus's own bigram baseline")
    for col in ("advantage", "n", "mean lp", "bigram lp", "token"):
        table.add_column(col)
    for g in groups[: args.top]:
        table.add_row(f"{g.advantage:.2f}", str(g.count), f"{g.mean_lp:.2f}", f"{g.mean_baseline:.2f}", escape(visible(g.key)))
    console.print(table)
    sure = Table(title="Most confidently correct tokens")
    for col in ("log-prob", "token", "where"):
        sure.add_column(col)
    for path, line, lp, tok in confident[: args.top]:
        sure.add_row(f"{lp:.4f}", escape(visible(tok)), f"{path}:{line}")
    console.print(sure)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from lenscope.compare import group_rows, scan_path, to_csv, to_jsonl
    from lenscope.models.registry import load_model
    from lenscope.workspace import compare_over

    corpus = _corpus(args)
    load = functools.cache(lambda name: load_model(name, device=args.device, dtype=args.dtype))
    with _progress_bar("comparing") as bar:
        task = bar.add_task("compare", total=None)
        result, rows = compare_over(
            load,
            args.a,
            args.b,
            corpus,
            clamp=args.clamp,
            min_count=args.min_count,
            progress=lambda p: bar.update(task, completed=p["tokens_done"], total=p["tokens_total"]),
            scans_dir=corpus.root / args.scans,
            on_reused=lambda name: _say_reused(name, scan_path(corpus.root / args.scans, name)),
        )
    if args.csv:
        Path(args.csv).write_text(to_csv(rows), encoding="utf-8")
    if args.jsonl:
        Path(args.jsonl).write_text(to_jsonl(rows), encoding="utf-8")
    console = Console(width=None if sys.stdout.isatty() else 160)
    title = f"{args.a} vs {args.b}: lp_A - max(lp_B, {args.clamp}), {len(rows):,} tokens in {len(corpus.docs)} files"
    top = Table(title=f"Top tokens: {title}")
    for col in ("diff", "lp_A", "lp_B", "token", "previous token", "where"):
        top.add_column(col)
    for r in rows[: args.top]:
        top.add_row(
            f"{r.diff:.2f}",
            f"{r.lp_a:.2f}",
            f"{r.lp_b:.2f}",
            escape(visible(r.token)),
            escape(visible(r.previous)),
            _where(r),
        )
    console.print(top)
    for by, label in (("token", "token"), ("previous", "preceding token")):
        table = Table(title=f"Groups by {label} (at least {args.min_count} occurrences), by mean diff")
        for col in ("mean diff", "n", "mean lp_A", "mean lp_B", label, "example"):
            table.add_column(col)
        for g in group_rows(rows, by, min_count=args.min_count)[: args.top]:
            ex = g.examples[0]
            table.add_row(
                f"{g.mean_diff:.2f}",
                str(g.count),
                f"{g.mean_lp_a:.2f}",
                f"{g.mean_lp_b:.2f}",
                escape(visible(g.key)),
                _where(ex),
            )
        console.print(table)
    _print_carriers(console, args, result, rows, corpus, load)
    return 0


def _print_carriers(console: Any, args: argparse.Namespace, result: dict[str, Any], rows: list[Any], corpus: Any,
                    load: Any) -> None:  # fmt: skip
    """The neurons that carry A's advantage over the top rows and, with ``--ablate N``, the share
    of each top row's advantage lost when the top N of them are zero-ablated at its position."""
    import numpy as np
    from rich.table import Table

    from lenscope.explain import advantage_lost

    if not result["carriers"]:
        console.print(f"{args.a} has no MLP: no neurons carry its advantage.")
        return
    top_rows = [r for r in rows[: defaults.CARRIER_ROWS] if r.diff > 0]
    table = Table(title=f"Neurons that carry {args.a}'s advantage: direct parts summed over the top {len(top_rows)} rows")
    for col in ("neuron", "summed part", "rows where positive"):
        table.add_column(col)
    for c in result["carriers"][: args.top]:
        table.add_row(f"L{c['layer']}.N{c['index']}", f"{c['total']:.2f}", str(c["rows"]))
    console.print(table)
    if args.ablate:
        from lenscope.explain import explain
        from lenscope.models.shape import shape_of

        model, texts = load(args.a), {d.path: d.text for d in corpus.docs}
        shape = shape_of(model)
        n_layers, d_mlp = shape.n_layers, shape.d_mlp or 0
        own = explain(model, texts, top_rows, top=args.ablate).rows
        carriers = [(c["layer"], c["index"]) for c in result["carriers"][: args.ablate]]
        names = ", ".join(f"L{la}.N{ix}" for la, ix in carriers)
        ablations: dict[str, Callable[[Any], list[tuple[int, int]]]] = {
            f"the top {args.ablate} carriers ({names})": lambda r: carriers,
            f"each row's own top {args.ablate} neurons (by |direct part|)": (
                lambda r: [(la, ix) for la, ix, _ in own[(r.path, r.token_index)].neurons]
            ),
            "the whole MLP (every neuron)": lambda r: [(la, ix) for la in range(n_layers) for ix in range(d_mlp)],
        }
        out = Table(title=f"Share of A's advantage lost, zero-ablating at each of the top {len(top_rows)} rows' positions")
        for col in ("ablated", "median", "quartiles"):
            out.add_column(col)
        for label, neurons_of in ablations.items():
            lost = [advantage_lost(model, texts, [r], neurons_of(r), clamp=args.clamp).lost[0] for r in top_rows]
            q1, med, q3 = np.quantile(lost, [0.25, 0.5, 0.75])
            out.add_row(label, f"{med:.0%}", f"{q1:.0%} .. {q3:.0%}")
        console.print(out)


def _where(row: Any) -> str:
    return f"{row.path}:{row.line}" if row.cell is None else f"{row.path} cell {row.cell}:{row.line}"


def _open_index(spec: str | None) -> Any:
    """An index folder, or the one shipped for the default model when none is named."""
    import lenscope.models
    from lenscope.index.store import open_index
    from lenscope.models.registry import DEFAULT_MODEL

    return open_index(Path(spec) if spec else Path(lenscope.models.__file__).resolve().parent / "indexes" / DEFAULT_MODEL)


def cmd_describe(args: argparse.Namespace) -> int:
    import numpy as np

    from lenscope.index.describe import describe_stored
    from lenscope.models.registry import load_model

    path = Path(args.index)
    model = load_model(args.model or _open_index(args.index).manifest["model"], device=args.device, dtype=args.dtype)
    d = describe_stored(path, model)
    both, occurs, fires = d.counts[:, 2], d.counts[:, 0], d.counts[:, 1]
    has = (d.kind > 0) & (occurs > 0) & (fires > 0)
    p, r = both[has] / np.maximum(fires[has], 1), both[has] / np.maximum(occurs[has], 1)
    f1 = 2 * both[has] / np.maximum(occurs[has] + fires[has], 1)
    print(f"described {len(d.kind):,} units of {path} in {d.meta['seconds']:.1f} s: {int((d.kind > 0).sum()):,} with a "
          f"pattern, {int((d.kind < 0).sum()):,} with no simple pattern, {int(has.sum()):,} scored; median precision "
          f"P(pattern | fires) {np.median(p) if len(p) else 0:.2f}, recall P(fires | pattern) "
          f"{np.median(r) if len(r) else 0:.2f}, F1 {np.median(f1) if len(f1) else 0:.2f} "
          f"on {d.meta['score_tokens']:,} held-out tokens")  # fmt: skip
    return 0


def _export_descriptions(index: Any, out: Path) -> int:
    """Every unit's description as TSV (one row per unit, empty fields where it has none)."""
    import csv

    from lenscope.index.descriptions import describe_row

    if "describe_token" not in index.arrays and "describe_kind" not in index.arrays:
        raise LenscopeError(f"{index.path.name} has no descriptions: lenscope describe {index.path} adds them")
    fields = ["layer", "index", "text", "pattern", "context", "within", "boosts", "precision", "recall", "f1", "occurs",
              "fires", "both", "categories"]  # fmt: skip
    with open(out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(fields)
        for row in range(index.n_neurons):
            d = describe_row(row, index.arrays, index.strings) or {}
            w.writerow([row // index.d_mlp, row % index.d_mlp, d.get("text", ""), repr(d.get("pattern", [])),
                        repr(d.get("context")) if d.get("context") is not None else "", d.get("within") or "",
                        repr(d.get("boosts", [])) if d else "",
                        *(d.get(k, "") for k in ("precision", "recall", "f1", "occurs", "fires", "both")),
                        "; ".join(d.get("categories", []))])  # fmt: skip
    print(f"wrote {out}: {index.n_neurons:,} units")
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from lenscope.errors import InvalidInput
    from lenscope.index.card import neuron_card, neurons_for_description, neurons_for_token

    index = _open_index(args.index)
    sae = (index.manifest.get("sae") or {}).get("name")

    def unit(layer: int, i: int) -> str:  # a feature index's units are features: F123, not L0.N123
        return f"F{i}" if sae else f"L{layer}.N{i}"

    if args.export:
        return _export_descriptions(index, Path(args.export))
    if args.search:
        found = (neurons_for_token if args.by == "token" else neurons_for_description)(index, args.search, args.top)
        for h in found:
            desc = h.get("description")
            print(f"{unit(h['layer'], h['index'])}\t{h['score']:.3f}\t{desc['text'] if desc else ''}")
        return 0
    if not args.neuron:
        raise InvalidInput("name a neuron (L0.N42), a feature (F123, in a feature index) or --search WORDS")
    layer, neuron = _card_unit(args.neuron, sae)
    card = neuron_card(index, layer, neuron)
    desc = card["description"]
    print(f"{card['model']} {unit(card['layer'], card['index'])} ({index.path.name})")
    print(desc["text"] if desc else "(no description: the index was built before them; lenscope describe adds them)")
    if desc:
        print(f"  pattern {' + '.join(visible(t) for t in desc['pattern'])}"
              + (f", context {visible(desc['context'])} within {desc['within']}" if desc.get("context") is not None else "")
              + f", categories: {', '.join(desc['categories']) or '-'}; matches {desc['examples_matched']} of "
              f"{desc['examples_chosen']} top examples it was chosen on")  # fmt: skip
        print(f"  metrics: {desc['metrics']}")

    def effects(key: str) -> str:
        return "  ".join(f"{visible(e['token'])} {e['value']:+.2f}" for e in card[key][:8]) or "-"

    print(f"boosts:     {effects('logit_boosted')}")
    print(f"suppresses: {effects('logit_suppressed')}")
    if getattr(args, "inputs", False):
        print(f"raised by:  {_card_inputs(card, bool(sae))}")
    firing = card.get("firing")
    if firing:
        thr = f" (> {firing['threshold']:.3f})" if firing["threshold"] is not None else ""
        print(f"fires{thr} on {100 * firing['above_threshold']:.2f}% of {firing['tokens']:,} tokens; above 0 on "
              f"{100 * firing['above_zero']:.2f}%")  # fmt: skip

    def show(e: dict[str, Any]) -> str:
        at = e["max_token"]
        text = "".join(e["tokens"][max(0, at - 8) : at]) + "[[" + e["tokens"][at] + "]]" + "".join(e["tokens"][at + 1 : at + 4])
        return f"  {e['value']:7.3f}  {e['file']}: {visible(text)}"

    print("top examples:")
    for e in card["examples"][: args.top]:
        print(show(e))
    if card.get("quantiles") is None:
        print("quantile examples: none (the index was built before them; rebuild it to record them)")
    else:
        for q in card["quantiles"]:
            print(f"interval {q['low']:.3f} .. {q['high']:.3f}:" + ("" if q["examples"] else " (no tokens)"))
            for e in q["examples"]:
                print(show(e))
        print("random firing examples:" + ("" if card["random_examples"] else " (none)"))
        for e in card["random_examples"]:
            print(show(e))
    return 0


def _card_inputs(card: dict[str, Any], feature: bool) -> str:
    """The input side from the weights: the tokens that raise a neuron's pre-activation most on
    their own (the UI card's "Inputs"), over the shipped corpus's frequent tokens."""
    if feature:
        return "- (from the weights: neurons only; a feature's inputs are in its description's pattern)"
    from lenscope.circuits import neuron_inputs_wire
    from lenscope.models.registry import load_model

    rows = neuron_inputs_wire(load_model(card["model"]), card["model"], card["layer"], card["index"], top=8)["inputs"]
    return "  ".join(f"{visible(r['token'])} {r['value']:.2f}" for r in rows) + "  (each token alone, through LN2 and W_in)"


def _card_unit(spec: str, sae: str | None) -> tuple[int, int]:
    """``(layer, index)`` of a card's unit: ``L0.N42`` in a neuron index (``0.42`` too), ``F123``
    in a feature index (its one "layer" is 0)."""
    import re

    from lenscope.errors import InvalidInput
    from lenscope.units import parse_unit

    if re.fullmatch(r"\d+\.\d+", spec.strip()):  # LAYER.INDEX, as before units had names
        layer, _, index = spec.strip().partition(".")
        return int(layer), int(index)
    unit = parse_unit(spec)
    if unit.kind == "feature" and sae:
        return 0, int(unit.index or 0)
    if unit.kind == "neuron" and not sae:
        return int(unit.layer or 0), int(unit.index or 0)
    units = f"features of {sae} (F123)" if sae else "neurons (L0.N42)"
    raise InvalidInput(f"{unit.name} is a {unit.kind}: this index's units are {units}")


def build_parser() -> argparse.ArgumentParser:
    from lenscope.models.registry import DEFAULT_MODEL

    parser = argparse.ArgumentParser(prog="lenscope", description="What a language model does on your text, token by token.")
    sub = parser.add_subparsers(dest="command", required=True)
    an = sub.add_parser("analyze", help="per-token predictions and top neurons for a file")
    an.add_argument("path")
    an.add_argument("--lines", type=_line_range, help="A:B, 1-based inclusive; earlier lines are context")
    an.add_argument("--model", default=DEFAULT_MODEL)
    an.add_argument("--device", default=None)
    an.add_argument("--dtype", choices=DTYPE_NAMES, help="load the model in this dtype (default: as stored)")
    an.add_argument("--top-k", type=int, default=defaults.TOP_K)
    an.add_argument("--top-neurons", type=int, default=defaults.TOP_NEURONS)
    an.add_argument("--json", action="store_true", help="print the wire schema's JSON instead of a table")
    an.add_argument("--ablate", action="append", default=[], metavar="SPEC",
                    help="re-run with a unit changed, e.g. L0.N123 (zeroed), L0.H3, L0.MLP, L0.N5=mean, "
                         "L0.H3=scale:0.5, L0.N5=steer:4, L0.N5=set:2, F12=steer:3 (with --sae) (repeatable); "
                         "prints what changed")  # fmt: skip
    an.add_argument("--top", type=int, default=20, help="with --ablate: the tokens shown")
    an.add_argument("--sae", help="also list this SAE's strongest features at each token (lenscope models lists them)")
    an.set_defaults(func=cmd_analyze)
    md = sub.add_parser("models", help="the models and SAEs lenscope can load here, and what each is")
    md.add_argument("--model-dir", action="append", default=[], help="also list model and SAE folders under this folder")
    md.set_defaults(func=cmd_models)
    wy = sub.add_parser("why", help="why the model predicted the next token after a place in a file (direct logit attribution)")
    wy.add_argument("path")
    wy.add_argument("--line", type=int, required=True, help="1-based")
    wy.add_argument("--col", type=int, required=True, help="1-based: the token holding this character")
    wy.add_argument("--target", help="explain this next token (its text) instead of the one in the file")
    wy.add_argument("--model", default=DEFAULT_MODEL)
    wy.add_argument("--top", type=int, default=defaults.TOP_NEURONS, help="heads, neurons and features listed")
    wy.add_argument("--device", default=None)
    wy.add_argument("--dtype", choices=DTYPE_NAMES, help="load the model in this dtype (default: as stored)")
    wy.add_argument("--sae", help="also split its MLP layer's part into this SAE's features (lenscope models lists them)")
    wy.set_defaults(func=cmd_why)
    ac = sub.add_parser("act", help="one neuron's (L0.N224) or SAE feature's (F1741, with --sae) activation at every token")
    ac.add_argument("unit", help="L0.N224 (a neuron) or F1741 (a feature of --sae)")
    ac.add_argument("path")
    ac.add_argument("--lines", type=_line_range, help="A:B, 1-based inclusive; earlier lines are context")
    ac.add_argument("--model", default=DEFAULT_MODEL)
    ac.add_argument("--sae", help="the SAE whose feature the unit is (lenscope models lists them)")
    ac.add_argument("--top", type=int, help="only the N strongest tokens, each in its context")
    ac.add_argument("--json", action="store_true", help="print the wire schema's JSON (POST unit_activations) instead")
    ac.add_argument("--device", default=None)
    ac.add_argument("--dtype", choices=DTYPE_NAMES, help="load the model in this dtype (default: as stored)")
    ac.set_defaults(func=cmd_act)
    ix = sub.add_parser("index", help="build a neuron index (Neuroscope over your files)")
    ix.add_argument("paths", nargs="+", help="files or folders under --root (relative to it, or absolute)")
    ix.add_argument("--model", default=DEFAULT_MODEL)
    ix.add_argument("--out", required=True, help="index folder to write (atomically)")
    ix.add_argument("--root", default=".", help="the paths are relative to this folder, and recorded so")
    ix.add_argument("--k", type=int, default=defaults.INDEX_K, help="top examples kept per neuron")
    ix.add_argument("--device", default=None)
    ix.add_argument("--dtype", choices=DTYPE_NAMES, help="load the model in this dtype (default: as stored)")
    ix.add_argument("--force", action="store_true", help="rebuild even when no file changed")
    ix.add_argument("--sae", help="index this SAE's features instead of the MLP neurons")
    ix.add_argument("--engine", choices=("local", "ray"), default="local",
                    help="where the forward passes run: here, or on a Ray cluster (pip install 'lenscope[ray]')")  # fmt: skip
    ix.add_argument("--address", help="with --engine ray: the cluster's host:port (default: start a local one)")
    ix.add_argument("--workers", type=int, default=2, help="with --engine ray: worker processes, one model each")
    ix.add_argument("--no-shards", action="store_true",
                    help="keep no shard results beside the index (no resume, no incremental update; saves disk)")  # fmt: skip
    ix.set_defaults(func=cmd_index)
    cp = sub.add_parser("compare", help="two models token by token over files: where does A beat B?")
    cp.add_argument("paths", nargs="+", help="files or folders under --root (relative to it, or absolute)")
    cp.add_argument("--a", default=DEFAULT_MODEL, help="model A (default: the GELU model)")
    cp.add_argument("--b", default="lenscope-attn-only-1l", help="model B (default: the attention-only model)")
    cp.add_argument("--clamp", type=float, default=defaults.CLAMP, help="B's log-prob is clamped at this floor")
    cp.add_argument("--root", default=".", help="the paths are relative to this folder")
    cp.add_argument("--top", type=int, default=25)
    cp.add_argument("--min-count", type=int, default=defaults.MIN_COUNT, help="smallest group shown")
    cp.add_argument("--csv", help="write every token's row as CSV")
    cp.add_argument("--jsonl", help="write every token's row as JSON lines")
    cp.add_argument("--device", default=None)
    cp.add_argument("--dtype", choices=DTYPE_NAMES, help="load the model in this dtype (default: as stored)")
    cp.add_argument("--scans", default=defaults.SCANS_DIR, help="where per-model scans are stored (under --root)")
    cp.add_argument("--ablate", type=int, default=0, metavar="N",
                    help="zero-ablate the top N neurons that carry A's advantage at the top rows: how much is lost?")  # fmt: skip
    cp.set_defaults(func=cmd_compare)
    sc = sub.add_parser("scan", help="one model over files: what is it good at?")
    sc.add_argument("paths", nargs="+", help="files or folders under --root (relative to it, or absolute)")
    sc.add_argument("--model", default=DEFAULT_MODEL)
    sc.add_argument("--root", default=".", help="the paths are relative to this folder")
    sc.add_argument("--scans", default=defaults.SCANS_DIR)
    sc.add_argument("--top", type=int, default=25)
    sc.add_argument("--min-count", type=int, default=defaults.MIN_COUNT)
    sc.add_argument("--device", default=None)
    sc.add_argument("--dtype", choices=DTYPE_NAMES, help="load the model in this dtype (default: as stored)")
    sc.set_defaults(func=cmd_scan)
    ds = sub.add_parser("describe", help="add a one-line description of every neuron to an index built before them")
    ds.add_argument("index", help="the index folder")
    ds.add_argument("--model", default=None, help="default: the index's model")
    ds.add_argument("--device", default=None)
    ds.add_argument("--dtype", choices=DTYPE_NAMES, help="load the model in this dtype (default: as stored)")
    ds.set_defaults(func=cmd_describe)
    cd = sub.add_parser("card", help="a neuron's card from an index (description, top examples), or search neurons")
    cd.add_argument("neuron", nargs="?", help="L0.N42 (a neuron), F123 (a feature, in a feature index)")
    cd.add_argument("--index", default=None, help="the index folder (default: the one shipped for the default model)")
    cd.add_argument("--search", help="words to find in descriptions ('closing bracket'), or a token with --by token")
    cd.add_argument("--by", choices=("description", "token"), default="description")
    cd.add_argument("--top", type=int, default=10, help="examples shown, or neurons found")
    cd.add_argument("--export", metavar="TSV", help="write every neuron's description to this file (tab-separated)")
    cd.add_argument("--inputs", action="store_true",
                    help="also the tokens that raise a neuron most on their own, from the weights (loads the model)")  # fmt: skip
    cd.set_defaults(func=cmd_card)
    from lenscope.cli_heads import add_parsers as add_head_parsers

    add_head_parsers(sub, DEFAULT_MODEL)
    from lenscope.cli_sweep import add_parsers as add_sweep_parsers

    add_sweep_parsers(sub, DEFAULT_MODEL, DTYPE_NAMES)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except LenscopeError as exc:
        print(f"lenscope: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
