#include "bindings.h"

namespace blockprop {
namespace bind {

void bind_losses(pybind11::module_&) {}

}  // namespace bind
}  // namespace blockprop
