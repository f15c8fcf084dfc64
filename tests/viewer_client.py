"""A minimal synchronous client for nerfstudio 1.1.5's viewer (viser 0.2.7), for tests: no browser needed.

Protocol (viser/infra/_infra.py, viser/_messages.py):
- one websocket on the viewer's port (`ns-viewer --viewer.websocket-port PORT`), binary frames, msgpack;
- the server sends *windows*: a msgpack array of message dicts (ViserServer uses `client_api_version=1`);
  every dict has a `"type"` key, the Message class name (`"GuiAddSliderMessage"`, `"BackgroundImageMessage"`...);
- the client sends *single* message dicts, also with `"type"`; the server fills a dataclass of that name from
  the other keys, so every field must be present.
- On connect the server replays its persistent messages: the whole GUI (`GuiAdd*Message`, each with an `id`,
  a `label`, a `value`) and the scene. The viewer counts a client as connected, and starts rendering for it,
  only after the client's first `ViewerCameraMessage`; every later one re-renders (a low-resolution frame,
  then one at the "Max res" slider's size once the camera has not moved for ~0.2 s).

The camera (`ViewerCameraMessage`): `wxyz` and `position` are T_world_camera in the OpenCV convention (x right,
y down, +z forward), in viser's scene units, which are nerfstudio's world units x VISER_NERFSTUDIO_SCALE_RATIO
(10, nerfstudio/viewer/viewer.py); `fov` is the *vertical* field of view in radians, `aspect` width / height.
nerfstudio renders `int(h * aspect) x h` with h chosen from the "Max res" slider (render_state_machine.py,
`_calculate_image_res`: the longer side is at most "Max res" in the static "high" state) and sends the result as
a `BackgroundImageMessage` (`media_type` image/jpeg or image/png as `--viewer.image-format`, `rgb_bytes`).

GUI values (`set_gui_value`): a client changes any GUI input by sending
    {"type": "GuiUpdateMessage", "id": <the component id>, "updates": {"value": <new value>}}
where the id is the `id` of the `GuiAdd*Message` (here `GuiAddSliderMessage`) the server sent on connect for
that label. nerfstudio 1.1.5 adds its time slider in viewer/control_panel.py as
`ViewerSlider("Time", 0.0, 0.0, 1.0, 0.01, ...)`, i.e. a `GuiAddSliderMessage` with label "Time", min 0,
max 1, step 0.01, hidden (a `GuiUpdateMessage` {"visible": False}) unless `datamanager.includes_time`. Its
callback re-renders every connected client; `render_state_machine._render_img` then takes `camera.time` from
the slider (outside the render tab's preview mode). So
    client.set_gui_value("Time", 0.5)
renders the scene at t = 0.5; the next `BackgroundImageMessage` after it shows that time. The same works for
"Max res" (an int slider, 64..2048) and the other control-panel inputs.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import msgspec
import numpy as np
from websockets.sync.client import ClientConnection, connect

VISER_NERFSTUDIO_SCALE_RATIO = 10.0
"""nerfstudio/viewer/viewer.py: viser positions are nerfstudio world positions times this."""


@dataclass
class GuiComponent:
    id: str
    label: str
    type: str
    """The message type that added it (GuiAddSliderMessage, GuiAddCheckboxMessage, ...)."""
    props: Dict[str, Any]
    """Every field of the add message, updated by later GuiUpdateMessages (value, visible, disabled, ...)."""

    @property
    def value(self) -> Any:
        return self.props.get("value")


@dataclass
class ViewerImage:
    image: np.ndarray
    """[H, W, 3] uint8 (RGB)."""
    media_type: str
    received_at: float


def rotation_to_wxyz(rotation: np.ndarray) -> Tuple[float, float, float, float]:
    """A 3 x 3 rotation matrix as a unit quaternion (w, x, y, z)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        w, x, y, z = 0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        w, x, y, z = (m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        w, x, y, z = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        w, x, y, z = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s
    q = np.array([w, x, y, z])
    q /= np.linalg.norm(q)
    return tuple(float(v) for v in q)  # type: ignore[return-value]


def camera_message_from_c2w(
    camera_to_world_opengl: np.ndarray, vertical_fov: float, aspect: float, look_at: Optional[Sequence[float]] = None
) -> Dict[str, Any]:
    """A `ViewerCameraMessage` for a nerfstudio camera (camera-to-world, OpenGL: x right, y up, -z forward, in
    nerfstudio world units, i.e. after the dataparser transform); `vertical_fov` in radians."""
    c2w = np.asarray(camera_to_world_opengl, dtype=np.float64)[:3, :4]
    rotation_opencv = c2w[:3, :3] @ np.diag([1.0, -1.0, -1.0])  # flip y and z: OpenGL -> OpenCV camera axes
    position = c2w[:3, 3]
    forward = rotation_opencv[:, 2]
    if look_at is None:
        look_at = position + forward
    up = -rotation_opencv[:, 1]
    scale = VISER_NERFSTUDIO_SCALE_RATIO
    return {
        "type": "ViewerCameraMessage",
        "wxyz": rotation_to_wxyz(rotation_opencv),
        "position": tuple(float(v) * scale for v in position),
        "fov": float(vertical_fov),
        "aspect": float(aspect),
        "look_at": tuple(float(v) * scale for v in look_at),
        "up_direction": tuple(float(v) for v in up),
    }


def decode_image(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB")).copy()


class ViewerClient:
    """A synchronous viser client: `with ViewerClient(port) as client: ...`.

    Messages arrive only while a method reads the socket (`poll`, `wait_for`, `wait_for_image`, ...); every
    message read is folded into `gui` (label lookups) and kept in `messages` (type -> count) for debugging.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", open_timeout: float = 30.0):
        self.url = f"ws://{host}:{port}"
        self.connection: ClientConnection = connect(self.url, open_timeout=open_timeout, max_size=None)
        self.gui: Dict[str, GuiComponent] = {}
        """Component id -> its state."""
        self.messages: Dict[str, int] = {}
        self._pending: List[Dict[str, Any]] = []

    # ----------------------------------------------------------------------------------------- plumbing
    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "ViewerClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, message: Dict[str, Any]) -> None:
        """Send one message dict (with its "type")."""
        assert "type" in message, "viser messages need a 'type' (the Message class name)"
        self.connection.send(msgspec.msgpack.encode(message))

    def _read_window(self, timeout: float) -> bool:
        """Read one window (if any arrives within `timeout` s); returns whether one did."""
        try:
            raw = self.connection.recv(timeout=max(timeout, 0.0))
        except TimeoutError:
            return False
        if isinstance(raw, str):
            raise RuntimeError(f"viser sent a text frame, expected msgpack bytes: {raw[:200]!r}")
        window = msgspec.msgpack.decode(raw)
        if isinstance(window, dict):  # client_api_version 0 servers send single messages
            window = [window]
        for message in window:
            self._fold(message)
            self._pending.append(message)
        return True

    def _fold(self, message: Dict[str, Any]) -> None:
        kind = message.get("type", "?")
        self.messages[kind] = self.messages.get(kind, 0) + 1
        if kind.startswith("GuiAdd") and "id" in message:
            props = {k: v for k, v in message.items() if k != "type"}
            self.gui[message["id"]] = GuiComponent(message["id"], str(message.get("label", "")), kind, props)
        elif kind == "GuiUpdateMessage" and message.get("id") in self.gui:
            self.gui[message["id"]].props.update(message.get("updates", {}))
        elif kind == "GuiRemoveMessage" and message.get("id") in self.gui:
            del self.gui[message["id"]]

    def poll(self, duration: float = 0.0) -> None:
        """Read whatever arrives during `duration` s (at least everything already waiting)."""
        deadline = time.monotonic() + duration
        while self._read_window(max(deadline - time.monotonic(), 0.0)) or time.monotonic() < deadline:
            pass

    def wait_for(self, predicate: Callable[[Dict[str, Any]], bool], timeout: float) -> Dict[str, Any]:
        """The first message (already received or arriving within `timeout` s) for which `predicate` holds;
        it and every message before it are consumed."""
        deadline = time.monotonic() + timeout
        while True:
            while self._pending:
                message = self._pending.pop(0)
                if predicate(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching viser message within {timeout} s; received so far: {self.messages}")
            self._read_window(min(remaining, 1.0))

    def discard_pending(self) -> None:
        """Forget messages received so far (e.g. images rendered before a change): later waits see only new ones."""
        self.poll(0.0)
        self._pending.clear()

    # ------------------------------------------------------------------------------------------------ GUI
    def find_gui(self, label: str, timeout: float = 30.0, kind: Optional[str] = None) -> GuiComponent:
        """The GUI component labelled `label` (optionally of message type `kind`), waiting for it to arrive.
        Labels are matched exactly after stripping spaces; several matches are an error."""
        deadline = time.monotonic() + timeout
        while True:
            matches = [c for c in self.gui.values()
                       if c.label.strip() == label.strip() and (kind is None or c.type == kind)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise LookupError(f"several GUI components are labelled {label!r}: {[(c.id, c.type) for c in matches]}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                labels = sorted({c.label for c in self.gui.values()})
                raise LookupError(f"no GUI component labelled {label!r} within {timeout} s; labels: {labels}")
            self._read_window(min(remaining, 0.5))

    def set_gui_value(self, label: str, value: Any, timeout: float = 30.0) -> GuiComponent:
        """Set the GUI input labelled `label` (e.g. "Time", "Max res") as a user would: a GuiUpdateMessage with
        the component's id. The server runs the component's callbacks (nerfstudio re-renders)."""
        component = self.find_gui(label, timeout=timeout)
        if isinstance(value, np.generic):
            value = value.item()
        self.send({"type": "GuiUpdateMessage", "id": component.id, "updates": {"value": value}})
        component.props["value"] = value
        return component

    # ------------------------------------------------------------------------------------------ rendering
    def send_camera(self, camera_message: Dict[str, Any]) -> None:
        """Send a ViewerCameraMessage (see `camera_message_from_c2w`); the viewer renders for it."""
        self.send({"type": "ViewerCameraMessage", **camera_message})

    def wait_for_image(
        self, timeout: float = 120.0, accept: Optional[Callable[[np.ndarray], bool]] = None
    ) -> ViewerImage:
        """The next BackgroundImageMessage's image (decoded jpeg/png) for which `accept(image)` holds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no acceptable rendered frame within {timeout} s; received: {self.messages}")
            message = self.wait_for(lambda m: m.get("type") == "BackgroundImageMessage", remaining)
            image = decode_image(message["rgb_bytes"])
            if accept is None or accept(image):
                return ViewerImage(image, str(message.get("media_type")), time.monotonic())
