"""`fourreal batch` on a real local Ray (2 CPUs) with the tiny random-weight LTX pipeline.

Each batch runs as `fourreal batch` in its own process, as a user starts it. One batch of three items: `panda` (conftest's `finished_run` folder copied in as the item's folder: `fourreal run`
keeps every finished step, so it only reports), `fox` (runs every step; its worker is killed by pid mid-canonical
and Ray reschedules it, keeping its generated scene) and `broken` (its video model does not exist: retried, then
reported failed with its log). Then the same command again with a fourth item, `lynx`: the two finished items are
skipped (no new attempt, the same video file), `broken` is tried once more, and Ctrl-C (SIGINT to the batch)
while `lynx` trains stops the batch: report written, exit code 130, nothing of `lynx` left running. The gallery
(index.html) is opened in Chromium: each item is listed and each done item's video plays.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest
import yaml

from conftest import RUN_STEPS, TINY_GENERATION, TINY_RUN, ns_script

pytest.importorskip("ray", reason="fourreal batch needs the [cluster] extra (pip install -e '.[cluster]')")

from fourreal_ns.batch.command import Batch  # noqa: E402
from fourreal_ns.batch.items import BatchItemsError, read_items  # noqa: E402
from fourreal_ns.batch.worker import attempts_of, run_status  # noqa: E402

BATCH_STEPS = 10


def write_items(path: Path, model: Path, items: list) -> Path:
    defaults = {"model_id": str(model), **TINY_RUN, **TINY_GENERATION, "steps": BATCH_STEPS,
                "motion_steps": BATCH_STEPS}
    path.write_text(yaml.safe_dump({"defaults": defaults, "items": items}))
    return path


PANDA = {"name": "panda", "prompt": "a panda playing guitar in a kitchen", "steps": RUN_STEPS, "motion_steps": RUN_STEPS}
FOX = {"name": "fox", "prompt": "a red fox jumping over a log", "seed": 2}
BROKEN = {"name": "broken", "prompt": "a scene whose video model is missing",
          "model_id": "/nonexistent/no_such_model_folder"}
LYNX = {"name": "lynx", "prompt": "a lynx walking in the snow", "seed": 4, "steps": 400}


def processes_mentioning(text: str) -> list:
    """Pids of live processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def start_batch(items: Path, out: Path, *options: str) -> subprocess.Popen:
    """`fourreal batch` as a user runs it (its own process: Ctrl-C is a SIGINT to it)."""
    command = [ns_script("fourreal"), "batch", "--prompts", str(items), "--out", str(out), "--num-cpus", "2",
               "--no-dashboard", *options]
    log = open(items.with_suffix(".log"), "w")  # a file, not a pipe: a full pipe would stall the batch
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "300"})
    process.log = Path(log.name)
    return process


def wait_for(process: subprocess.Popen, condition: Callable[[], bool], action: Callable[[], None],
             timeout: float = 600) -> str:
    """Poll until `condition` holds, then run `action` (once); return the process's output when it has ended."""
    deadline, done = time.time() + timeout, False
    while process.poll() is None and time.time() < deadline:
        if not done and condition():
            action()
            done = True
        time.sleep(0.2)
    if process.poll() is None:
        process.kill()
    process.wait()
    return process.log.read_text(errors="replace")


def training(folder: Path) -> bool:
    return run_status(folder).get("current") == "canonical" and bool(attempts_of(folder))


@pytest.fixture(scope="module")
def batch(tmp_path_factory, tiny_ltx, finished_run):
    root = tmp_path_factory.mktemp("batch")
    items = write_items(root / "items.yaml", tiny_ltx, [PANDA, FOX, BROKEN])
    out = root / "out"
    shutil.copytree(finished_run.out, out / "items" / "panda")
    killed = {}

    def kill_fox_worker() -> None:
        attempt = attempts_of(out / "items" / "fox")[0]
        killed.update(attempt)
        os.kill(attempt["pid"], signal.SIGKILL)

    process = start_batch(items, out, "--max-retries", "1")
    output = wait_for(process, lambda: training(out / "items" / "fox"), kill_fox_worker)
    assert process.returncode == 1, output  # an item failed
    assert "1 of 3 items failed" in output and "failed: broken" in output
    return root, items, out, report_of(out)["summary"], killed


def report_of(out: Path) -> dict:
    content = json.loads((out / "batch.json").read_text())
    return {entry["name"]: entry for entry in content["items"]} | {"summary": content["summary"]}


def test_a_failed_item_is_reported_and_the_others_finish(batch):
    _, _, out, summary, _ = batch
    assert (summary["done"], summary["failed"]) == (2, 1)
    report = report_of(out)
    assert report["panda"]["status"] == "done" and report["fox"]["status"] == "done"
    broken = report["broken"]
    assert broken["status"] == "failed" and len(broken["attempts"]) == 2  # --max-retries 1
    assert "no_such_model_folder" in broken["error"] and "batch-attempt-2.log" in broken["error"]
    assert (out / broken["log"]).is_file() and "could not load" in (out / broken["log"]).read_text()
    for name in ("panda", "fox"):
        assert (out / report[name]["video"]).is_file() and report[name]["metrics"]["psnr"] > 0
        assert set(report[name]["seconds"]) == {"generate", "poses", "canonical", "motion", "metrics", "video"}
    # panda's folder came finished: `fourreal run` kept every step it found
    assert [step["status"] for step in run_status(out / "items" / "panda")["steps"].values()] == ["kept"] * 6


def test_a_killed_worker_is_rescheduled_and_keeps_finished_steps(batch):
    _, _, out, _, killed = batch
    assert killed, "the fox item never reached its canonical stage"
    attempts = report_of(out)["fox"]["attempts"]
    assert [attempt["outcome"] for attempt in attempts] == ["worker died", "done"]
    assert attempts[1]["pid"] != killed["pid"]
    with pytest.raises(ProcessLookupError):  # its `fourreal run` died with the worker (PR_SET_PDEATHSIG)
        os.kill(killed["child_pid"], 0)
    steps = run_status(out / "items" / "fox")["steps"]
    assert steps["generate"]["status"] == "kept" and steps["canonical"]["status"] == "done"


def test_rerun_skips_finished_items_and_ctrl_c_stops_cleanly(batch, tiny_ltx):
    root, _, out, _, _ = batch
    videos = {name: (out / report_of(out)[name]["video"]).stat().st_mtime_ns for name in ("panda", "fox")}
    items = write_items(root / "items2.yaml", tiny_ltx, [PANDA, FOX, BROKEN, LYNX])
    lynx = out / "items" / "lynx"

    def broken_failed_again() -> bool:  # as the driver knows it (batch.json), not only as its worker wrote it
        broken = report_of(out)["broken"]
        return broken["status"] == "failed" and len(broken["attempts"]) == 3

    process = start_batch(items, out, "--max-retries", "0")
    output = wait_for(process, lambda: broken_failed_again() and training(lynx),
                      lambda: process.send_signal(signal.SIGINT))
    assert process.returncode == 130, output
    assert "interrupted" in output and "2 finished before (kept)" in output
    report = report_of(out)
    assert report["summary"]["kept"] == 2 and report["lynx"]["status"] == "interrupted"
    assert report["broken"]["status"] == "failed" and len(report["broken"]["attempts"]) == 3
    for name in ("panda", "fox"):  # not redone
        assert len(report[name]["attempts"]) == len(attempts_of(out / "items" / name))
        assert (out / report[name]["video"]).stat().st_mtime_ns == videos[name]
    assert len(report["panda"]["attempts"]) == 1 and len(report["fox"]["attempts"]) == 2
    deadline = time.time() + 20
    while processes_mentioning(str(lynx)) and time.time() < deadline:
        time.sleep(0.5)
    assert processes_mentioning(str(lynx)) == [], "a process of the cancelled item is still running"
    assert (lynx / "scene" / "transforms.json").is_file()  # its finished steps are kept for the next run


def test_the_gallery_lists_every_item_and_plays_the_videos(batch):
    from web_browser import chromium_page

    _, _, out, _, _ = batch
    report = report_of(out)
    with chromium_page(1200, 900) as page:
        page.page.goto((out / "index.html").as_uri())
        page.page.wait_for_function("Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 2)",
                                    timeout=30_000)
        cards = page.page.evaluate("""Array.from(document.querySelectorAll('article')).map(card => ({
            id: card.id, heading: card.querySelector('h2').textContent, cls: card.className,
            video: card.querySelector('video') ? [card.querySelector('video').videoWidth,
                                                  card.querySelector('video').duration] : null,
            error: card.querySelector('pre.error') ? card.querySelector('pre.error').textContent : null}))""")
        assert page.errors == []
    names = [card["id"] for card in cards]
    assert set(names) >= {"panda", "fox", "broken"}
    for card in cards:
        entry = report[card["id"]]
        assert card["heading"] == entry["prompt"] and entry["status"] in card["cls"]
        if entry["status"] == "done":
            assert card["video"][0] == 32 and card["video"][1] > 0  # decoded by the browser
        else:
            assert card["video"] is None
    broken = next(card for card in cards if card["id"] == "broken")
    assert "could not load" in broken["error"]


def test_items_are_checked_before_anything_runs(tmp_path, tiny_ltx):
    text = tmp_path / "prompts.txt"
    text.write_text("# a comment\na cat on a sofa\n\na dog in the rain\n")
    items = read_items(text)
    assert [item.prompt for item in items] == ["a cat on a sofa", "a dog in the rain"]
    assert items[0].arguments == ["--prompt", "a cat on a sofa"] and items[0].name.startswith("a-cat-on-a-sofa-")
    assert read_items(text)[0].name == items[0].name  # the same name on a rerun: resumable

    bad = write_items(tmp_path / "bad.yaml", tiny_ltx, [{"prompt": "x"}, {"prompt": "y", "sede": 3}])
    with pytest.raises(BatchItemsError, match=r"bad.yaml: item 2 .*sede"):
        read_items(bad)
    neither = write_items(tmp_path / "neither.yaml", tiny_ltx, [{"seed": 3}])
    with pytest.raises(BatchItemsError, match="item 1.*either --prompt"):
        read_items(neither)
    twice = tmp_path / "twice.yaml"
    twice.write_text(yaml.safe_dump(["a cat", "a cat"]))
    with pytest.raises(BatchItemsError, match="item 1 and .*item 2 are the same scene"):
        read_items(twice)
    with pytest.raises(BatchItemsError, match="set by the batch"):
        read_items(write_items(tmp_path / "out.yaml", tiny_ltx, [{"prompt": "x", "out": "y"}]))
    video = write_items(tmp_path / "video.yaml", tiny_ltx, [{"freeze": ["clips/orbit.mp4"], "name": "orbit"}])
    (item,) = read_items(video)
    assert item.options["freeze"] == [str(tmp_path / "clips" / "orbit.mp4")] and item.prompt == "your video: orbit.mp4"
    with pytest.raises(SystemExit, match="no items"):
        (tmp_path / "empty.txt").write_text("\n# nothing\n")
        Batch(prompts=tmp_path / "empty.txt", out=tmp_path / "o").main()


def test_without_ray_the_batch_says_how_to_install_it(tmp_path, monkeypatch):
    import importlib.util

    original = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else original(name, *a))
    (tmp_path / "prompts.txt").write_text("a cat\n")
    with pytest.raises(SystemExit, match=r"needs Ray: pip install -e '\.\[cluster\]'"):
        Batch(prompts=tmp_path / "prompts.txt", out=tmp_path / "o").main()
