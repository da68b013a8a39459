// Blocked GEMM driver, one build per instruction set: executes the plan of gemm_plan.cpp.
// Threads split the packing and the grid of micro-tiles; each element of C is summed by one
// thread in a fixed k order, so the result does not depend on the thread count.
// One thread's loops: gemm_serial (m by MC) → loop_k (k by KC, packs Ã) → loop_n (n by NC,
// packs B̃) → macro_kernel (MR-row panels of Ã × NR-column panels of B̃) → micro_tile → micro_kernel.
#include "isa/isa_prelude.h"

#include <algorithm>
#include <cmath>

#include "blockprop/threading.h"
#include "isa/activation_math.h"
#include "isa/blocking.h"
#include "isa/gemm_epilogue.h"
#include "isa/gemm_microkernel.h"
#include "isa/gemm_pack.h"
#include "isa/gemm_plan.h"
#include "workspace.h"

namespace blockprop {
namespace BP_ISA_NS {
namespace {

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

// All of B packed, for every thread to read: the k slice starting at pc (depth kc) holds
// ceil(n/NR) micro-panels, panel jr at bp + pc·n_pad + jr·NR·kc. Panels are packed in parallel.
template <typename T, int NR>
void pack_b_shared(index_t n, index_t k, const T* b, index_t rsb, index_t csb, T* bp, int nt) {
  const index_t KC = k_slice<T>(k), n_jr = ceil_div(n, NR), n_pad = n_jr * NR;
  auto panel = [&](index_t t) {
    const index_t pc = (t / n_jr) * KC, jr = t % n_jr, kc = std::min(KC, k - pc);
    pack_b_panel<T, NR>(kc, std::min<index_t>(NR, n - jr * NR), b + pc * rsb + jr * NR * csb,
                        rsb, csb, bp + pc * n_pad + jr * NR * kc);
  };
  const index_t tasks = ceil_div(k, KC) * n_jr;
  if (nt <= 1 || k * n < blocking::kMinParallelElements) {
    for (index_t t = 0; t < tasks; ++t) panel(t);
    return;
  }
  parallel_for(tasks, nt, panel);
}

// B read in place (see gemm_run) still needs its partial last micro-panel, if any, packed and
// padded: laid out as pack_b_shared would, the rest of the buffer left unused.
template <typename T, int NR>
void pack_b_partial_shared(index_t n, index_t k, const T* b, index_t rsb, index_t csb, T* bp) {
  const index_t KC = k_slice<T>(k), n_pad = ceil_div(n, NR) * NR, j0 = n / NR * NR;
  if (j0 == n) return;
  for (index_t pc = 0; pc < k; pc += KC)
    pack_b_panel<T, NR>(std::min(KC, k - pc), n - j0, b + pc * rsb + j0 * csb, rsb, csb,
                        bp + pc * n_pad + j0 * std::min(KC, k - pc));
}

// The partial last micro-panel of A (mr < MR rows, zero-padded to MR when packed) runs the
// kernel of the fewest rows in blocking::kPartialPanelRows that covers mr: the full kernel would
// spend MR − mr of its rows on padding (a batch of 32 is 14 + 14 + 4 rows: a quarter of the work).
template <typename T, int MR, int NR, BForm BF = BForm::packed, int I = 0>
void micro_kernel_partial(index_t mr, index_t kc, const T* a, const T* b, T alpha, T beta, T* c,
                          index_t rsc, index_t csc, index_t nr, index_t rsb) {
  constexpr auto& rows = blocking::kPartialPanelRows;
  if constexpr (I < sizeof(rows) / sizeof(rows[0])) {
    constexpr int R = rows[I];
    if constexpr (R < MR) {
      if (mr <= R)
        return micro_kernel<T, R, NR, AForm::packed, MR, BF>(kc, a, 0, b, alpha, beta, c, rsc, csc,
                                                             mr, nr, rsb);
    }
    return micro_kernel_partial<T, MR, NR, BF, I + 1>(mr, kc, a, b, alpha, beta, c, rsc, csc, nr,
                                                      rsb);
  } else {
    micro_kernel<T, MR, NR, AForm::packed, MR, BF>(kc, a, 0, b, alpha, beta, c, rsc, csc, mr, nr,
                                                   rsb);
  }
}

// B packed once for every thread by pack_b_shared: micro-panels for ld columns (the whole GEMM's
// n, padded); the GEMM that reads it starts at column col of them.
template <typename T>
struct SharedB {
  const T* data;
  index_t ld, col;
};

// A packed once for every thread by pack_a_shared: micro-panels for ld rows (the whole GEMM's m,
// padded); the GEMM that reads it starts at row `row` of them (a whole number of panels).
template <typename T>
struct SharedA {
  const T* data;
  index_t ld, row;
};

// Rows [0, mc) × columns [0, kc) of A into consecutive micro-panels at dst (panel ir at
// dst + ir·MR·kc), skipping the full panels when A is read in place.
template <typename T, int MR>
void pack_a_block(index_t mc, index_t kc, const T* a, index_t rsa, index_t csa, T* dst,
                  bool a_in_place) {
  if (rsa == 1 && csa != 1)  // column-major A: long contiguous reads
    return pack_a_block_colmajor<T, MR>(mc, kc, a, csa, dst);
  for (index_t ir = 0, n_ir = ceil_div(mc, MR); ir < n_ir; ++ir) {
    const index_t i0 = ir * MR;
    if (a_in_place && i0 + MR <= mc) continue;  // only a partial last panel needs padding
    pack_a_panel<T, MR>(std::min<index_t>(MR, mc - i0), kc, a + i0 * rsa, rsa, csa,
                        dst + ir * MR * kc);
  }
}

// All of A packed, for every thread to read: the k slice starting at pc holds ceil(m/MR)
// micro-panels, panel ir at ap + pc·m_pad + ir·MR·kc. Strips of `strip` rows are packed in
// parallel.
template <typename T, int MR>
void pack_a_shared(index_t m, index_t k, const T* a, index_t rsa, index_t csa, T* ap,
                   index_t strip, int nt) {
  const index_t KC = k_slice<T>(k), m_pad = ceil_div(m, MR) * MR, strips = ceil_div(m, strip);
  auto block = [&](index_t t) {
    const index_t pc = (t / strips) * KC, lo = (t % strips) * strip;
    const index_t kc = std::min(KC, k - pc);
    pack_a_block<T, MR>(std::min(strip, m - lo), kc, a + lo * rsa + pc * csa, rsa, csa,
                        ap + pc * m_pad + lo * kc, false);
  };
  parallel_for(ceil_div(k, KC) * strips, nt, block);
}

// The loops around the micro-kernel are functions of their own, to be read one at a time, but are
// compiled into gemm_serial as one loop nest: the compiler then inlines the micro-kernels into it
// as it did into the loop nest they were written as (a call per tile otherwise, on AVX2).
#define BP_LOOP inline __attribute__((always_inline))

// One matrix: element (i, j) at p[i·rs + j·cs].
template <typename T>
struct Matrix {
  T* p;
  index_t rs, cs;
  T* at(index_t i, index_t j) const { return p + i * rs + j * cs; }
  Matrix sub(index_t i, index_t j) const { return {at(i, j), rs, cs}; }
};

// C = alpha·A·B + beta·C on an m×n block of C (depth k), then the epilogue; col0: the block's
// first column in the epilogue's bias.
template <typename T>
struct Operands {
  index_t m, n, k;
  T alpha, beta;
  Matrix<const T> a, b;
  Matrix<T> c;
  const Epilogue<T>* ep;
  index_t col0;
  // Rows [i, i + rows) × columns [j, j + cols) of C, with their rows of A and columns of B.
  Operands block(index_t i, index_t j, index_t rows, index_t cols) const {
    return {rows, cols, k, alpha, beta, a.sub(i, 0), b.sub(0, j), c.sub(i, j), ep, col0 + j};
  }
};

// Where gemm_serial reads A and B: packed into its own buffers, packed once for all threads
// (shared), or, for their full micro-panels, in place.
template <typename T>
struct Sources {
  const SharedA<T>* a_shared;
  const SharedB<T>* b_shared;
  bool a_in_place, b_in_place;
};

// The MC×KC block of A being worked on: rows [ic, ic + mc), k slice [pc, pc + kc).
template <typename T>
struct Block {
  index_t ic, mc, pc, kc;
  T beta;             // beta on the first k slice, 1 on the later ones (they add to partial sums)
  bool last;          // the last k slice: the epilogue follows
  const T* a_panels;  // Ã: the block's packed micro-panels
};

// The shared B̃ slice used after the current one, for the micro-kernels to fetch into L2 while
// they work: each call fetches the next per_call bytes of it, until it is covered.
struct NextSlice {
  const char* p = nullptr;
  index_t bytes = 0, per_call = 0;
};

// Loop 1's body: the micro-kernel, in the form that reads A and B where they are, on one tile.
template <typename T, int NR>
BP_LOOP void micro_tile(const Operands<T>& g, const Sources<T>& src, const Block<T>& blk,
                        index_t i0, index_t j0, index_t mr, index_t nr, const T* ap, const T* bt,
                        const T* l2_next) {
  constexpr int MR = blocking::BP_ISA_NS<T>::MR;
  const index_t kc = blk.kc, rsc = g.c.rs, csc = g.c.cs;
  const T alpha = g.alpha, beta = blk.beta;
  T* ct = g.c.at(i0, j0);
  const bool b_in_place = blocking::kInPlaceB && src.b_in_place;  // compiled out where it is off
  const bool a_rows = src.a_in_place && mr == MR;
  if (b_in_place && nr == NR) {
    const T* bi = g.b.at(blk.pc, j0);
    if (a_rows)
      micro_kernel<T, MR, NR, AForm::rows, MR, BForm::rows>(kc, g.a.at(i0, blk.pc), g.a.rs, bi,
                                                            alpha, beta, ct, rsc, csc, mr, nr,
                                                            g.b.rs);
    else if (mr == MR)
      micro_kernel<T, MR, NR, AForm::packed, MR, BForm::rows>(kc, ap, 0, bi, alpha, beta, ct, rsc,
                                                              csc, mr, nr, g.b.rs);
    else
      micro_kernel_partial<T, MR, NR, BForm::rows>(mr, kc, ap, bi, alpha, beta, ct, rsc, csc, nr,
                                                   g.b.rs);
  } else if (a_rows)
    micro_kernel<T, MR, NR, AForm::rows>(kc, g.a.at(i0, blk.pc), g.a.rs, bt, alpha, beta, ct, rsc,
                                         csc, mr, nr);
  else if (mr == MR) {
    if (l2_next)
      micro_kernel<T, MR, NR, AForm::packed, MR, BForm::packed, true>(
          kc, ap, 0, bt, alpha, beta, ct, rsc, csc, mr, nr, NR, l2_next);
    else
      micro_kernel<T, MR, NR>(kc, ap, 0, bt, alpha, beta, ct, rsc, csc, mr, nr);
  } else
    micro_kernel_partial<T, MR, NR>(mr, kc, ap, bt, alpha, beta, ct, rsc, csc, nr, NR);
}

// Loops 2 and 1, the macro-kernel: each MR-row micro-panel of Ã stays in L1 while it sweeps
// every NR-column micro-panel of B̃ (from L2); a tile's epilogue follows its last k slice.
template <typename T, int NR>
BP_LOOP void macro_kernel(const Operands<T>& g, const Sources<T>& src, const Block<T>& blk,
                          index_t jc, index_t nc, const T* b_panels, const NextSlice& next) {
  constexpr int MR = blocking::BP_ISA_NS<T>::MR;
  const index_t n_ir = ceil_div(blk.mc, MR), n_jr = ceil_div(nc, NR);
  for (index_t ir = 0; ir < n_ir; ++ir) {
    const index_t i0 = blk.ic + ir * MR, mr = std::min<index_t>(MR, g.m - i0);
    const T* ap = blk.a_panels + ir * MR * blk.kc;
    for (index_t jr = 0; jr < n_jr; ++jr) {
      const index_t j0 = jc + jr * NR, nr = std::min<index_t>(NR, g.n - j0);
      const index_t fetched = (ir * n_jr + jr) * next.per_call;
      const T* l2 = fetched < next.bytes ? reinterpret_cast<const T*>(next.p + fetched) : nullptr;
      micro_tile<T, NR>(g, src, blk, i0, j0, mr, nr, ap, b_panels + jr * NR * blk.kc, l2);
      if (blk.last) apply_epilogue(*g.ep, g.c.at(i0, j0), g.c.rs, g.c.cs, mr, nr, g.col0 + j0);
    }
  }
}

// B̃: the kc×nc panel of B at (pc, jc) packed into micro-panels at dst; when B is read in place,
// only its partial last micro-panel (which needs padding).
template <typename T, int NR>
BP_LOOP void pack_b_block(const Operands<T>& g, bool b_in_place, index_t pc, index_t kc,
                          index_t jc, index_t nc, T* dst) {
  for (index_t jr = 0, n_jr = ceil_div(nc, NR); jr < n_jr; ++jr) {
    const index_t j0 = jc + jr * NR;
    if (b_in_place && j0 + NR <= g.n) continue;
    pack_b_panel<T, NR>(kc, std::min<index_t>(NR, g.n - j0), g.b.at(pc, j0), g.b.rs, g.b.cs,
                        dst + jr * NR * kc);
  }
}

// The shared B̃ slice after the one at (pc, jc): the next NC panel of this k slice, or the first
// of the next slice (see blocking::kPrefetchNextSliceEvery).
template <typename T>
BP_LOOP NextSlice next_shared_slice(const Operands<T>& g, const SharedB<T>& sb, index_t pc,
                                    index_t kc, index_t jc, index_t KC) {
  constexpr index_t NC = blocking::BP_ISA_NS<T>::NC, every = blocking::kPrefetchNextSliceEvery;
  NextSlice next;
  if (every <= 0) return next;
  const index_t pc2 = jc + NC < g.n ? pc : pc + KC, jc2 = jc + NC < g.n ? jc + NC : 0;
  if (pc2 >= g.k) return next;
  const index_t kc2 = std::min(KC, g.k - pc2);
  next.p = reinterpret_cast<const char*>(sb.data + pc2 * sb.ld + (sb.col + jc2) * kc2);
  next.bytes = index_t(sizeof(T)) * kc2 * std::min(NC, g.n - jc2);
  next.per_call = ceil_div(kc, every) * 64;
  return next;
}

// Loop over n by NC (BLIS's 5th loop, innermost of the three here): B̃ packed, unless shared,
// then the macro-kernel.
template <typename T, int NR>
BP_LOOP void loop_n(const Operands<T>& g, const Sources<T>& src, const Block<T>& blk, index_t KC,
                    T* bbuf) {
  constexpr index_t NC = blocking::BP_ISA_NS<T>::NC;
  static_assert(NC % NR == 0, "NC must be a whole number of micro-panels");
  const bool b_in_place = blocking::kInPlaceB && src.b_in_place;
  for (index_t jc = 0; jc < g.n; jc += NC) {
    const index_t nc = std::min(NC, g.n - jc);
    const SharedB<T>* sb = src.b_shared;
    if (!sb) pack_b_block<T, NR>(g, b_in_place, blk.pc, blk.kc, jc, nc, bbuf);
    const T* b_panels = sb ? sb->data + blk.pc * sb->ld + (sb->col + jc) * blk.kc : bbuf;
    macro_kernel<T, NR>(g, src, blk, jc, nc, b_panels,
                        sb ? next_shared_slice(g, *sb, blk.pc, blk.kc, jc, KC) : NextSlice{});
  }
}

// Loop over k by KC (BLIS's 4th): Ã, the mc×kc block of A at (ic, pc), packed (when A is read in
// place, only its partial last micro-panel; nothing when it is shared), then loop_n.
template <typename T, int NR>
BP_LOOP void loop_k(const Operands<T>& g, const Sources<T>& src, index_t ic, index_t mc, index_t KC,
            T* abuf, T* bbuf) {
  constexpr int MR = blocking::BP_ISA_NS<T>::MR;
  for (index_t pc = 0; pc < g.k; pc += KC) {
    const index_t kc = std::min(KC, g.k - pc);
    const SharedA<T>* sa = src.a_shared;
    if (!sa) pack_a_block<T, MR>(mc, kc, g.a.at(ic, pc), g.a.rs, g.a.cs, abuf, src.a_in_place);
    const T* a_panels = sa ? sa->data + pc * sa->ld + (sa->row + ic) * kc : abuf;
    const Block<T> blk{ic, mc, pc, kc, pc == 0 ? g.beta : T(1), pc + kc == g.k, a_panels};
    loop_n<T, NR>(g, src, blk, KC, bbuf);
  }
}

// One thread's GEMM on a block of C, no barriers inside. Loop over m by MC (BLIS's 3rd loop, the
// outermost here: m → k → n, not BLIS's n → k → m): each MC×KC block of A is packed once (a
// transpose for row-major A, the costlier packing) and reused for every NC panel of B, which is
// repacked once per MC rows instead. NR: the plan's micro-tile width.
template <typename T, int NR>
void gemm_serial(const Operands<T>& g, const Sources<T>& src, index_t MC, index_t KC) {
  constexpr int MR = blocking::BP_ISA_NS<T>::MR;
  constexpr index_t NC = blocking::BP_ISA_NS<T>::NC;
  const index_t kc_max = std::min(KC, g.k), m_pad = ceil_div(g.m, MR) * MR;
  const index_t n_pad = ceil_div(g.n, NR) * NR;
  T* abuf = src.a_shared ? nullptr
                         : static_cast<T*>(thread_workspace(
                               kPackA, sizeof(T) * std::min(MC, m_pad) * kc_max));
  T* bbuf = src.b_shared ? nullptr
                         : static_cast<T*>(thread_workspace(
                               kPackB, sizeof(T) * std::min(NC, n_pad) * kc_max));
  for (index_t ic = 0; ic < g.m; ic += MC)
    loop_k<T, NR>(g, src, ic, std::min(MC, g.m - ic), KC, abuf, bbuf);
}

// A chunk of C that packs its own A and B (or reads them in place).
template <typename T, int NR>
void gemm_chunk(const GemmPlan& p, const Operands<T>& g) {
  const Sources<T> src{nullptr, nullptr, g.n <= p.a_in_place_cols, p.b_in_place};
  gemm_serial<T, NR>(g, src, p.mc, p.kc);
}

// shared_b: B packed once for every thread (its partial last micro-panel only, when read in
// place), A too when the plan says so, then the row strips × column groups of C in turn.
template <typename T, int NR>
void gemm_shared_b(const GemmPlan& p, const Operands<T>& g) {
  constexpr int MR = blocking::BP_ISA_NS<T>::MR;
  const GemmSharedBPlan& s = p.shared;
  const index_t n_pad = ceil_div(g.n, NR) * NR, m_pad = ceil_div(g.m, MR) * MR;
  T* bp = static_cast<T*>(thread_workspace(kSharedB, sizeof(T) * g.k * n_pad));
  if (p.b_in_place)
    pack_b_partial_shared<T, NR>(g.n, g.k, g.b.p, g.b.rs, g.b.cs, bp);
  else
    pack_b_shared<T, NR>(g.n, g.k, g.b.p, g.b.rs, g.b.cs, bp, p.threads);
  T* ap = nullptr;
  if (s.share_a) {
    ap = static_cast<T*>(thread_workspace(kSharedA, sizeof(T) * g.k * m_pad));
    pack_a_shared<T, MR>(g.m, g.k, g.a.p, g.a.rs, g.a.cs, ap, s.strip_rows, p.threads);
  }
  // A narrower last column block (shared_b_k_slices) has fewer or narrower groups.
  const index_t groups = ceil_div(g.n, s.group_cols);
  auto chunk = [&](index_t t) {
    const index_t lo = (t / groups) * s.strip_rows, jlo = (t % groups) * s.group_cols;
    const Operands<T> sub = g.block(lo, jlo, std::min(s.strip_rows, g.m - lo),
                                    std::min(s.group_cols, g.n - jlo));
    const SharedB<T> sb{bp, n_pad, jlo};
    const SharedA<T> sa{ap, m_pad, lo};
    const Sources<T> src{s.share_a ? &sa : nullptr, &sb,
                         !s.share_a && sub.n <= p.a_in_place_cols, p.b_in_place};
    gemm_serial<T, NR>(sub, src, p.mc, p.kc);
  };
  parallel_for(ceil_div(g.m, s.strip_rows) * groups, p.threads, chunk);
}

// shared_b_k_slices: shared_b on one k slice (the slices gemm_serial takes, so each element of C
// is summed in the same order) and column block at a time; the epilogue after the last slice.
template <typename T, int NR>
void gemm_shared_b_k_slices(const GemmPlan& p, const Operands<T>& g) {
  const Epilogue<T> none{};
  for (index_t pc = 0; pc < g.k; pc += p.kc) {
    const index_t kc = std::min(p.kc, g.k - pc);
    for (index_t jlo = 0; jlo < g.n; jlo += p.block_cols) {
      const Operands<T> sub{g.m, std::min(p.block_cols, g.n - jlo), kc, g.alpha,
                            pc == 0 ? g.beta : T(1), g.a.sub(0, pc), g.b.sub(pc, jlo),
                            g.c.sub(0, jlo), pc + kc == g.k ? g.ep : &none, g.col0 + jlo};
      gemm_shared_b<T, NR>(p, sub);
    }
  }
}

// private_chunks, own_b_columns: row or column strips of C, each a whole serial GEMM with its own
// packing, taken by the threads in turn. No barrier: a thread the OS has descheduled delays at
// most the chunk it holds.
template <typename T, int NR>
void gemm_private_chunks(const GemmPlan& p, const Operands<T>& g) {
  auto run = [&](index_t t) {
    const index_t lo = t * p.chunk_size;
    gemm_chunk<T, NR>(p, p.split_n ? g.block(0, lo, g.m, std::min(p.chunk_size, g.n - lo))
                                   : g.block(lo, 0, std::min(p.chunk_size, g.m - lo), g.n));
  };
  if (p.chunks == 1) return run(0);
  parallel_for(p.chunks, p.threads, run);
}

template <typename T, int NR>
void gemm_run(const GemmPlan& p, const Operands<T>& g) {
  switch (p.strategy) {
    case GemmStrategy::serial: return gemm_chunk<T, NR>(p, g);
    case GemmStrategy::private_chunks:
    case GemmStrategy::own_b_columns: return gemm_private_chunks<T, NR>(p, g);
    case GemmStrategy::shared_b: return gemm_shared_b<T, NR>(p, g);
    case GemmStrategy::shared_b_k_slices: return gemm_shared_b_k_slices<T, NR>(p, g);
  }
}

#undef BP_LOOP

}  // namespace

// C = alpha·A·B + beta·C, then the epilogue: planned (gemm_plan.cpp), then run as planned.
template <typename T>
void gemm_blocked(index_t m, index_t n, index_t k, T alpha, const T* a, index_t rsa, index_t csa,
                  const T* b, index_t rsb, index_t csb, T beta, T* c, index_t rsc, index_t csc,
                  const Epilogue<T>& ep) {
  constexpr int NR = blocking::BP_ISA_NS<T>::NR, kNarrow = lanes<T>;
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) return scale_c(m, n, beta, c, rsc, csc, ep);
  const GemmPlan p = gemm_plan<T>(m, n, k, rsa, csa, rsb, csb, get_num_threads());
  const Operands<T> g{m, n, k, alpha, beta, {a, rsa, csa}, {b, rsb, csb}, {c, rsc, csc}, &ep, 0};
  if constexpr (NR > kNarrow) {
    if (p.nr == kNarrow) return gemm_run<T, kNarrow>(p, g);
  }
  gemm_run<T, NR>(p, g);
}


template void gemm_blocked<float>(index_t, index_t, index_t, float, const float*, index_t,
                                  index_t, const float*, index_t, index_t, float, float*, index_t,
                                  index_t, const Epilogue<float>&);
template void gemm_blocked<double>(index_t, index_t, index_t, double, const double*, index_t,
                                   index_t, const double*, index_t, index_t, double, double*,
                                   index_t, index_t, const Epilogue<double>&);

}  // namespace BP_ISA_NS
}  // namespace blockprop
