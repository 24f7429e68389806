#include "engine/ir/graph.h"

namespace nibble {

namespace {

const Attribute& get(const Node& n, const std::string& key, Attribute::Kind kind,
                     const char* kind_name) {
  auto it = n.attrs.find(key);
  if (it == n.attrs.end()) {
    throw Error(ErrorKind::InvalidModel, n.describe() + ": missing attribute '" + key + "'");
  }
  if (it->second.kind != kind) {
    throw Error(ErrorKind::InvalidModel,
                n.describe() + ": attribute '" + key + "' must be " + kind_name);
  }
  return it->second;
}

}  // namespace

int64_t Node::attr_int(const std::string& key) const {
  return get(*this, key, Attribute::Kind::Int, "an int").i;
}
int64_t Node::attr_int(const std::string& key, int64_t fallback) const {
  return has_attr(key) ? attr_int(key) : fallback;
}
float Node::attr_float(const std::string& key) const {
  return get(*this, key, Attribute::Kind::Float, "a float").f;
}
float Node::attr_float(const std::string& key, float fallback) const {
  return has_attr(key) ? attr_float(key) : fallback;
}
std::string Node::attr_string(const std::string& key) const {
  return get(*this, key, Attribute::Kind::String, "a string").s;
}
std::string Node::attr_string(const std::string& key, const std::string& fallback) const {
  return has_attr(key) ? attr_string(key) : fallback;
}
std::vector<int64_t> Node::attr_ints(const std::string& key) const {
  return get(*this, key, Attribute::Kind::Ints, "a list of ints").ints;
}
std::vector<int64_t> Node::attr_ints(const std::string& key, std::vector<int64_t> fallback) const {
  return has_attr(key) ? attr_ints(key) : fallback;
}
std::vector<float> Node::attr_floats(const std::string& key) const {
  return get(*this, key, Attribute::Kind::Floats, "a list of floats").floats;
}
const Tensor& Node::attr_tensor(const std::string& key) const {
  return get(*this, key, Attribute::Kind::Tensor, "a tensor").t;
}

std::string Node::describe() const {
  std::string op = domain.empty() ? op_type : domain + "." + op_type;
  return op + " node '" + name + "'";
}

ValueId Graph::add_value(std::string name, DType dtype) {
  Value v;
  v.name = std::move(name);
  v.dtype = dtype;
  values.push_back(std::move(v));
  return static_cast<ValueId>(values.size() - 1);
}

ValueId Graph::find_value(const std::string& name) const {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i].name == name) return static_cast<ValueId>(i);
  }
  return kNoValue;
}

int64_t Graph::opset(const std::string& domain) const {
  auto it = opsets.find(domain);
  return it == opsets.end() ? 0 : it->second;
}

}  // namespace nibble
