// Graph passes, run in this order when a run is planned:
//   remove_dead_nodes -> infer_shapes_and_fold -> [OptimizationLevel::All] fuse_qdq
//   -> remove_dead_nodes -> [OptimizationLevel::All] fuse_qdq_chains, fuse_conv_epilogues
#pragma once

#include <cstddef>

#include "engine/exec/thread_pool.h"
#include "engine/ir/graph.h"

namespace nibble {

// Removes nodes none of whose outputs reach a graph output, and whose folded results are no
// longer read (a node all of whose outputs became constants).
void remove_dead_nodes(Graph& graph);

// Gives every value a dtype and a static shape (graph inputs must already have fully static
// shapes), and evaluates at load time every node whose inputs are all constants (or that reads
// only input shapes, like Shape), turning its outputs into constants. Fails with
// Error(Unsupported) for ops nibble does not implement and Error(InvalidModel) for inconsistent
// nodes; no tensor may exceed `max_tensor_bytes`.
void infer_shapes_and_fold(Graph& graph, size_t max_tensor_bytes, ThreadPool& pool);

// Folds element-wise tails into the convolution before them (bias, SiLU = x*Sigmoid(x), Relu,
// Clip, residual Add), so the kernel applies them while the output tile is in registers.
// Needs inferred shapes. (engine/passes/fuse_conv_epilogues.cpp)
void fuse_conv_epilogues(Graph& graph);

// Replaces DequantizeLinear(x) + DequantizeLinear(w) + Conv [+ BatchNormalization] [+ Relu /
// SiLU / Clip] by nibble.QConv on the low-bit kernels (W8A8/W4A8 on integer activations,
// W8A16/W4A16 weight-only). Must run right after infer_shapes_and_fold, before dead nodes are
// removed: it reads the integer weights from the folded DequantizeLinear nodes' inputs.
// (engine/passes/fuse_qdq.cpp)
void fuse_qdq(Graph& graph);
// Keeps activations between quantized layers in 8 bits: a QConv whose result every reader
// quantizes alike (per tensor, to uint8/int8) writes the quantized tensor itself, and
// data-movement ops (Concat, Reshape-like, Transpose, Split, Slice, nearest Resize) between
// them move onto the quantized values. Exact: the rewritten graph computes the same bytes.
// Needs inferred shapes and no dead nodes. (engine/passes/fuse_qdq_chains.cpp)
void fuse_qdq_chains(Graph& graph);
// String attribute fuse_qdq sets on a Conv whose dequantized weights it could not lower: why.
inline constexpr const char* kQdqFallbackNote = "nibble_qdq_fallback";

}  // namespace nibble
