#!/usr/bin/env python3
"""Derives the convolution shapes of a YOLOv10 model at 640x640 from its Ultralytics definition.

The module definitions below follow ultralytics/nn/modules (Conv, C2f, C2fCIB/CIB, SCDown, SPPF,
PSA/Attention, v10Detect with its one-to-one head as exported to ONNX, DFL) and the model lists
follow ultralytics/cfg/models/v10/yolov10{n,m}.yaml, scaled as parse_model does:
channels make_divisible(min(c, max_channels) * width, 8), repeats max(round(n * depth), 1).

The derivation is checked against a real export: with --check MODEL.onnx the shapes derived for
YOLOv10n must equal, as a multiset, the Conv nodes of that model (yolov10n-640-fp32.onnx in the
shared assets). The same code then gives YOLOv10m, for which no ONNX file is at hand:

    .venv/bin/python bench/shapes/derive_yolov10_shapes.py --check ../shared/models/yolov10n-640-fp32.onnx \
        > bench/shapes/yolov10m.txt
"""
import argparse
import collections
import math
import sys

# (depth, width, max_channels) and the layer list of each variant: [from, repeats, module, args].
BACKBONE = lambda stage8: [
    [-1, 1, "Conv", [64, 3, 2]],
    [-1, 1, "Conv", [128, 3, 2]],
    [-1, 3, "C2f", [128, True]],
    [-1, 1, "Conv", [256, 3, 2]],
    [-1, 6, "C2f", [256, True]],
    [-1, 1, "SCDown", [512, 3, 2]],
    [-1, 6, "C2f", [512, True]],
    [-1, 1, "SCDown", [1024, 3, 2]],
    stage8,
    [-1, 1, "SPPF", [1024, 5]],
    [-1, 1, "PSA", [1024]],
]
HEAD = lambda stage19, stage22: [
    [-1, 1, "Upsample", []],
    [[-1, 6], 1, "Concat", []],
    [-1, 3, "C2f", [512]],
    [-1, 1, "Upsample", []],
    [[-1, 4], 1, "Concat", []],
    [-1, 3, "C2f", [256]],
    [-1, 1, "Conv", [256, 3, 2]],
    [[-1, 13], 1, "Concat", []],
    stage19,
    [-1, 1, "SCDown", [512, 3, 2]],
    [[-1, 10], 1, "Concat", []],
    stage22,
    [[16, 19, 22], 1, "v10Detect", [80]],
]
MODELS = {
    "yolov10n": ((0.33, 0.25, 1024),
                 BACKBONE([-1, 3, "C2f", [1024, True]]) +
                 HEAD([-1, 3, "C2f", [512]], [-1, 3, "C2fCIB", [1024, True, True]])),
    "yolov10m": ((0.67, 0.75, 768),
                 BACKBONE([-1, 3, "C2fCIB", [1024, True]]) +
                 HEAD([-1, 3, "C2fCIB", [512, True]], [-1, 3, "C2fCIB", [1024, True]])),
}


class Convs:
    """Collects (cin, h, w, cout, k, stride, group) of each convolution, input [1, cin, h, w]."""

    def __init__(self):
        self.items = []

    def conv(self, cin, hw, cout, k=1, s=1, g=1):
        self.items.append((cin, hw[0], hw[1], cout, k, s, g))
        return (hw[0] + 2 * (k // 2) - k) // s + 1, (hw[1] + 2 * (k // 2) - k) // s + 1


def c2f(out, c1, c2, hw, n, cib=False, lk=False):
    c = int(c2 * 0.5)
    out.conv(c1, hw, 2 * c)
    for _ in range(n):
        if cib:  # CIB(c, c, e=1.0): dw3, pw to 2c, dw3 (or the fused 7x7 RepVGGDW), pw, dw3
            out.conv(c, hw, c, 3, g=c)
            out.conv(c, hw, 2 * c)
            out.conv(2 * c, hw, 2 * c, 7 if lk else 3, g=2 * c)
            out.conv(2 * c, hw, c)
            out.conv(c, hw, c, 3, g=c)
        else:  # Bottleneck(c, c, e=1.0): two 3x3
            out.conv(c, hw, c, 3)
            out.conv(c, hw, c, 3)
    out.conv((2 + n) * c, hw, c2)
    return hw


def derive(name):
    (depth, width, max_channels), layers = MODELS[name]
    out = Convs()
    outputs_ch, outputs_res = [], []  # channels and spatial size after each layer

    def at(i):  # layer i's output; the first layer reads the [1, 3, 640, 640] image
        return (outputs_ch[i], outputs_res[i]) if outputs_ch else (3, (640, 640))

    for f, n, module, args in layers:
        n = max(round(n * depth), 1) if n > 1 else n
        if module == "Concat":
            c2 = sum(at(i)[0] for i in f)
            hw = at(f[0])[1]
        elif module == "Upsample":
            c2, hw = at(f)[0], tuple(2 * x for x in at(f)[1])
        elif module == "v10Detect":
            chs = [at(i)[0] for i in f]
            c2_box, c3 = max(16, chs[0] // 4, 16 * 4), max(chs[0], min(args[0], 100))
            for i in f:
                x, hw = at(i)
                out.conv(x, hw, c2_box, 3)
                out.conv(c2_box, hw, c2_box, 3)
                out.conv(c2_box, hw, 64)
                out.conv(x, hw, x, 3, g=x)
                out.conv(x, hw, c3)
                out.conv(c3, hw, c3, 3, g=c3)
                out.conv(c3, hw, c3)
                out.conv(c3, hw, args[0])
            anchors = sum(at(i)[1][0] * at(i)[1][1] for i in f)
            out.conv(16, (4, anchors), 1)  # DFL: a fixed 1x1 conv over [1, 16, 4, anchors]
            continue
        else:
            c1, hw = at(f)
            c2 = math.ceil(min(args[0], max_channels) * width / 8) * 8
            if module == "Conv":
                hw = out.conv(c1, hw, c2, args[1], args[2])
            elif module == "SCDown":
                out.conv(c1, hw, c2)
                hw = out.conv(c2, hw, c2, args[1], args[2], g=c2)
            elif module == "C2f":
                hw = c2f(out, c1, c2, hw, n)
            elif module == "C2fCIB":
                hw = c2f(out, c1, c2, hw, n, cib=True, lk=len(args) > 2 and args[2])
            elif module == "SPPF":
                out.conv(c1, hw, c1 // 2)
                out.conv(c1 // 2 * 4, hw, c2)
            elif module == "PSA":
                c = int(c1 * 0.5)
                heads = c // 64
                key_dim = int(c // heads * 0.5)
                out.conv(c1, hw, 2 * c)                      # cv1
                out.conv(c, hw, c + 2 * key_dim * heads)     # attn.qkv
                out.conv(c, hw, c, 3, g=c)                   # attn.pe
                out.conv(c, hw, c)                           # attn.proj
                out.conv(c, hw, 2 * c)                       # ffn.0
                out.conv(2 * c, hw, c)                       # ffn.1
                out.conv(2 * c, hw, c1)                      # cv2
                c2 = c1
            else:
                raise ValueError(module)
        outputs_ch.append(c2)
        outputs_res.append(hw)
    return out.items


def onnx_convs(path):
    import onnx
    from onnx import shape_inference
    model = shape_inference.infer_shapes(onnx.load(path))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(model.graph.value_info) + list(model.graph.input)}
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    items = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        x, w = shapes[node.input[0]], weights[node.input[1]]
        items.append((x[1], x[2], x[3], w[0], w[2], attrs.get("strides", [1, 1])[0],
                      attrs.get("group", 1)))
    return items


def shape_name(cin, h, w, cout, k, s, g):
    if g == cin and g == cout and g > 1:
        return f"dw{k}s{s}_{cin}x{h}x{w}"
    return f"k{k}s{s}_{cin}x{h}x{w}_{cout}" + (f"_g{g}" if g > 1 else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="yolov10m", choices=sorted(MODELS))
    parser.add_argument("--check", metavar="YOLOV10N_ONNX",
                        help="first verify the derivation against this YOLOv10n export")
    args = parser.parse_args()
    if args.check:
        derived = collections.Counter(derive("yolov10n"))
        exported = collections.Counter(onnx_convs(args.check))
        if derived != exported:
            sys.exit(f"derivation does not match {args.check}:\n  only derived: "
                     f"{derived - exported}\n  only in the model: {exported - derived}")
    items = derive(args.model)
    counts = collections.Counter(items)
    total = sum(2 * cout * (cin // g) * k * k * ((h + 2 * (k // 2) - k) // s + 1) *
                ((w + 2 * (k // 2) - k) // s + 1) * c
                for (cin, h, w, cout, k, s, g), c in counts.items())
    print(f"# {args.model} convolutions at 640x640, batch 1: {len(items)} Conv nodes, "
          f"{len(counts)} distinct shapes, {total / 1e9:.1f} GFLOP in all.")
    print("# Generated by bench/shapes/derive_yolov10_shapes.py"
          + (" (derivation verified against the YOLOv10n ONNX export)." if args.check else "."))
    print("# Padding is kernel/2 on every side, dilation 1. `count` is how often the model runs")
    print("# the shape; aggregates weight each shape by it.")
    print("# name count in_channels height width out_channels kernel stride group")
    for (cin, h, w, cout, k, s, g), c in counts.items():
        print(f"{shape_name(cin, h, w, cout, k, s, g)} {c} {cin} {h} {w} {cout} {k} {s} {g}")


if __name__ == "__main__":
    main()
