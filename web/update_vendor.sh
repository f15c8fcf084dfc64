#!/usr/bin/env bash
# Re-vendor the web viewer's JavaScript from the npm registry at the versions package-lock.json pins (checked by
# their sha512 integrity): `bash web/update_vendor.sh`, then commit fourreal_ns/export/web_viewer/vendor/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
vendor="$here/../fourreal_ns/export/web_viewer/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
rm -rf "$vendor" && mkdir -p "$vendor/three/build" "$vendor/three/addons/controls" "$vendor/three/addons/postprocessing" "$vendor/spark"
three="$work/node_modules/three"
cp "$three/build/three.module.js" "$three/build/three.core.js" "$vendor/three/build/"
cp "$three/examples/jsm/controls/OrbitControls.js" "$vendor/three/addons/controls/"
cp "$three/examples/jsm/postprocessing/Pass.js" "$vendor/three/addons/postprocessing/"
cp "$three/LICENSE" "$vendor/three/LICENSE"
spark="$work/node_modules/@sparkjsdev/spark"
cp "$spark/dist/spark.module.min.js" "$vendor/spark/"
cp "$spark/LICENSE" "$vendor/spark/LICENSE"
for name in three @sparkjsdev/spark; do
  node -e "const p=require('$work/node_modules/$name/package.json'); console.log(p.name + ' ' + p.version + ' ' + p.license)"
done > "$vendor/VERSIONS.txt"
echo "vendored into $vendor:"; cat "$vendor/VERSIONS.txt"
