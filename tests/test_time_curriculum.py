"""The motion fit's time curriculum (`--pipeline.model.time-curriculum`, method_configs.md): the window of times
around t_c that the motion fit draws, and the datamanager drawing only frames within it.

Its effect on training is measured end to end in test_motion_e2e (the ball's learned motion and the held-out PSNR
at held-out times)."""

from __future__ import annotations

import pytest
import torch

from fourreal_ns.models.motion import FourRealMotionModelConfig, curriculum_time_window

FRAME = 1.0 / 23  # the demo scene's 24 reference frames in [0, 1]


def test_window_widens_frame_by_frame_to_the_whole_video():
    windows = [curriculum_time_window(step, 150, 0.0, FRAME) for step in range(150)]
    assert windows[0] == pytest.approx(FRAME)  # t_c's neighbour is drawn from the first step
    assert all(b >= a for a, b in zip(windows, windows[1:]))
    frames = [round(window / FRAME, 6) for window in windows]
    assert all(value == int(value) for value in frames)  # whole frames
    assert frames[-1] == 23 and sorted(set(frames)) == list(range(1, 24))  # every frame joins, one at a time
    assert curriculum_time_window(150, 150, 0.0, FRAME) is None  # then every time


def test_window_reaches_both_ends_from_a_canonical_time_inside_the_video():
    # t_c = 0.5: the farthest frames are 0.5 away, reached at the end of the ramp, not halfway through it.
    assert curriculum_time_window(99, 100, 0.5, 0.1) == pytest.approx(0.5)
    assert curriculum_time_window(49, 100, 0.5, 0.1) < 0.5
    assert curriculum_time_window(99, 100, 0.25, 0.05) == pytest.approx(0.75)


def test_no_curriculum_draws_every_time():
    assert curriculum_time_window(0, 0, 0.0, FRAME) is None


def test_a_fraction_outside_zero_one_is_a_clear_error():
    from nerfstudio.data.scene_box import SceneBox

    config = FourRealMotionModelConfig(time_curriculum=1.5)
    with pytest.raises(ValueError, match="time-curriculum 1.5: give the fraction .* in \\[0, 1\\]"):
        config.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.0] * 3, [1.0] * 3])), num_train_data=1, metadata={})


def test_datamanager_draws_only_frames_within_the_window(demo_scene):
    from fourreal_ns.data.datamanager import ReferenceVideoDataManagerConfig
    from fourreal_ns.data.scene import VIDEO_IDS

    datamanager = ReferenceVideoDataManagerConfig(data=demo_scene).setup(device="cpu", test_mode="val")
    cameras = datamanager.train_dataset.cameras
    times = cameras.times.flatten().tolist()
    videos = cameras.metadata["video_id"].flatten().tolist()
    t_c = datamanager.canonical_time

    def one_epoch(window):
        datamanager.use_videos(("reference",), window)
        expected = sorted(index for index, (time, video) in enumerate(zip(times, videos))
                          if video == VIDEO_IDS["reference"] and (window is None or abs(time - t_c) <= window + 1e-6))
        drawn = sorted(int(datamanager.next_train(0)[0].metadata["cam_idx"]) for _ in expected)
        return drawn, expected

    for window in (FRAME, 5 * FRAME, None):
        drawn, expected = one_epoch(window)
        assert drawn == expected  # each frame of the window once per epoch, no other
    narrow, _ = one_epoch(FRAME)
    assert 1 <= len(narrow) <= 2 and all(abs(times[index] - t_c) <= FRAME + 1e-6 for index in narrow)
    everything, _ = one_epoch(None)
    assert len(everything) > 10 and max(abs(times[index] - t_c) for index in everything) > 0.9
