// The bfloat16 GEMM driver (gemm_bf16 in gemm.h), one build per instruction set: C = alpha·
// bf16(A)·bf16(B) + beta·C, rounding each operand to bf16 as it is packed (no pass of its own).
// A path is a policy (the packed element, its tile, how it packs and multiplies); the loops are
// the same for all: per column block (B̃ ≤ 16 MiB) and k slice (KC), B̃ packed once and shared by
// the threads; the threads take chunks of C (row strips of at most MC rows × column groups), each
// packing its strip's rows of Ã, then NC-wide blocks of B̃ (in L2), each MR-row panel of Ã
// sweeping its NR-column panels. Every element of C
// is summed by one thread in a fixed order: the result does not depend on the thread count.
#include "isa/isa_prelude.h"

#include <algorithm>

#include "blockprop/threading.h"
#include "isa/blocking.h"
#include "isa/gemm_epilogue.h"
#include "isa/gemm_microkernel.h"
#include "isa/gemm_plan.h"
#include "workspace.h"
#if BP_VEC_BYTES == 64
#include "isa_bf16/bf16_kernels.h"
#endif

namespace blockprop {
namespace BP_ISA_NS {
namespace {

// x rounded to the nearest bfloat16 (ties to even), kept in float: add half a bf16 ulp (0x7FFF,
// plus the kept last bit), drop the low 16 bits. NaN stays NaN (quieted).
inline float round_bf16(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u)
    u = (u | 0x00400000u) & 0xFFFF0000u;
  else
    u = (u + 0x7FFFu + ((u >> 16) & 1)) & 0xFFFF0000u;
  std::memcpy(&x, &u, 4);
  return x;
}

// The portable path: panels of float32 holding bf16 values, the float32 micro-kernel (a product
// of two bf16 values is exact in float32, so it computes the bf16 products themselves).
struct Portable {
  using P = float;
  static constexpr int MR = blocking::BP_ISA_NS<float>::MR, NR = blocking::BP_ISA_NS<float>::NR;
  static constexpr index_t KSTEP = 1, KC = blocking::BP_ISA_NS<float>::KC;
  static constexpr index_t MC = blocking::BP_ISA_NS<float>::MC, NC = blocking::BP_ISA_NS<float>::NC;
  static void begin() {}
  static void end() {}
  // dst[p·MR + i] = bf16(A(i, p)), zero rows past mr.
  static void pack_a(index_t mr, index_t kc, const float* a, index_t rsa, index_t csa, P* dst,
                     index_t) {
    for (index_t p = 0; p < kc; ++p)
      for (index_t i = 0; i < MR; ++i) dst[p * MR + i] = i < mr ? round_bf16(a[i * rsa + p * csa]) : 0.0f;
  }
  // dst[p·NR + j] = bf16(B(p, j)), zero columns past nr.
  static void pack_b(index_t kc, index_t nr, const float* b, index_t rsb, index_t csb, P* dst,
                     index_t) {
    if (rsb == 1) {  // B = Wᵀ: a column of B is contiguous
      for (index_t j = 0; j < NR; ++j)
        for (index_t p = 0; p < kc; ++p) dst[p * NR + j] = j < nr ? round_bf16(b[j * csb + p]) : 0.0f;
      return;
    }
    for (index_t p = 0; p < kc; ++p)
      for (index_t j = 0; j < NR; ++j) dst[p * NR + j] = j < nr ? round_bf16(b[p * rsb + j * csb]) : 0.0f;
  }
  static void kernel(index_t kc, const P* a, const P* b, float alpha, float beta, float* c,
                     index_t rsc, index_t csc, index_t mr, index_t nr) {
    micro_kernel<float, MR, NR>(kc, a, 0, b, alpha, beta, c, rsc, csc, mr, nr);
  }
};

#if BP_VEC_BYTES == 64
// AVX512-BF16: panels of bf16 in pairs of k, VDPBF16PS (isa_bf16/gemm_bf16_avx512.cpp).
struct Dpbf16 {
  using P = bf16::bf16_t;
  static constexpr int MR = blocking::avx512_bf16::MR, NR = blocking::avx512_bf16::NR;
  static constexpr index_t KSTEP = 2, KC = blocking::avx512_bf16::KC;
  static constexpr index_t MC = blocking::avx512_bf16::MC, NC = blocking::avx512_bf16::NC;
  static void begin() {}
  static void end() {}
  static void pack_a(index_t mr, index_t kc, const float* a, index_t rsa, index_t csa, P* dst,
                     index_t kp) {
    bf16::pack_a_pairs(mr, kc, a, rsa, csa, dst, kp);
  }
  static void pack_b(index_t kc, index_t nr, const float* b, index_t rsb, index_t csb, P* dst,
                     index_t kp) {
    bf16::pack_b_pairs(kc, nr, b, rsb, csb, dst, kp);
  }
  static void kernel(index_t kp, const P* a, const P* b, float alpha, float beta, float* c,
                     index_t rsc, index_t csc, index_t mr, index_t nr) {
    bf16::kernel_dpbf16(kp, a, b, alpha, beta, c, rsc, csc, mr, nr);
  }
};

// AMX: Ã in tile order, B̃ as for AVX512-BF16, TDPBF16PS on 32×32 blocks of C
// (isa_bf16/gemm_bf16_amx.cpp). Each thread loads the tile configuration for its chunk.
struct Amx {
  using P = bf16::bf16_t;
  static constexpr int MR = blocking::amx_bf16::MR, NR = blocking::amx_bf16::NR;
  static constexpr index_t KSTEP = blocking::amx_bf16::KSTEP, KC = blocking::amx_bf16::KC;
  static constexpr index_t MC = blocking::amx_bf16::MC, NC = blocking::amx_bf16::NC;
  static void begin() { bf16::amx_begin(); }
  static void end() { bf16::amx_end(); }
  static void pack_a(index_t mr, index_t kc, const float* a, index_t rsa, index_t csa, P* dst,
                     index_t kp) {
    bf16::pack_a_amx(mr, kc, a, rsa, csa, dst, kp);
  }
  static void pack_b(index_t kc, index_t nr, const float* b, index_t rsb, index_t csb, P* dst,
                     index_t kp) {
    bf16::pack_b_pairs(kc, nr, b, rsb, csb, dst, kp);
  }
  static void kernel(index_t kp, const P* a, const P* b, float alpha, float beta, float* c,
                     index_t rsc, index_t csc, index_t mr, index_t nr) {
    bf16::kernel_amx(kp, a, b, alpha, beta, c, rsc, csc, mr, nr);
  }
};
#endif

// Columns [col0, col0 + n) of C (the bias's columns there too) over k slices: see the file's top.
template <class K>
void run_columns(index_t m, index_t n, index_t k, float alpha, const float* a, index_t rsa,
                 index_t csa, const float* b, index_t rsb, index_t csb, float beta, float* c,
                 index_t rsc, index_t csc, const Epilogue<float>& ep, index_t col0, int nt) {
  using P = typename K::P;
  constexpr int MR = K::MR, NR = K::NR;
  constexpr index_t NC = K::NC;
  static_assert(NC % NR == 0, "NC must be a whole number of micro-panels");
  // k in equal slices of at most KC, each padded to the path's k step with zeros.
  const index_t slices = ceil_div(k, K::KC), KC = ceil_div(ceil_div(k, slices), K::KSTEP) * K::KSTEP;
  const index_t m_panels = ceil_div(m, MR), n_panels = ceil_div(n, NR), n_pad = n_panels * NR;
  // Chunks: row strips (no taller than MC, which bounds each thread's Ã), and column groups too
  // when there are too few strips to share out.
  const index_t target = nt == 1 ? 1 : nt * blocking::kChunksPerThread;
  const index_t strips = std::max(std::min(m_panels, target), ceil_div(m_panels, K::MC / MR));
  const index_t strip_rows = ceil_div(m_panels, strips) * MR;
  const index_t n_strips = ceil_div(m, strip_rows);
  const index_t groups = std::min(n_panels, ceil_div(target, n_strips));
  const index_t group_cols = ceil_div(n_panels, groups) * NR, n_groups = ceil_div(n, group_cols);

  P* bp = static_cast<P*>(thread_workspace(kSharedB, sizeof(P) * KC * n_pad));
  for (index_t pc = 0; pc < k; pc += KC) {
    const index_t kc = std::min(KC, k - pc);
    const index_t kp = ceil_div(kc, K::KSTEP) * K::KSTEP;
    const float beta_s = pc == 0 ? beta : 1.0f;  // later slices add to the partial sums
    const bool last = pc + KC >= k;
    auto pack_b = [&](index_t jr) {
      const index_t j0 = jr * NR;
      K::pack_b(kc, std::min<index_t>(NR, n - j0), b + pc * rsb + j0 * csb, rsb, csb,
                bp + j0 * kp, kp);
    };
    parallel_for(n_panels, n_panels * kp * NR >= blocking::kMinParallelElements ? nt : 1, pack_b);
    auto chunk = [&](index_t t) {
      const index_t i0 = (t / n_groups) * strip_rows, mc = std::min(strip_rows, m - i0);
      const index_t j0 = (t % n_groups) * group_cols, nc = std::min(group_cols, n - j0);
      P* ap = static_cast<P*>(thread_workspace(kPackA, sizeof(P) * strip_rows * kp));
      for (index_t ir = 0; ir * MR < mc; ++ir)
        K::pack_a(std::min<index_t>(MR, mc - ir * MR), kc, a + (i0 + ir * MR) * rsa + pc * csa,
                  rsa, csa, ap + ir * MR * kp, kp);
      K::begin();
      for (index_t jc = j0; jc < j0 + nc; jc += NC) {
        const index_t jend = std::min(jc + NC, j0 + nc);
        for (index_t ir = 0; ir * MR < mc; ++ir) {
          const index_t i = i0 + ir * MR, mr = std::min<index_t>(MR, m - i);
          for (index_t j = jc; j < jend; j += NR) {
            const index_t nr = std::min<index_t>(NR, n - j);
            float* ct = c + i * rsc + j * csc;
            K::kernel(kp, ap + ir * MR * kp, bp + j * kp, alpha, beta_s, ct, rsc, csc, mr, nr);
            if (last) apply_epilogue(ep, ct, rsc, csc, mr, nr, col0 + j);
          }
        }
      }
      K::end();
    };
    parallel_for(n_strips * n_groups, nt, chunk);
  }
}

// All of C: column blocks whose B̃ (one k slice of them) is at most kMaxSharedPackBytes, each
// summed over every k slice in order, so the result is the same whatever the blocks.
template <class K>
void run(index_t m, index_t n, index_t k, float alpha, const float* a, index_t rsa, index_t csa,
         const float* b, index_t rsb, index_t csb, float beta, float* c, index_t rsc, index_t csc,
         const Epilogue<float>& ep) {
  const int nt = static_cast<int>(std::max<index_t>(
      1, std::min<index_t>(get_num_threads(), m * n * k / blocking::kMinWorkPerThread)));
  const index_t slice_bytes = index_t(sizeof(typename K::P)) * std::min(k + K::KSTEP, K::KC);
  const index_t cols = std::max<index_t>(
      K::NC, blocking::kMaxSharedPackBytes / slice_bytes / K::NC * K::NC);
  for (index_t j = 0; j < n; j += cols)
    run_columns<K>(m, std::min(cols, n - j), k, alpha, a, rsa, csa, b + j * csb, rsb, csb, beta,
                   c + j * csc, rsc, csc, ep, j, nt);
}

}  // namespace

void gemm_bf16_blocked(Bf16Path path, index_t m, index_t n, index_t k, float alpha, const float* a,
                       index_t rsa, index_t csa, const float* b, index_t rsb, index_t csb,
                       float beta, float* c, index_t rsc, index_t csc,
                       const Epilogue<float>& ep) {
  if (m <= 0 || n <= 0) return;
  // No products: C = beta·C and the epilogue, as the float32 GEMM does it.
  if (k <= 0) return gemm_blocked<float>(m, n, 0, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, ep);
#if BP_VEC_BYTES == 64
  if (path == Bf16Path::amx)
    return run<Amx>(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, ep);
  if (path == Bf16Path::avx512_bf16)
    return run<Dpbf16>(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, ep);
#endif
  (void)path;
  run<Portable>(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, ep);
}

}  // namespace BP_ISA_NS
}  // namespace blockprop
