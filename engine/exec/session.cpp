#include <algorithm>
#include <filesystem>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#if defined(__GLIBC__)
#include <malloc.h>  // malloc_trim
#endif

#include "engine/ops/op_registry.h"
#include "engine/passes/passes.h"
#include "engine/plan/plan.h"
#include "frontend/onnx/onnx_loader.h"
#include "nibble/nibble.h"

namespace nibble {

struct Session::Impl {
  SessionOptions options;
  Graph graph;  // as loaded, dead nodes removed; shapes are specialized per plan
  std::vector<TensorInfo> inputs;
  std::vector<TensorInfo> outputs;
  std::unique_ptr<ThreadPool> pool;

  // One plan per distinct set of input shapes (dynamic models get one per shape they see), and
  // per value of the inputs an op needs as constants (e.g. `axes` fed at run time).
  using PlanKey = std::pair<std::vector<Shape>, std::vector<std::string>>;
  mutable std::mutex plans_mutex;
  mutable std::map<PlanKey, std::shared_ptr<const Plan>> plans;
  mutable std::vector<bool> value_specialized;  // per graph input
  // Set when the load-time plan took over the weights it packed (see release_packed_weights):
  // `graph` can then plan no other input shapes.
  bool weights_released = false;

  // `values[i]` may be null when only shapes are known (planning at load, describe()); then an
  // input that must be a constant makes this throw ConstantInputRequired.
  std::shared_ptr<const Plan> plan_for(const std::vector<Shape>& shapes,
                                       const std::vector<const Tensor*>& values) const;
};

namespace {

bool is_constant_input(const Graph& graph, const std::string& name) {
  return std::find(graph.constant_inputs.begin(), graph.constant_inputs.end(), name) !=
         graph.constant_inputs.end();
}

// ONNX Runtime lets a caller override such an input; nibble has folded its initializer into the
// plan (BN parameters into the convolutions), so a value fed for it would be silently ignored.
Error constant_input_error(const std::string& name) {
  return Error(ErrorKind::InvalidArgument,
               "input '" + name + "' is a constant of the model: a graph input with an initializer "
               "(its default value), which nibble folds into the model at load; it cannot be fed "
               "at run time (edit the initializer in the model instead)");
}

// A model with static input shapes only ever runs the plan made at load, so the loaded graph need
// not keep the weights that plan packed: dropping them leaves one resident copy (the packed one).
void release_packed_weights(Graph& graph, const Plan& plan) {
  for (size_t v = 0; v < graph.values.size(); ++v) {
    std::optional<Tensor>& constant = graph.values[v].constant;
    const std::optional<Tensor>& planned = plan.graph.values[v].constant;
    if (constant && constant->numel() > 0 && (!planned || planned->raw() == nullptr)) {
      constant = Tensor::view(constant->dtype(), constant->shape(), static_cast<void*>(nullptr));
    }
  }
}

std::shared_ptr<Session::Impl> make_impl(Graph graph, const SessionOptions& options) {
  auto impl = std::make_shared<Session::Impl>();
  impl->options = options;
  int threads = options.num_threads > 0 ? options.num_threads
                                        : int(std::max(1u, std::thread::hardware_concurrency()));
  impl->pool = std::make_unique<ThreadPool>(threads);
  remove_dead_nodes(graph);
  // Unsupported operators are reported at load even when planning waits for the input shapes.
  for (const Node& node : graph.nodes) {
    if (!OpRegistry::instance().find(node.domain, node.op_type)) {
      const std::string op = node.domain.empty() ? node.op_type : node.domain + "." + node.op_type;
      throw Error(ErrorKind::Unsupported,
                  "unsupported operator " + op + " (node '" + node.name + "')");
    }
  }

  for (ValueId v : graph.inputs) {
    Value& val = graph.values[size_t(v)];
    auto fixed = options.input_shapes.find(val.name);
    if (fixed != options.input_shapes.end()) {
      if (val.shape && val.shape->size() != fixed->second.size()) {
        throw Error(ErrorKind::InvalidArgument, "input_shapes['" + val.name + "'] has rank " +
                                                    std::to_string(fixed->second.size()) +
                                                    ", the model declares " + shape_str(*val.shape));
      }
      val.shape = fixed->second;
    }
    impl->inputs.push_back({val.name, val.dtype, val.shape.value_or(Shape{})});
  }
  for (const auto& [name, shape] : options.input_shapes) {
    if (std::none_of(impl->inputs.begin(), impl->inputs.end(),
                     [&](const TensorInfo& t) { return t.name == name; })) {
      if (is_constant_input(graph, name)) throw constant_input_error(name);
      throw Error(ErrorKind::InvalidArgument, "input_shapes names unknown input '" + name + "'");
    }
  }
  impl->graph = std::move(graph);

  // Plan eagerly when every input shape is static, so model errors surface at load.
  bool all_static = true;
  std::vector<Shape> shapes;
  for (ValueId v : impl->graph.inputs) {
    const Value& val = impl->graph.values[size_t(v)];
    if (!val.shape || std::any_of(val.shape->begin(), val.shape->end(), [](int64_t d) { return d < 0; })) {
      all_static = false;
      break;
    }
    shapes.push_back(*val.shape);
  }
  impl->value_specialized.assign(impl->inputs.size(), false);
  std::shared_ptr<const Plan> plan;
  if (all_static) {
    try {
      plan = impl->plan_for(shapes, std::vector<const Tensor*>(shapes.size(), nullptr));
    } catch (const ConstantInputRequired&) {
      // Planned at the first run, when the input's value is known.
    }
    if (plan) {
      release_packed_weights(impl->graph, *plan);
      impl->weights_released = true;
#if defined(__GLIBC__)
      malloc_trim(0);  // hand the freed weights (and the parsed model) back to the OS
#endif
    }
  }

  for (ValueId v : impl->graph.outputs) {
    const Value& val = impl->graph.values[size_t(v)];
    TensorInfo info{val.name, val.dtype, {}};
    if (plan) {
      const Value& planned = plan->graph.values[size_t(v)];
      info.dtype = planned.dtype;
      info.shape = planned.shape.value_or(Shape{});
    }
    impl->outputs.push_back(info);
  }
  return impl;
}

}  // namespace

std::shared_ptr<const Plan> Session::Impl::plan_for(const std::vector<Shape>& shapes,
                                                    const std::vector<const Tensor*>& values) const {
  std::lock_guard<std::mutex> lock(plans_mutex);
  for (;;) {
    PlanKey key{shapes, std::vector<std::string>(shapes.size())};
    std::map<std::string, Tensor> constant_inputs;
    for (size_t i = 0; i < shapes.size(); ++i) {
      if (!value_specialized[i]) continue;
      const std::string& name = inputs[i].name;
      if (!values[i]) {
        throw ConstantInputRequired("input '" + name + "' is read as a constant; its value is needed to plan", {name});
      }
      key.second[i].assign(static_cast<const char*>(values[i]->raw()), values[i]->nbytes());
      constant_inputs.emplace(name, *values[i]);
    }
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
    if (weights_released) {
      std::string message = "the model has static input shapes and was planned for them at load (";
      for (const Shape& shape : plans.begin()->first.first) message += shape_str(shape);
      message += "); set SessionOptions::input_shapes to plan others";
      throw Error(ErrorKind::InvalidArgument, message);
    }
    std::map<std::string, Shape> named;
    for (size_t i = 0; i < shapes.size(); ++i) named[inputs[i].name] = shapes[i];
    bool optimize = options.optimization != OptimizationLevel::None;
    try {
      auto plan = build_plan(graph, named, constant_inputs, optimize, options.max_tensor_bytes, *pool,
                             options.weight_only_activations);
      plans.emplace(std::move(key), plan);
      return plan;
    } catch (const ConstantInputRequired& e) {
      bool newly_specialized = false;
      for (const std::string& name : e.inputs) {
        auto input = std::find_if(inputs.begin(), inputs.end(),
                                  [&](const TensorInfo& t) { return t.name == name; });
        size_t i = size_t(input - inputs.begin());
        if (input != inputs.end() && !value_specialized[i]) {
          value_specialized[i] = true;  // plan again, keyed by this input's value
          newly_specialized = true;
        }
      }
      if (!newly_specialized) throw;
    }
  }
}

Session Session::load(const std::string& path, const SessionOptions& options) {
  Graph graph = onnx_frontend::load_model_file(path, options.max_tensor_bytes);  // names the path
  try {
    return Session(make_impl(std::move(graph), options));
  } catch (const Error& e) {
    throw Error(e.kind(), path + ": " + e.what());
  }
}

Session Session::load_bytes(const void* data, size_t size, const SessionOptions& options,
                            const std::string& base_dir) {
  onnx_frontend::LoadOptions load;
  load.base_dir = base_dir;
  load.max_tensor_bytes = options.max_tensor_bytes;
  return Session(make_impl(onnx_frontend::load_model(data, size, load), options));
}

const std::vector<TensorInfo>& Session::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Session::outputs() const { return impl_->outputs; }
const SessionOptions& Session::options() const { return impl_->options; }

namespace {

NodeProfile profile_step(const Plan& plan, const PlanStep& step, double seconds) {
  const Graph& g = plan.graph;
  const Node& node = g.nodes[step.node];
  NodeProfile p;
  p.name = node.name;
  p.op_type = node.op_type;
  const KernelInfo& k = step.kernel;
  if (!k.family.empty()) p.kernel = k.family + " " + k.isa + (k.tile.empty() ? "" : " " + k.tile);
  for (ValueId v : node.inputs)
    p.input_shapes.push_back(v == kNoValue ? Shape{} : g.values[size_t(v)].shape.value_or(Shape{}));
  for (ValueId v : node.outputs)
    p.output_shapes.push_back(v == kNoValue ? Shape{} : g.values[size_t(v)].shape.value_or(Shape{}));
  p.seconds = seconds;
  return p;
}

std::vector<Tensor> run_plan(const Session::Impl& impl, const NamedTensors& inputs,
                             const std::vector<std::string>& output_names,
                             std::vector<NodeProfile>* profile) {
  std::vector<const Tensor*> bound(impl.inputs.size(), nullptr);
  for (const auto& [name, tensor] : inputs) {
    auto it = std::find_if(impl.inputs.begin(), impl.inputs.end(),
                           [&](const TensorInfo& t) { return t.name == name; });
    if (it == impl.inputs.end()) {
      if (is_constant_input(impl.graph, name)) throw constant_input_error(name);
      throw Error(ErrorKind::InvalidArgument, "the model has no input named '" + name + "'");
    }
    size_t i = size_t(it - impl.inputs.begin());
    if (bound[i]) throw Error(ErrorKind::InvalidArgument, "input '" + name + "' is given twice");
    if (tensor.dtype() != it->dtype) {
      throw Error(ErrorKind::InvalidArgument, "input '" + name + "' must be " +
                                                  dtype_name(it->dtype) + ", got " +
                                                  dtype_name(tensor.dtype()));
    }
    bool shape_ok = tensor.rank() == int64_t(it->shape.size());
    for (size_t d = 0; shape_ok && d < it->shape.size(); ++d) {
      shape_ok = it->shape[d] < 0 || it->shape[d] == tensor.shape()[d];
    }
    if (!shape_ok) {
      throw Error(ErrorKind::InvalidArgument, "input '" + name + "' must have shape " +
                                                  shape_str(it->shape) + ", got " +
                                                  shape_str(tensor.shape()));
    }
    if (tensor.numel() > 0 && tensor.raw() == nullptr) {
      throw Error(ErrorKind::InvalidArgument, "input '" + name + "' has no data");
    }
    bound[i] = &tensor;
  }
  std::vector<Shape> shapes;
  for (size_t i = 0; i < bound.size(); ++i) {
    if (!bound[i]) throw Error(ErrorKind::InvalidArgument, "missing input '" + impl.inputs[i].name + "'");
    shapes.push_back(bound[i]->shape());
  }
  std::shared_ptr<const Plan> plan = impl.plan_for(shapes, bound);
  std::vector<double> step_seconds;
  std::vector<Tensor> all =
      execute_plan(*plan, bound, *impl.pool, profile ? &step_seconds : nullptr);
  if (profile) {
    profile->clear();
    for (size_t k = 0; k < plan->steps.size(); ++k)
      profile->push_back(profile_step(*plan, plan->steps[k], step_seconds[k]));
  }
  if (output_names.empty()) return all;

  std::vector<Tensor> selected;
  for (const std::string& name : output_names) {
    auto it = std::find_if(impl.outputs.begin(), impl.outputs.end(),
                           [&](const TensorInfo& t) { return t.name == name; });
    if (it == impl.outputs.end()) {
      throw Error(ErrorKind::InvalidArgument, "the model has no output named '" + name + "'");
    }
    selected.push_back(all[size_t(it - impl.outputs.begin())]);
  }
  return selected;
}

}  // namespace

std::vector<Tensor> Session::run(const NamedTensors& inputs,
                                 const std::vector<std::string>& output_names) const {
  return run_plan(*impl_, inputs, output_names, nullptr);
}

std::vector<Tensor> Session::run_profiled(const NamedTensors& inputs,
                                          std::vector<NodeProfile>& profile) const {
  return run_plan(*impl_, inputs, {}, &profile);
}

std::string Session::describe(const std::map<std::string, Shape>& input_shapes) const {
  const Impl& impl = *impl_;
  std::vector<Shape> shapes;
  for (const TensorInfo& in : impl.inputs) {
    auto it = input_shapes.find(in.name);
    Shape s = it != input_shapes.end() ? it->second : in.shape;
    for (int64_t d : s) {
      if (d < 0) throw Error(ErrorKind::InvalidArgument, "input '" + in.name + "' needs a static shape");
    }
    shapes.push_back(s);
  }
  auto plan = impl.plan_for(shapes, std::vector<const Tensor*>(shapes.size(), nullptr));
  std::ostringstream os;
  const Graph& g = plan->graph;
  for (const PlanStep& step : plan->steps) {
    const Node& node = g.nodes[step.node];
    os << node.describe() << " ->";
    for (ValueId v : node.outputs) {
      if (v == kNoValue) continue;
      os << " " << g.values[size_t(v)].name << ":" << dtype_name(g.values[size_t(v)].dtype)
         << shape_str(*g.values[size_t(v)].shape);
    }
    const KernelInfo& k = step.kernel;
    if (!k.family.empty()) {
      os << "  [" << k.family << " " << k.isa << (k.tile.empty() ? "" : " " + k.tile);
      if (k.packed_weight_bytes) os << ", " << k.packed_weight_bytes << " B packed weights";
      os << "]";
    }
    if (!k.note.empty()) os << "  (" << k.note << ")";
    os << "\n";
  }
  return os.str();
}

}  // namespace nibble
