"""`ns-viewer` on a trained 4real-canonical run starts on the CPU and serves rendered frames to a client.

A websocket client (tests/viewer_client.py, no browser) connects to `ns-viewer --load-config CFG
--viewer.websocket-port PORT`, sets the "Max res" slider to the training image width, sends the camera of the
canonical freeze frame and waits for the `BackgroundImageMessage` at that resolution. The frame must have the
requested size, show a scene (not a constant image, not the viewer's background colour), equal the model's own
render of that camera (made in the test process), and resemble that camera's training image more than another
view's (so the pose conversion is right whatever the training quality).
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import time
from contextlib import closing
from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest
from PIL import Image

from conftest import ns_script
from viewer_client import ViewerClient, camera_message_from_c2w

VIEWER_BACKGROUND = (38, 42, 55)
"""nerfstudio 1.1.5's default "Background color" (viewer/control_panel.py); splatfacto renders over it."""
MAX_RES = 96
"""The "Max res" slider value we set: the demo scene's image width, so the served frame is 96 x 54."""
START_TIMEOUT = 240.0
"""ns-viewer imports nerfstudio (10-20 s) and loads the checkpoint before its port opens; the machine is shared."""
FRAME_TIMEOUT = 120.0


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_viewer(config: Path, port: int, log_path: Path, extra: Optional[List[str]] = None) -> subprocess.Popen:
    """`ns-viewer` in the background, output to `log_path` (a file: a pipe nobody reads could fill up)."""
    command = [
        ns_script("ns-viewer"), "--load-config", str(config), "--viewer.websocket-port", str(port),
        "--viewer.websocket-host", "127.0.0.1", "--viewer.image-format", "png",
        "--viewer.max-num-display-images", "8", *(extra or []),
    ]  # fmt: skip
    log = open(log_path, "w")
    try:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=log_path.parent)
    finally:
        log.close()  # the child holds its own descriptor


def stop_viewer(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def connect_when_ready(process: subprocess.Popen, port: int, log_path: Path, timeout: float) -> ViewerClient:
    deadline = time.monotonic() + timeout
    last_error: Optional[Exception] = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"ns-viewer exited {process.returncode} before serving\n{log_path.read_text()[-6000:]}")
        try:
            return ViewerClient(port, open_timeout=10.0)
        except (OSError, TimeoutError) as error:  # refused until the server binds
            last_error = error
            time.sleep(1.0)
    pytest.fail(f"ns-viewer did not accept a websocket on port {port} within {timeout} s ({last_error})\n"
                f"{log_path.read_text()[-6000:]}")


def canonical_camera(scene: Path, run_dir: Path):
    """Camera-to-world (nerfstudio world, OpenGL), vertical fov, aspect and training image of the canonical
    freeze frame; the run's dataparser transform applied as nerfstudio applies it."""
    content = json.loads((scene / "transforms.json").read_text())
    k_c = content["canonical"]["freeze_frame"]
    frame = next(f for f in content["frames"] if f["video"] == "freeze" and f["view"] == k_c)
    merged = {**content, **frame}
    c2w = np.asarray(frame["transform_matrix"], dtype=np.float64)
    transforms = json.loads((run_dir / "dataparser_transforms.json").read_text())
    transform = np.eye(4)
    transform[:3] = np.asarray(transforms["transform"], dtype=np.float64)
    c2w = transform @ c2w
    c2w[:3, 3] *= float(transforms["scale"])
    width, height = int(merged["w"]), int(merged["h"])
    vertical_fov = 2.0 * math.atan(height / 2.0 / float(merged["fl_y"]))
    image = np.asarray(Image.open(scene / frame["file_path"]).convert("RGB"))
    return c2w, vertical_fov, width / height, image


def training_image(scene: Path, view: int) -> np.ndarray:
    content = json.loads((scene / "transforms.json").read_text())
    frame = next(f for f in content["frames"] if f["video"] == "freeze" and f["view"] == view)
    return np.asarray(Image.open(scene / frame["file_path"]).convert("RGB"))


def render_directly(config: Path, scene: Path, time: float = 0.0) -> np.ndarray:
    """The canonical freeze camera rendered in this process as the viewer renders it: no frame metadata, the
    time slider's `time` (default 0), the viewer's background colour, floor(x * 255) to uint8."""
    import torch

    from fourreal_ns.data.scene import load_scene
    from fourreal_ns.evaluation import frame_camera, load_pipeline

    loaded = load_scene(scene)
    k_c = loaded.canonical["freeze_frame"]
    frame = next(f for f in loaded.frames if f.video == "freeze" and f.view == k_c)
    pipeline = load_pipeline(config)
    pipeline.model.set_background(torch.tensor(VIEWER_BACKGROUND, dtype=torch.float32) / 255.0)
    with torch.no_grad():
        camera = frame_camera(frame, time=time).to(pipeline.device)
        rgb = pipeline.model.get_outputs_for_camera(camera)["rgb"]
    return (rgb * 255).type(torch.uint8).cpu().numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) / 255.0 - b.astype(np.float64) / 255.0) ** 2)
    return float(10.0 * math.log10(1.0 / max(mse, 1e-12)))


@pytest.mark.e2e
def test_ns_viewer_serves_a_rendered_frame(canonical_run: Path, demo_scene: Path, tmp_path: Path):
    run_dir = canonical_run.parent
    c2w, vertical_fov, aspect, truth = canonical_camera(demo_scene, run_dir)
    port = free_port()
    log_path = tmp_path / "ns-viewer.log"
    process = start_viewer(canonical_run, port, log_path)
    try:
        with connect_when_ready(process, port, log_path, START_TIMEOUT) as client:
            # The GUI arrives on connect: the time slider (the dataparser sets includes_time) and "Max res".
            time_slider = client.find_gui("Time", kind="GuiAddSliderMessage")
            assert (time_slider.props["min"], time_slider.props["max"]) == (0.0, 1.0)
            client.set_gui_value("Max res", MAX_RES)
            client.send_camera(camera_message_from_c2w(c2w, vertical_fov, aspect))
            # A low-resolution frame comes first (viewer's "low_move" state), then one at "Max res".
            served = client.wait_for_image(FRAME_TIMEOUT, accept=lambda image: max(image.shape[:2]) == MAX_RES)
    except TimeoutError as error:
        pytest.fail(f"{error}\n--- ns-viewer log\n{log_path.read_text()[-6000:]}")
    finally:
        stop_viewer(process)

    image = served.image
    assert served.media_type == "image/png"
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    expected_height = round(MAX_RES / aspect)
    assert image.shape[1] == MAX_RES and abs(image.shape[0] - expected_height) <= 1, image.shape
    assert image.std() > 10.0, f"the served frame is (nearly) constant: std {image.std():.2f}"
    off_background = np.abs(image.astype(int) - np.array(VIEWER_BACKGROUND)).sum(axis=-1) > 30
    assert off_background.mean() > 0.9, f"only {off_background.mean():.0%} of pixels differ from the background"
    # The viewer renders exactly what the model renders for that camera (same pose, intrinsics, time and
    # background; png is lossless), so the frame is the trained scene, not something else of the right size.
    direct = render_directly(canonical_run, demo_scene)
    assert direct.shape == image.shape
    difference = np.abs(direct.astype(int) - image.astype(int))
    assert difference.max() <= 2, f"served frame differs from the model's render: max {difference.max()}"
    # And it is the scene from the canonical camera: closer to that camera's training image than to another's.
    k_c = json.loads((demo_scene / "transforms.json").read_text())["canonical"]["freeze_frame"]
    assert psnr(image, truth) > psnr(image, training_image(demo_scene, k_c + 4)) + 2.0
