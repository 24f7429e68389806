// A Plan is a graph specialized to one set of input shapes: every value typed and statically
// shaped, constants folded, dead nodes removed, per-node prepared state (packed weights), and
// where each intermediate tensor lives at run time.
//
// Memory (optimized plans): every intermediate lives at a fixed offset of one arena per run.
// Values whose lifetimes do not overlap share bytes; a Concat along its outermost non-unit axis
// has its producers write straight into their slices of its output, and Reshape-like ops and
// Split along such an axis produce views of their input, so those steps copy nothing. Graph
// outputs get their own storage, since they outlive the run. Unoptimized plans (the reference
// path) allocate every tensor separately and free it after its last reader.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/ir/graph.h"
#include "engine/ops/op_registry.h"
#include "nibble/nibble.h"

namespace nibble {

struct PlanStep {
  size_t node;  // index into Plan::graph.nodes
  const OpDef* def;
  int64_t opset;
  std::shared_ptr<const void> state;
  KernelInfo kernel;  // from OpDef::kernel_info, for inspect/profile
  // Separately allocated intermediates whose last reader is this step.
  std::vector<ValueId> release_after;
  // Types of outputs the model omitted (""): ops still get a scratch tensor to write.
  std::vector<std::pair<DType, Shape>> omitted_outputs;
  // Every output is a view that already holds its bytes (see plan.h): compute is skipped.
  bool elided = false;
  // Arena outputs of an op that may not write every element: zeroed before compute.
  bool zero_outputs = false;
};

// Where a value's bytes are at run time.
struct ValueStorage {
  enum class Kind {
    Bound,  // a constant or a graph input: the tensor already exists
    Owned,  // allocated when produced (graph outputs; every value of an unoptimized plan)
    Arena,  // `offset` bytes into the run's arena
  };
  Kind kind = Kind::Bound;
  size_t offset = 0;
};

// Arenas of one plan, kept between runs so a run neither allocates nor faults in fresh pages.
// Concurrent runs each take their own.
class ArenaCache {
 public:
  struct Buffer {
    std::unique_ptr<uint8_t[]> bytes;
    uint8_t* aligned = nullptr;
  };
  void set_bytes(size_t bytes) { bytes_ = bytes; }  // while the plan is being built
  size_t bytes() const { return bytes_; }
  // A free arena, or a new one filled with 0xFF bytes (NaN / -1), so an op that leaves output
  // elements unwritten shows it at once instead of passing on lucky zeros.
  Buffer acquire();
  void release(Buffer buffer);  // hands it back for the next run

 private:
  size_t bytes_ = 0;
  std::mutex mutex_;
  std::vector<Buffer> free_;
};

struct Plan {
  Graph graph;
  std::vector<PlanStep> steps;
  std::vector<ValueStorage> storage;  // per value of `graph`
  mutable ArenaCache arenas;
};

// `graph` is copied; `input_shapes` gives the full static shape of every runtime input.
// With `optimize` false the graph runs node by node as written (the reference path).
// `input_values` holds the inputs the plan is specialized on (their values become constants).
// Constant weights that every reader packed at prepare (KernelInfo::packed_inputs) are dropped
// from the plan's graph. `weight_only_activations` (SessionOptions) is set as the attribute
// "weight_only_activations" ("int16") of the weight-only nibble.QConv / nibble.QMatMul nodes.
std::shared_ptr<const Plan> build_plan(const Graph& graph,
                                       const std::map<std::string, Shape>& input_shapes,
                                       const std::map<std::string, Tensor>& input_values,
                                       bool optimize, size_t max_tensor_bytes, ThreadPool& pool,
                                       WeightOnlyActivations weight_only_activations =
                                           WeightOnlyActivations::Float);

// Runs the plan. `inputs[i]` is bound to graph.inputs[i] (already validated).
// Returns a tensor per graph output, in graph order. With `step_seconds`, also the wall time of
// each step (output allocation, compute and release), indexed like plan.steps.
std::vector<Tensor> execute_plan(const Plan& plan, const std::vector<const Tensor*>& inputs,
                                 ThreadPool& pool, std::vector<double>* step_seconds = nullptr);

}  // namespace nibble
