#include "bindings.h"

#include <string>

#include "blockprop/isa.h"
#include "blockprop/peak.h"
#include "blockprop/threading.h"

namespace blockprop {
namespace bind {

namespace py = pybind11;

void bind_runtime(py::module_& m) {
  m.def("isa", []() { return std::string(isa_name(active_isa())); });
  m.def("best_isa", []() { return std::string(isa_name(best_isa())); });
  m.def("supported_isas", []() {
    py::list out;
    for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
      if (isa_supported(isa)) out.append(isa_name(isa));
    return out;
  });
  m.def("set_isa", [](const std::string& name) {
    Isa isa;
    if (!parse_isa(name.c_str(), &isa))
      throw py::value_error("unknown instruction set '" + name +
                            "' (expected 'generic', 'avx2' or 'avx512')");
    if (!set_active_isa(isa))
      throw py::value_error("instruction set '" + name + "' is not supported on this CPU (best: '" +
                            isa_name(best_isa()) + "')");
  });
  m.def("set_num_threads", [](int n) {
    if (n < 0) throw py::value_error("set_num_threads: n must be >= 1, or 0 for the default, got " + std::to_string(n));
    set_num_threads(n);
  });
  m.def("get_num_threads", []() { return get_num_threads(); });
  m.def(
      "measure_fma_peak_gflops",
      [](bool float64, int threads, double seconds) {
        py::gil_scoped_release release;
        return measure_fma_peak_gflops(float64, threads, seconds);
      },
      py::arg("float64") = false, py::arg("threads") = 1, py::arg("seconds") = 0.5);
}

}  // namespace bind
}  // namespace blockprop
