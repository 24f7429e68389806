// COCO bounding-box evaluation, a line-by-line port of pycocotools' COCOeval(iouType='bbox')
// (evaluate, accumulate, summarize) that gives the same 12 summary numbers:
//   - IoU thresholds .50:.05:.95 and recall thresholds 0:.01:1 computed as np.linspace does;
//   - maxDets 1/10/100; area ranges all [0, 1e10], small [0, 32²], medium [32², 96²],
//     large [96², 1e10], both ends inclusive, on the ground truth's 'area' field and on w*h of
//     detections;
//   - crowd ground truth: IoU = intersection / detection area, matched any number of times,
//     ignored (as is every ground truth whose area lies outside the range);
//   - detections sorted by score with a stable sort (np.argsort kind='mergesort'), so ties keep
//     the order of the results file;
//   - categories without ground truth give -1 and are left out of the means; a summary with no
//     valid entry is -1.
// Quirks kept on purpose: the 'ignore' field of ground truth is overwritten by 'iscrowd', and a
// ground truth with id 0 can never count as matched (pycocotools stores matched ids and tests
// them against 0).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/nibble/coco/dataset.h"

namespace nibble::coco {

struct AreaRange {
  const char* label;
  double min, max;
};

// Which images and categories to evaluate (pycocotools' params.imgIds / params.catIds).
// Empty means every image / every category of the ground truth.
struct EvalSelection {
  std::vector<int64_t> image_ids;
  std::vector<int64_t> category_ids;
};

// The 12 numbers COCOeval.summarize() prints, in its order.
enum Stat {
  kAP = 0, kAP50, kAP75, kAPSmall, kAPMedium, kAPLarge,
  kAR1, kAR10, kAR100, kARSmall, kARMedium, kARLarge,
  kNumStats
};

struct EvalResult {
  std::vector<double> iou_thresholds;     // T = 10
  std::vector<double> recall_thresholds;  // R = 101
  std::vector<AreaRange> area_ranges;     // A = 4: all, small, medium, large
  std::vector<int> max_detections;        // M = 3: 1, 10, 100
  std::vector<int64_t> image_ids;         // evaluated, sorted
  std::vector<int64_t> category_ids;      // K, sorted

  // Interpolated precision [T][R][K][A][M] and final recall [T][K][A][M], -1 where a category
  // has no (non-ignored) ground truth in the area range.
  std::vector<double> precision;
  std::vector<double> recall;
  std::array<double, kNumStats> stats{};

  double precision_at(size_t t, size_t r, size_t k, size_t a, size_t m) const;
  double recall_at(size_t t, size_t k, size_t a, size_t m) const;
};

// Evaluates `detections` (COCO results, in file order) against `ground_truth`. Throws
// Error(InvalidArgument) when a detection names an image the ground truth does not have, as
// pycocotools' loadRes refuses such results. Detections of categories outside the selection are
// ignored, as pycocotools does.
EvalResult evaluate_bboxes(const Dataset& ground_truth, const std::vector<Detection>& detections,
                           const EvalSelection& selection = {});

// The summary exactly as pycocotools prints it: 12 lines of
// " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.374".
std::string format_stats(const EvalResult& result);

// Mean interpolated precision over the categories that have ground truth, at each of the 101
// recall thresholds, for area 'all' and 100 detections; iou_index selects one IoU threshold, or
// -1 for the mean over all ten (the curve whose area is mAP_50_95). -1 entries when no category
// has ground truth.
std::vector<double> mean_precision_curve(const EvalResult& result, int iou_index);

}  // namespace nibble::coco
