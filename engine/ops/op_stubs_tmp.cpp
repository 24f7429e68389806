// TEMPORARY: weak no-op registrations until every op family file lands. Delete when all exist.
#include "engine/ops/op_registry.h"
#include "engine/passes/passes.h"
namespace nibble {
__attribute__((weak)) void register_elementwise_ops(OpRegistry&) {}
__attribute__((weak)) void register_reduce_ops(OpRegistry&) {}
__attribute__((weak)) void register_tensor_ops(OpRegistry&) {}
__attribute__((weak)) void register_nn_ops(OpRegistry&) {}
__attribute__((weak)) void register_quant_ops(OpRegistry&) {}
__attribute__((weak)) void register_control_ops(OpRegistry&) {}
__attribute__((weak)) void fuse_conv_epilogues(Graph&) {}
}
