#!/usr/bin/env python3
"""Export Brevitas QCDQ YOLOv10 models (W8A16, W8A8, W4A8, W4A16) for end-to-end checks of nibble.

Optional, not run in CI: needs `pip install torch ultralytics brevitas onnx onnxoptimizer`
(about 3 GB with the CUDA wheels PyPI gives torch).
Every Conv2d of an Ultralytics YOLOv10 becomes a Brevitas QuantConv2d: signed narrow-range weights
(8 or 4 bit, per output channel unless --per-tensor) and, for the A8 schemes, a signed int8
per-tensor input quantizer calibrated on a few images letterboxed as Ultralytics does. BatchNorm
stays unfolded after each quantized conv, as in a quantization-aware-trained model. The export is
Brevitas' QCDQ ONNX form, output [1,300,6] (e2e) or [1,84,8400] (one2many). With the
TorchScript exporter (default; opset 13) weights are int8 initializers -> Clip -> DequantizeLinear
and activations QuantizeLinear -> DequantizeLinear; with --dynamo (torch.export, PyTorch's default
since 2.9; opset 18, needs onnxscript) float weights -> QuantizeLinear -> Clip -> DequantizeLinear
and every parameter is a graph input with an initializer.

Weights, --weights:
  yolov10n.pt   an Ultralytics checkpoint (the real pretrained model)
  model.onnx    a BN-folded FP32 ONNX with Ultralytics' node names: `nibble zoo yolov10m` or the
                real ../shared/models/yolov10n-640-fp32.onnx (pretrained, --scale n). Its conv
                weights are loaded (its head branch into the one exported) and each BatchNorm
                gets a random per-channel scale that the conv weights compensate, so BN folding
                is exercised and the network computes the ONNX model's function before quantization
  (none)        Ultralytics' random initialization (activations vanish after a few layers)

    python tools/export/brevitas_yolov10.py --scale m --head one2many \\
        --weights zoo-yolov10m-one2many.onnx --schemes w8a16 w8a8 w4a8 w4a16 --out-dir exports

writes exports/brevitas-yolov10m-<scheme>-one2many.onnx. Runs are reproducible (--seed). Every
Conv2d is quantized, the DFL box decoder's fixed 0..15 weights included: at 4 bits they lose most
box precision, which `--keep-8bit model.23.dfl.conv` avoids.
"""
import argparse
import collections
import glob
import os
import sys

import numpy as np
import torch
import torch.nn as nn

SCHEMES = {"w8a16": (8, False), "w8a8": (8, True), "w4a8": (4, True), "w4a16": (4, False)}


def build_model(scale, weights, head):
    from ultralytics import YOLO
    from ultralytics.nn.modules import C2f, Detect, RepVGGDW

    source = weights if weights and weights.endswith(".pt") else f"yolov10{scale}.yaml"
    model = YOLO(source).model.float().eval()
    for p in model.parameters():
        p.requires_grad = False
    model.model[-1].end2end = head == "e2e"  # the head's own switch, on every Ultralytics version
    for m in model.modules():
        if isinstance(m, RepVGGDW):  # 7x7 + 3x3 depthwise branches -> one 7x7 conv, as deployed
            m.fuse()
            m.forward = m.forward_fuse
        elif isinstance(m, Detect):  # what Ultralytics' ONNX exporter sets
            m.export, m.format, m.dynamic, m.shape = True, "onnx", False, None
        elif isinstance(m, C2f):
            m.forward = m.forward_split
    if weights and weights.endswith(".onnx"):
        load_folded_onnx(model, weights, head)
    return model


def module_path(node_name):
    """'/model.23/cv2.0/cv2.0.2/Conv' -> 'model.23.cv2.0.2' (a scope repeats its parent's name)."""
    parts = []
    for scope in node_name.strip("/").split("/")[:-1]:
        if parts and scope.startswith(parts[-1] + "."):
            parts[-1] = scope
        else:
            parts.append(scope)
    return ".".join(parts)


def load_folded_onnx(model, path, head):
    import onnx
    from onnx import numpy_helper
    from ultralytics.nn.modules import Conv, Detect

    from compare_structure import fold_split_conv_bias

    graph = fold_split_conv_bias(onnx.load(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    # The ONNX holds one head branch; load it into the one exported (both have the same shapes).
    detect = next(name for name, m in model.named_modules() if isinstance(m, Detect)) + "."
    convs = {}
    for node in (n for n in graph.node if n.op_type == "Conv"):
        name = module_path(node.name).replace("one2one_", "")
        if head == "e2e" and name.startswith(detect + "cv"):
            name = detect + "one2one_" + name[len(detect):]
        convs[name] = node
    modules = dict(model.named_modules())
    for name, module in modules.items():
        node = convs.pop(name + ".conv", None) if isinstance(module, Conv) else None
        if node is None:
            continue
        # Conv(conv without bias) + BN: W / g and BN(scale g, shift b) compute W x + b exactly.
        w = torch.from_numpy(inits[node.input[1]].copy())
        b = torch.from_numpy(inits[node.input[2]].copy())
        gain = torch.empty(w.shape[0]).uniform_(0.5, 2.0)
        bn = module.bn
        module.conv.weight.copy_(w / gain[:, None, None, None])
        bn.weight.copy_(gain * torch.sqrt(torch.tensor(1.0 + bn.eps)))
        bn.bias.copy_(b)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
    for name, node in convs.items():  # plain nn.Conv2d (head outputs, fused RepVGGDW, DFL)
        conv = modules.get(name)
        if not isinstance(conv, nn.Conv2d):
            sys.exit(f"{path}: no Conv2d in the Ultralytics model for node {node.name}")
        conv.weight.copy_(torch.from_numpy(inits[node.input[1]].copy()))
        if len(node.input) > 2:
            conv.bias.copy_(torch.from_numpy(inits[node.input[2]].copy()))


def quantize(model, scheme, per_tensor, keep_8bit):
    from brevitas.nn import QuantConv2d
    from brevitas.quant import (Int8ActPerTensorFloat, Int8WeightPerChannelFloat,
                                Int8WeightPerTensorFloat)

    weight_bits, quant_input = SCHEMES[scheme]
    for parent_name, parent in list(model.named_modules()):
        for child_name, conv in parent.named_children():
            if type(conv) is not nn.Conv2d:
                continue
            name = f"{parent_name}.{child_name}" if parent_name else child_name
            quant = QuantConv2d(
                conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                conv.dilation, conv.groups, bias=conv.bias is not None,
                weight_quant=Int8WeightPerTensorFloat if per_tensor else Int8WeightPerChannelFloat,
                weight_bit_width=8 if name in keep_8bit else weight_bits,
                input_quant=Int8ActPerTensorFloat if quant_input else None)
            with torch.no_grad():
                quant.weight.copy_(conv.weight)
                if conv.bias is not None:
                    quant.bias.copy_(conv.bias)
            setattr(parent, child_name, quant)


def letterboxed(paths, imgsz):
    import cv2
    from ultralytics.data.augment import LetterBox

    box = LetterBox((imgsz, imgsz), auto=False)
    for path in paths:
        image = box(image=cv2.imread(path))[:, :, ::-1]  # BGR -> RGB
        yield torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()[None] / 255


def calibrate(model, images):
    from brevitas.graph.calibrate import calibration_mode

    with torch.no_grad(), calibration_mode(model):
        for image in images:
            model(image)


def main():
    assets = os.environ.get("NIBBLE_ASSETS",
                            os.path.join(os.path.dirname(__file__), "../../../shared"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="n", choices=list("nsmblx"))
    ap.add_argument("--weights", help="Ultralytics .pt or BN-folded FP32 .onnx (see above)")
    ap.add_argument("--head", choices=["e2e", "one2many"], default="one2many")
    ap.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=list(SCHEMES))
    ap.add_argument("--per-tensor", action="store_true", help="per-tensor weight scales")
    ap.add_argument("--keep-8bit", nargs="+", default=[], metavar="MODULE",
                    help="Conv2d modules with 8-bit weights in W4 schemes, e.g. model.23.dfl.conv")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--calib-images", default=os.path.join(assets, "images"))
    ap.add_argument("--calib-count", type=int, default=8)
    ap.add_argument("--dynamo", action="store_true", help="torch.export-based ONNX exporter")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", default="exports")
    args = ap.parse_args()

    import onnx
    from brevitas.export import export_onnx_qcdq

    images = sorted(glob.glob(os.path.join(args.calib_images, "*.jpg")))[:args.calib_count]
    if not images:
        sys.exit(f"no .jpg calibration images in {args.calib_images}")
    os.makedirs(args.out_dir, exist_ok=True)
    for scheme in args.schemes:
        torch.manual_seed(args.seed)
        with torch.no_grad():
            model = build_model(args.scale, args.weights, args.head)
        quantize(model, scheme, args.per_tensor, set(args.keep_8bit))
        if SCHEMES[scheme][1]:
            calibrate(model, letterboxed(images, args.imgsz))
        target = os.path.join(args.out_dir, f"brevitas-yolov10{args.scale}-{scheme}"
                              f"{'-per-tensor' if args.per_tensor else ''}-{args.head}"
                              f"{'-dynamo' if args.dynamo else ''}.onnx")
        export_onnx_qcdq(model, args=torch.zeros(1, 3, args.imgsz, args.imgsz), export_path=target,
                         opset_version=18 if args.dynamo else 13, dynamo=args.dynamo,
                         input_names=["images"], output_names=["output0"])
        ops = collections.Counter(n.op_type for n in onnx.load(target).graph.node)
        calibrated = SCHEMES[scheme][1]
        calibration = f", activations calibrated on {len(images)} images" if calibrated else ""
        print(f"wrote {target}: {scheme}, {'per-tensor' if args.per_tensor else 'per-channel'} "
              f"weights{calibration}; {ops['Conv']} Conv, {ops['QuantizeLinear']} QuantizeLinear, "
              f"{ops['Clip']} Clip, {ops['DequantizeLinear']} DequantizeLinear")
    return 0


if __name__ == "__main__":
    sys.exit(main())
