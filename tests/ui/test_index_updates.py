"""Saving a file in JupyterLab updates the workspace index that covers it: the panel shows the
update ("updating the index after saving …", then the shards it reused) and an open neuron card
fetches itself again, so that it shows the text just written."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from typing import Any

import numpy as np

from lenscope.wire_codec import decode_json
from tests.ui.conftest import Lab, shot
from tests.ui.test_cards import set_theme
from tests.ui.test_inline import open_in_lab

MODEL = "lenscope-gelu-1l"
INDEX = "ui-updates"  # named in the cards' requests (the shipped index, with more tokens, is the default)
FOLDER = "upd"
EDITED = f"{FOLDER}/m03.py"
NEW_BLOCK = "".join(f"<tr><td>zebra {i}</td><td>quagga &amp; okapi</td></tr>\n" for i in range(40))
NEW_WORDS = ("zebra", "quagga", "okapi")


def analyze(lab: Lab, text: str) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{lab.url}lenscope/api/analyze",
        data=json.dumps({"text": text, "model": MODEL, "top_neurons": 5}).encode(),
        method="POST",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    return decode_json(urllib.request.urlopen(req, timeout=120).read())


def wait_jobs(lab: Lab, ids: set[str] | None = None, trigger: str | None = None, timeout: float = 300) -> list[dict[str, Any]]:
    """The jobs (those of ``ids``, or of ``trigger``) once none of them is queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = [
            j for j in lab.api("jobs")["jobs"] if (ids is None or j["id"] in ids) and (trigger is None or j["trigger"] == trigger)
        ]
        if jobs and all(j["state"] not in ("queued", "running") for j in jobs):
            return jobs
        assert time.monotonic() < deadline, jobs
        time.sleep(0.25)


def pick_neuron(lab: Lab, edited: str) -> tuple[int, float]:
    """A neuron whose activation on the new block beats its card's weakest example: once the
    index is updated, the block is among its top examples (the idea of
    tests/server/test_index_updates.py, made certain with the card's current values)."""
    wire = analyze(lab, edited)
    inside = wire["tokens"]["start"] >= len(edited) - len(NEW_BLOCK)
    acts = wire["predictions"]["neuron_activation"][inside].astype(np.float32).reshape(-1)
    ids = wire["predictions"]["neuron_index"][inside].reshape(-1)
    best: dict[int, float] = {}
    for j in np.argsort(-acts):
        best.setdefault(int(ids[j]), float(acts[j]))
    margins = []
    for n, act in list(best.items())[:8]:
        card = lab.api(f"neurons/{MODEL}/0/{n}?index={INDEX}")
        assert card["index_path"] == INDEX, card["index_path"]
        margins.append((act - min(e["value"] for e in card["examples"]), n))
    margin, n = max(margins)
    assert margin > 0, margins
    return n, margin


def card_text(page: Any, n: int) -> str:
    return str(page.locator(f'.ls-card-view[data-index="{n}"] .ls-examples').inner_text())


def test_saving_a_file_updates_its_index_and_the_open_card(page: Any, lab: Lab) -> None:
    folder = lab.root / FOLDER
    folder.mkdir()
    # shard boundaries follow a hash of each file's path (lenscope.index.shards): these names
    # make three shards, of which an edit of m03.py re-runs one
    for i in (0, 3, 28, 30, 32, 33):
        body = "".join(f"def f{i}_{j}(x):\n    return x * {j} + {i}\n\n" for j in range(80))
        (folder / f"m{i:02d}.py").write_text(body, encoding="utf-8")
    try:
        t0 = time.monotonic()
        built = wait_jobs(lab, {lab.api("indexes", {"paths": [FOLDER], "name": INDEX, "k": 8, "model": MODEL})["id"]})[0]
        assert built["state"] == "done" and built["result"]["shards"] >= 2, built
        build_s = time.monotonic() - t0

        open_in_lab(page, lab, EDITED)
        page.wait_for_selector(".jp-FileEditor .cm-content")
        page.evaluate("() => window.jupyterapp.commands.execute('lenscope:show-panel')")
        # record what the index section says, as it says it
        page.evaluate(
            """() => {
                const section = document.querySelector('#lenscope-panel .ls-index');
                window.lsSaid = [];
                new MutationObserver(() => window.lsSaid.push([section.dataset.jobState, section.dataset.trigger,
                    section.querySelector('.ls-job-status').textContent]))
                    .observe(section, {attributes: true, subtree: true, childList: true, characterData: true});
            }"""
        )

        # append the new block at the end of the file (not saved yet)
        old = (folder / "m03.py").read_text(encoding="utf-8")
        edited = old + NEW_BLOCK
        n, margin = pick_neuron(lab, edited)
        # the neuron's card from this index (picked in the panel), open before the save: the new text is not in it
        page.locator("#lenscope-panel select.ls-index-select").select_option(INDEX)
        page.evaluate(
            f"() => window.jupyterapp.commands.execute('lenscope:open-neuron', {{model: '{MODEL}', layer: 0, index: {n}}})"
        )
        page.wait_for_selector(f'.ls-card-view[data-index="{n}"][data-loads="1"] .ls-example')
        assert not any(w in card_text(page, n) for w in NEW_WORDS)

        page.locator(".jp-FileEditor .cm-content").click()
        page.keyboard.press("Control+End")
        page.keyboard.insert_text(NEW_BLOCK)
        page.wait_for_function("() => document.querySelector('.jp-FileEditor .cm-content').textContent.includes('zebra 39')")
        t_save = time.monotonic()
        page.keyboard.press("Control+s")
        deadline = time.monotonic() + 30
        while (folder / "m03.py").read_text(encoding="utf-8") != edited:
            assert time.monotonic() < deadline, "the editor's text was not saved as typed"
            time.sleep(0.1)

        # the panel shows the update, then what it reused
        running = page.locator('#lenscope-panel .ls-index[data-trigger="save"][data-job-state="running"]')
        running.wait_for(timeout=60_000)
        running.scroll_into_view_if_needed()
        shot(page, "index-update-running-light")
        section = page.locator('#lenscope-panel .ls-index[data-trigger="save"][data-job-state="done"]')
        section.wait_for(timeout=300_000)
        [update] = [j for j in wait_jobs(lab, trigger="save") if j["result"] and j["result"]["name"] == INDEX]
        assert update["state"] == "done", update
        r = update["result"]
        assert 0 < r["shards_reused"] < r["shards"], r
        status = section.locator(".ls-job-status").inner_text()
        assert f"updated after saving {EDITED}: {r['shards_reused']} of {r['shards']} shards reused" in status, status
        said = page.evaluate("() => window.lsSaid")
        assert any(
            s[1] == "save" and s[0] == "running" and s[2].startswith(f"updating the index after saving {EDITED}") for s in said
        ), said

        # the open card fetched itself again: the new text is among its examples
        page.wait_for_function(
            f"""() => {{
                const list = document.querySelector('.ls-card-view[data-index="{n}"] .ls-examples');
                return list && {json.dumps(NEW_WORDS)}.some(w => list.textContent.includes(w));
            }}""",
            timeout=60_000,
        )
        refreshed_s = time.monotonic() - t_save
        examples = page.locator(f'.ls-card-view[data-index="{n}"] .ls-example')
        new = [j for j in range(examples.count()) if any(w in examples.nth(j).inner_text() for w in NEW_WORDS)]
        assert new and all(examples.nth(j).locator(".ls-example-file").get_attribute("data-file") == EDITED for j in new)
        card = lab.api(f"neurons/{MODEL}/0/{n}?index={INDEX}")
        assert any(w in "".join(e["tokens"]) for e in card["examples"] for w in NEW_WORDS)

        set_theme(page, light=True)
        examples.nth(new[0]).scroll_into_view_if_needed()
        section.scroll_into_view_if_needed()
        shot(page, "index-update-after-save-light")
        print(f"\nneuron {n} (margin {margin:.2f}); build {build_s:.1f} s; save -> card shows the new text {refreshed_s:.1f} s;"
              f" update {r['seconds']:.1f} s, {r['shards_reused']} of {r['shards']} shards reused")  # fmt: skip
    finally:
        shutil.rmtree(lab.root / ".lenscope" / "indexes" / INDEX, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
