#include "tools/nibble/coco/cocoeval.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "nibble/error.h"

namespace nibble::coco {

namespace {

// np.spacing(1): pycocotools adds it to the precision denominator.
constexpr double kEpsilon = 2.220446049250313e-16;

// np.linspace(start, stop, num): start + i * step with step = (stop - start) / (num - 1), the
// last value set to stop. The exact doubles matter: summarize() selects IoU .50 and .75 by ==.
std::vector<double> linspace(double start, double stop, int num) {
  std::vector<double> values(static_cast<size_t>(num));
  const double step = (stop - start) / (num - 1);
  for (int i = 0; i < num; ++i) values[static_cast<size_t>(i)] = i * step + start;
  values.back() = stop;
  return values;
}

// maskApi.c bbIou: intersection over union, or over the detection's area for a crowd region.
double box_iou(const Box& d, const Box& g, bool crowd) {
  const double w = std::fmin(d.width + d.x, g.width + g.x) - std::fmax(d.x, g.x);
  if (w <= 0) return 0;
  const double h = std::fmin(d.height + d.y, g.height + g.y) - std::fmax(d.y, g.y);
  if (h <= 0) return 0;
  const double intersection = w * h;
  const double detection_area = d.width * d.height;
  const double union_area =
      crowd ? detection_area : detection_area + g.width * g.height - intersection;
  return intersection / union_area;
}

// A detection as loadRes prepares it: id = position in the results + 1, area = w * h.
struct PreparedDetection {
  const Detection* detection;
  int64_t id;
  double area;
};

// pycocotools' evaluateImg() output for one image, category and area range, detections cut to
// the largest maxDet and sorted best first. Flags per IoU threshold and detection: pycocotools
// keeps the matched ground truth's id and tests it against 0, so a match to id 0 is no match.
constexpr uint8_t kMatched = 1, kIgnored = 2;
struct ImageEval {
  std::vector<double> scores;            // D
  std::vector<uint8_t> flags;            // T x D: kMatched | kIgnored
  size_t counted_ground_truth = 0;       // ground truth not ignored
};

// Stable order, best score first (np.argsort(-scores, kind='mergesort')).
template <typename T, typename Score>
void sort_by_score(std::vector<T>& items, Score score) {
  std::stable_sort(items.begin(), items.end(),
                   [&](const T& a, const T& b) { return score(a) > score(b); });
}

std::vector<int64_t> sorted_unique(std::vector<int64_t> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

class Evaluator {
 public:
  Evaluator(const Dataset& ground_truth, const std::vector<Detection>& detections,
            const EvalSelection& selection)
      : gt_(ground_truth), detections_(detections) {
    r_.iou_thresholds = linspace(0.5, 0.95, 10);
    r_.recall_thresholds = linspace(0.0, 1.0, 101);
    r_.area_ranges = {{"all", 0, 1e10}, {"small", 0, 32 * 32}, {"medium", 32 * 32, 96 * 96},
                      {"large", 96 * 96, 1e10}};
    r_.max_detections = {1, 10, 100};
    select(selection);
  }

  EvalResult run() {
    group();
    evaluate();
    accumulate();
    summarize();
    return std::move(r_);
  }

 private:
  size_t T() const { return r_.iou_thresholds.size(); }
  size_t R() const { return r_.recall_thresholds.size(); }
  size_t K() const { return r_.category_ids.size(); }
  size_t A() const { return r_.area_ranges.size(); }
  size_t M() const { return r_.max_detections.size(); }
  size_t I() const { return r_.image_ids.size(); }

  void select(const EvalSelection& selection) {
    std::vector<int64_t> images = selection.image_ids;
    if (images.empty())
      for (const ImageInfo& image : gt_.images) images.push_back(image.id);
    r_.image_ids = sorted_unique(images);
    std::vector<int64_t> categories = selection.category_ids;
    if (categories.empty())
      for (const Category& category : gt_.categories) categories.push_back(category.id);
    r_.category_ids = sorted_unique(categories);
  }

  // Ground truth and detections per (image, category), each in file order.
  void group() {
    std::map<int64_t, size_t> image_index, category_index;
    for (size_t i = 0; i < I(); ++i) image_index[r_.image_ids[i]] = i;
    for (size_t k = 0; k < K(); ++k) category_index[r_.category_ids[k]] = k;
    gts_.assign(I() * K(), {});
    dts_.assign(I() * K(), {});

    for (const Annotation& annotation : gt_.annotations) {
      const auto image = image_index.find(annotation.image_id);
      const auto category = category_index.find(annotation.category_id);
      if (image != image_index.end() && category != category_index.end())
        gts_[image->second * K() + category->second].push_back(&annotation);
    }

    std::set<int64_t> known_images;
    for (const ImageInfo& image : gt_.images) known_images.insert(image.id);
    for (size_t n = 0; n < detections_.size(); ++n) {
      const Detection& detection = detections_[n];
      if (!known_images.count(detection.image_id))
        throw Error(ErrorKind::InvalidArgument,
                    "detection " + std::to_string(n) + " is for image id " +
                        std::to_string(detection.image_id) +
                        ", which the ground truth does not have");
      const auto image = image_index.find(detection.image_id);
      const auto category = category_index.find(detection.category_id);
      if (image == image_index.end() || category == category_index.end()) continue;
      dts_[image->second * K() + category->second].push_back(
          {&detection, static_cast<int64_t>(n) + 1,
           detection.bbox.width * detection.bbox.height});
    }
  }

  // evaluate(): computeIoU + evaluateImg for every category, area range and image.
  void evaluate() {
    const int max_det = r_.max_detections.back();
    eval_slots_.assign(K() * A() * I(), kAbsent);
    for (size_t k = 0; k < K(); ++k) {
      for (size_t i = 0; i < I(); ++i) {
        const std::vector<const Annotation*>& gts = gts_[i * K() + k];
        std::vector<PreparedDetection> dts = dts_[i * K() + k];
        if (gts.empty() && dts.empty()) continue;
        sort_by_score(dts, [](const PreparedDetection& d) { return d.detection->score; });
        if (dts.size() > static_cast<size_t>(max_det)) dts.resize(static_cast<size_t>(max_det));

        // ious[d][g] with ground truth in file order (computeIoU).
        std::vector<double> ious(dts.size() * gts.size());
        for (size_t d = 0; d < dts.size(); ++d)
          for (size_t g = 0; g < gts.size(); ++g)
            ious[d * gts.size() + g] =
                box_iou(dts[d].detection->bbox, gts[g]->bbox, gts[g]->iscrowd);

        for (size_t a = 0; a < A(); ++a) {
          eval_slots_[(k * A() + a) * I() + i] = evals_.size();
          evals_.push_back(evaluate_image(gts, dts, ious, r_.area_ranges[a]));
        }
      }
    }
  }

  ImageEval evaluate_image(const std::vector<const Annotation*>& gts,
                           const std::vector<PreparedDetection>& dts,
                           const std::vector<double>& ious, const AreaRange& range) const {
    const size_t G = gts.size(), D = dts.size();
    auto outside = [&](double area) { return area < range.min || area > range.max; };
    // Ground truth not ignored first, file order kept within each group.
    std::vector<size_t> order(G);
    std::iota(order.begin(), order.end(), size_t{0});
    std::vector<uint8_t> gt_ignored(G);
    for (size_t g = 0; g < G; ++g) gt_ignored[g] = gts[g]->iscrowd || outside(gts[g]->area);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return gt_ignored[a] < gt_ignored[b]; });

    ImageEval eval;
    eval.scores.resize(D);
    for (size_t d = 0; d < D; ++d) eval.scores[d] = dts[d].detection->score;
    eval.flags.assign(T() * D, 0);
    for (size_t g = 0; g < G; ++g) eval.counted_ground_truth += gt_ignored[g] ? 0 : 1;

    if (G > 0 && D > 0) {
      std::vector<int64_t> matched_dt_ids(G);  // per sorted ground truth, 0 for none
      for (size_t t = 0; t < T(); ++t) {
        std::fill(matched_dt_ids.begin(), matched_dt_ids.end(), 0);
        for (size_t d = 0; d < D; ++d) {
          double best = std::min(r_.iou_thresholds[t], 1 - 1e-10);
          std::optional<size_t> match;  // position in `order`
          for (size_t s = 0; s < G; ++s) {
            const size_t g = order[s];
            // A matched ground truth is taken, unless it is a crowd region.
            if (matched_dt_ids[s] > 0 && !gts[g]->iscrowd) continue;
            // Matched to a counted ground truth and only ignored ones remain: stop.
            if (match && !gt_ignored[order[*match]] && gt_ignored[g]) break;
            const double iou = ious[d * G + g];
            if (iou < best) continue;
            best = iou;
            match = s;
          }
          if (!match) continue;
          const size_t g = order[*match];
          eval.flags[t * D + d] = (gt_ignored[g] ? kIgnored : 0) | (gts[g]->id != 0 ? kMatched : 0);
          matched_dt_ids[*match] = dts[d].id;
        }
      }
    }
    // Unmatched detections outside the area range do not count as false positives.
    for (size_t t = 0; t < T(); ++t)
      for (size_t d = 0; d < D; ++d)
        if (!(eval.flags[t * D + d] & kMatched) && outside(dts[d].area))
          eval.flags[t * D + d] |= kIgnored;
    return eval;
  }

  void accumulate() {
    r_.precision.assign(T() * R() * K() * A() * M(), -1.0);
    r_.recall.assign(T() * K() * A() * M(), -1.0);
    struct Ranked {
      double score;
      const ImageEval* eval;
      size_t index;
    };
    std::vector<double> rc, pr;
    for (size_t k = 0; k < K(); ++k) {
      for (size_t a = 0; a < A(); ++a) {
        for (size_t m = 0; m < M(); ++m) {
          const auto max_det = static_cast<size_t>(r_.max_detections[m]);
          std::vector<Ranked> ranked;
          size_t counted_ground_truth = 0;
          bool any = false;
          for (size_t i = 0; i < I(); ++i) {
            const size_t slot = eval_slots_[(k * A() + a) * I() + i];
            if (slot == kAbsent) continue;
            const ImageEval& eval = evals_[slot];
            any = true;
            counted_ground_truth += eval.counted_ground_truth;
            for (size_t d = 0; d < std::min(max_det, eval.scores.size()); ++d)
              ranked.push_back({eval.scores[d], &eval, d});
          }
          if (!any || counted_ground_truth == 0) continue;
          sort_by_score(ranked, [](const Ranked& r) { return r.score; });

          const size_t nd = ranked.size();
          for (size_t t = 0; t < T(); ++t) {
            rc.resize(nd);
            pr.resize(nd);
            double tp = 0, fp = 0;
            for (size_t n = 0; n < nd; ++n) {
              const ImageEval& eval = *ranked[n].eval;
              const uint8_t flags = eval.flags[t * eval.scores.size() + ranked[n].index];
              if (!(flags & kIgnored)) (flags & kMatched ? tp : fp) += 1;
              rc[n] = tp / static_cast<double>(counted_ground_truth);
              pr[n] = tp / (fp + tp + kEpsilon);
            }
            r_.recall[((t * K() + k) * A() + a) * M() + m] = nd ? rc[nd - 1] : 0;
            // Precision envelope: the best precision at this recall or any higher one.
            for (size_t n = nd; n-- > 1;)
              if (pr[n] > pr[n - 1]) pr[n - 1] = pr[n];
            for (size_t r = 0; r < R(); ++r) {
              const size_t n = static_cast<size_t>(
                  std::lower_bound(rc.begin(), rc.end(), r_.recall_thresholds[r]) - rc.begin());
              const double value = n < nd ? pr[n] : 0.0;  // recall never reached: 0
              r_.precision[(((t * R() + r) * K() + k) * A() + a) * M() + m] = value;
            }
          }
        }
      }
    }
  }

  // summarize(): mean of the valid (> -1) entries selected, -1 when there is none.
  double summary(bool average_precision, std::optional<double> iou, const char* area,
                 int max_det) const {
    double sum = 0;
    size_t count = 0;
    for (size_t t = 0; t < T(); ++t) {
      if (iou && r_.iou_thresholds[t] != *iou) continue;
      for (size_t a = 0; a < A(); ++a) {
        if (std::string(r_.area_ranges[a].label) != area) continue;
        for (size_t m = 0; m < M(); ++m) {
          if (r_.max_detections[m] != max_det) continue;
          for (size_t k = 0; k < K(); ++k) {
            if (average_precision) {
              for (size_t r = 0; r < R(); ++r) {
                const double value = r_.precision_at(t, r, k, a, m);
                if (value > -1) sum += value, ++count;
              }
            } else {
              const double value = r_.recall_at(t, k, a, m);
              if (value > -1) sum += value, ++count;
            }
          }
        }
      }
    }
    return count ? sum / static_cast<double>(count) : -1.0;
  }

  void summarize() {
    const std::vector<int>& md = r_.max_detections;
    r_.stats = {summary(true, std::nullopt, "all", md[2]),
                summary(true, 0.5, "all", md[2]),
                summary(true, 0.75, "all", md[2]),
                summary(true, std::nullopt, "small", md[2]),
                summary(true, std::nullopt, "medium", md[2]),
                summary(true, std::nullopt, "large", md[2]),
                summary(false, std::nullopt, "all", md[0]),
                summary(false, std::nullopt, "all", md[1]),
                summary(false, std::nullopt, "all", md[2]),
                summary(false, std::nullopt, "small", md[2]),
                summary(false, std::nullopt, "medium", md[2]),
                summary(false, std::nullopt, "large", md[2])};
  }

  const Dataset& gt_;
  const std::vector<Detection>& detections_;
  EvalResult r_;
  std::vector<std::vector<const Annotation*>> gts_;   // [I][K]
  std::vector<std::vector<PreparedDetection>> dts_;   // [I][K]
  // evaluateImg() results that exist (an image and category with ground truth or detections),
  // and for each [K][A][I] its index there or kAbsent.
  static constexpr size_t kAbsent = SIZE_MAX;
  std::vector<ImageEval> evals_;
  std::vector<size_t> eval_slots_;
};

}  // namespace

double EvalResult::precision_at(size_t t, size_t r, size_t k, size_t a, size_t m) const {
  const size_t R = recall_thresholds.size(), K = category_ids.size(), A = area_ranges.size(),
               M = max_detections.size();
  return precision[(((t * R + r) * K + k) * A + a) * M + m];
}

double EvalResult::recall_at(size_t t, size_t k, size_t a, size_t m) const {
  const size_t K = category_ids.size(), A = area_ranges.size(), M = max_detections.size();
  return recall[((t * K + k) * A + a) * M + m];
}

EvalResult evaluate_bboxes(const Dataset& ground_truth, const std::vector<Detection>& detections,
                           const EvalSelection& selection) {
  return Evaluator(ground_truth, detections, selection).run();
}

std::string format_stats(const EvalResult& result) {
  struct Line {
    bool ap;
    const char* iou;
    const char* area;
    int max_det;
  };
  const std::vector<int>& md = result.max_detections;
  const Line lines[kNumStats] = {
      {true, "0.50:0.95", "all", md[2]},   {true, "0.50", "all", md[2]},
      {true, "0.75", "all", md[2]},        {true, "0.50:0.95", "small", md[2]},
      {true, "0.50:0.95", "medium", md[2]}, {true, "0.50:0.95", "large", md[2]},
      {false, "0.50:0.95", "all", md[0]},  {false, "0.50:0.95", "all", md[1]},
      {false, "0.50:0.95", "all", md[2]},  {false, "0.50:0.95", "small", md[2]},
      {false, "0.50:0.95", "medium", md[2]}, {false, "0.50:0.95", "large", md[2]}};
  std::string text;
  char buffer[160];
  for (int i = 0; i < kNumStats; ++i) {
    const Line& line = lines[i];
    std::snprintf(buffer, sizeof buffer, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                  line.ap ? "Average Precision" : "Average Recall", line.ap ? "(AP)" : "(AR)",
                  line.iou, line.area, line.max_det, result.stats[static_cast<size_t>(i)]);
    text += buffer;
  }
  return text;
}

std::vector<double> mean_precision_curve(const EvalResult& result, int iou_index) {
  const size_t T = result.iou_thresholds.size(), R = result.recall_thresholds.size(),
               K = result.category_ids.size();
  const size_t all_area = 0, most_detections = result.max_detections.size() - 1;
  std::vector<double> curve(R, -1.0);
  for (size_t r = 0; r < R; ++r) {
    double sum = 0;
    size_t count = 0;
    for (size_t t = 0; t < T; ++t) {
      if (iou_index >= 0 && t != static_cast<size_t>(iou_index)) continue;
      for (size_t k = 0; k < K; ++k) {
        const double value = result.precision_at(t, r, k, all_area, most_detections);
        if (value > -1) sum += value, ++count;
      }
    }
    if (count) curve[r] = sum / static_cast<double>(count);
  }
  return curve;
}

}  // namespace nibble::coco
