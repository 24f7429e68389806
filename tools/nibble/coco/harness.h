// The COCO evaluation harness behind `nibble coco` and `nibble compare`: runs a YOLO detector on
// COCO images exactly as Ultralytics preprocesses and decodes them, scores the detections with
// the pycocotools-equivalent COCOeval and times every stage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nibble/nibble.h"
#include "tools/nibble/coco/cocoeval.h"
#include "tools/nibble/coco/dataset.h"
#include "tools/nibble/coco/latency.h"
#include "tools/nibble/detections.h"

namespace nibble::coco {

// Where the images and annotations are, and which images to use.
struct ImageSet {
  std::string coco_root;       // DIR with val2017/ and annotations/
  std::string annotations;     // default DIR/annotations/instances_val2017.json
  int max_images = 0;          // the first N by image id; 0 = all
  std::string image_ids_file;  // only these ids (JSON array or one per line)
};

// The images of an ImageSet, resolved against its annotation file.
struct Selection {
  std::string annotations_path;
  std::string images_dir;
  Dataset dataset;
  std::vector<const ImageInfo*> images;  // sorted by id
};

// Reads the annotation file and picks the images. The image folder is DIR/<split> for an
// annotation file named instances_<split>.json (DIR/val2017 otherwise). Throws Error(Io) for
// missing files and Error(InvalidArgument) for ids the annotations do not list or an empty
// selection.
Selection select_images(const ImageSet& set);

// Ultralytics' validation settings: confidence 0.001, NMS IoU 0.7, 300 detections per image.
cli::DetectionOptions evaluation_detection_options();

struct HarnessOptions {
  int image_size = 0;  // letterbox side; 0 = the model input's height and width
  cli::DetectionOptions detection = evaluation_detection_options();
  int threads = 0;  // threads per run; 0 = all cores
  WeightOnlyActivations weight_only_activations = WeightOnlyActivations::Float;
  int warmup = 10;  // untimed runs on the first image before timing starts
  std::string save_vis;    // when set, DIR for the images with their boxes drawn
  float vis_confidence = 0.25f;  // boxes drawn with --save-vis
  std::string progress_label;    // shown before the progress bar
};

struct StageTimes {
  LatencyStats preprocess;   // decode + letterbox
  LatencyStats model;        // Session::run
  LatencyStats postprocess;  // decode outputs, NMS, map back to the image
};

struct HarnessRun {
  std::string model_path;
  std::string decoder;  // "end-to-end [1,N,6]" or "class scores [1,4+C,N] + NMS"
  std::string input_name;
  Shape input_shape;
  int threads = 0;  // resolved (0 became the core count)
  std::string isa;  // kernels' instruction set (NIBBLE_ISA honoured)
  std::vector<int64_t> image_ids;
  std::vector<Detection> detections;  // COCO results, image by image, best first
  EvalResult eval;
  StageTimes times;
  // Images whose pixels differ in size from the annotation's width x height (a wrong file, or
  // an EXIF rotation that stb_image does not apply): their boxes cannot match.
  std::vector<std::string> size_mismatches;
};

// Loads the model, runs every selected image, evaluates. Throws nibble::Error (Io for unreadable
// images, InvalidArgument for a model that is not a YOLO detector or predicts more classes than
// the annotations have).
HarnessRun run_harness(const std::string& model_path, const Selection& selection,
                       const HarnessOptions& options);

// Shortest decimal that reads back as this float: what detections.json holds, so evaluating the
// file with pycocotools sees exactly the numbers nibble evaluated.
double float_as_decimal(float value);

}  // namespace nibble::coco
