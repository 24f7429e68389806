#!/usr/bin/env python3
"""Compare the structure of two ONNX models, e.g. `nibble zoo yolov10n` against a real export.

Prints and compares: the operator histogram, the shape of every node output (ONNX shape
inference; nodes matched by name, and as a multiset of (op, output shapes) for the rest), the
parameter count (Conv / MatMul weights and biases) and GFLOPs (2 x multiply-adds of Conv and
MatMul). A Conv whose bias was split off as Reshape(bias) + Add -- the form ONNX Runtime's
quantizer leaves, as in ../shared/models/yolov10n-640-fp32.onnx -- is folded back first.

With --run, both models also run in ONNX Runtime on the same uniform 0..1 input, printing the
range of every Conv output of the first model (to check random weights keep activations
realistic) and the statistics of each output; with --nibble PATH the first model also runs in
nibble and its outputs are compared with ONNX Runtime's.

Exit status: 0 when histograms, shapes and parameter counts agree, 1 otherwise.

    .venv/bin/python tools/export/compare_structure.py zoo-yolov10n.onnx \\
        ../shared/models/yolov10n-640-fp32.onnx --run --nibble build/bin/nibble
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference


def fold_split_conv_bias(model):
    """Conv -> Add(Reshape(bias_initializer)) back to a Conv with a bias input."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    readers = collections.Counter(i for n in graph.node for i in n.input)
    drop = set()
    for add in graph.node:
        if add.op_type != "Add":
            continue
        for conv_side, bias_side in ((0, 1), (1, 0)):
            conv = producer.get(add.input[conv_side])
            reshape = producer.get(add.input[bias_side])
            if (conv is None or conv.op_type != "Conv" or len(conv.input) != 2
                    or readers[conv.output[0]] != 1 or reshape is None
                    or reshape.op_type != "Reshape" or reshape.input[0] not in inits):
                continue
            conv.input.append(reshape.input[0])
            conv.output[0] = add.output[0]
            drop.update((id(add), id(reshape)))
            break
    kept = [n for n in graph.node if id(n) not in drop]
    del graph.node[:]
    graph.node.extend(kept)
    used = {i for n in graph.node for i in n.input}
    kept_inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    return model


def describe(path):
    model = fold_split_conv_bias(onnx.load(path))
    inferred = shape_inference.infer_shapes(model, strict_mode=True)
    graph = inferred.graph
    shapes = {}
    for v in list(graph.value_info) + list(graph.output) + list(graph.input):
        dims = v.type.tensor_type.shape.dim
        shapes[v.name] = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param or "?"
                               for d in dims)
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for i in graph.initializer:
        shapes[i.name] = tuple(i.dims)
    params, flops = 0, 0
    nodes = []
    for n in graph.node:
        outs = tuple(shapes.get(o) for o in n.output)
        nodes.append((n.name, n.op_type, outs))
        if n.op_type == "Conv":
            w = inits.get(n.input[1])
            if w is not None:
                params += w.size + (inits[n.input[2]].size if len(n.input) > 2 else 0)
                flops += 2 * int(np.prod(outs[0])) * int(np.prod(w.shape[1:]))
        elif n.op_type == "MatMul":
            params += sum(inits[i].size for i in n.input if i in inits)
            flops += 2 * int(np.prod(outs[0])) * int(shapes[n.input[0]][-1])
    return {
        "model": model,
        "histogram": collections.Counter(op for _, op, _ in nodes),
        "nodes": nodes,
        "params": params,
        "gflops": flops / 1e9,
    }


def compare(a, b, name_a, name_b):
    ok = True
    ops = sorted(set(a["histogram"]) | set(b["histogram"]))
    print(f"{'op':16} {name_a[:24]:>24} {name_b[:24]:>24}")
    for op in ops:
        x, y = a["histogram"][op], b["histogram"][op]
        print(f"{op:16} {x:24d} {y:24d}{'' if x == y else '   <-- differs'}")
        ok &= x == y
    print(f"{'nodes':16} {len(a['nodes']):24d} {len(b['nodes']):24d}")
    print(f"{'parameters':16} {a['params']:24,d} {b['params']:24,d}"
          f"{'' if a['params'] == b['params'] else '   <-- differs'}")
    print(f"{'GFLOPs':16} {a['gflops']:24.3f} {b['gflops']:24.3f}")
    ok &= a["params"] == b["params"]

    by_name_b = {name: (op, outs) for name, op, outs in b["nodes"]}
    matched, mismatched = 0, []
    for name, op, outs in a["nodes"]:
        if name in by_name_b:
            matched += 1
            if by_name_b[name] != (op, outs):
                mismatched.append((name, (op, outs), by_name_b[name]))
    multiset_a = collections.Counter((op, outs) for _, op, outs in a["nodes"])
    multiset_b = collections.Counter((op, outs) for _, op, outs in b["nodes"])
    only_a, only_b = multiset_a - multiset_b, multiset_b - multiset_a
    print(f"node outputs: {matched} nodes matched by name, {len(mismatched)} differ; "
          f"(op, output shapes) multisets {'equal' if not only_a and not only_b else 'differ'}")
    for name, x, y in mismatched[:20]:
        print(f"  {name}: {x} vs {y}")
    for (op, outs), count in list(only_a.items())[:20]:
        print(f"  only in {name_a}: {count} x {op} -> {outs}")
    for (op, outs), count in list(only_b.items())[:20]:
        print(f"  only in {name_b}: {count} x {op} -> {outs}")
    return ok and not mismatched and not only_a and not only_b


def input_feed(model, seed):
    rng = np.random.default_rng(seed)
    feed = {}
    for i in model.graph.input:
        t = i.type.tensor_type
        shape = [d.dim_value for d in t.shape.dim]
        feed[i.name] = rng.random(shape, dtype=np.float32)
    return feed


def max_diff(got, ref):
    """Max |diff| relative to max|ref|. The rows of an end-to-end [1,N,6] output are matched by
    content instead: scores of nearby logits often tie in float32, so TopK may order them either
    way, and a row whose score ties the last one kept may be swapped for another."""
    got, ref = got.astype(np.float64), ref.astype(np.float64)
    scale = max(np.abs(ref).max(), 1e-30)
    if ref.ndim != 3 or ref.shape[-1] != 6:
        return np.abs(got - ref).max() / scale
    score_tol = 1e-4 * np.abs(ref[0, :, 4]).max()
    cutoff = ref[0, :, 4].min() + score_tol
    worst = 0.0
    for row in ref[0]:
        if row[4] <= cutoff:
            continue
        same = np.abs(got[0, :, 4] - row[4]) <= score_tol
        if not same.any():
            return 1.0
        worst = max(worst, np.abs(got[0, same] - row).max(axis=1).min() / scale)
    return worst


def stats(x):
    x = x.astype(np.float64)
    finite = np.isfinite(x)
    tiny = np.count_nonzero((x != 0) & (np.abs(x) < np.finfo(np.float32).tiny))
    return (f"min {x.min():10.4g} max {x.max():10.4g} mean {x.mean():10.4g} "
            f"std {x.std():10.4g} non-finite {x.size - finite.sum()} denormal {tiny}")


def run_models(paths, nibble, seed):
    import onnxruntime as ort
    first = onnx.load(paths[0])
    feed = input_feed(first, seed)
    # Every Conv output of the first model as an extra graph output.
    probe = onnx.load(paths[0])
    conv_outputs = [n.output[0] for n in probe.graph.node if n.op_type == "Conv"]
    inferred = shape_inference.infer_shapes(probe)
    known = {v.name: v for v in inferred.graph.value_info}
    for name in conv_outputs:
        if name in known:
            probe.graph.output.append(known[name])
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(None, feed)))
    stds = [values[n].std() for n in conv_outputs if n in values]
    print(f"\n{paths[0]}: {len(stds)} Conv outputs in ONNX Runtime, per-layer std "
          f"min {min(stds):.3g} median {np.median(stds):.3g} max {max(stds):.3g}")
    worst = max((np.abs(values[n]).max(), n) for n in conv_outputs if n in values)
    print(f"  largest |Conv output| {worst[0]:.4g} at {worst[1]}")
    for path in paths:
        model = onnx.load(path)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        for out, value in zip(sess.get_outputs(), sess.run(None, input_feed(model, seed))):
            print(f"  {os.path.basename(path)} {out.name} {list(value.shape)}: {stats(value)}")
    if not nibble:
        return True
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        args = [nibble, "run", paths[0], "--save-outputs", tmp]
        for name, value in feed.items():
            np.save(os.path.join(tmp, f"in_{len(args)}.npy"), value)
            args += ["--input", f"{name}={os.path.join(tmp, f'in_{len(args)}.npy')}"]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        for out in session.get_outputs()[:len(first.graph.output)]:
            got = np.load(os.path.join(tmp, "".join(
                c if c.isalnum() or c in ".-_" else "_" for c in out.name) + ".npy"))
            ref = values[out.name]
            diff = max_diff(got, ref)
            print(f"  nibble {out.name}: {stats(got)}\n  nibble vs ONNX Runtime: max|diff| "
                  f"{diff:.2e} of max|ref|")
            ok &= diff <= 1e-4
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("reference")
    ap.add_argument("--run", action="store_true", help="also run both in ONNX Runtime")
    ap.add_argument("--nibble", help="nibble executable: also run the first model in nibble")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random input")
    args = ap.parse_args()
    a, b = describe(args.model), describe(args.reference)
    ok = compare(a, b, os.path.basename(args.model), os.path.basename(args.reference))
    if args.run or args.nibble:
        ok &= run_models([args.model, args.reference], args.nibble, args.seed)
    print("structure and parameters match" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
