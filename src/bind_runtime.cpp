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
  m.def("bf16_path", []() { return std::string(bf16_path_name(active_bf16_path())); });
  m.def("best_bf16_path", []() { return std::string(bf16_path_name(best_bf16_path())); });
  m.def("supported_bf16_paths", []() {
    py::list out;
    for (Bf16Path p : {Bf16Path::portable, Bf16Path::avx512_bf16, Bf16Path::amx})
      if (bf16_path_supported(p)) out.append(bf16_path_name(p));
    return out;
  });
  m.def("set_bf16_path", [](const std::string& name) {
    Bf16Path path;
    if (!parse_bf16_path(name.c_str(), &path))
      throw py::value_error("unknown bfloat16 path '" + name +
                            "' (expected 'portable', 'avx512_bf16' or 'amx')");
    if (!set_bf16_path(path))
      throw py::value_error("bfloat16 path '" + name + "' is not supported on this CPU (best: '" +
                            bf16_path_name(best_bf16_path()) + "')");
  });
  m.def("set_num_threads", [](int n) {
    if (n < 0) throw py::value_error("set_num_threads: n must be >= 1, or 0 for the default, got " + std::to_string(n));
    set_num_threads(n);
  });
  m.def("get_num_threads", []() { return get_num_threads(); });
  m.def("set_thread_limit", [](int n) { set_thread_limit(n); },
        "Caps the kernel threads of calls made from the calling thread (n <= 0: no cap).");
  m.def("thread_limit", []() { return thread_limit(); });
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
