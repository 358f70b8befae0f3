"""The ``lenscope analyze`` command, run as a user would."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from lenscope.cli import select_lines
from tests.demo import copy_demo

SOURCE = "import os\n\n\ndef home():\n    return os.environ['HOME']\n"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lenscope.cli", *args], capture_output=True, text=True, timeout=300)


def test_select_lines_gives_earlier_lines_as_context() -> None:
    assert select_lines(SOURCE, (4, 5)) == ("import os\n\n\n", "def home():\n    return os.environ['HOME']\n")


def test_table_and_json(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text(SOURCE, encoding="utf-8")
    table = run("analyze", str(f), "--lines", "4:5")
    assert table.returncode == 0, table.stderr
    assert "environ" in table.stdout and "top-5 next" in table.stdout and "forward" in table.stdout
    out = run("analyze", str(f), "--lines", "4:5", "--json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    starts, ends = payload["tokens"]["start"]["data"], payload["tokens"]["end"]["data"]
    selection = "def home():\n    return os.environ['HOME']\n"
    assert "".join(selection[s:e] for s, e in zip(starts, ends)) == selection
    assert payload["context_tokens"] > 0


def test_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    f = tmp_path / "empty.py"
    f.write_text("   \n", encoding="utf-8")
    out = run("analyze", str(f))
    assert out.returncode == 2 and "only whitespace" in out.stderr and "Traceback" not in out.stderr
    out = run("analyze", str(tmp_path / "missing.py"))
    assert out.returncode == 2 and "cannot read" in out.stderr
    out = run("analyze", str(f), "--model", "nope")
    assert out.returncode == 2 and "unknown model 'nope'" in out.stderr


LENSCOPE = Path(sys.executable).parent / "lenscope"  # the console script, as the README runs it
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def lenscope(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LENSCOPE), *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def test_readme_workspace_commands(tmp_path: Path) -> None:
    """`lenscope index`, `scan` and `compare` exactly as the README shows them, on a copy of examples/."""
    copy_demo(tmp_path / "examples")
    out = lenscope("index", "examples", "--out", "examples/.lenscope/indexes/workspace", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "wrote examples/.lenscope/indexes/workspace: 3 files" in out.stdout and "Traceback" not in out.stderr
    manifest = json.loads((tmp_path / "examples/.lenscope/indexes/workspace/manifest.json").read_text())
    notebook = next(f for f in manifest["files"] if f["path"] == "examples/tour.ipynb")
    assert notebook["cells"], "a notebook is indexed as its cells' sources"
    again = lenscope("index", "examples", "--out", "examples/.lenscope/indexes/workspace", cwd=tmp_path)
    assert again.returncode == 0 and "is up to date" in again.stdout
    ray_out = lenscope("index", "examples", "--out", "/tmp/lenscope-ray-index", "--engine", "ray", "--workers", "2", "--force",
                       cwd=tmp_path)  # fmt: skip
    assert ray_out.returncode == 0 and "(ray engine," in ray_out.stdout, ray_out.stderr
    for name in ("top_values", "top_windows", "top_context", "hist", "mean"):  # the same index as the local engine's
        local = (tmp_path / "examples/.lenscope/indexes/workspace" / f"{name}.npy").read_bytes()
        assert Path(f"/tmp/lenscope-ray-index/{name}.npy").read_bytes() == local, name

    out = lenscope(
        "compare", "examples", "--a", "lenscope-gelu-1l", "--b", "lenscope-attn-only-1l", "--min-count", "3", "--ablate", "5",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "previous token" in out.stdout and "Groups by token (at least 3 occurrences)" in out.stdout
    flat = " ".join(out.stdout.split())  # table titles wrap
    assert "carry lenscope-gelu-1l's advantage" in flat and "L0.N" in flat
    assert "each row's own top 5 neurons" in flat and "the whole MLP (every neuron)" in flat
    assert "examples/tour.ipynb cell " in out.stdout  # notebook rows name their cell
    assert not (tmp_path / ".lenscope" / "compare").exists()  # the CLI writes exports only where asked
    export = tmp_path / "rows.jsonl"
    again = lenscope("compare", "examples", "--jsonl", str(export), cwd=tmp_path)  # the stored scans are reused
    assert again.returncode == 0, again.stderr
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    assert rows and {"token_index", "cell", "previous", "after"} <= rows[0].keys()
    first = next(r for r in rows if r["cell"] is None)
    source = (tmp_path / first["path"]).read_text()
    assert source[first["start"] : first["end"]] == first["token"]
    assert source[first["end"] :].startswith(first["after"])  # "after" is the text that follows, as its name says

    out = lenscope("scan", "examples", "--min-count", "3", cwd=tmp_path)
    assert out.returncode == 0 and "reusing the scan" in out.stderr and "good at" in out.stdout, out.stderr


def test_workspace_commands_take_paths_under_root_and_refuse_the_rest(tmp_path: Path) -> None:
    copy_demo(tmp_path / "examples")
    out = lenscope("index", "tour.py", "--root", "examples", "--out", "ix", cwd=tmp_path)  # relative to --root, as the help says
    assert out.returncode == 0 and "1 files" in out.stdout, out.stderr
    for args in (("index", "../etc", "--out", "x"), ("scan", "/etc/passwd"), ("compare", "nothing-here")):
        out = lenscope(*args, cwd=tmp_path / "examples")
        assert out.returncode == 2 and "forbidden_path" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_absolute_paths_inside_root_are_taken_and_the_rest_refused_by_name(tmp_path: Path) -> None:
    copy_demo(tmp_path / "examples")
    root = tmp_path / "examples"
    out = lenscope("index", str(root / "tour.py"), "--root", "examples", "--out", "ix", cwd=tmp_path)
    assert out.returncode == 0 and "1 files" in out.stdout and "Traceback" not in out.stderr, out.stderr
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert [f["path"] for f in manifest["files"]] == ["tour.py"]  # recorded relative to --root, as a relative path is
    outside = tmp_path / "outside.py"
    outside.write_text("x = 1\n")
    for args, cwd in ((("scan", str(outside), "--root", "examples"), tmp_path), (("compare", str(outside)), root)):
        out = lenscope(*args, cwd=cwd)
        assert out.returncode == 2 and "forbidden_path" in out.stderr and "Traceback" not in out.stderr, out.stderr
        assert str(outside) in out.stderr and str(root) in out.stderr and "outside --root" in out.stderr, out.stderr


def test_compare_says_when_it_reuses_stored_scans(tmp_path: Path) -> None:
    """`compare`, like `scan`, says which stored scans it reused (in the same words)."""
    (tmp_path / "a.py").write_text("def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n" * 3)
    first = lenscope("compare", "a.py", "--top", "3", cwd=tmp_path)
    assert first.returncode == 0 and "reusing the scan" not in first.stderr, first.stderr
    again = lenscope("compare", "a.py", "--top", "3", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    err = "".join(again.stderr.split())  # a long path may wrap
    scans = tmp_path.resolve() / ".lenscope" / "scans"
    for model in ("lenscope-gelu-1l", "lenscope-attn-only-1l"):
        assert f"{model}:reusingthescanin{scans / model}.npz" in err, again.stderr
    scan = lenscope("scan", "a.py", cwd=tmp_path)  # the same words as `scan`'s
    assert f"lenscope-gelu-1l:reusingthescanin{scans}/lenscope-gelu-1l.npz" in "".join(scan.stderr.split()), scan.stderr


def test_relative_to_root_takes_absolute_paths_under_the_root(tmp_path: Path) -> None:
    import pytest

    from lenscope.paths import PathForbidden, relative_to_root

    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (tmp_path / "link").symlink_to(root)  # the same root, reached through a link
    for given, want in (
        ("src/a.py", "src/a.py"),  # relative: unchanged (safe_relative checks it as before)
        (str(root / "src" / "a.py"), "src/a.py"),
        (str(root), "."),
        (str(root) + "/", "."),
        (str(tmp_path / "link" / "src"), "src"),
        (str(root / "src" / ".." / "src"), "src"),
    ):
        assert relative_to_root(root, given, where="--root ws") == want, given
        assert relative_to_root(tmp_path / "link", given, where="--root link") == want, given
    for given in ("/etc/passwd", str(tmp_path), str(root / ".." / "elsewhere")):
        with pytest.raises(PathForbidden, match="outside --root ws"):
            relative_to_root(root, given, where="--root ws")


def test_analyze_top_k_is_what_was_asked(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text(SOURCE, encoding="utf-8")
    out = run("analyze", str(f), "--top-k", "3", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["predictions"]["top_ids"]["shape"][1] == 3
    table = run("analyze", str(f), "--top-k", "3")
    assert "top-3 next" in table.stdout


def test_why_explains_a_prediction_at_a_place(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text(SOURCE, encoding="utf-8")
    out = run("why", str(f), "--line", "5", "--col", "12", "--top", "3")
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    value, parts = (float(x) for x in re.findall(r"centred logit (-?[\d.]+) = parts (-?[\d.]+)", first)[0])
    assert value == parts and "after ·os" in first and "Heads, by |direct part|" in out.stdout
    bad = run("why", str(f), "--line", "99", "--col", "1")
    assert bad.returncode == 2 and "outside" in bad.stderr and "Traceback" not in bad.stderr


def test_analyze_with_interventions_prints_what_changed(gelu) -> None:
    """`lenscope analyze FILE --ablate ...` as the README shows it: the mean change equals the core's."""
    import re

    import numpy as np
    import pytest

    from lenscope.analysis import analyze
    from lenscope.cli import parse_intervention, select_lines

    out = lenscope("analyze", "examples/tour.py", "--lines", "8:15", "--ablate", "L0.N23", "--ablate", "L0.H3=scale:0.5",
                   cwd=EXAMPLES.parent)  # fmt: skip
    assert out.returncode == 0, out.stderr
    flat = " ".join(out.stdout.split())
    assert "with L0.N23 zero, L0.H3 x0.5" in flat
    context, selection = select_lines((EXAMPLES / "tour.py").read_text(), (8, 15))
    ivs = [parse_intervention("L0.N23"), parse_intervention("L0.H3=scale:0.5")]
    n = len(analyze(gelu, selection, context=context).token_texts)
    delta = (analyze(gelu, selection, context=context, interventions=ivs).predictions.actual_logprob
             - analyze(gelu, selection, context=context).predictions.actual_logprob)[:n]  # fmt: skip
    shown = float(re.search(r"over \d+ tokens: ([+-][0-9.]+) nats", out.stdout).group(1))
    assert shown == pytest.approx(float(np.nanmean(delta)), abs=2e-3)
    bad = lenscope("analyze", "examples/tour.py", "--ablate", "L0.H3=set:1", cwd=EXAMPLES.parent)
    assert bad.returncode == 2 and "a head can be zero, mean, scale, steer" in bad.stderr and "Traceback" not in bad.stderr


def test_readme_model_and_sae_commands(gelu) -> None:
    """`lenscope analyze --model lenscope-gelu-2l`, `--sae ...` and `lenscope models` as the README shows them."""
    from lenscope.analysis import analyze
    from lenscope.cli import read_file, select_lines
    from lenscope.models.sae_registry import load_named_sae

    root = EXAMPLES.parent
    two = lenscope("analyze", "examples/tour.py", "--lines", "8:15", "--model", "lenscope-gelu-2l", cwd=root)
    assert two.returncode == 0, two.stderr
    assert "lenscope-gelu-2l: " in two.stdout and re.search(r"\bL1\.N\d+=", two.stdout)  # a layer-1 neuron is listed
    out = lenscope("analyze", "examples/tour.py", "--lines", "8:15", "--sae", "lenscope-gelu-1l-mlp-topk", cwd=root)
    assert out.returncode == 0, out.stderr
    context, selection = select_lines(read_file(EXAMPLES / "tour.py"), (8, 15))
    want = analyze(gelu, selection, context=context, sae=load_named_sae("lenscope-gelu-1l-mlp-topk"))
    first = want.predictions
    shown = "  ".join(f"F{int(f)}={float(v):.2f}" for f, v in zip(first.feature_index[0][:3], first.feature_activation[0][:3]))
    assert shown in out.stdout  # the first token's top-3 features, as the core finds them
    models = lenscope("models", cwd=root)
    assert models.returncode == 0, models.stderr
    assert re.search(r"lenscope-gelu-2l\s+│ embedded │ yes\s+│ 2\s+│ 256\s+│ 1024\s+│ 4096", models.stdout)
    assert re.search(r"lenscope-gelu-1l-mlp-topk\s+│ lenscope-gelu-1l │ blocks\.0\.mlp\.hook_post │ 2048\s+│ 32", models.stdout)


def test_readme_heads_commands(gelu2) -> None:
    """`lenscope heads` and `lenscope probe induction` exactly as the README shows them: the numbers are
    the core's (lenscope.headscores) on the same probe and file."""
    from lenscope.cli_heads import parse_head
    from lenscope.headscores import frequent_tokens, induction_probe, shipped_token_counts, text_scores

    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^\.venv/bin/lenscope ((?:heads|probe) [^#\n]*?)\s*(?:#.*)?$", readme, re.M)
    assert len(commands) == 4, commands
    pool = frequent_tokens(gelu2, counts=shipped_token_counts("lenscope-gelu-2l", gelu2.cfg.d_vocab))
    probe = induction_probe(gelu2, length=50, seed=0, pool=pool)
    on_file = text_scores(gelu2, (EXAMPLES / "tour.py").read_text(encoding="utf-8"))
    for command in commands:
        out = lenscope(*command.split(), cwd=EXAMPLES.parent)
        assert out.returncode == 0, out.stderr
        if command.startswith("probe"):
            assert f"in-context gain         {probe.in_context_gain:+6.2f} nats" in out.stdout
            layer, head, score = probe.top("induction", 1)[0]
            assert f"L{layer}.H{head}  {score:.2f}" in out.stdout
            if "--ablate" in command:  # the same probe with those heads zero-ablated
                heads = [parse_head(h) for h in command.split("--ablate")[1].split()]
                ablated = induction_probe(gelu2, length=50, seed=0, pool=pool, ablate=heads)
                assert f"zero-ablated: in-context gain {ablated.in_context_gain:+6.2f} nats" in out.stdout
        else:
            scores = on_file if "--file" in command else probe
            cells = [f"{scores.scores[r][1, 7]:.2f}" for r in ("previous_token", "duplicate_token", "induction", "bos")]
            assert re.search(r"L1\.H7" + "".join(rf"\s+│\s+{re.escape(c)}" for c in cells), out.stdout), out.stdout


def test_readme_unit_commands(gelu) -> None:
    """`lenscope act` (a neuron, a feature's strongest tokens) and `why --sae` exactly as the README shows
    them: every number printed is the core's (unit_activations, attribute with the SAE)."""
    import numpy as np

    from lenscope.activations import unit_activations
    from lenscope.attribution import attribute
    from lenscope.models.sae_registry import load_named_sae

    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^\.venv/bin/lenscope ((?:act|why) [^#\n]*?)\s*(?:#.*)?$", readme, re.M)
    commands = [c for c in commands if c.startswith("act") or "--sae" in c]
    assert len(commands) == 3, commands
    sae = load_named_sae("lenscope-gelu-1l-mlp-topk")
    text = (EXAMPLES / "tour.py").read_text(encoding="utf-8")
    for command in commands:
        out = lenscope(*command.split(), cwd=EXAMPLES.parent)
        assert out.returncode == 0, out.stderr
        words = command.split()
        if words[0] == "act":
            lines = (8, 15) if "--lines" in words else None
            context, selection = select_lines(text, lines)
            acts = unit_activations(gelu, selection, [words[1]], sae if "--sae" in words else None, context).activations[:, 0]
            peak = int(np.argmax(acts))
            assert (
                f"fires (> 0) on {int((acts > 0).sum())} " in out.stdout
                and f"max {acts[peak]:.3f} at token {peak} " in out.stdout
            )
            top = int(words[words.index("--top") + 1]) if "--top" in words else len(acts)
            shown = [i for i in np.argsort(-acts, kind="stable")[:top] if acts[i] > 0] if "--top" in words else range(len(acts))
            assert shown
            for i in shown:
                assert re.search(rf"│ {i}\s+│ (.*│ )?{acts[i]:.3f}\s+│", out.stdout), (i, acts[i], out.stdout)
        else:
            line, col = int(words[words.index("--line") + 1]), int(words[words.index("--col") + 1])
            offset = sum(len(x) for x in text.splitlines(keepends=True)[: line - 1]) + col - 1
            enc = gelu.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            position = next(i for i, (a, b) in enumerate(enc["offset_mapping"]) if a <= offset < b)
            f = attribute(gelu, text, position, sae=sae).features
            assert f is not None
            assert f"features {f.parts.sum():+.3f} + decoder bias {f.bias:+.3f} + error {f.error:+.3f}" in out.stdout
            for i in [i for i in np.argsort(-np.abs(f.parts)) if f.activations[i] > 0][:10]:
                cells = rf"│ F{i}\s+│ {re.escape(f'{f.parts[i]:+.3f}')}\s+│ {f.activations[i]:.3f}\s+│"
                assert re.search(cells, out.stdout), i
            assert re.search(r"│ L0\.H\d+\s+│", out.stdout) and re.search(r"│ L0\.N\d+\s+│", out.stdout)  # one naming scheme
    bad = lenscope("act", "F682", "examples/tour.py", cwd=EXAMPLES.parent)
    assert bad.returncode == 2 and "F682 is a feature: name its SAE with --sae" in bad.stderr
    bad = lenscope("act", "L0.H3", "examples/tour.py", cwd=EXAMPLES.parent)
    assert bad.returncode == 2 and "L0.H3 is a head: only neurons" in bad.stderr and "Traceback" not in bad.stderr
