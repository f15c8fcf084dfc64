"""What a batch leaves besides its items: DIR/batch.json (every item's status, attempts, step seconds, held-out
metrics, error and log) and DIR/index.html, a gallery of the orbit videos with their prompts, times and metrics.

Both are rewritten whenever an item finishes, so an interrupted batch (Ctrl-C, a lost driver) still has its report.
The page is static and links everything relatively: open it from the folder, copy the folder anywhere, or serve it
(`python -m http.server -d DIR`: videos play from file:// too).
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from fourreal_ns.batch.items import BatchItem
from fourreal_ns.batch.worker import attempts_of, finished_result, run_status
from fourreal_ns.data.atomic_write import atomic_write_bytes, write_json_atomic

REPORT_FILE = "batch.json"
GALLERY_FILE = "index.html"


def item_folder(out: Path, item: BatchItem) -> Path:
    return out / "items" / item.name


def item_report(out: Path, item: BatchItem, status: str, error: Optional[str] = None) -> Dict[str, Any]:
    """One item's entry of batch.json, from the files in its folder."""
    folder = item_folder(out, item)
    result = finished_result(folder) or {}
    attempts = attempts_of(folder)
    for attempt in attempts:
        if attempt.get("ended") is None and status != "running":
            attempt["outcome"] = "interrupted" if status == "interrupted" and attempt is attempts[-1] else "worker died"
        elif attempt.get("returncode") is not None:
            attempt["outcome"] = "done" if attempt["returncode"] == 0 else f"exit {attempt['returncode']}"
    steps = run_status(folder).get("steps", {})
    seconds = result.get("seconds") or {name: step.get("seconds") for name, step in steps.items()}
    return {
        "name": item.name, "prompt": item.prompt, "options": item.options, "index": item.index,
        "status": status, "folder": f"items/{item.name}",
        "video": f"items/{item.name}/{result['video']}" if result else None,
        "config": _final_config(folder), "seconds": seconds,
        "total_seconds": round(sum(value for value in seconds.values() if value), 1),
        "metrics": result.get("metrics", {}), "attempts": attempts,
        "log": f"items/{item.name}/{attempts[-1]['log']}" if attempts else None,
        "error": error,
    }


def _final_config(folder: Path) -> Optional[str]:
    for stage in ("motion", "canonical"):
        for config in sorted((folder / "runs").glob(f"*/4real-{stage}*/run/config.yml")):
            return str(config.relative_to(folder.parent.parent))
    return None


def write_report(out: Path, entries: List[Mapping[str, Any]], summary: Mapping[str, Any]) -> None:
    """batch.json and index.html (module docstring)."""
    entries = sorted(entries, key=lambda entry: entry["index"])
    write_json_atomic(out / REPORT_FILE, {"summary": dict(summary), "items": list(entries)})
    atomic_write_bytes(out / GALLERY_FILE, gallery_html(entries, summary).encode())


def _metrics_text(metrics: Mapping[str, float]) -> str:
    parts = [f"{label} {metrics[key]:{form}}" for key, label, form in
             (("psnr", "PSNR", ".2f"), ("ssim", "SSIM", ".3f"), ("lpips", "LPIPS", ".3f")) if key in metrics]
    return " &middot; ".join(parts) + (" (held-out frames)" if parts else "")


def _card(entry: Mapping[str, Any]) -> str:
    escape = html.escape
    if entry.get("video"):
        media = (f'<video src="{escape(entry["video"])}" controls muted loop autoplay playsinline '
                 'preload="metadata"></video>')
    else:
        media = f'<div class="empty">{escape(entry["status"])}</div>'
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in entry["seconds"].items() if seconds)
    lines = [
        f'<article class="item {escape(entry["status"])}" id="{escape(entry["name"])}">', media,
        f'<h2>{escape(entry["prompt"])}</h2>',
        f'<p class="status">{escape(entry["status"])} &middot; {len(entry["attempts"])} attempt(s) &middot; '
        f'{entry["total_seconds"]:.0f} s</p>',
    ]
    if entry["metrics"]:
        lines.append(f'<p class="metrics">{_metrics_text(entry["metrics"])}</p>')
    if steps:
        lines.append(f'<p class="steps">{escape(steps)}</p>')
    links = [f'<a href="{escape(entry["folder"])}/">{escape(entry["name"])}</a>']
    if entry.get("log"):
        links.append(f'<a href="{escape(entry["log"])}">log</a>')
    lines.append(f'<p class="links">{" &middot; ".join(links)}</p>')
    if entry.get("config"):
        lines.append(f'<p class="command"><code>ns-viewer --load-config {escape(entry["config"])}</code></p>')
    if entry.get("error"):
        lines.append(f'<pre class="error">{escape(entry["error"])}</pre>')
    lines.append("</article>")
    return "\n".join(lines)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; background: #111; color: #eee; }
header p { color: #aaa; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 1.5rem; }
article { background: #1c1c1c; border-radius: 8px; padding: 0.8rem; }
article.failed { outline: 2px solid #a33; } article.running, article.waiting { opacity: 0.7; }
video, .empty { width: 100%; aspect-ratio: 1; background: #000; border-radius: 4px; object-fit: contain; }
.empty { display: flex; align-items: center; justify-content: center; color: #777; }
h2 { font-size: 1rem; margin: 0.6rem 0 0.3rem; } p { margin: 0.2rem 0; font-size: 0.85rem; color: #bbb; }
a { color: #8cf; } pre.error { white-space: pre-wrap; font-size: 0.7rem; max-height: 12rem; overflow: auto;
  background: #2a1515; padding: 0.4rem; }
"""


def gallery_html(entries: List[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    counts = " &middot; ".join(f"{summary.get(key, 0)} {key}" for key in ("done", "failed", "running", "waiting")
                               if summary.get(key))
    updated = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(summary.get("updated", time.time())))
    rate = summary.get("items_per_hour")
    cards = "\n".join(_card(entry) for entry in entries)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>fourreal batch: {len(entries)} scenes</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>fourreal batch</h1>
<p>{len(entries)} items: {counts}{f" &middot; {rate:.1f} items per hour" if rate else ""} &middot; updated {updated}
&middot; <a href="{REPORT_FILE}">{REPORT_FILE}</a></p>
</header>
<main>
{cards}
</main>
</body>
</html>
"""
