#include <optional>
#include <string>

#include <pybind11/stl.h>

#include "arrays.h"
#include "bindings.h"
#include "blockprop/gemm.h"
#include "blockprop/isa.h"
#include "blockprop/threading.h"

namespace blockprop {
namespace bind {

namespace {

// a as an array the GEMM can read through strides: copied when its strides are not whole
// elements, when it is misaligned or when it overlaps the output.
py::array readable(py::array a, const py::array* out) {
  index_t rs, cs;
  if (!element_strides(a, &rs, &cs) || !aligned(a) || (out && may_overlap(a, *out)))
    a = fresh_copy(a);
  return a;
}

py::array gemm_py(py::handle a_obj, py::handle b_obj, bool trans_a, bool trans_b, double alpha,
                  double beta, py::handle out_obj, bool bf16) {
  const char* fn = "gemm";
  py::array a = float_array(a_obj, fn, "a");
  py::array b = float_array(b_obj, fn, "b");
  check_ndim(fn, a, "a", 2);
  check_ndim(fn, b, "b", 2);
  check_same_dtype(fn, a, "a", b, "b");
  const Precision precision = precision_for(fn, a, bf16);
  const index_t m = trans_a ? a.shape(1) : a.shape(0), ka = trans_a ? a.shape(0) : a.shape(1);
  const index_t kb = trans_b ? b.shape(1) : b.shape(0), n = trans_b ? b.shape(0) : b.shape(1);
  if (ka != kb) {
    throw py::value_error("gemm: op(a) is " + std::to_string(m) + "×" + std::to_string(ka) +
                          " (a has shape " + shape_str(a) + ", trans_a=" + (trans_a ? "True" : "False") +
                          ") but op(b) is " + std::to_string(kb) + "×" + std::to_string(n) +
                          " (b has shape " + shape_str(b) + ", trans_b=" + (trans_b ? "True" : "False") +
                          "): inner dimensions differ");
  }
  py::array out;
  if (out_obj.is_none()) {
    out = py::array(a.dtype(), std::vector<py::ssize_t>{m, n});
    beta = 0.0;  // a fresh output holds nothing to scale
  } else {
    if (!py::isinstance<py::array>(out_obj)) throw py::type_error("gemm: out must be a NumPy array");
    out = py::reinterpret_borrow<py::array>(out_obj);
    if (!out.dtype().equal(a.dtype()))
      throw py::type_error("gemm: out must have dtype " + py::str(a.dtype()).cast<std::string>() +
                           ", got " + py::str(out.dtype()).cast<std::string>());
    check_shape(fn, out, "out", {m, n});
    if (!out.writeable()) throw py::value_error("gemm: out is read-only");
    if (!aligned(out)) throw py::value_error("gemm: out must be aligned to its item size (it is written in place)");
    index_t rs, cs;
    if (!element_strides(out, &rs, &cs)) throw py::value_error("gemm: out has strides that are not whole elements");
    // Two output elements at one address (a broadcast view) would be written twice. An empty out
    // has no elements (NumPy gives empty arrays zero strides): nothing to check.
    if (m > 0 && n > 0 && ((m > 1 && out.strides(0) == 0) || (n > 1 && out.strides(1) == 0)))
      throw py::value_error("gemm: out must not have zero strides (a broadcast view)");
  }
  a = readable(a, &out);
  b = readable(b, &out);
  dispatch_float(a, [&](auto tag) {
    using T = decltype(tag);
    index_t rsa, csa, rsb, csb, rsc, csc;
    element_strides(a, &rsa, &csa);
    element_strides(b, &rsb, &csb);
    element_strides(out, &rsc, &csc);
    if (trans_a) std::swap(rsa, csa);
    if (trans_b) std::swap(rsb, csb);
    const T* ap = static_cast<const T*>(a.data());
    const T* bp = static_cast<const T*>(b.data());
    T* cp = static_cast<T*>(out.mutable_data());
    py::gil_scoped_release release;
    gemm<T>(precision, m, n, ka, T(alpha), ap, rsa, csa, bp, rsb, csb, T(beta), cp, rsc, csc);
    return 0;
  });
  return out;
}

// The plan the GEMM of this shape would run on the active instruction set, as a dict (see
// GemmPlan): for tests that check which branch a shape takes. lda/ldb default to contiguous.
py::dict gemm_plan_py(index_t m, index_t n, index_t k, bool trans_a, bool trans_b,
                      py::object dtype_obj, std::optional<int> threads,
                      std::optional<index_t> lda, std::optional<index_t> ldb) {
  if (m < 0 || n < 0 || k < 0) throw py::value_error("gemm_plan: m, n and k must be >= 0");
  const py::dtype dt = py::dtype::from_args(dtype_obj);
  const bool f32 = dt.equal(py::dtype::of<float>());
  if (!f32 && !dt.equal(py::dtype::of<double>()))
    throw py::type_error("gemm_plan: dtype must be float32 or float64");
  const int nt = threads ? *threads : get_num_threads();
  if (nt < 1) throw py::value_error("gemm_plan: threads must be >= 1");
  const index_t la = lda ? *lda : (trans_a ? m : k), lb = ldb ? *ldb : (trans_b ? k : n);
  const index_t rsa = trans_a ? 1 : la, csa = trans_a ? la : 1;
  const index_t rsb = trans_b ? 1 : lb, csb = trans_b ? lb : 1;
  const GemmPlan p = f32 ? gemm_plan<float>(m, n, k, rsa, csa, rsb, csb, nt)
                         : gemm_plan<double>(m, n, k, rsa, csa, rsb, csb, nt);
  py::dict d;
  d["isa"] = isa_name(active_isa());
  d["strategy"] = gemm_strategy_name(p.strategy);
  d["threads"] = p.threads;
  d["mr"] = p.mr;
  d["nr"] = p.nr;
  d["mc"] = p.mc;
  d["kc"] = p.kc;
  d["nc"] = p.nc;
  d["b_in_place"] = p.b_in_place;
  d["a_in_place"] = p.a_in_place;
  d["a_in_place_cols"] = p.a_in_place_cols;
  d["split_n"] = p.split_n;
  d["chunks"] = p.chunks;
  d["chunk_size"] = p.chunk_size;
  d["strip_rows"] = p.shared.strip_rows;
  d["strips"] = p.shared.strips;
  d["group_cols"] = p.shared.group_cols;
  d["groups"] = p.shared.groups;
  d["share_a"] = p.shared.share_a;
  d["block_cols"] = p.block_cols;
  d["blocks"] = p.blocks;
  return d;
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("gemm", &gemm_py, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
        py::arg("out") = py::none(), py::arg("bf16") = false);
  m.def("gemm_plan", &gemm_plan_py, py::arg("m"), py::arg("n"), py::arg("k"),
        py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("dtype") = "float32",
        py::arg("threads") = py::none(), py::arg("lda") = py::none(), py::arg("ldb") = py::none());
}

}  // namespace bind
}  // namespace blockprop
