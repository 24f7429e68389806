#include "tools/nibble/quantize/gptq.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

namespace nibble::quantize {

namespace {

// Input columns sampled per layer and calibration run: enough for a well-conditioned H, cheap
// for the 640x640 feature maps of a detector's first layers.
constexpr int64_t kColumnsPerRun = 4096;

std::vector<int64_t> ints_attr(const onnx::NodeProto& node, const std::string& name,
                               std::vector<int64_t> fallback) {
  for (const auto& a : node.attribute())
    if (a.name() == name) return {a.ints().begin(), a.ints().end()};
  return fallback;
}

int64_t int_attr(const onnx::NodeProto& node, const std::string& name, int64_t fallback) {
  for (const auto& a : node.attribute())
    if (a.name() == name) return a.i();
  return fallback;
}

std::string string_attr(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute())
    if (a.name() == name) return a.s();
  return "";
}

const onnx::TensorProto* find_initializer(const onnx::GraphProto& graph, const std::string& name) {
  for (const auto& t : graph.initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

}  // namespace

HessianCollector::HessianCollector(const onnx::ModelProto& model,
                                   const std::vector<std::string>& layers) {
  const std::set<std::string> wanted(layers.begin(), layers.end());
  for (const auto& node : model.graph().node()) {
    if (node.output_size() == 0 || !wanted.count(node.output(0)) || node.input_size() < 2) continue;
    const onnx::TensorProto* w = find_initializer(model.graph(), node.input(1));
    if (!w) continue;
    Layer layer;
    layer.input = node.input(0);
    int64_t depth = 0, groups = 1;
    if (node.op_type() == "Conv" && w->dims_size() == 4) {
      const std::string auto_pad = string_attr(node, "auto_pad");
      if (!auto_pad.empty() && auto_pad != "NOTSET" && auto_pad != "VALID") continue;
      layer.conv = true;
      layer.group = groups = int_attr(node, "group", 1);
      layer.kernel_h = w->dims(2), layer.kernel_w = w->dims(3);
      const auto strides = ints_attr(node, "strides", {1, 1});
      const auto dilations = ints_attr(node, "dilations", {1, 1});
      const auto pads = auto_pad == "VALID" ? std::vector<int64_t>{0, 0, 0, 0}
                                            : ints_attr(node, "pads", {0, 0, 0, 0});
      if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4) continue;
      layer.stride_h = strides[0], layer.stride_w = strides[1];
      layer.dilation_h = dilations[0], layer.dilation_w = dilations[1];
      layer.pad_top = pads[0], layer.pad_left = pads[1], layer.pad_bottom = pads[2],
      layer.pad_right = pads[3];
      depth = w->dims(1) * w->dims(2) * w->dims(3);
    } else if ((node.op_type() == "MatMul" || (node.op_type() == "Gemm" && !int_attr(node, "transA", 0))) &&
               w->dims_size() == 2) {
      depth = node.op_type() == "Gemm" && int_attr(node, "transB", 0) ? w->dims(1) : w->dims(0);
    } else {
      continue;
    }
    layers_[node.output(0)] = layer;
    LayerHessian& h = hessians_[node.output(0)];
    h.depth = depth;
    h.groups.assign(size_t(groups), std::vector<double>(size_t(depth * depth), 0.0));
  }
}

std::vector<std::string> HessianCollector::input_tensors() const {
  std::vector<std::string> names;
  for (const auto& [key, layer] : layers_)
    if (std::find(names.begin(), names.end(), layer.input) == names.end()) names.push_back(layer.input);
  return names;
}

void HessianCollector::observe(const std::map<std::string, const Tensor*>& values) {
  for (const auto& [key, layer] : layers_) {
    auto it = values.find(layer.input);
    if (it == values.end() || it->second->dtype() != DType::F32) continue;
    const Tensor& x = *it->second;
    LayerHessian& h = hessians_[key];
    const int64_t depth = h.depth;
    const float* data = x.data<float>();
    if (!layer.conv) {
      if (x.rank() < 1 || x.shape().back() != depth) continue;
      const int64_t rows = x.numel() / std::max<int64_t>(depth, 1);
      const int64_t step = std::max<int64_t>(1, rows / kColumnsPerRun);
      Eigen::MatrixXf columns(depth, (rows + step - 1) / step);
      for (int64_t r = 0, c = 0; r < rows; r += step, ++c)
        for (int64_t k = 0; k < depth; ++k) columns(k, c) = data[r * depth + k];
      Eigen::Map<Eigen::MatrixXd> sum(h.groups[0].data(), depth, depth);
      sum += (columns * columns.transpose()).cast<double>();
      h.samples += columns.cols();
      continue;
    }
    if (x.rank() != 4) continue;
    const Shape& s = x.shape();
    const int64_t batch = s[0], channels = s[1], height = s[2], width = s[3];
    const int64_t channels_per_group = channels / layer.group;
    if (channels_per_group * layer.kernel_h * layer.kernel_w != depth) continue;
    const int64_t out_h = (height + layer.pad_top + layer.pad_bottom -
                           layer.dilation_h * (layer.kernel_h - 1) - 1) / layer.stride_h + 1;
    const int64_t out_w = (width + layer.pad_left + layer.pad_right -
                           layer.dilation_w * (layer.kernel_w - 1) - 1) / layer.stride_w + 1;
    const int64_t positions = batch * out_h * out_w;
    if (out_h <= 0 || out_w <= 0) continue;
    const int64_t step = std::max<int64_t>(1, positions / kColumnsPerRun);
    const int64_t sampled = (positions + step - 1) / step;
    Eigen::MatrixXf columns(depth, sampled);
    for (int64_t g = 0; g < layer.group; ++g) {
      for (int64_t p = 0, c = 0; p < positions; p += step, ++c) {
        const int64_t b = p / (out_h * out_w), oy = p / out_w % out_h, ox = p % out_w;
        int64_t k = 0;
        for (int64_t ci = 0; ci < channels_per_group; ++ci) {
          const float* plane = data + ((b * channels) + g * channels_per_group + ci) * height * width;
          for (int64_t ky = 0; ky < layer.kernel_h; ++ky) {
            const int64_t iy = oy * layer.stride_h - layer.pad_top + ky * layer.dilation_h;
            for (int64_t kx = 0; kx < layer.kernel_w; ++kx, ++k) {
              const int64_t ix = ox * layer.stride_w - layer.pad_left + kx * layer.dilation_w;
              columns(k, c) = iy >= 0 && iy < height && ix >= 0 && ix < width ? plane[iy * width + ix] : 0.0f;
            }
          }
        }
      }
      Eigen::Map<Eigen::MatrixXd> sum(h.groups[size_t(g)].data(), depth, depth);
      sum += (columns * columns.transpose()).cast<double>();
    }
    h.samples += sampled;
  }
}

std::vector<int8_t> gptq_round(const float* w, int64_t rows, int64_t depth, int64_t row_stride,
                               int64_t col_stride, const std::vector<double>& hessian,
                               const float* scales, int qmin, int qmax) {
  // Columns in decreasing order of H's diagonal: the most used inputs are rounded first, while
  // the most columns remain to absorb their error.
  Eigen::Map<const Eigen::MatrixXd> h_in(hessian.data(), depth, depth);
  std::vector<int64_t> order(static_cast<size_t>(depth));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return h_in(a, a) > h_in(b, b); });
  Eigen::MatrixXd h(depth, depth);
  Eigen::MatrixXd weights(rows, depth);
  for (int64_t i = 0; i < depth; ++i) {
    for (int64_t j = 0; j < depth; ++j) h(i, j) = h_in(order[size_t(i)], order[size_t(j)]);
    for (int64_t r = 0; r < rows; ++r) weights(r, i) = w[r * row_stride + order[size_t(i)] * col_stride];
  }
  // Inputs that were always 0 carry no information: their weights are free to round to 0.
  for (int64_t i = 0; i < depth; ++i) {
    if (h(i, i) == 0) {
      h(i, i) = 1;
      weights.col(i).setZero();
    }
  }
  h.diagonal().array() += 0.001 * h.diagonal().mean();
  const Eigen::LLT<Eigen::MatrixXd> h_factor(h);
  if (h_factor.info() != Eigen::Success) return {};
  const Eigen::LLT<Eigen::MatrixXd> inverse_factor(h_factor.solve(Eigen::MatrixXd::Identity(depth, depth)));
  if (inverse_factor.info() != Eigen::Success) return {};
  const Eigen::MatrixXd u = inverse_factor.matrixU();

  std::vector<int8_t> q(static_cast<size_t>(rows * depth));
  Eigen::VectorXd error(rows);
  for (int64_t i = 0; i < depth; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      const double s = scales[r];
      const double v = std::clamp(std::nearbyint(weights(r, i) / s), double(qmin), double(qmax));
      q[size_t(r * depth + order[size_t(i)])] = static_cast<int8_t>(v);
      error(r) = (weights(r, i) - v * s) / u(i, i);
    }
    if (i + 1 < depth)
      weights.rightCols(depth - i - 1).noalias() -= error * u.row(i).tail(depth - i - 1);
  }
  return q;
}

}  // namespace nibble::quantize
