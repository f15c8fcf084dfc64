"""`fourreal export web` and `fourreal view-web`, checked in a real browser (Debian's headless Chromium through
Playwright, software WebGL) on the session's trained demo runs (conftest.py: `motion_run`, `canonical_run`).

The page's image at its initial camera is compared with `ns-render camera-path` at the same camera and times (one
between keyframes, where the page interpolates), the time slider must change the image where the ball moves and
nowhere else, an orbit drag must move the view and "reset view" bring it back. Thresholds: see each assertion.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ns_script, run_ns
from web_browser import chromium_page

pytestmark = pytest.mark.e2e

SCALE = 2
"""The page and ns-render draw at twice the training resolution (96 x 54): 192 x 108."""
TIMES = (0.0, 1.0 / 32.0, 0.5, 1.0)
"""1/32 lies half-way between the first two of the 17 keyframes: the page interpolates there."""
PSNR_THRESHOLD = 33.0
"""Measured 39.6-41.6 dB (see the test's printout and the README): Spark and gsplat differ in sorting (per
Gaussian vs per tile), 8-bit colours and log-scales in Spark's splat encoding, and float16 keyframes; a wrong
camera, time, rasterisation setting (without gsplat's 0.3 px^2 dilation: 23.9 dB) or interpolation costs far more."""


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) / 255.0 - b.astype(float) / 255.0) ** 2)
    return float(-10.0 * np.log10(max(mse, 1e-12)))


def export(config: Path, output: Path, *extra: str) -> dict:
    start = time.perf_counter()
    result = run_ns(["fourreal", "export", "web", "--load-config", str(config), "--output-dir", str(output), *extra])
    seconds = time.perf_counter() - start
    size = sum(path.stat().st_size for path in output.rglob("*") if path.is_file())
    print(result.stdout.strip().splitlines()[-2])
    print(f"export: {seconds:.1f} s in all (with start-up), {size / 1e6:.1f} MB")
    return json.loads((output / "scene.json").read_text())


def ns_render_views(config: Path, scene: dict, times, folder: Path) -> list:
    """ns-render's images of the page's initial camera at `times` (None: a path without times)."""
    from PIL import Image

    from fourreal_ns.camera_paths import camera_path_json, write_camera_path

    camera = scene["camera"]
    pose = np.asarray(camera["camera_to_world"], dtype=float).reshape(4, 4)
    count = 1 if times is None else len(times)
    path = camera_path_json([pose] * count, camera["width"] * SCALE, camera["height"] * SCALE, camera["fov"], 1.0,
                            None if times is None else list(times))  # fmt: skip
    write_camera_path(folder / "path.json", path)
    run_ns(["ns-render", "camera-path", "--load-config", str(config), "--camera-path-filename",
            str(folder / "path.json"), "--output-path", str(folder / "frames"), "--output-format", "images",
            "--image-format", "png"])  # fmt: skip
    return [np.asarray(Image.open(f).convert("RGB")) for f in sorted((folder / "frames").glob("*.png"))]


def serve(folder: Path):
    from fourreal_ns.export.web_server import address, start_server

    server = start_server(folder)
    return server, address(server)


@pytest.fixture(scope="module")
def motion_export(motion_run, tmp_path_factory):
    output = tmp_path_factory.mktemp("web") / "motion"
    return output, export(motion_run, output)


@pytest.fixture(scope="module")
def motion_views(motion_run, motion_export, tmp_path_factory):
    """The page's and ns-render's images at TIMES, and the page after an orbit drag and after "reset view"."""
    folder, scene = motion_export
    rendered = ns_render_views(motion_run, scene, TIMES, tmp_path_factory.mktemp("ns_render"))
    server, url = serve(folder)
    width, height = scene["camera"]["width"] * SCALE, scene["camera"]["height"] * SCALE
    try:
        with chromium_page(width, height) as page:
            page.open(url + "index.html?ui=0&t=0")
            shots = [page.screenshot()]
            for value in TIMES[1:]:
                page.move_time_slider(value)
                shots.append(page.screenshot())
            page.move_time_slider(0.0)
            page.drag(width / 4, height / 8)
            dragged = page.screenshot()
            page.page.evaluate("document.getElementById('reset').click()")
            reset = page.screenshot()
            errors = list(page.errors)
        with chromium_page(768, 480) as page:  # the README's screenshot, with the panel
            page.open(url + "index.html?t=0.5")
            page.screenshot()
            page.page.screenshot(path=str(folder.parent / "web_page.png"))
            print(f"page screenshot: {folder.parent / 'web_page.png'}")
            errors += page.errors
    finally:
        server.shutdown()
    return {"rendered": rendered, "page": shots, "dragged": dragged, "reset": reset, "errors": errors}


def test_the_page_shows_what_ns_render_shows_at_its_times(motion_views):
    """At the training orbit's camera the page's image at each time (slider) is ns-render's at that time."""
    assert motion_views["errors"] == []
    scores = [psnr(page, rendered) for page, rendered in zip(motion_views["page"], motion_views["rendered"])]
    crossed = psnr(motion_views["page"][0], motion_views["rendered"][-1])
    print("page vs ns-render, PSNR at times " + ", ".join(f"{t:.4f}: {s:.2f} dB" for t, s in zip(TIMES, scores))
          + f"; page at 0 vs ns-render at 1: {crossed:.2f} dB")  # fmt: skip
    assert len(scores) == len(TIMES) and min(scores) > PSNR_THRESHOLD
    assert crossed < min(scores) - 3.0  # the comparison sees time: the other end of the motion scores far lower


def test_the_time_slider_moves_the_ball_and_nothing_else(motion_views):
    """Pixels that change between t = 0 and 1 on the page are those that change in ns-render's images (the ball's
    path), and most of those change on the page too."""
    from scipy.ndimage import binary_dilation

    def changed(a, b):
        return np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > 40

    page, rendered = changed(motion_views["page"][0], motion_views["page"][-1]), changed(
        motion_views["rendered"][0], motion_views["rendered"][-1])
    near_motion = binary_dilation(rendered, iterations=2)
    outside = float((page & ~near_motion).mean())
    covered = float((page & rendered).sum() / max(rendered.sum(), 1))
    print(f"slider 0 -> 1: {page.mean():.1%} of the page's pixels change ({rendered.mean():.1%} in ns-render's); "
          f"{outside:.2%} change away from ns-render's changes, {covered:.0%} of ns-render's change on the page")
    assert rendered.mean() > 0.01  # the ball moves in view
    assert outside < 0.005 and covered > 0.8


def test_an_orbit_drag_moves_the_view_and_reset_brings_it_back(motion_views):
    initial, dragged, reset = motion_views["page"][0], motion_views["dragged"], motion_views["reset"]
    print(f"after the drag: {psnr(dragged, initial):.1f} dB to the initial view; after reset: "
          f"{psnr(reset, initial):.1f} dB")
    assert psnr(dragged, initial) < 20.0
    assert psnr(reset, initial) > 40.0


def test_keyframes_are_the_models_gaussians_at_their_times(motion_run, motion_export):
    """motion.bin holds the model's own `gaussians_at_time(t)` at each keyframe (float16), gaussians.ply its
    canonical Gaussians, in one order."""
    from plyfile import PlyData

    from fourreal_ns.evaluation import load_pipeline

    folder, scene = motion_export
    model = load_pipeline(motion_run).model
    values = np.frombuffer((folder / "motion.bin").read_bytes(), dtype="<f2").reshape(len(scene["times"]), -1, 10)
    assert scene["times"] == pytest.approx(np.linspace(0, 1, 17).tolist()) and values.shape[1] == scene["num_gaussians"]
    vertices = PlyData.read(str(folder / "gaussians.ply"))["vertex"]
    canonical = model.gaussians_at_time(None)["means"].numpy()
    rows = np.array([np.argmin(np.abs(canonical - [x, y, z]).sum(1)) for x, y, z in
                     zip(vertices["x"][:50], vertices["y"][:50], vertices["z"][:50])])  # fmt: skip
    assert np.all(np.diff(rows) > 0)  # the exported Gaussians keep the model's order
    for index in (0, 8, 16):
        state = model.gaussians_at_time(scene["times"][index])
        means = state["means"][rows].numpy()
        quats = torch.nn.functional.normalize(state["quats"][rows], dim=-1).numpy()
        assert np.abs(values[index, :50, :3] - means).max() < 4e-3
        assert np.abs(values[index, :50, 3:7] - quats).max() < 2e-3
        assert np.abs(values[index, :50, 7:] - state["scales"][rows].numpy()).max() < 1e-2
    moved = np.abs(values[-1, :, :3].astype(float) - values[0, :, :3]).max(axis=-1)
    assert (moved > 0.01).mean() > 0.001  # some Gaussians (the ball) move between the ends


def test_a_canonical_run_exports_as_a_still_scene(canonical_run, tmp_path):
    output = tmp_path / "still"
    scene = export(canonical_run, output)
    assert scene["motion"] is None and scene["times"] == [] and not (output / "motion.bin").exists()
    rendered = ns_render_views(canonical_run, scene, None, tmp_path)[0]
    server, url = serve(output)
    try:
        with chromium_page(rendered.shape[1], rendered.shape[0]) as page:
            page.open(url + "index.html?ui=0")
            shot = page.screenshot()
            still = page.page.evaluate("document.body.classList.contains('still')")
            slider_visible = page.page.locator("#time").is_visible()
            errors = page.errors
    finally:
        server.shutdown()
    print(f"still scene: page vs ns-render {psnr(shot, rendered):.2f} dB")
    assert errors == [] and still and not slider_visible
    assert psnr(shot, rendered) > PSNR_THRESHOLD


def test_export_refuses_unfinished_runs_and_foreign_folders(canonical_run, tmp_path):
    import shutil

    def refused(config: Path, output: Path, *extra: str) -> str:
        result = subprocess.run([ns_script("fourreal"), "export", "web", "--load-config", str(config), "--output-dir",
                                 str(output), *extra], capture_output=True, text=True, timeout=300)  # fmt: skip
        assert result.returncode != 0
        return result.stderr

    assert "does not exist" in refused(tmp_path / "nowhere" / "config.yml", tmp_path / "out")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(canonical_run.parent, unfinished)
    for checkpoint in (unfinished / "nerfstudio_models").glob("*.ckpt"):
        checkpoint.rename(checkpoint.with_name("step-000000100.ckpt"))  # stopped at step 100 of 600
    assert "has not finished training" in refused(unfinished / "config.yml", tmp_path / "out")
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"not ours")
    assert "--overwrite" in refused(canonical_run, foreign)
    assert (foreign / "holiday.jpg").read_bytes() == b"not ours"
    assert not (tmp_path / "out").exists()  # refused before anything was written

    from fourreal_ns.export.web import SCENE_FILE, GENERATOR, prepare_output

    ours = tmp_path / "earlier_export"
    ours.mkdir()
    (ours / SCENE_FILE).write_text(json.dumps({"generator": GENERATOR}))
    (ours / "stale.bin").write_bytes(b"old")
    prepare_output(ours, overwrite=False)  # an earlier export is replaced without asking
    assert list(ours.iterdir()) == []
    prepare_output(foreign, overwrite=True)
    assert list(foreign.iterdir()) == []


def test_view_web_serves_the_export_and_prints_its_address(motion_export):
    folder, scene = motion_export
    process = subprocess.Popen([ns_script("fourreal"), "view-web", str(folder), "--port", "0"], stdout=subprocess.PIPE,
                               text=True)  # fmt: skip
    try:
        line = process.stdout.readline()
        match = re.search(r"(http://\S+/)", line)
        assert match, line
        index = urllib.request.urlopen(match.group(1) + "index.html", timeout=30).read().decode()
        served = json.loads(urllib.request.urlopen(match.group(1) + "scene.json", timeout=30).read())
        assert "viewer.js" in index and served["num_gaussians"] == scene["num_gaussians"]
    finally:
        process.terminate()
        process.wait(timeout=30)
    result = subprocess.run([ns_script("fourreal"), "view-web", str(folder / "vendor")], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0 and "not a `fourreal export web` folder" in result.stderr
