#!/usr/bin/env python3
"""nibble side by side with ONNX Runtime and OpenVINO on the same ONNX files.

Each engine loads each model once per thread count (one session, kept for all its runs); the
engines then take turns, round after round (the order rotating each round), so drifting machine
load hits them alike. All get the same input (uniform 0..1, seeded) and the same thread count.
The first table gives the median latency per engine, the ratios nibble/ONNX Runtime and
nibble/OpenVINO (below 1: nibble is faster) and, for quantized models, the speed-up over their
FP32 model in each engine; the second, each engine's load time and peak resident memory (every
engine runs in a process of its own). An engine that cannot load a file gets "n/a" and a
footnote.

A model is "quantized" when its graph has QuantizeLinear/DequantizeLinear, ConvInteger,
MatMulInteger, QLinearConv or QLinearMatMul nodes; its FP32 model is the closest non-quantized
model listed before it (or the one named with --base).

    .venv/bin/python bench/peers/peers.py ../shared/models/yolov10n-640-fp32.onnx \\
        m-fp32=yolov10m.onnx m-w4a16=yolov10m-w4a16.onnx --threads 1 2 --md peers.md

nibble runs as `nibble bench MODEL --serve` (found at build/bin/nibble, or --nibble PATH);
ONNX Runtime and OpenVINO run as bench/peers/engine_worker.py in the Python environment
(scripts/setup.sh installs both).
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine_worker.py")
QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger",
                 "MatMulInteger", "QLinearConv", "QLinearMatMul"}
ENGINES = ["nibble", "onnxruntime", "openvino"]
TITLES = {"nibble": "nibble", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}


class CannotLoad(Exception):
    """The engine refused the model (unsupported operator, invalid file, ...)."""


def first_line(text, limit=160):
    line = next((l.strip() for l in str(text).splitlines() if l.strip()), "unknown error")
    return line if len(line) <= limit else line[:limit - 3] + "..."


def process_kb(pid, field):
    """VmRSS (resident) or VmHWM (peak resident) of a live process in KiB; None off Linux."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class EngineProcess:
    """One engine with one model loaded, in a process of its own, serving timed runs.

    nibble is `nibble bench MODEL --serve`; ONNX Runtime and OpenVINO are engine_worker.py,
    which speaks the same line protocol. A process per engine keeps the engines' thread pools
    and allocators apart, and makes the load time and peak resident memory each engine's own.
    """

    def __init__(self, engine, model, threads, inputs, args):
        if engine == "nibble":
            command = [args.nibble, "bench", model, "--serve"]
        else:
            command = [sys.executable, WORKER, engine, model]
        command += ["--threads", str(threads), "--warmup", str(args.warmup)]
        for name, path in inputs.items():
            command += ["--input", f"{name}={path}"]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        ready = self.process.stdout.readline()
        if not ready:
            error = self.process.stderr.read()
            self.process.wait()
            raise CannotLoad(first_line(error.replace("nibble: error: ", "")))
        self.ready = json.loads(ready)

    def run(self, count):
        self.process.stdin.write(f"{count}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("engine stopped: " + first_line(self.process.stderr.read()))
        return json.loads(line)["runs_ms"]

    def close(self):
        """Ends the process; returns its peak resident memory in KiB (None if unknown)."""
        peak_kb = process_kb(self.process.pid, "VmHWM")
        self.process.stdin.close()
        self.process.wait()
        return peak_kb


def describe_model(spec):
    label, path = spec.split("=", 1) if "=" in spec else (None, spec)
    if not os.path.isfile(path):
        sys.exit(f"peers: no such model file: {path}")
    model = onnx.load(path, load_external_data=False)
    label = label or os.path.splitext(os.path.basename(path))[0]
    ops = {n.op_type for n in model.graph.node}
    inits = {i.name for i in model.graph.initializer}
    inputs = {}
    for i in model.graph.input:
        if i.name in inits:
            continue
        t = i.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in t.shape.dim]
        inputs[i.name] = (onnx.helper.tensor_dtype_to_np_dtype(t.elem_type), dims)
    return {"label": label, "path": path, "quantized": bool(ops & QUANTIZED_OPS),
            "inputs": inputs}


def make_inputs(model, seed, directory):
    """Uniform 0..1 floats (an image's range), zeros for other types, saved as .npy."""
    rng = np.random.default_rng(seed)
    feed, files = {}, {}
    for name, (dtype, dims) in model["inputs"].items():
        if np.issubdtype(dtype, np.floating):
            value = rng.random(dims, dtype=np.float32).astype(dtype)
        else:
            value = np.zeros(dims, dtype=dtype)
        feed[name] = value
        files[name] = os.path.join(directory, f"{model['label']}-input{len(files)}.npy")
        np.save(files[name], value)
    return feed, files


def measure(model, threads, args, directory):
    """Per engine: median ms, load ms and peak RSS (or why it cannot load), engines alternating."""
    _, files = make_inputs(model, args.seed, directory)
    sessions, result = {}, {}
    for engine in args.engines:
        # Each engine loads while the others are idle: load times are not disturbed.
        try:
            sessions[engine] = EngineProcess(engine, model["path"], threads, files, args)
        except CannotLoad as e:
            result[engine] = {"error": str(e)}
    runs = {engine: [] for engine in sessions}
    order = list(sessions)
    for r in range(args.rounds if order else 0):
        shift = r % len(order)
        for engine in order[shift:] + order[:shift]:
            # Worker threads spin for a while after a run; let them sleep before the next
            # engine's turn, or they take its cores.
            time.sleep(args.pause)
            runs[engine] += sessions[engine].run(args.runs)
    for engine, session in sessions.items():
        peak_kb = session.close()
        before_kb = session.ready.get("rss_before_load_kb")
        result[engine] = {"median_ms": float(np.median(runs[engine])), "runs_ms": runs[engine],
                          "load_ms": session.ready.get("load_ms"),
                          "peak_rss_mb": peak_kb / 1024 if peak_kb else None,
                          "rss_before_load_mb": before_kb / 1024 if before_kb else None}
    return result


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def versions():
    found = {}
    try:
        import onnxruntime
        found["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    try:
        import openvino
        found["openvino"] = openvino.__version__.split("-")[0]
    except ImportError:
        pass
    return found


def table(models, results, args):
    notes = []

    def note(engine, model, error):
        text = f"{TITLES[engine]} cannot load {os.path.basename(model['path'])}: {error}"
        if text not in notes:
            notes.append(text)
        return f"n/a[^{notes.index(text) + 1}]"

    def cell(engine, model, threads):
        r = results[(model["label"], threads)].get(engine)
        if r is None:
            return "-"
        return note(engine, model, r["error"]) if "error" in r else f"{r['median_ms']:.1f}"

    def median(engine, label, threads):
        r = results.get((label, threads), {}).get(engine)
        return r["median_ms"] if r and "median_ms" in r else None

    engines = args.engines
    head = ["model", "threads"] + [f"{TITLES[e]} ms" for e in engines]
    peers = [e for e in engines if e != "nibble"] if "nibble" in engines else []
    head += [f"nibble/{TITLES[e]}" for e in peers]
    any_quantized = any(m["base"] for m in models)
    if any_quantized:
        head.append("speed-up vs FP32 (" + " / ".join(TITLES[e] for e in engines) + ")")
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---", "---:"] + ["---:"] * (len(head) - 2)) + "|"]
    for model in models:
        for threads in args.threads:
            row = [model["label"], str(threads)] + [cell(e, model, threads) for e in engines]
            mine = median("nibble", model["label"], threads)
            for e in peers:
                theirs = median(e, model["label"], threads)
                row.append(f"{mine / theirs:.2f}" if mine and theirs else "")
            if any_quantized:
                speedups = []
                for e in engines:
                    base = median(e, model["base"], threads) if model["base"] else None
                    this = median(e, model["label"], threads)
                    speedups.append(f"{base / this:.2f}x" if base and this else "n/a")
                row.append(" / ".join(speedups) if model["base"] else "")
            lines.append("| " + " | ".join(row) + " |")

    # Load time and memory: what each engine's process took to become ready, and its peak.
    def resource(engine, model, threads, key, form):
        r = results[(model["label"], threads)].get(engine)
        return form.format(r[key]) if r and r.get(key) is not None else "n/a"

    head = (["model", "threads"] + [f"{TITLES[e]} load ms" for e in engines]
            + [f"{TITLES[e]} peak RSS MB" for e in engines])
    lines += ["", "| " + " | ".join(head) + " |",
              "|" + "|".join(["---", "---:"] + ["---:"] * (len(head) - 2)) + "|"]
    for model in models:
        for threads in args.threads:
            row = [model["label"], str(threads)]
            row += [resource(e, model, threads, "load_ms", "{:.0f}") for e in engines]
            row += [resource(e, model, threads, "peak_rss_mb", "{:.0f}") for e in engines]
            lines.append("| " + " | ".join(row) + " |")
    baselines = {}
    for r in results.values():
        for engine, entry in r.items():
            if entry.get("rss_before_load_mb"):
                baselines.setdefault(engine, []).append(entry["rss_before_load_mb"])
    lines.append("")
    lines.append(
        "Load: from the model file to a session ready to run (nibble: Session::load; ONNX "
        "Runtime: InferenceSession(); OpenVINO: compile_model), before any warmup run. Peak "
        "RSS: the high-water mark of resident memory (VmHWM) of the engine's own process after "
        "all its runs"
        + ("; the Python processes of " + ", ".join(
            f"{TITLES[e]} ({min(v):.0f} MB)" for e, v in baselines.items())
           + " already held the interpreter and the engine's library before loading"
           if baselines else "") + ".")
    lines.append("")
    lines += [f"[^{i + 1}]: {text}" for i, text in enumerate(notes)]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Models are PATH or LABEL=PATH. Ratios below 1 mean nibble is faster.")
    ap.add_argument("models", nargs="+", metavar="MODEL")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5, help="turns each engine takes (default 5)")
    ap.add_argument("--runs", type=int, default=2, help="timed runs per turn (default 2)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs after loading (default 2)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the input (default 0)")
    ap.add_argument("--pause", type=float, default=0.1,
                    help="idle seconds before each turn, so the previous engine's spinning "
                         "threads are asleep (default 0.1)")
    ap.add_argument("--engines", nargs="+", choices=ENGINES, default=ENGINES)
    ap.add_argument("--base", action="append", default=[], metavar="LABEL=FP32_LABEL",
                    help="FP32 model a quantized model's speed-up is measured against")
    ap.add_argument("--nibble", default=os.path.join(ROOT, "build", "bin", "nibble"),
                    help="nibble executable (default: build/bin/nibble)")
    ap.add_argument("--md", help="also write the Markdown to this file")
    ap.add_argument("--json", help="write every run's times as JSON")
    args = ap.parse_args()
    if "nibble" in args.engines and not os.access(args.nibble, os.X_OK):
        sys.exit(f"peers: no nibble executable at {args.nibble} (build it, or give --nibble)")
    if min(args.threads) < 1 or args.rounds < 1 or args.runs < 1 or args.warmup < 0:
        sys.exit("peers: --threads, --rounds and --runs must be >= 1, --warmup >= 0")

    models = [describe_model(spec) for spec in args.models]
    labels = [m["label"] for m in models]
    if len(set(labels)) != len(labels):
        sys.exit(f"peers: two models share a label ({', '.join(labels)}); name them LABEL=PATH")
    bases = dict(b.split("=", 1) for b in args.base)
    for i, model in enumerate(models):
        model["base"] = bases.get(model["label"])
        if model["base"] is None and model["quantized"]:
            earlier = [m["label"] for m in models[:i] if not m["quantized"]]
            model["base"] = earlier[-1] if earlier else None
        if model["base"] is not None and model["base"] not in labels:
            sys.exit(f"peers: --base names an unknown model '{model['base']}'")

    results = {}
    started = time.time()
    with tempfile.TemporaryDirectory() as directory:
        for model in models:
            for threads in args.threads:
                print(f"peers: {model['label']}, {threads} thread(s)...", file=sys.stderr)
                results[(model["label"], threads)] = measure(model, threads, args, directory)

    found = versions()
    heading = (f"Measured {datetime.date.today().isoformat()} on {cpu_name()} "
               f"({os.cpu_count()} logical CPUs), "
               + ", ".join(f"{TITLES[k]} {v}" for k, v in found.items())
               + f"; median of {args.rounds} rounds x {args.runs} runs per engine, engines "
               f"alternating, same input (uniform 0..1, seed {args.seed}); "
               f"{time.time() - started:.0f} s in all.")
    markdown = heading + "\n\n" + table(models, results, args)
    print(markdown)
    if args.md:
        with open(args.md, "w") as f:
            f.write(markdown + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"heading": heading, "cpu": cpu_name(), "versions": found,
                       "date": datetime.date.today().isoformat(),
                       "results": [{"model": m["label"], "path": m["path"], "base": m["base"],
                                    "threads": t, "engines": results[(m["label"], t)]}
                                   for m in models for t in args.threads]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
