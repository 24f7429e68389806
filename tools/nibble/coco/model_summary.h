// What `nibble compare` says about a model besides its accuracy and speed: its quantization
// scheme, read from the graph, and the bytes of weights its kernels keep for a run.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "engine/ir/graph.h"
#include "nibble/tensor.h"

namespace nibble::coco {

struct ModelSummary {
  // "FP32", "FP16", "W8A8", "W4A8", "W8A16 (weight-only)", "W4A16 (weight-only)", "W8A16"
  // (16-bit integer activations), "dynamic W8A8" (DynamicQuantizeLinear + ConvInteger /
  // MatMulInteger) or "QOperator W8A8".
  // Weight bits come from the DequantizeLinear input type or the Clip bounds before it
  // (Brevitas writes int4 as int8 clipped to [-8, 7]); with mixed widths, the width that holds
  // the most weights; activation bits likewise from the activation DequantizeLinear nodes
  // (Q -> DQ, or Q -> Clip -> DQ in Brevitas' QCDQ form).
  std::string scheme;
  // Bytes of the constant tensors the planned nodes read, counting the packed copy instead for
  // nodes whose kernel packs its weights at load: what a run keeps resident for the weights.
  size_t weight_bytes = 0;
};

// The scheme of a graph as the frontend loads it (before fusion); see ModelSummary::scheme.
std::string quantization_scheme(const Graph& graph);

// Loads and plans the model for these input shapes (the ones the harness runs). Throws what
// Session::load throws.
ModelSummary summarize_model(const std::string& path,
                             const std::map<std::string, Shape>& input_shapes);

}  // namespace nibble::coco
