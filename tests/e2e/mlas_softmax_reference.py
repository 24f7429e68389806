#!/usr/bin/env python3
"""numpy emulation of ONNX Runtime's float Softmax / LogSoftmax (MLAS) on x86-64, per kernel.

    mlas_softmax_reference.py --check-onnxruntime   # emulation of this CPU's kernel == ORT here
    mlas_softmax_reference.py --bits                # the rows pinned in tests/engine/test_mlas_softmax.cpp

MLAS (onnxruntime/core/mlas/lib/compute.cpp, MlasComputeSoftmaxThreaded) does per row: the
maximum; ComputeSumExpF32Kernel(x + (-max)) storing exp and returning its sum; then Softmax =
exp * (1 / sum), LogSoftmax = (x + (-max)) - log(sum). platform.cpp picks the sum kernel by CPU:
  fma3     MlasComputeSumExpF32KernelFma3 (x86_64/TransKernelFma3.S), AVX2 + FMA3 CPUs:
           x clamped below at LowerRangeSumExp (-88.376), 2^m built as (m + 127) << 23
           (0.0 for m = -127), 8 accumulator lanes folded by vhaddps, vhaddps, high + low.
  avx512f  MlasComputeSumExpF32KernelAvx512F (x86_64/TransKernelAvx512F.S), AVX-512F CPUs:
           x clamped below at LowerRange (-103.97), 2^m applied by vscalefps (one rounding),
           16 lanes: high 8 + low 8, then the same vhaddps fold.
Both evaluate exp by the same range reduction and polynomial (MlasExpConstants) with FMAs,
which are emulated exactly here (float64 product, round-to-odd sum, one rounding to float32).
"""
import argparse
import ctypes
import ctypes.util
import sys

import numpy as np

F32 = np.float32
LOWER_RANGE = F32(-103.9720840454)
LOWER_RANGE_SUM_EXP = F32(-88.3762626647949)
ROUNDING_BIAS = F32(12582912.0)  # MLAS_ROUNDING_BIAS_MAGIC, 1.5 * 2^23
LOG2_RECIPROCAL = F32(1.44269504088896341)
LOG2_HIGH = F32(-6.93145752e-1)
LOG2_LOW = F32(-1.42860677e-6)
POLY = [F32(float.fromhex(h)) for h in ("0x1.694000p-10", "0x1.125edcp-7", "0x1.555b5ap-5",
                                         "0x1.555450p-3", "0x1.fffff6p-2", "0x1.000000p+0")]
LANES = {"fma3": 8, "avx512f": 16}

# MLAS takes std::log of the float sum: the C library's logf, which is not always correctly
# rounded, so the same one is called here (nibble calls it too).
_libm = ctypes.CDLL(ctypes.util.find_library("m"))
_libm.logf.restype = ctypes.c_float
_libm.logf.argtypes = [ctypes.c_float]


def fma(a, b, c):
    """float32 a * b + c rounded once. The product is exact in float64; the sum is rounded to
    odd in float64 (53 bits > 24 + 2), which makes the final rounding to float32 correct."""
    a, b, c = (np.asarray(v, F32).astype(np.float64) for v in (a, b, c))
    p = a * b
    s = p + c
    t = s - p  # two-sum error term: p + c == s + err exactly
    err = (p - (s - t)) + (c - t)
    even = (s.view(np.int64) & 1) == 0
    bump = (err != 0) & even & np.isfinite(s)
    s = np.where(bump, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(F32)


def exp_nonpositive(x, kernel):
    """exp(x) for x = value - max <= 0 as the kernel computes it (vector of float32)."""
    x = np.asarray(x, F32)
    lowest = LOWER_RANGE if kernel == "avx512f" else LOWER_RANGE_SUM_EXP
    x = np.where(np.isnan(x), x, np.maximum(lowest, x)).astype(F32)  # vmaxps keeps NaN x
    biased = fma(x, LOG2_RECIPROCAL, ROUNDING_BIAS)
    m = (biased - ROUNDING_BIAS).astype(F32)
    r = fma(m, LOG2_HIGH, x)
    r = fma(m, LOG2_LOW, r)
    p = np.full_like(r, POLY[0])
    for c in POLY[1:] + [POLY[-1]]:  # poly_56 twice: the degree-5 and degree-6 terms
        p = fma(p, r, c)
    if kernel == "fma3":
        scale_bits = ((biased.view(np.uint32) << np.uint32(23)) + np.uint32(0x3F800000))
        return (p * scale_bits.astype(np.uint32).view(F32)).astype(F32)
    # vscalefps: p * 2^m correctly rounded (float64 holds the product exactly).
    return (p.astype(np.float64) * np.exp2(m.astype(np.float64))).astype(F32)


def fold8(a):
    h = [F32(a[0] + a[1]), F32(a[2] + a[3]), F32(a[4] + a[5]), F32(a[6] + a[7])]
    return F32(F32(h[0] + h[1]) + F32(h[2] + h[3]))


def sum_exp(row, kernel):
    """(exp values, their sum) of one row as ComputeSumExpF32Kernel returns them."""
    row = np.asarray(row, F32)
    negative_max = F32(-row.max())
    exps = exp_nonpositive((row + negative_max).astype(F32), kernel)
    lanes = LANES[kernel]
    acc = np.zeros(lanes, F32)
    for i in range(0, len(row), lanes):
        chunk = exps[i:i + lanes]
        acc[:len(chunk)] = (acc[:len(chunk)] + chunk).astype(F32)
    if lanes == 16:
        acc = (acc[8:] + acc[:8]).astype(F32)
    return exps, fold8(acc)


def softmax(row, kernel):
    exps, total = sum_exp(row, kernel)
    return (exps * (F32(1) / total)).astype(F32)


def log_softmax(row, kernel):
    row = np.asarray(row, F32)
    _, total = sum_exp(row, kernel)
    log_total = F32(_libm.logf(float(total)))
    return ((row + F32(-row.max())).astype(F32) - log_total).astype(F32)


def onnxruntime_kernels():
    """The MLAS kernel family ONNX Runtime picks on this CPU (platform.cpp): 'avx512f' with
    AVX-512F, else 'fma3' with AVX2 + FMA, else 'sse2' (whose Softmax is not emulated here)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    if "avx512f" in flags:
        return "avx512f"
    return "fma3" if "avx2" in flags and "fma" in flags else "sse2"


def pinned_rows():
    """The rows tests/engine/test_mlas_softmax.cpp pins: 45 values, whose sums the two kernels'
    lane layouts round differently, and a wide row that reaches both kernels' exp clamps."""
    lanes = [((i * 29 + 4) % 53) * 0.2 - 5.0 for i in range(45)]
    wide = [0.0, -87.5, -87.8, -88.0, -88.5, -95.0, -100.0, -103.0, -110.0, float("-inf"),
            -1.0, -2.0, -3.0]
    return {"lanes": np.array(lanes, F32), "wide": np.array(wide, F32)}


def check_onnxruntime(trials):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    kernel = onnxruntime_kernels()
    if kernel not in LANES:
        print(f"ONNX Runtime here uses MLAS's {kernel} kernels, which are not emulated")
        return 1
    failures = 0
    rng = np.random.default_rng(0)
    for op, emulate in (("Softmax", softmax), ("LogSoftmax", log_softmax)):
        graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], axis=-1)], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        rows = list(pinned_rows().values())
        for t in range(trials):
            n = int(rng.integers(1, 200))
            rows.append((rng.standard_normal(n) * rng.choice([0.5, 4.0, 40.0])).astype(F32))
        for row in rows:
            got = session.run(None, {"x": row[None]})[0][0]
            want = emulate(row, kernel)
            if not np.array_equal(got.view(np.uint32), want.view(np.uint32)):
                failures += 1
                print(f"differs: {op} n={len(row)}: {np.count_nonzero(got != want)} values")
        print(f"{op}: {len(rows)} rows, emulated {kernel} kernel vs ONNX Runtime {ort.__version__}")
    print("bit-identical" if not failures else f"{failures} rows differ")
    return 1 if failures else 0


def print_bits():
    for name, row in pinned_rows().items():
        for kernel in LANES:
            for op, fn in (("softmax", softmax), ("log_softmax", log_softmax)):
                bits = fn(row, kernel).view(np.uint32)
                print(f"{name} {kernel} {op}: " + ", ".join(f"0x{b:08x}u" for b in bits))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check-onnxruntime", action="store_true")
    parser.add_argument("--bits", action="store_true")
    parser.add_argument("--trials", type=int, default=300)
    args = parser.parse_args()
    if args.bits:
        print_bits()
    if args.check_onnxruntime:
        return check_onnxruntime(args.trials)
    return 0


if __name__ == "__main__":
    sys.exit(main())
