// YOLOv10 (Wang et al. 2024, as built by Ultralytics from cfg/models/v10/yolov10{n,s,m,b,l,x}.yaml)
// written as the ONNX graph Ultralytics' exporter produces: Conv+BatchNorm folded into one Conv
// with bias, SiLU as Sigmoid + Mul, C2f, C2fCIB (RepVGGDW fused to one 7x7 depthwise conv),
// SCDown, SPPF, PSA attention and the v10Detect head with DFL, at opset 17.
//
// The weights are random but deterministic (seeded), uniform like PyTorch's initialization, and
// calibrated so that every convolution's output has unit variance on an image in 0..1, with
// folded-BatchNorm biases as spread as a trained network's and the head's biases set as
// Ultralytics initializes them: activations stay in the range a trained network's do (no inf,
// NaN or denormals, scores not saturated), so latency measured on these models is the latency
// of the real ones.
#pragma once

#include <cstdint>
#include <string>

#include "nibble_onnx/onnx.pb.h"

namespace nibble::zoo {

enum class Yolov10Head {
  EndToEnd,  // one2one branch + top-k selection: output0 [1,300,6] = x1,y1,x2,y2,score,class
  OneToMany  // one2many branch, no selection: output0 [1,84,anchors] = cx,cy,w,h + 80 scores
};

struct Yolov10Options {
  std::string scale = "n";   // n, s, m, b, l or x
  int64_t image_size = 640;  // square input; a positive multiple of 32
  Yolov10Head head = Yolov10Head::EndToEnd;
  uint64_t seed = 0;
  // Run the network in nibble while building it (at 256x256, whatever image_size is) to give
  // each conv unit output variance. Without it, weights assume unit-variance inputs everywhere
  // and activations drift with depth: only for checks of the structure.
  bool calibrate = true;
};

struct ZooModel {
  onnx::ModelProto model;
  int64_t parameters = 0;  // weights and biases of every Conv (as Ultralytics counts them)
  double flops = 0;        // 2 x multiply-adds of the convolutions and matrix products
};

// Throws nibble::Error(InvalidArgument) for an unknown scale or an image size that is not a
// positive multiple of 32.
ZooModel build_yolov10(const Yolov10Options& options);

}  // namespace nibble::zoo
