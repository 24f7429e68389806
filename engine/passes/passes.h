// Graph passes, run in this order when a run is planned:
//   remove_dead_nodes -> infer_shapes_and_fold -> remove_dead_nodes
//   -> [OptimizationLevel::All] fuse_conv_epilogues
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

}  // namespace nibble
