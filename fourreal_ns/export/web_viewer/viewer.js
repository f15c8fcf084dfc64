// fourreal_ns web viewer: a 4D Gaussian scene written by `fourreal export web`, rendered with Spark (three.js).
//
// The folder holds scene.json (cameras, times, layout), gaussians.ply (the canonical Gaussians, a standard 3DGS PLY
// with their spherical harmonics) and, for a 4D scene, motion.bin: for each keyframe time and each Gaussian, its
// position, rotation and log-scales at that time (float16, little endian). Between keyframes positions follow a
// Catmull-Rom curve through the keyframes, rotations are blended and renormalised, log-scales are blended linearly;
// opacities and colours do not change with time (4Real's deformation moves, turns and scales Gaussians only).
//
// URL options: ?t=0.5 (start time), ?play=1 (start playing), ?ui=0 (no panel: screenshots).
// Test hooks: window.fourreal = { ready, setTime(t), time, frames, error }.
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { SparkRenderer, SplatMesh, setPackedSplat } from "@sparkjsdev/spark";

const params = new URLSearchParams(location.search);
const statusBox = document.getElementById("status");
const api = { time: 0, frames: 0, error: null, ready: null, setTime: () => {} };
window.fourreal = api;

function halfToFloatTable() {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1, exponent = (h >> 10) & 0x1f, fraction = h & 0x3ff;
    if (exponent === 0) table[h] = sign * 2 ** -14 * (fraction / 1024);
    else if (exponent === 31) table[h] = fraction ? NaN : sign * Infinity;
    else table[h] = sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return table;
}

async function fetchChecked(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}

// Keyframed motion: state(t) writes every Gaussian's position, rotation (x y z w) and scales at time t.
class Motion {
  constructor(scene, buffer) {
    const layout = scene.motion;
    this.times = scene.times;
    this.count = scene.num_gaussians;
    this.stride = layout.values_per_gaussian;
    const half = new Uint16Array(buffer);
    if (half.length !== this.times.length * this.count * this.stride)
      throw new Error(`motion.bin holds ${half.length} values, scene.json says ${this.times.length} x ${this.count} x ${this.stride}`);
    const table = halfToFloatTable();
    this.values = new Float32Array(half.length);
    for (let i = 0; i < half.length; i++) this.values[i] = table[half[i]];
  }
  // The keyframe before t and the blend weight towards the next one.
  bracket(t) {
    const times = this.times, last = times.length - 1;
    if (last === 0 || t <= times[0]) return [0, 0];
    if (t >= times[last]) return [last, 0];
    let k = 0;
    while (k < last - 1 && times[k + 1] <= t) k++;
    return [k, (t - times[k]) / (times[k + 1] - times[k])];
  }
  state(t, out) {
    const [k, w] = this.bracket(t), last = this.times.length - 1, n = this.count, s = this.stride, v = this.values;
    const k0 = Math.max(k - 1, 0), k2 = Math.min(k + 1, last), k3 = Math.min(k + 2, last);
    const o0 = k0 * n * s, o1 = k * n * s, o2 = k2 * n * s, o3 = k3 * n * s;
    const w2 = w * w, w3 = w2 * w;  // Catmull-Rom weights of p0..p3
    const c0 = -0.5 * w3 + w2 - 0.5 * w, c1 = 1.5 * w3 - 2.5 * w2 + 1, c2 = -1.5 * w3 + 2 * w2 + 0.5 * w, c3 = 0.5 * w3 - 0.5 * w2;
    for (let i = 0; i < n; i++) {
      const a = o1 + i * s, b = o2 + i * s, p = o0 + i * s, q = o3 + i * s, r = i * 10;
      for (let j = 0; j < 3; j++) out[r + j] = c0 * v[p + j] + c1 * v[a + j] + c2 * v[b + j] + c3 * v[q + j];
      // rotation: w x y z in the file; blend along the shorter way, renormalise; written as x y z w
      const dot = v[a + 3] * v[b + 3] + v[a + 4] * v[b + 4] + v[a + 5] * v[b + 5] + v[a + 6] * v[b + 6];
      const sb = dot < 0 ? -w : w;
      let qw = (1 - w) * v[a + 3] + sb * v[b + 3], qx = (1 - w) * v[a + 4] + sb * v[b + 4];
      let qy = (1 - w) * v[a + 5] + sb * v[b + 5], qz = (1 - w) * v[a + 6] + sb * v[b + 6];
      const norm = Math.hypot(qw, qx, qy, qz) || 1;
      out[r + 3] = qx / norm; out[r + 4] = qy / norm; out[r + 5] = qz / norm; out[r + 6] = qw / norm;
      for (let j = 7; j < 10; j++) out[r + j] = Math.exp((1 - w) * v[a + j] + w * v[b + j]);
    }
  }
}

function trainingCamera(scene, aspect) {
  const spec = scene.camera;
  const camera = new THREE.PerspectiveCamera(spec.fov, aspect, 0.01, 1000);
  const m = spec.camera_to_world;  // row-major 4 x 4, OpenGL axes (nerfstudio camera paths)
  const matrix = new THREE.Matrix4().set(...m);
  matrix.decompose(camera.position, camera.quaternion, new THREE.Vector3());
  camera.up.fromArray(scene.up);
  camera.updateMatrixWorld();
  return camera;
}

// OrbitControls turn the camera around its target: put the target on the camera's viewing axis (the point nearest
// the scene's orbit centre), so the initial view stays exactly the training camera's.
function orbitTarget(camera, centre) {
  const forward = new THREE.Vector3(0, 0, -1).applyQuaternion(camera.quaternion);
  const distance = Math.max(new THREE.Vector3().fromArray(centre).sub(camera.position).dot(forward), 0.05);
  return camera.position.clone().addScaledVector(forward, distance);
}

async function main() {
  const scene = await (await fetchChecked("scene.json")).json();
  const canvas = document.getElementById("canvas");
  if (params.get("ui") === "0") document.body.classList.add("hide-ui");
  const renderer = new THREE.WebGLRenderer({ canvas, antialias: false, preserveDrawingBuffer: true });
  renderer.setPixelRatio(window.devicePixelRatio);
  renderer.setSize(window.innerWidth, window.innerHeight, false);
  renderer.setClearColor(new THREE.Color().setRGB(...scene.background, THREE.SRGBColorSpace), 1);
  const world = new THREE.Scene();
  // gsplat's rasterisation: 3-sigma extent, and its 0.3 px^2 2D dilation (classic mode: plain; antialiased mode:
  // with the opacity compensation), so the page draws what ns-render draws.
  const raster = scene.rasterization;
  world.add(new SparkRenderer({ renderer, maxStdDev: raster.max_std_dev, preBlurAmount: raster.pre_blur, blurAmount: raster.blur }));
  let camera = trainingCamera(scene, window.innerWidth / window.innerHeight);
  const controls = new OrbitControls(camera, canvas);
  const resetView = () => {
    const fresh = trainingCamera(scene, camera.aspect);
    camera.position.copy(fresh.position);
    camera.quaternion.copy(fresh.quaternion);
    controls.target.copy(orbitTarget(fresh, scene.target));
    controls.update();
  };
  resetView();

  statusBox.textContent = `loading ${scene.num_gaussians.toLocaleString()} Gaussians…`;
  const mesh = new SplatMesh({ url: scene.gaussians_file });
  world.add(mesh);
  const motionBuffer = scene.motion ? await (await fetchChecked(scene.motion.file)).arrayBuffer() : null;
  await mesh.initialized;
  const packed = mesh.packedSplats;
  if (packed.numSplats !== scene.num_gaussians)
    throw new Error(`${scene.gaussians_file} holds ${packed.numSplats} Gaussians, scene.json says ${scene.num_gaussians}`);

  let motion = null, state = null, opacity = null, colour = null;
  if (motionBuffer) {
    motion = new Motion(scene, motionBuffer);
    state = new Float32Array(scene.num_gaussians * 10);
    opacity = new Float32Array(scene.num_gaussians);
    colour = new Float32Array(scene.num_gaussians * 3);
    packed.forEachSplat((i, center, scales, quaternion, alpha, rgb) => {
      opacity[i] = alpha; colour[3 * i] = rgb.r; colour[3 * i + 1] = rgb.g; colour[3 * i + 2] = rgb.b;
    });
  } else {
    document.body.classList.add("still");
  }

  const slider = document.getElementById("time"), label = document.getElementById("time-label");
  const playButton = document.getElementById("play"), loop = document.getElementById("loop");
  let playing = motion !== null && params.get("play") === "1";
  const showTime = () => { slider.value = api.time; label.textContent = `t = ${api.time.toFixed(3)}`; };
  api.setTime = (t) => {
    api.time = Math.min(Math.max(Number(t), 0), 1);
    showTime();
    if (!motion) return;
    motion.state(api.time, state);
    const array = packed.packedArray, encoding = packed.splatEncoding;
    for (let i = 0; i < scene.num_gaussians; i++) {
      const r = 10 * i;
      setPackedSplat(array, i, state[r], state[r + 1], state[r + 2], state[r + 7], state[r + 8], state[r + 9],
        state[r + 3], state[r + 4], state[r + 5], state[r + 6], opacity[i], colour[3 * i], colour[3 * i + 1], colour[3 * i + 2], encoding);
    }
    packed.needsUpdate = true;
    mesh.updateVersion();
  };
  const setPlaying = (value) => { playing = value && motion !== null; playButton.textContent = playing ? "❚❚" : "▶"; };
  slider.addEventListener("input", () => { setPlaying(false); api.setTime(slider.value); });
  playButton.addEventListener("click", () => setPlaying(!playing));
  document.getElementById("reset").addEventListener("click", resetView);
  window.addEventListener("keydown", (event) => {
    if (event.key === " ") { setPlaying(!playing); event.preventDefault(); }
    if (event.key === "r") resetView();
  });
  window.addEventListener("resize", () => {
    camera.aspect = window.innerWidth / window.innerHeight;
    camera.updateProjectionMatrix();
    renderer.setSize(window.innerWidth, window.innerHeight, false);
  });
  api.setTime(params.has("t") ? params.get("t") : scene.canonical_time ?? 0);
  setPlaying(playing);

  const fpsBox = document.getElementById("fps");
  let last = performance.now(), fpsFrames = 0, fpsStart = last;
  renderer.setAnimationLoop((now) => {
    if (playing) {
      let t = api.time + (now - last) / 1000 / scene.play_seconds;
      if (t > 1) { if (loop.checked) t -= 1; else { t = 1; setPlaying(false); } }
      api.setTime(t);
    }
    last = now;
    controls.update();
    renderer.render(world, camera);
    api.frames++;
    fpsFrames++;
    if (now - fpsStart > 500) {
      fpsBox.textContent = `${(1000 * fpsFrames / (now - fpsStart)).toFixed(1)} fps`;
      fpsFrames = 0; fpsStart = now;
    }
  });
  statusBox.textContent = `${scene.num_gaussians.toLocaleString()} Gaussians` + (motion ? `, ${scene.times.length} keyframes` : ", still scene");
}

api.ready = main().catch((error) => {
  api.error = String(error && error.stack || error);
  statusBox.textContent = `could not show the scene: ${error}`;
  console.error(error);
  throw error;
});
