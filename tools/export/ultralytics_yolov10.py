#!/usr/bin/env python3
"""Export YOLOv10 n/s/m/b/l/x with Ultralytics itself, to confirm `nibble zoo`'s structure.

Optional, not run in CI: needs `pip install ultralytics torch onnx onnxslim` (about 3 GB: PyPI's
torch brings the CUDA libraries). The networks are built from Ultralytics' own
cfg/models/v10/yolov10{scale}.yaml with random initialization -- no weights are downloaded -- and
exported the way the real models are (BatchNorm folded, the unused head branch removed, opset 17,
simplified). Then each export is compared with `nibble zoo` of the same scale by
tools/export/compare_structure.py:

    python tools/export/ultralytics_yolov10.py --scales n s m --out-dir exports \\
        --nibble build/bin/nibble

`--head one2many` exports the one-to-many branch ([1,84,anchors], for NMS) instead of the
end-to-end [1,300,6] output. The zoo follows the Ultralytics version of the real yolov10n in
../shared; Ultralytics 8.4 writes the TopK tail of the e2e head differently (Expand + GatherElements
where the zoo has Tile + Flatten + Gather), so there only those few nodes differ.
"""
import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def export(scale, imgsz, head, out_dir):
    import onnx
    from ultralytics import YOLO
    from ultralytics.cfg import DEFAULT_CFG_DICT

    model = YOLO(f"yolov10{scale}.yaml")  # architecture only, random weights
    if not hasattr(model.model.model[-1], "end2end"):
        sys.exit("this Ultralytics version has no end2end switch on YOLOv10")
    end2end = head == "e2e"
    # Ultralytics <= 8.3 exports whatever `end2end` the model has; later versions overwrite it
    # from the export argument `nms` (False: the NMS-free one-to-one head, None: one-to-many).
    model.model.model[-1].end2end = end2end
    kwargs = {"nms": False if end2end else None} if DEFAULT_CFG_DICT.get("nms") is None else {}
    exported = model.export(format="onnx", imgsz=imgsz, opset=17, simplify=True, batch=1, **kwargs)
    target = os.path.join(out_dir, f"ultralytics-yolov10{scale}-{imgsz}-{head}.onnx")
    shutil.move(exported, target)
    dims = [d.dim_value for d in onnx.load(target).graph.output[0].type.tensor_type.shape.dim]
    if (dims[-1] == 6) != end2end:
        sys.exit(f"{target}: output {dims} is not the requested {head} head")
    return target


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", nargs="+", default=list("nsmblx"), choices=list("nsmblx"))
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--head", choices=["e2e", "one2many"], default="e2e")
    ap.add_argument("--out-dir", default="exports")
    ap.add_argument("--nibble", help="nibble executable: also write `nibble zoo` models and "
                                     "compare their structure with the exports")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)

    failures = 0
    for scale in args.scales:
        reference = export(scale, args.imgsz, args.head, args.out_dir)
        print(f"wrote {reference}")
        if not args.nibble:
            continue
        zoo = os.path.join(args.out_dir, f"zoo-yolov10{scale}-{args.imgsz}-{args.head}.onnx")
        subprocess.run([args.nibble, "zoo", f"yolov10{scale}", "--imgsz", str(args.imgsz),
                        "--head", args.head, "--out", zoo], check=True)
        result = subprocess.run([sys.executable, os.path.join(HERE, "compare_structure.py"),
                                 zoo, reference])
        failures += result.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
