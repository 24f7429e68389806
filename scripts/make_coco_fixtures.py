#!/usr/bin/env python3
"""Writes the COCOeval fixtures of tests/tools/test_coco_eval.cpp into tests/fixtures/coco/.

A small synthetic ground truth and several detection sets built to reach every branch of
pycocotools' COCOeval (iouType='bbox'), each scored here with pycocotools itself:

  instances.json        10 images, 5 categories (one without any ground truth), boxes in all
                        three area ranges and on their exact bounds (area 32^2 and 96^2), crowd
                        regions, an 'area' field that differs from w*h as segmentation areas do,
                        an image without annotations
  detections_*.json     COCO results files (see CASES below)
  expected.json         for every case: its detection file, the evaluated image ids (null: all)
                        and pycocotools' 12 summary stats

Run from the repository root with the venv that has pycocotools (scripts/setup.sh makes it):
    .venv/bin/python scripts/make_coco_fixtures.py
The output is deterministic (fixed seeds); commit it.
"""
import contextlib
import io
import json
import os
import random

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                       "coco")

CATEGORIES = [
    {"id": 1, "name": "person"},
    {"id": 3, "name": "car"},
    {"id": 18, "name": "dog"},
    {"id": 44, "name": "bottle"},
    {"id": 90, "name": "toothbrush"},  # no ground truth: its precision stays -1
]
GT_CATEGORIES = [1, 3, 18, 44]


def r3(x):
    return round(x, 3)


def make_ground_truth(rng):
    images = []
    annotations = []
    next_id = 1

    def add(image_id, category, box, area=None, crowd=0):
        nonlocal next_id
        x, y, w, h = box
        annotations.append({
            "id": next_id, "image_id": image_id, "category_id": category,
            "bbox": [r3(x), r3(y), r3(w), r3(h)],
            # Segmentation areas are smaller than their box; COCOeval uses this field.
            "area": r3(area if area is not None else w * h * rng.uniform(0.55, 0.95)),
            "iscrowd": crowd, "segmentation": [],
        })
        next_id += 1

    for image_id in range(1, 11):
        width, height = rng.choice([(640, 480), (480, 640), (500, 375), (640, 427)])
        images.append({"id": image_id * 1000 + 7, "file_name": f"{image_id:012d}.jpg",
                       "width": width, "height": height})
    ids = [image["id"] for image in images]

    for image in images[:9]:  # the last image has no annotations
        for _ in range(rng.randint(2, 7)):
            kind = rng.random()
            side = (rng.uniform(6, 30) if kind < 0.35 else
                    rng.uniform(33, 95) if kind < 0.7 else rng.uniform(100, 300))
            w = side * rng.uniform(0.6, 1.6)
            h = side * side / w
            x = rng.uniform(0, image["width"] - w)
            y = rng.uniform(0, image["height"] - h)
            add(image["id"], rng.choice(GT_CATEGORIES), (x, y, w, h))
    # Exact area-range bounds: both ranges include them (pycocotools compares with < and >).
    add(ids[0], 1, (10, 10, 32, 32), area=1024.0)
    add(ids[1], 3, (50, 60, 96, 96), area=9216.0)
    # Crowd regions, with ordinary boxes of the same category inside them.
    add(ids[2], 1, (100, 100, 300, 250), crowd=1)
    add(ids[2], 1, (120, 130, 60, 90))
    add(ids[3], 18, (0, 0, 200, 200), crowd=1)
    add(ids[4], 44, (20, 30, 150, 120), crowd=1)
    # Two overlapping objects: one detection may match either.
    add(ids[5], 3, (200, 150, 80, 60))
    add(ids[5], 3, (215, 160, 80, 60))

    return {"info": {"description": "nibble COCOeval fixture"}, "images": images,
            "annotations": annotations, "categories": CATEGORIES}


def jitter(rng, box, amount):
    x, y, w, h = box
    return [r3(x + rng.gauss(0, amount * w)), r3(y + rng.gauss(0, amount * h)),
            r3(max(0.5, w * (1 + rng.gauss(0, amount)))),
            r3(max(0.5, h * (1 + rng.gauss(0, amount))))]


def random_box(rng, image):
    w = rng.uniform(4, image["width"] / 2)
    h = rng.uniform(4, image["height"] / 2)
    return [r3(rng.uniform(0, image["width"] - w)), r3(rng.uniform(0, image["height"] - h)),
            r3(w), r3(h)]


def det(image_id, category, box, score):
    return {"image_id": image_id, "category_id": category, "bbox": box, "score": score}


def case_perfect(gt, rng):
    """Every non-crowd object found exactly, score 1: AP 1 wherever there is ground truth."""
    return [det(a["image_id"], a["category_id"], list(a["bbox"]), 1.0)
            for a in gt["annotations"] if not a["iscrowd"]]


def case_noisy(gt, rng):
    """Jittered hits, misses, wrong classes, false positives; one image-category with 130
    detections, so maxDets 1/10/100 all cut."""
    out = []
    for a in gt["annotations"]:
        if rng.random() < 0.85:
            category = a["category_id"] if rng.random() > 0.1 else rng.choice(GT_CATEGORIES)
            out.append(det(a["image_id"], category, jitter(rng, a["bbox"], 0.08),
                           round(rng.uniform(0.05, 1.0), 4)))
        if rng.random() < 0.3:  # a duplicate
            out.append(det(a["image_id"], a["category_id"], jitter(rng, a["bbox"], 0.15),
                           round(rng.uniform(0.01, 0.6), 4)))
    for image in gt["images"]:
        for _ in range(rng.randint(0, 6)):
            out.append(det(image["id"], rng.choice(GT_CATEGORIES + [90]), random_box(rng, image),
                           round(rng.uniform(0.001, 0.5), 4)))
    crowded = gt["images"][6]
    target = next(a for a in gt["annotations"] if a["image_id"] == crowded["id"])
    for _ in range(130):
        out.append(det(crowded["id"], target["category_id"], jitter(rng, target["bbox"], 0.2),
                       round(rng.uniform(0.001, 0.9), 4)))
    rng.shuffle(out)
    return out


def case_ties(gt, rng):
    """Scores on a coarse grid: many exact ties, within and across images, broken by file
    order (np.argsort kind='mergesort' is stable)."""
    out = case_noisy(gt, rng)
    for d in out:
        d["score"] = round(round(d["score"] * 4) / 4, 2) or 0.25
    return out


def case_crowd(gt, rng):
    """Several detections inside each crowd region (matched to it, hence ignored, any number of
    times), and ones that straddle a crowd region and an ordinary object."""
    out = []
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        if a["iscrowd"]:
            for _ in range(5):
                dw, dh = w * rng.uniform(0.1, 0.5), h * rng.uniform(0.1, 0.5)
                out.append(det(a["image_id"], a["category_id"],
                               [r3(x + rng.uniform(0, w - dw)), r3(y + rng.uniform(0, h - dh)),
                                r3(dw), r3(dh)], round(rng.uniform(0.3, 0.99), 3)))
        else:
            out.append(det(a["image_id"], a["category_id"], jitter(rng, a["bbox"], 0.05),
                           round(rng.uniform(0.2, 0.95), 3)))
    return out


def case_sparse(gt, rng):
    """Detections on only some images and categories: images without detections, a category
    with ground truth but no detection, detections on the image without annotations."""
    out = []
    keep_images = {image["id"] for image in gt["images"][::2]}
    for a in gt["annotations"]:
        if a["image_id"] in keep_images and a["category_id"] != 18:
            out.append(det(a["image_id"], a["category_id"], jitter(rng, a["bbox"], 0.1),
                           round(rng.uniform(0.1, 1.0), 4)))
    empty = gt["images"][9]
    for _ in range(3):
        out.append(det(empty["id"], 1, random_box(rng, empty), round(rng.uniform(0.1, 0.9), 4)))
    return out


def case_area_edges(gt, rng):
    """Detections whose w*h sits exactly on the range bounds, unmatched ones outside a range
    (ignored there) and tiny ones."""
    out = case_noisy(gt, rng)
    for image in gt["images"]:
        out.append(det(image["id"], 1, [5.0, 5.0, 32.0, 32.0], 0.55))
        out.append(det(image["id"], 3, [40.0, 40.0, 96.0, 96.0], 0.45))
        out.append(det(image["id"], 44, [1.0, 2.0, 0.5, 0.5], 0.65))
    return out


def case_empty(gt, rng):
    """No detections: AP and AR 0 wherever there is ground truth."""
    return []


CASES = [
    ("perfect", case_perfect, None),
    ("noisy", case_noisy, None),
    ("ties", case_ties, None),
    ("crowd", case_crowd, None),
    ("sparse", case_sparse, None),
    ("area_edges", case_area_edges, None),
    ("empty", case_empty, None),
    ("noisy_subset", None, [2007, 5007, 6007, 7007, 10007]),  # params.imgIds: some images only
]


def evaluate(gt_path, detections, image_ids):
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(gt_path)
        if detections:
            coco_dt = coco_gt.loadRes(detections)
        else:  # loadRes cannot take an empty list
            coco_dt = COCO()
            coco_dt.dataset = {"images": coco_gt.dataset["images"], "annotations": [],
                               "categories": coco_gt.dataset["categories"]}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        if image_ids is not None:
            evaluator.params.imgIds = image_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(s) for s in evaluator.stats]


def write_json(path, value, compact=False):
    with open(path, "w") as f:
        if compact:  # one detection per line
            f.write("[\n" + ",\n".join(json.dumps(v) for v in value) + "\n]\n" if value else "[]\n")
        else:
            json.dump(value, f, indent=1)
            f.write("\n")


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    gt = make_ground_truth(random.Random(20240917))
    gt_path = os.path.join(OUT_DIR, "instances.json")
    write_json(gt_path, gt)

    expected = []
    for index, (name, make, image_ids) in enumerate(CASES):
        file_name = f"detections_{name}.json"
        if make is None:  # reuses the detections of the case it is named after
            file_name = f"detections_{name.rsplit('_', 1)[0]}.json"
            with open(os.path.join(OUT_DIR, file_name)) as f:
                detections = json.load(f)
        else:
            detections = make(gt, random.Random(1000 + index))
            write_json(os.path.join(OUT_DIR, file_name), detections, compact=True)
        stats = evaluate(gt_path, [dict(d) for d in detections], image_ids)
        expected.append({"name": name, "detections": file_name, "image_ids": image_ids,
                         "stats": stats})
        print(f"{name:12s} {len(detections):4d} detections  " +
              " ".join(f"{s:7.4f}" for s in stats))
    write_json(os.path.join(OUT_DIR, "expected.json"), {"cases": expected})


if __name__ == "__main__":
    main()
