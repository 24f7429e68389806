#!/usr/bin/env python3
"""A real integer model is bit-identical across kernel ISAs and thread counts.

    test_determinism_yolo.py --nibble build/bin/nibble [--model M] [--image I]

Runs `nibble run` on yolov8n-640-uint8-dynamic (ConvInteger, from the shared assets) with
NIBBLE_ISA = ref, avx2, avx512, avx512vnni at 1 thread (a level the CPU lacks is capped to what it
has) and with 2 and 4 threads at the detected level, and requires every output file to be
byte-identical. Skips (exit 0, with a message) when the shared assets are absent.
"""
import argparse
import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
ASSETS = pathlib.Path(os.environ.get("NIBBLE_ASSETS", ROOT.parent / "shared"))


def outputs_digest(directory):
    files = sorted(pathlib.Path(directory).glob("*.npy"))
    if not files:
        sys.exit(f"no outputs written to {directory}")
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nibble", required=True)
    parser.add_argument("--model", default=str(ASSETS / "models" / "yolov8n-640-uint8-dynamic.onnx"))
    parser.add_argument("--image", default=str(ASSETS / "images" / "bus.jpg"))
    args = parser.parse_args()
    if not (os.path.exists(args.model) and os.path.exists(args.image)):
        print(f"SKIPPED: {args.model} or {args.image} not found (set NIBBLE_ASSETS)")
        return 0
    runs = [(isa, 1) for isa in ("ref", "avx2", "avx512", "avx512vnni")] + [(None, 2), (None, 4)]
    digests = {}
    with tempfile.TemporaryDirectory() as tmp:
        for isa, threads in runs:
            label = f"NIBBLE_ISA={isa or '(detected)'} threads={threads}"
            out = os.path.join(tmp, f"{isa}-{threads}")
            env = dict(os.environ)
            env.pop("NIBBLE_ISA", None)
            if isa:
                env["NIBBLE_ISA"] = isa
            subprocess.run([args.nibble, "run", args.model, "--image", args.image, "--threads", str(threads),
                            "--save-outputs", out], env=env, check=True, stdout=subprocess.DEVNULL)
            digests[label] = outputs_digest(out)
            print(f"{label}: {' '.join(f'{n}={h[:16]}' for n, h in digests[label].items())}")
    first = next(iter(digests.values()))
    differing = [label for label, d in digests.items() if d != first]
    if differing:
        print(f"FAIL: outputs differ from the first run for {', '.join(differing)}")
        return 1
    print(f"{os.path.basename(args.model)}: bit-identical over {len(digests)} ISA/thread configurations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
