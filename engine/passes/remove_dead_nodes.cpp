#include "engine/passes/passes.h"

namespace nibble {

void remove_dead_nodes(Graph& graph) {
  std::vector<bool> live_value(graph.values.size(), false);
  for (ValueId v : graph.outputs) live_value[size_t(v)] = true;
  std::vector<bool> keep(graph.nodes.size(), false);
  // Nodes are topologically sorted: walk backwards, marking what live nodes read.
  for (size_t k = graph.nodes.size(); k-- > 0;) {
    const Node& node = graph.nodes[k];
    bool needed = false;
    for (ValueId v : node.outputs) {
      // A folded output is read from its constant; the node itself is no longer needed.
      if (v != kNoValue && live_value[size_t(v)] && !graph.values[size_t(v)].constant) needed = true;
    }
    if (!needed) continue;
    keep[k] = true;
    for (ValueId v : node.inputs) {
      if (v != kNoValue) live_value[size_t(v)] = true;
    }
  }
  std::vector<Node> kept;
  for (size_t k = 0; k < graph.nodes.size(); ++k) {
    if (keep[k]) kept.push_back(std::move(graph.nodes[k]));
  }
  graph.nodes = std::move(kept);
  for (Value& v : graph.values) v.producer = -1;
  for (size_t k = 0; k < graph.nodes.size(); ++k) {
    for (ValueId v : graph.nodes[k].outputs) {
      if (v != kNoValue) graph.values[size_t(v)].producer = int32_t(k);
    }
  }
}

}  // namespace nibble
