#!/usr/bin/env python3
"""Tabulates a nibble_bench_kernels JSON report: per shape, each kind's GOPS (median when the run
had repetitions) and its ratio to a baseline kind, then per kind the whole model's convolution
time (each shape's time x how often the model runs it, from the shapes file) and GEMM figures.

    build/bin/nibble_bench_kernels --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \\
        --benchmark_format=json > report.json
    python3 bench/summarize.py report.json --shapes bench/shapes/yolov10m.txt --baseline onednn_f32
"""
import argparse
import collections
import json
import sys


def load(path):
    with open(path) as f:
        report = json.load(f)
    results = {}  # (family, kind, shape) -> (seconds per iteration, GOPS, peak_frac)
    for b in report["benchmarks"]:
        if b.get("error_occurred"):
            continue
        aggregate = b.get("aggregate_name")
        if aggregate not in (None, "median"):
            continue
        name = b.get("run_name", b["name"])
        parts = name.split("/")
        family, kind, shape = parts[0], parts[1], "/".join(parts[2:])
        unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
        seconds = b["real_time" if b.get("real_time_used") else "cpu_time"] * unit
        results[(family, kind, shape)] = (seconds, b.get("GOPS", 0.0), b.get("peak_frac", 0.0))
    return report.get("context", {}), results


def shape_counts(path):
    counts = {}
    with open(path) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                fields = line.split()
                counts[fields[0]] = int(fields[1])
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", help="JSON written by --benchmark_format=json")
    parser.add_argument("--shapes", default="bench/shapes/yolov10m.txt")
    parser.add_argument("--baseline", default="onednn_f32", help="kind the ratios compare with")
    args = parser.parse_args()
    _, results = load(args.report)
    counts = shape_counts(args.shapes)

    peak = [v for (family, _, _), v in results.items() if family == "BM_peak"]
    if peak:
        print(f"FMA peak: {peak[0][1]:.1f} GFLOPS")
    for family in ("BM_gemm", "BM_conv"):
        rows = collections.defaultdict(dict)
        for (fam, kind, shape), value in results.items():
            if fam == family:
                rows[shape][kind] = value
        if not rows:
            continue
        kinds = sorted({k for r in rows.values() for k in r}, key=lambda k: (k != "f32", k))
        print(f"\n{family}: GOPS (peak fraction); ratio = f32 / {args.baseline}")
        print("| shape | " + " | ".join(kinds) + " | ratio |")
        print("|---" * (len(kinds) + 2) + "|")
        for shape in sorted(rows, key=lambda s: list(counts).index(s) if s in counts else 0):
            r = rows[shape]
            cells = [f"{r[k][1]:.1f} ({r[k][2]:.2f})" if k in r else "-" for k in kinds]
            ratio = (f"{r['f32'][1] / r[args.baseline][1]:.2f}"
                     if "f32" in r and args.baseline in r else "-")
            print(f"| {shape} | " + " | ".join(cells) + f" | {ratio} |")
        if family == "BM_conv":
            print(f"\nWhole model (each shape x its count in {args.shapes}):")
            flops = {}
            for kind in kinds:
                total = sum(rows[s][kind][0] * counts.get(s, 1) for s in rows if kind in rows[s])
                missing = [s for s in rows if kind not in rows[s]]
                gops = sum(rows[s][kind][1] * rows[s][kind][0] * counts.get(s, 1)
                           for s in rows if kind in rows[s])
                flops[kind] = gops
                note = f" ({len(missing)} shapes missing)" if missing else ""
                # Throughput relative to f32 on exactly the shapes this kind ran.
                f32_total = sum(rows[s]["f32"][0] * counts.get(s, 1)
                                for s in rows if kind in rows[s] and "f32" in rows[s])
                vs_f32 = f", {f32_total / total:.2f}x f32" if f32_total and kind != "f32" else ""
                print(f"  {kind:>18}: {total * 1e3:8.1f} ms, {gops / total:6.1f} GOPS{vs_f32}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
