#!/usr/bin/env python3
"""One peer engine (ONNX Runtime or OpenVINO) serving timed runs to bench/peers/peers.py.

Speaks the protocol of `nibble bench MODEL --serve`, so that peers.py treats the three engines
alike and each lives in its own process (its load time and peak memory are its own):

    stdout, once loaded and warmed up:  {"ready": true, "load_ms": ..., "rss_before_load_kb": ...}
    each stdin line N:                  {"runs_ms": [N timed runs]}
    an empty line or end of input:      exit

A model the engine cannot load makes it print the engine's message on stderr and exit 1.

    engine_worker.py onnxruntime MODEL --threads 1 --warmup 2 --input images=x.npy
"""
import argparse
import json
import sys
import time

import numpy as np


def resident_kb(field="VmRSS"):
    """The process's resident memory (VmRSS) or its peak (VmHWM) in KiB; None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def onnxruntime_runner(model, threads):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    before = resident_kb()
    start = time.perf_counter()
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - start) * 1e3
    return (lambda feed: session.run(None, feed)), load_ms, before


def openvino_runner(model, threads):
    import openvino as ov
    # f32 precision: on CPUs with bf16 OpenVINO would otherwise compute in bf16.
    config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
              "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    core = ov.Core()
    before = resident_kb()
    start = time.perf_counter()
    request = core.compile_model(model, "CPU", config).create_infer_request()
    load_ms = (time.perf_counter() - start) * 1e3
    return request.infer, load_ms, before


RUNNERS = {"onnxruntime": onnxruntime_runner, "openvino": openvino_runner}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("engine", choices=sorted(RUNNERS))
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    args = ap.parse_args()
    feed = {}
    for spec in args.input:
        name, path = spec.split("=", 1)
        feed[name] = np.load(path)

    try:
        run, load_ms, before = RUNNERS[args.engine](args.model, args.threads)
        for _ in range(args.warmup):
            run(feed)
    except Exception as e:  # each engine raises its own types for a model it cannot run
        print(str(e).strip() or type(e).__name__, file=sys.stderr)
        return 1
    print(json.dumps({"ready": True, "load_ms": load_ms, "rss_before_load_kb": before}),
          flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        times = []
        for _ in range(int(line)):
            start = time.perf_counter()
            run(feed)
            times.append((time.perf_counter() - start) * 1e3)
        print(json.dumps({"runs_ms": times}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
