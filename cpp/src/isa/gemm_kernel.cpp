// Blocked GEMM driver (BLIS loop order jc → pc → ic → ir → jr), one build per instruction set.
// Threads split the packing and the grid of micro-tiles; each element of C is summed by one
// thread in a fixed k order, so the result does not depend on the thread count.
#include "isa/isa_prelude.h"

#include <algorithm>

#include "blockprop/threading.h"
#include "isa/activation_math.h"
#include "isa/blocking.h"
#include "isa/gemm_microkernel.h"
#include "isa/gemm_pack.h"
#include "workspace.h"

namespace blockprop {
namespace BP_ISA_NS {
namespace {

inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// bias and activation on rows [0,mr) × cols [0,nr) of a finished block of C.
template <typename T>
void apply_epilogue(const Epilogue<T>& ep, T* c, index_t rsc, index_t csc, index_t mr,
                    index_t nr, index_t col0) {
  if (!ep.bias && ep.act == Activation::linear) return;
  for (index_t i = 0; i < mr; ++i) {
    T* row = c + i * rsc;
    if (ep.bias)
      for (index_t j = 0; j < nr; ++j) row[j * csc] += ep.bias[col0 + j];
    apply_activation(ep.act, row, nr, csc);
  }
}

// C = beta·C (C = 0 when beta is 0, whatever C held), then the epilogue: the k == 0 case.
template <typename T>
void scale_c(index_t m, index_t n, T beta, T* c, index_t rsc, index_t csc,
             const Epilogue<T>& ep) {
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      T& cij = c[i * rsc + j * csc];
      cij = beta != T(0) ? beta * cij : T(0);
    }
  apply_epilogue(ep, c, rsc, csc, m, n, 0);
}

}  // namespace

template <typename T>
void gemm_blocked(index_t m, index_t n, index_t k, T alpha, const T* a, index_t rsa, index_t csa,
                  const T* b, index_t rsb, index_t csb, T beta, T* c, index_t rsc, index_t csc,
                  const Epilogue<T>& ep) {
  using Blk = blocking::BP_ISA_NS<T>;
  constexpr int MR = Blk::MR, NR = Blk::NR;
  constexpr index_t KC = Blk::KC, MC = Blk::MC, NC = Blk::NC;
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) return scale_c(m, n, beta, c, rsc, csc, ep);

  const index_t mc_max = std::min(MC, ceil_div(m, MR) * MR);
  const index_t nc_max = std::min(NC, ceil_div(n, NR) * NR);
  const index_t kc_max = std::min(KC, k);
  T* abuf = static_cast<T*>(thread_workspace(kPackA, sizeof(T) * mc_max * kc_max));
  T* bbuf = static_cast<T*>(thread_workspace(kPackB, sizeof(T) * nc_max * kc_max));

  const index_t work = m * n * k;
  const int nt = static_cast<int>(
      std::max<index_t>(1, std::min<index_t>(get_num_threads(), work / blocking::kMinWorkPerThread)));

#pragma omp parallel num_threads(nt) if (nt > 1)
  for (index_t jc = 0; jc < n; jc += NC) {
    const index_t nc = std::min(NC, n - jc);
    const index_t n_jr = ceil_div(nc, NR);
    for (index_t pc = 0; pc < k; pc += KC) {
      const index_t kc = std::min(KC, k - pc);
      const T beta_pc = pc == 0 ? beta : T(1);  // later k slices add to the partial sums
      const bool last_pc = pc + kc == k;

#pragma omp for schedule(static)
      for (index_t jr = 0; jr < n_jr; ++jr) {
        const index_t j0 = jc + jr * NR;
        pack_b_panel<T, NR>(kc, std::min<index_t>(NR, n - j0), b + pc * rsb + j0 * csb, rsb, csb,
                            bbuf + jr * NR * kc);
      }

      for (index_t ic = 0; ic < m; ic += MC) {
        const index_t mc = std::min(MC, m - ic);
        const index_t n_ir = ceil_div(mc, MR);

#pragma omp for schedule(static)
        for (index_t ir = 0; ir < n_ir; ++ir) {
          const index_t i0 = ic + ir * MR;
          pack_a_panel<T, MR>(std::min<index_t>(MR, m - i0), kc, a + i0 * rsa + pc * csa, rsa,
                              csa, abuf + ir * MR * kc);
        }

        // Tiles in ir-major order: a thread's run of tiles reuses its A micro-panel from L1.
#pragma omp for schedule(static)
        for (index_t t = 0; t < n_ir * n_jr; ++t) {
          const index_t ir = t / n_jr, jr = t % n_jr;
          const index_t i0 = ic + ir * MR, j0 = jc + jr * NR;
          const index_t mr = std::min<index_t>(MR, m - i0), nr = std::min<index_t>(NR, n - j0);
          T* ct = c + i0 * rsc + j0 * csc;
          micro_kernel<T, MR, NR>(kc, abuf + ir * MR * kc, bbuf + jr * NR * kc, alpha, beta_pc,
                                  ct, rsc, csc, mr, nr);
          if (last_pc) apply_epilogue(ep, ct, rsc, csc, mr, nr, j0);
        }
      }
    }
  }
}

template void gemm_blocked<float>(index_t, index_t, index_t, float, const float*, index_t,
                                  index_t, const float*, index_t, index_t, float, float*, index_t,
                                  index_t, const Epilogue<float>&);
template void gemm_blocked<double>(index_t, index_t, index_t, double, const double*, index_t,
                                   index_t, const double*, index_t, index_t, double, double*,
                                   index_t, index_t, const Epilogue<double>&);

}  // namespace BP_ISA_NS
}  // namespace blockprop
