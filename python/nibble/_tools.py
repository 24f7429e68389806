"""The `nibble` command-line features as Python functions.

Each function runs the CLI subcommand in this process (the same C++ code, the GIL released) and
returns the report the command writes: `coco` the dict of metrics.json, `bench` the dict of its
--json file, `compare` the dict of its compare.json, `quantize` the path of the model it wrote.
Keyword options map to the command's flags: ``max_images=20`` is ``--max-images 20``, ``True``
adds a bare flag, ``None`` and ``False`` leave it out, a list repeats it. Run ``nibble <command>
--help`` for the options.
"""

import json
import os
import tempfile

from nibble import _nibble


def _flags(options):
    args = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                args += [flag, os.fspath(item) if isinstance(item, os.PathLike) else str(item)]
        else:
            args += [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    return args


def _run(args):
    status = _nibble.run_cli_command(args)
    if status != 0:
        raise _nibble.NibbleError(f"nibble {args[0]} exited with status {status}")


def _report(command, args, out, report_name, out_flag="--out"):
    """Runs `command` writing into `out` (a temporary directory when None) and loads its JSON."""
    with tempfile.TemporaryDirectory(prefix=f"nibble-{command}-") as scratch:
        directory = os.fspath(out) if out is not None else scratch
        target = os.path.join(directory, report_name) if out_flag == "--json" else directory
        _run([command, *args, out_flag, target])
        with open(os.path.join(directory, report_name)) as f:
            return json.load(f)


def coco(model, coco_root, *, out=None, **options):
    """COCO mAP and latency of a YOLO detector (`nibble coco`); returns metrics.json as a dict.

    ``out``: directory for metrics.json, detections.json and summary.md (kept); by default a
    temporary one. Options: max_images, image_ids, ann, imgsz, conf, iou, max_det, pre_nms_topk,
    decoder, threads, warmup, save_vis, vis_conf.
    """
    args = ["--model", os.fspath(model), "--coco-root", os.fspath(coco_root)]
    return _report("coco", args + _flags(options), out, "metrics.json")


def compare(models, coco_root, *, out=None, **options):
    """Several detectors on the same COCO images (`nibble compare`); ``models`` is a list of
    paths or a {name: path} dict. Returns the comparison report as a dict."""
    if isinstance(models, dict):
        specs = [f"{name}={os.fspath(path)}" for name, path in models.items()]
    else:
        specs = [os.fspath(path) for path in models]
    args = [arg for spec in specs for arg in ("--model", spec)]
    args += ["--coco-root", os.fspath(coco_root)]
    return _report("compare", args + _flags(options), out, "compare.json")


def bench(model, **options):
    """Latency of one model on generated inputs (`nibble bench`); returns its JSON report.

    Options: threads, iters, warmup, input (NAME=FILE.npy, list), shape (NAME=DIMS, list), fill,
    seed, profile, top.
    """
    return _report("bench", [os.fspath(model)] + _flags(options), None, "bench.json", out_flag="--json")


def quantize(model, out, scheme, **options):
    """Post-training quantization into QDQ form (`nibble quantize`); writes ``out`` and returns
    its path. Options: format ('qcdq' or 'qdq'), per_tensor, calib_images, calib_count,
    calib_method, keep_8bit (list of node names), threads."""
    if "keep_8bit" in options and isinstance(options["keep_8bit"], (list, tuple)):
        options["keep_8bit"] = ",".join(options["keep_8bit"])
    _run(["quantize", os.fspath(model), "--scheme", scheme, "--out", os.fspath(out)] + _flags(options))
    return os.fspath(out)
