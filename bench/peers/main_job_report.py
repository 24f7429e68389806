#!/usr/bin/env python3
"""The main job's report (scripts/main_job.sh): tables in Markdown and JSON, and an SVG chart.

Reads what the job measured: peers.py's JSON (latency, load time and peak memory per engine),
`nibble bench --json` files (resident weight bytes per model) and, when there is one, the
`nibble compare` JSON of the accuracy run. Writes OUT/main_job.md, OUT/main_job.json and
OUT/latency.svg, and prints the Markdown.

    main_job_report.py --peers reports/peers.json --bench reports/bench \\
        [--accuracy reports/accuracy/compare.json] [--stage NAME=SECONDS ...] --out reports
"""
import argparse
import html
import json
import os
import subprocess
import sys

ENGINES = ["nibble", "onnxruntime", "openvino"]
TITLES = {"nibble": "nibble", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}
COLORS = {"nibble": "#1f77b4", "onnxruntime": "#ff7f0e", "openvino": "#2ca02c"}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def git_revision():
    try:
        out = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def median(entry):
    return entry.get("median_ms") if entry else None


def fmt(value, form):
    return form.format(value) if value is not None else "n/a"


class Notes:
    """Markdown footnotes, one per distinct text."""

    def __init__(self):
        self.texts = []

    def mark(self, text):
        if text not in self.texts:
            self.texts.append(text)
        return f"[^{self.texts.index(text) + 1}]"

    def markdown(self):
        return "\n".join(f"[^{i + 1}]: {t}" for i, t in enumerate(self.texts))


def latency_rows(peers, weights):
    """One row per model and thread count, with the speed-up over the model's FP32 base."""
    by_key = {(r["model"], r["threads"]): r for r in peers["results"]}
    rows = []
    for r in peers["results"]:
        base = by_key.get((r["base"], r["threads"])) if r["base"] else None
        row = {"model": r["model"], "threads": r["threads"], "base": r["base"],
               "weight_bytes": weights.get(r["model"], {}).get("weight_bytes"), "engines": {}}
        for engine in ENGINES:
            entry = r["engines"].get(engine)
            if entry is None:
                continue
            cell = {k: entry.get(k) for k in ("median_ms", "load_ms", "peak_rss_mb",
                                              "rss_before_load_mb", "error")}
            base_ms = median(base["engines"].get(engine)) if base else None
            if base_ms and cell["median_ms"]:
                cell["speedup_vs_fp32"] = base_ms / cell["median_ms"]
            row["engines"][engine] = {k: v for k, v in cell.items() if v is not None}
        mine = median(row["engines"].get("nibble"))
        for engine in ENGINES[1:]:
            theirs = median(row["engines"].get(engine))
            if mine and theirs:
                row[f"nibble_over_{engine}"] = mine / theirs
        rows.append(row)
    return rows


def latency_markdown(rows, notes):
    def cell(row, engine, key, form):
        entry = row["engines"].get(engine)
        if entry is None:
            return "-"
        if "error" in entry:
            return "n/a" + notes.mark(f"{TITLES[engine]} cannot load {row['model']}: "
                                      f"{entry['error']}")
        return fmt(entry.get(key), form)

    head = (["model", "threads"] + [f"{TITLES[e]} ms" for e in ENGINES]
            + ["nibble / ORT", "nibble / OpenVINO"]
            + [f"{TITLES[e]} speed-up vs FP32" for e in ENGINES] + ["nibble weights MiB"])
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---", "---:"] + ["---:"] * (len(head) - 2)) + "|"]
    for row in rows:
        cells = [row["model"], str(row["threads"])]
        cells += [cell(row, e, "median_ms", "{:.1f}") for e in ENGINES]
        cells += [fmt(row.get(f"nibble_over_{e}"), "{:.2f}") for e in ENGINES[1:]]
        cells += [cell(row, e, "speedup_vs_fp32", "{:.2f}x") if row["base"] else ""
                  for e in ENGINES]
        cells.append(fmt(row["weight_bytes"] / 2**20 if row["weight_bytes"] else None, "{:.1f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def resources_markdown(rows, notes):
    def cell(row, engine, key, form):
        entry = row["engines"].get(engine)
        if entry is None:
            return "-"
        if "error" in entry:
            return "n/a" + notes.mark(f"{TITLES[engine]} cannot load {row['model']}: "
                                      f"{entry['error']}")
        return fmt(entry.get(key), form)

    head = (["model", "threads"] + [f"{TITLES[e]} load ms" for e in ENGINES]
            + [f"{TITLES[e]} peak RSS MB" for e in ENGINES])
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---", "---:"] + ["---:"] * (len(head) - 2)) + "|"]
    for row in rows:
        cells = [row["model"], str(row["threads"])]
        cells += [cell(row, e, "load_ms", "{:.0f}") for e in ENGINES]
        cells += [cell(row, e, "peak_rss_mb", "{:.0f}") for e in ENGINES]
        lines.append("| " + " | ".join(cells) + " |")
    baselines = {}
    for row in rows:
        for engine, entry in row["engines"].items():
            if entry.get("rss_before_load_mb"):
                baselines.setdefault(engine, []).append(entry["rss_before_load_mb"])
    held = ", ".join(f"{TITLES[e]} {min(v):.0f} MB" for e, v in baselines.items())
    lines += ["", "Each engine runs in a process of its own (nibble: `nibble bench --serve`; the "
              "others: `bench/peers/engine_worker.py`). Load: from the file to a session ready "
              "to run (nibble `Session::load`, ONNX Runtime `InferenceSession()`, OpenVINO "
              "`compile_model`), before the warmup run. Peak RSS: the process's high-water "
              "mark of resident memory (VmHWM) after all its runs"
              + (f"; the Python processes held {held} (interpreter, NumPy and the engine's "
                 "library) before loading the model" if held else "") + "."]
    return "\n".join(lines)


def accuracy_rows(compare):
    rows = []
    base = compare["models"][0] if compare["models"] else None
    for m in compare["models"]:
        rows.append({"name": m["name"], "scheme": m["scheme"], "mAP_50_95": m["mAP_50_95"],
                     "mAP_50": m["mAP_50"],
                     "delta_mAP_50_95": m["mAP_50_95"] - base["mAP_50_95"],
                     "latency_median_ms": m["latency_median_ms"],
                     "speedup_vs_fp32": m["speedup_vs_first"], "weight_bytes": m["weight_bytes"]})
    return rows


def accuracy_markdown(rows):
    lines = ["| model | mAP 50:95 | mAP 50 | change vs FP32 | nibble median ms | "
             "speed-up | weights MiB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| yolov10n-{r['name']} | {r['mAP_50_95']:.4f} | "
                     f"{r['mAP_50']:.4f} | {r['delta_mAP_50_95']:+.4f} | "
                     f"{r['latency_median_ms']:.1f} | {r['speedup_vs_fp32']:.2f}x | "
                     f"{r['weight_bytes'] / 2**20:.1f} |")
    return "\n".join(lines)


def latency_svg(rows, threads_list):
    """Grouped bars: per model, one bar per engine; one panel per thread count."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    by_key = {(r["model"], r["threads"]): r for r in rows}
    group_w, bar_w, panel_h, left, top = 34 * len(ENGINES) + 26, 30, 260, 70, 60
    width = left + group_w * len(models) + 30
    height = top + (panel_h + 90) * len(threads_list)
    peak = max([e["median_ms"] for r in rows for e in r["engines"].values()
                if e.get("median_ms")] + [1])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="16">'
           'Median latency per engine (ms, lower is better)</text>']
    for i, engine in enumerate(ENGINES):
        x = left + i * 140
        out.append(f'<rect x="{x}" y="34" width="12" height="12" fill="{COLORS[engine]}"/>'
                   f'<text x="{x + 16}" y="45">{TITLES[engine]}</text>')
    for p, threads in enumerate(threads_list):
        y0 = top + p * (panel_h + 90) + 20
        base = y0 + panel_h
        out.append(f'<text x="{left}" y="{y0 - 6}" font-size="14">{threads} thread'
                   f'{"s" if threads > 1 else ""}</text>')
        out.append(f'<line x1="{left}" y1="{base}" x2="{width - 20}" y2="{base}" stroke="#333"/>')
        for k in range(5):  # gridlines at quarters of the tallest bar
            value = peak * k / 4
            y = base - panel_h * k / 4
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" '
                       f'stroke="#ddd"/><text x="{left - 6}" y="{y + 4:.1f}" '
                       f'text-anchor="end">{value:.0f}</text>')
        for g, model in enumerate(models):
            gx = left + 13 + g * group_w
            row = by_key.get((model, threads))
            for i, engine in enumerate(ENGINES):
                entry = row["engines"].get(engine, {}) if row else {}
                x = gx + i * (bar_w + 4)
                if entry.get("median_ms"):
                    h = panel_h * entry["median_ms"] / peak
                    out.append(f'<rect x="{x}" y="{base - h:.1f}" width="{bar_w}" '
                               f'height="{h:.1f}" fill="{COLORS[engine]}"><title>'
                               f'{html.escape(model)}, {TITLES[engine]}, {threads} threads: '
                               f'{entry["median_ms"]:.1f} ms</title></rect>')
                    out.append(f'<text x="{x + bar_w / 2}" y="{base - h - 3:.1f}" '
                               f'text-anchor="middle" font-size="9">'
                               f'{entry["median_ms"]:.0f}</text>')
                else:
                    out.append(f'<text x="{x + bar_w / 2}" y="{base - 4}" '
                               f'text-anchor="middle" font-size="9">n/a</text>')
            out.append(f'<text x="{gx + group_w / 2 - 13}" y="{base + 16}" '
                       f'text-anchor="middle">{html.escape(model)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peers", required=True, help="peers.py --json output")
    ap.add_argument("--bench", required=True, help="directory of LABEL.json from nibble bench")
    ap.add_argument("--accuracy", help="nibble compare's compare.json")
    ap.add_argument("--stage", action="append", default=[], metavar="NAME=SECONDS")
    ap.add_argument("--elapsed", type=float, help="seconds the whole job took")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    with open(args.peers) as f:
        peers = json.load(f)
    weights = {}
    for name in sorted(os.listdir(args.bench)):
        if name.endswith(".json"):
            with open(os.path.join(args.bench, name)) as f:
                weights[name[:-5]] = json.load(f)
    rows = latency_rows(peers, weights)
    threads_list = sorted({r["threads"] for r in rows})
    accuracy = None
    if args.accuracy:
        with open(args.accuracy) as f:
            compare = json.load(f)
        accuracy = {"num_images": compare.get("num_images"), "threads": compare.get("threads"),
                    "models": accuracy_rows(compare)}
    stages = [(s.split("=", 1)[0], float(s.split("=", 1)[1])) for s in args.stage]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None

    notes = Notes()
    versions = ", ".join(f"{TITLES[k]} {v}" for k, v in peers["versions"].items())
    md = ["# nibble main job: YOLOv10 latency side by side", "",
          f"{peers['date']}, {peers['cpu']} ({os.cpu_count()} logical CPUs"
          + (f", load average {load[0]:.2f} at the end" if load else "")
          + f"); nibble {git_revision()}, {versions}. yolov10m is `nibble zoo`'s network "
          "(Ultralytics structure, random weights), quantized by `nibble quantize` into "
          "Brevitas-style QCDQ; yolov10n has the real COCO weights.", "",
          "## Latency", "", peers["heading"], "",
          latency_markdown(rows, notes), "",
          "nibble / ORT and nibble / OpenVINO below 1: nibble is faster. Speed-up vs FP32: the "
          "same engine's FP32 model over this one. Weights: what nibble keeps resident for "
          "them (the kernels' packed copies and the constants read as they are).", "",
          "## Load time and peak memory", "", resources_markdown(rows, notes)]
    if accuracy:
        md += ["", f"## Accuracy: yolov10n on coco-mini ({accuracy['num_images']} images, "
               f"nibble, {accuracy['threads']} threads)", "", accuracy_markdown(accuracy["models"]),
               "", "COCOeval bbox mAP as pycocotools computes it (`nibble compare`); the "
               "quantized models are calibrated on the assets' sample photos, none of which "
               "is in coco-mini. Latency here is nibble's per-image model time during the "
               "evaluation. Plot: `latency_vs_map.svg`; per-model reports: `accuracy/`."]
    if stages:
        md += ["", "## Time taken", "", "| stage | seconds |", "|---|---:|"]
        md += [f"| {name} | {seconds:.0f} |" for name, seconds in stages]
        if args.elapsed is not None:
            md.append(f"| **all** | **{args.elapsed:.0f}** |")
    if notes.texts:
        md += ["", notes.markdown()]
    markdown = "\n".join(md) + "\n"

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "main_job.md"), "w") as f:
        f.write(markdown)
    with open(os.path.join(args.out, "latency.svg"), "w") as f:
        f.write(latency_svg(rows, threads_list))
    with open(os.path.join(args.out, "main_job.json"), "w") as f:
        json.dump({"date": peers["date"], "cpu": peers["cpu"], "logical_cpus": os.cpu_count(),
                   "load_average_at_end": list(load) if load else None,
                   "nibble_revision": git_revision(), "versions": peers["versions"],
                   "peers_heading": peers["heading"], "latency": rows, "accuracy": accuracy,
                   "stages_s": dict(stages), "elapsed_s": args.elapsed}, f, indent=2)
    print(markdown)
    print(f"Reports in {args.out}/: main_job.md, main_job.json, latency.svg"
          + (", latency_vs_map.svg, accuracy/" if accuracy else "")
          + ", peers.md, peers.json, bench/ (per-node profiles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
