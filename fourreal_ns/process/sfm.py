"""Structure from motion with pycolmap: camera poses, one shared pinhole camera and sparse points of video frames.

Paper 3.3: the cameras of the freeze-time video (and the reference camera) come from COLMAP; the Gaussian
reconstruction refines them later. The steps, all on the CPU:
1. SIFT features of every frame (one camera shared by all frames: the generated videos come from one model, so
   one focal length; SIMPLE_PINHOLE by default, or PINHOLE; no lens distortion, so the images need no undistortion),
   EXTRACTION_CHUNK frames per pycolmap call so that the progress bar moves;
2. matching suited to video, of an explicit pair list (pairs.py) in chunks of MATCHING_CHUNK pairs: every pair of
   frames ("exhaustive") for short inputs, otherwise each frame with its `sequential_overlap` successors in time
   order within its clip (quadratic overlap adds pairs 2, 4, 8, ... apart, as COLMAP's sequential matcher does),
   frames of different clips through `cross_clip_frames` evenly spread frames of each other clip, plus any extra
   pairs the caller gives (the reference frames against the freeze frames near the canonical one). COLMAP's loop
   detection (loop closure for long orbits) needs a vocabulary tree file: with `vocab_tree`, COLMAP's own
   sequential matcher runs first (one call);
3. incremental mapping with strict outlier thresholds (`max_reprojection_error`, 2 px: generated and rendered
   frames are sharp, and looser thresholds let matches on repetitive textures bend long orbits by degrees) and
   tight global bundle adjustments; the model with the most registered frames is kept and gets a last global
   bundle adjustment (robust Cauchy loss, focal length refined, principal point fixed at the image centre).

COLMAP's own log (glog, written by C++ to the process's stderr) is off unless `verbose` (`colmap_log`).

The poses are COLMAP's: world-to-camera in the OpenCV convention (x right, y down, z forward) in COLMAP's arbitrary
world frame and scale; `scene_writer` turns them into the scene's camera-to-world OpenGL matrices.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fourreal_ns.process import ProcessError
from fourreal_ns.process.pairs import video_pairs

CAMERA_MODELS = ("SIMPLE_PINHOLE", "PINHOLE")
MATCHERS = ("auto", "exhaustive", "sequential")


class SfmError(ProcessError):
    """Structure from motion found no usable model."""


@dataclass
class SfmOptions:
    """Settings of the COLMAP run (the `fourreal process` options of the same names)."""

    matcher: str = "auto"
    """exhaustive, sequential, or auto: exhaustive up to `exhaustive_max_images` frames, sequential above."""
    exhaustive_max_images: int = 60
    sequential_overlap: int = 10
    cross_clip_frames: int = 5
    """Sequential matching of several clips: each frame is matched with this many frames of every other clip."""
    camera_model: str = "SIMPLE_PINHOLE"
    max_image_size: int = 1600
    max_num_features: int = 8192
    max_reprojection_error: float = 2.0
    """Pixels: observations beyond this are outliers when triangulating and after bundle adjustment."""
    num_threads: int = -1
    vocab_tree: Optional[Path] = None
    seed: int = 0
    verbose: bool = False

    def chosen_matcher(self, num_images: int) -> str:
        if self.matcher not in MATCHERS:
            raise ProcessError(f"--matcher {self.matcher!r}: use one of {', '.join(MATCHERS)}.")
        if self.matcher != "auto":
            return self.matcher
        return "exhaustive" if num_images <= self.exhaustive_max_images else "sequential"


@dataclass
class SfmResult:
    """The largest COLMAP model: poses of the registered frames, the shared camera, the sparse points."""

    world_to_camera: Dict[str, np.ndarray]
    """Image name -> 4 x 4 world-to-camera (OpenCV convention, COLMAP world)."""
    intrinsics: Dict[str, float]
    """fl_x, fl_y, cx, cy, w, h (pixels)."""
    points: np.ndarray
    """(N, 3) float64 sparse points (COLMAP world)."""
    colours: np.ndarray
    """(N, 3) uint8."""
    errors: np.ndarray
    """(N,) mean reprojection error of each point, pixels."""
    num_models: int
    matcher: str
    reconstruction: object
    """The pycolmap.Reconstruction (for writing the sparse model)."""


def _progress_task(progress, description: str, total: Optional[int] = None):
    return None if progress is None else progress.add_task(description, total=total)


def _finish(progress, task) -> None:
    if progress is not None:
        total = progress.tasks[[t.id for t in progress.tasks].index(task)].total
        progress.update(task, total=total or 1, completed=total or 1)


MIN_PAIR_INLIERS = 15
"""A frame pair counts as matched with at least this many geometrically verified matches (COLMAP's default)."""


def _database_summary(database: Path) -> Tuple[int, float, int]:
    """(images, mean keypoints per image, frame pairs with MIN_PAIR_INLIERS verified matches) of a database."""
    import pycolmap

    with pycolmap.Database.open(str(database)) as db:
        images = db.num_images()
        keypoints = db.num_keypoints() / max(images, 1)
        _, inliers = db.read_two_view_geometry_num_inliers()
    return images, keypoints, sum(1 for count in inliers if count >= MIN_PAIR_INLIERS)


def _failure(database: Path, what: str) -> SfmError:
    images, keypoints, pairs = _database_summary(database)
    if keypoints < 30:
        cause = (f"the frames have almost no texture ({keypoints:.0f} SIFT features per frame on average): "
                 "constant-colour, very dark, blurred or tiny frames cannot be posed")
    elif pairs == 0:
        cause = (f"no two frames share matching features ({keypoints:.0f} features per frame, no verified pair): "
                 "frames of noise, unrelated frames, or far too little overlap between consecutive frames")
    else:
        cause = (f"{pairs} frame pairs matched ({keypoints:.0f} features per frame) but no 3D model could be "
                 "started: too little camera motion (parallax) or too few matches")
    return SfmError(
        f"Structure from motion failed on the {images} {what}: {cause}. Check that the frames show one static "
        "scene from a moving camera with overlap between neighbouring frames; higher resolution or more frames "
        "help, and --matcher exhaustive tries every pair."
    )


EXTRACTION_CHUNK = 8
"""Frames per `extract_features` call (the SIFT progress bar advances per call)."""
MATCHING_CHUNK = 64
"""Frame pairs per `match_image_pairs` call (the matching progress bar advances per call)."""
QUIET_LOG_LEVEL = 3
"""glog's minloglevel without --verbose: FATAL only (COLMAP's ERROR lines, such as "no good initial image pair",
are explained by our own messages instead)."""


@contextmanager
def colmap_log(verbose: bool):
    """COLMAP's glog output (C++ code writing to the process's stderr): everything with `verbose`, else nothing.

    Restores the previous level afterwards. `pycolmap.bundle_adjustment` sets glog's minloglevel to 0 (INFO) and
    leaves it there, printing "=== Global bundle adjustment ===" and "Elapsed time" lines: it is not used (see
    `_final_bundle_adjustment`)."""
    import pycolmap

    before = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 0 if verbose else QUIET_LOG_LEVEL
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = before


def _extract(database: Path, image_root: Path, names: Sequence[str], options: SfmOptions, progress, what: str):
    """SIFT features in chunks of EXTRACTION_CHUNK frames; one camera shared by all of them."""
    import pycolmap

    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = options.camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.use_gpu = False
    extraction.num_threads = options.num_threads
    extraction.max_image_size = options.max_image_size
    extraction.sift.max_num_features = options.max_num_features
    task = _progress_task(progress, f"SIFT features of {len(names)} {what}", total=len(names))
    for begin in range(0, len(names), EXTRACTION_CHUNK):
        chunk = list(names[begin:begin + EXTRACTION_CHUNK])
        pycolmap.extract_features(str(database), str(image_root), image_names=chunk,
                                  camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                                  extraction_options=extraction, device=pycolmap.Device.cpu)
        if reader.existing_camera_id < 0:  # later chunks join the camera the first one created
            with pycolmap.Database.open(str(database)) as db:
                cameras = db.read_all_cameras()
            if cameras:
                reader.existing_camera_id = int(cameras[0].camera_id)
        if progress is not None:
            progress.advance(task, len(chunk))


def _match_pairs(database: Path, work: Path, pairs: Sequence[Tuple[str, str]], matching, progress, task) -> None:
    import pycolmap

    pair_file = work / "pairs.txt"
    for begin in range(0, len(pairs), MATCHING_CHUNK):
        chunk = pairs[begin:begin + MATCHING_CHUNK]
        pair_file.write_text("".join(f"{a} {b}\n" for a, b in chunk))
        imported = pycolmap.ImportedPairingOptions()
        imported.match_list_path = str(pair_file)
        pycolmap.match_image_pairs(str(database), matching_options=matching, pairing_options=imported,
                                   device=pycolmap.Device.cpu)
        if progress is not None:
            progress.advance(task, len(chunk))


def run_sfm(image_root: Path, names: Sequence[str], work: Path, options: SfmOptions,
            extra_pairs: Sequence[Tuple[str, str]] = (), progress=None, what: str = "frames",
            clips: Sequence[Sequence[str]] = (), separate: Sequence[Sequence[str]] = ()) -> SfmResult:
    """Run COLMAP on the images `image_root / name` (names relative to `image_root`); COLMAP's files go to
    `work` (a scratch folder). `clips` and `separate`: time-ordered sequences of the names for sequential matching
    (pairs.py; by default all names form one sequence in the given order). Raises SfmError if no model comes out."""
    import pycolmap

    with colmap_log(options.verbose):
        if hasattr(pycolmap, "set_random_seed"):
            pycolmap.set_random_seed(int(options.seed))
        if options.camera_model not in CAMERA_MODELS:
            raise ProcessError(f"--camera-model {options.camera_model!r}: use one of {', '.join(CAMERA_MODELS)}.")
        work = Path(work)
        work.mkdir(parents=True, exist_ok=True)
        database = work / "database.db"
        names = list(names)

        # 1. Features.
        _extract(database, image_root, names, options, progress, what)

        # 2. Matching.
        matcher = options.chosen_matcher(len(names))
        matching = pycolmap.FeatureMatchingOptions()
        matching.use_gpu = False
        matching.num_threads = options.num_threads
        pairs = video_pairs(names, clips, matcher, options.sequential_overlap, options.cross_clip_frames,
                            extra_pairs, separate)
        loop = matcher == "sequential" and options.vocab_tree is not None
        task = _progress_task(progress, f"Matching ({matcher}{', loop detection' if loop else ''}): frame pairs",
                              total=len(pairs))
        if loop:  # COLMAP's own sequential matcher (one call) for its vocabulary-tree loop detection
            pairing = pycolmap.SequentialPairingOptions()
            pairing.overlap = options.sequential_overlap
            pairing.quadratic_overlap = True
            pairing.loop_detection = True
            pairing.vocab_tree_path = str(options.vocab_tree)
            pycolmap.match_sequential(str(database), matching_options=matching, pairing_options=pairing,
                                      device=pycolmap.Device.cpu)
        _match_pairs(database, work, pairs, matching, progress, task)

        # 3. Incremental mapping.
        mapping = _mapping_options(options)
        sparse = work / "sparse"
        sparse.mkdir(exist_ok=True)
        task = _progress_task(progress, "Incremental mapping (registered frames)", total=len(names))

        def registered_one() -> None:
            if progress is not None:
                progress.advance(task)

        def initial_pair() -> None:
            if progress is not None:
                progress.advance(task, 2)

        models = pycolmap.incremental_mapping(str(database), str(image_root), str(sparse), mapping,
                                              initial_image_pair_callback=initial_pair,
                                              next_image_callback=registered_one)
        if not models:
            raise _failure(database, what)
        model = max(models.values(), key=lambda rec: rec.num_reg_images())
        if progress is not None:
            progress.update(task, completed=model.num_reg_images())
        if model.num_reg_images() < 2:
            raise _failure(database, what)
        task = _progress_task(progress, "Final bundle adjustment")
        _final_bundle_adjustment(model)
        _finish(progress, task)
        return _result(model, len(models), matcher)


def _mapping_options(options: SfmOptions):
    """Incremental mapping with strict outlier thresholds and tight global bundle adjustments (module docstring)."""
    import pycolmap

    mapping = pycolmap.IncrementalPipelineOptions()
    mapping.num_threads = options.num_threads
    if hasattr(mapping.mapper, "num_threads"):  # its own default (-1: every core) ignores the pipeline's: with more
        mapping.mapper.num_threads = options.num_threads  # than one thread, registration varied run to run
    if hasattr(mapping, "random_seed"):
        mapping.random_seed = int(options.seed)
    error = float(options.max_reprojection_error)
    mapping.mapper.filter_max_reproj_error = error
    mapping.triangulation.complete_max_reproj_error = error
    mapping.triangulation.merge_max_reproj_error = error
    mapping.mapper.abs_pose_max_error = 3.0 * error
    mapping.ba_global_function_tolerance = 1e-10
    mapping.ba_global_max_num_iterations = 200
    mapping.ba_global_max_refinements = 10
    mapping.ba_global_max_refinement_change = 1e-4
    return mapping


def _final_bundle_adjustment(model) -> None:
    """A last global bundle adjustment run to convergence (Cauchy loss; focal refined, principal point fixed).

    The same problem as `pycolmap.bundle_adjustment` (every registered image, the gauge fixed by two cameras;
    identical results), built with `create_default_bundle_adjuster` because `pycolmap.bundle_adjustment` turns
    COLMAP's INFO log on (`colmap_log`)."""
    import pycolmap

    options = pycolmap.BundleAdjustmentOptions()
    options.refine_principal_point = False
    options.refine_focal_length = True
    options.print_summary = False
    options.ceres.loss_function_type = pycolmap.LossFunctionType.CAUCHY
    solver = options.ceres.solver_options
    solver.function_tolerance = 1e-12
    solver.gradient_tolerance = 1e-12
    solver.parameter_tolerance = 1e-12
    solver.max_num_iterations = 1000
    config = pycolmap.BundleAdjustmentConfig()
    for image_id in model.reg_image_ids():
        config.add_image(image_id)
    config.fix_gauge(pycolmap.BundleAdjustmentGauge.TWO_CAMS_FROM_WORLD)
    pycolmap.create_default_bundle_adjuster(options, config, model).solve()
    model.update_point_3d_errors()


def without_frames(result: SfmResult, names: Sequence[str]) -> SfmResult:
    """The result with the frames `names` taken out of the model (a dropped clip): they lose their poses, and the
    sparse points they alone saw (tracks left shorter than two frames) go with them."""
    drop = set(names)
    model = result.reconstruction
    frames = {image.frame_id for image in model.images.values() if image.name in drop and image.has_pose}
    for frame_id in frames:
        model.deregister_frame(frame_id)
    return _result(model, result.num_models, result.matcher)


def _result(model, num_models: int, matcher: str) -> SfmResult:
    poses = {}
    for image in model.images.values():
        if not image.has_pose:
            continue
        matrix = np.eye(4)
        matrix[:3] = np.asarray(image.cam_from_world().matrix(), dtype=np.float64)
        poses[image.name] = matrix
    cameras = list(model.cameras.values())
    camera = cameras[0]
    intrinsics = {"fl_x": float(camera.focal_length_x), "fl_y": float(camera.focal_length_y),
                  "cx": float(camera.principal_point_x), "cy": float(camera.principal_point_y),
                  "w": int(camera.width), "h": int(camera.height)}
    points: List[np.ndarray] = []
    colours: List[np.ndarray] = []
    errors: List[float] = []
    for point in model.points3D.values():
        points.append(np.asarray(point.xyz, dtype=np.float64))
        colours.append(np.asarray(point.color, dtype=np.uint8))
        errors.append(float(point.error))
    return SfmResult(
        world_to_camera=poses, intrinsics=intrinsics,
        points=np.array(points).reshape(-1, 3), colours=np.array(colours, dtype=np.uint8).reshape(-1, 3),
        errors=np.array(errors), num_models=num_models, matcher=matcher, reconstruction=model,
    )
