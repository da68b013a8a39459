// Blocked GEMM driver (loop order ic → pc → jc → ir → jr), one build per instruction set.
// Threads split the packing and the grid of micro-tiles; each element of C is summed by one
// thread in a fixed k order, so the result does not depend on the thread count.
#include "isa/isa_prelude.h"

#include <algorithm>
#include <cmath>

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
  if (!ep.bias && ep.act == Activation::linear && !ep.nonfinite) return;
  index_t bad = 0;
  for (index_t i = 0; i < mr; ++i) {
    T* row = c + i * rsc;
    if (ep.bias)
      for (index_t j = 0; j < nr; ++j) row[j * csc] += ep.bias[col0 + j];
    if (ep.nonfinite)
      for (index_t j = 0; j < nr; ++j) bad += !std::isfinite(row[j * csc]);
    apply_activation(ep.act, row, nr, csc);
  }
  if (bad) ep.nonfinite->fetch_add(bad, std::memory_order_relaxed);
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

// k cut into equal slices of at most Blk::KC (KC 256: 784 → 4 × 196, not 256 + 256 + 256 + 16):
// a thin last slice would pay a full write-back of C for a few multiply-adds.
template <typename T>
index_t k_slice(index_t k) {
  return ceil_div(k, ceil_div(k, blocking::BP_ISA_NS<T>::KC));
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

// A narrow C uses each packed A micro-panel too few times to repay the packing (a transpose
// for row-major A): full micro-panels of a row-major A are then read in place, unless A's row
// stride would put them in the same L1 sets.
template <typename T, int NR>
bool reads_a_in_place(index_t n, index_t rsa, index_t csa) {
  return csa == 1 && ceil_div(n, NR) <= blocking::kInPlaceAMaxPanels &&
         (rsa * index_t(sizeof(T))) % blocking::kAliasingStrideBytes != 0;
}

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

}  // namespace

// One thread's GEMM on a sub-block of C, with its own packing buffers (or B already packed by
// pack_b_shared, `shared`, and A by pack_a_shared, `shared_a`): no barriers inside. NR is the
// width of the micro-tile: the instruction set's, or one vector for a narrow C (see gemm_blocked).
template <typename T, int NR>
void gemm_serial(index_t m, index_t n, index_t k, T alpha, const T* a, index_t rsa, index_t csa,
                 const T* b, index_t rsb, index_t csb, T beta, T* c, index_t rsc, index_t csc,
                 const Epilogue<T>& ep, index_t col0, const SharedB<T>* shared = nullptr,
                 bool b_in_place_arg = false, const SharedA<T>* shared_a = nullptr) {
  const bool b_in_place = blocking::kInPlaceB && b_in_place_arg;  // compiled out where it is off
  using Blk = blocking::BP_ISA_NS<T>;
  constexpr int MR = Blk::MR;
  constexpr index_t NC = Blk::NC;
  static_assert(NC % NR == 0, "NC must be a whole number of micro-panels");
  // m cut into equal blocks of whole micro-panels (1024 → 2 × 518, not 1008 + 16).
  const index_t MC = ceil_div(ceil_div(m, ceil_div(m, Blk::MC)), MR) * MR;
  const index_t KC = k_slice<T>(k);
  const index_t kc_max = std::min(KC, k);
  const index_t n_pad = ceil_div(n, NR) * NR;
  T* abuf = shared_a ? nullptr
                     : static_cast<T*>(thread_workspace(
                           kPackA, sizeof(T) * std::min(MC, ceil_div(m, MR) * MR) * kc_max));
  const bool a_in_place = !shared_a && reads_a_in_place<T, NR>(n, rsa, csa);
  T* bbuf = shared ? nullptr
                    : static_cast<T*>(thread_workspace(kPackB, sizeof(T) * std::min(NC, n_pad) * kc_max));

  // Loop order ic → pc → jc: each MC×KC block of A is packed once (A's packing is a transpose
  // for row-major A, the costlier of the two) and reused for every NC panel of B, which is
  // repacked once per MC rows instead.
  for (index_t ic = 0; ic < m; ic += MC) {
    const index_t mc = std::min(MC, m - ic);
    const index_t n_ir = ceil_div(mc, MR);
    for (index_t pc = 0; pc < k; pc += KC) {
      const index_t kc = std::min(KC, k - pc);
      const T beta_pc = pc == 0 ? beta : T(1);  // later k slices add to the partial sums
      const bool last_pc = pc + kc == k;
      const T* apanels =
          shared_a ? shared_a->data + pc * shared_a->ld + (shared_a->row + ic) * kc : abuf;
      if (!shared_a)
        pack_a_block<T, MR>(mc, kc, a + ic * rsa + pc * csa, rsa, csa, abuf, a_in_place);
      for (index_t jc = 0; jc < n; jc += NC) {
        const index_t nc = std::min(NC, n - jc);
        const index_t n_jr = ceil_div(nc, NR);
        const T* bslice = shared ? shared->data + pc * shared->ld + (shared->col + jc) * kc : bbuf;
        for (index_t jr = 0; !shared && jr < n_jr; ++jr) {
          const index_t j0 = jc + jr * NR;
          if (b_in_place && j0 + NR <= n) continue;  // only a partial last panel needs padding
          pack_b_panel<T, NR>(kc, std::min<index_t>(NR, n - j0), b + pc * rsb + j0 * csb, rsb,
                              csb, bbuf + jr * NR * kc);
        }
        // The shared B̃ slice used after this one, for the micro-kernels to fetch into L2 while
        // they work: each call fetches the next l2_per_call bytes of it, until it is covered.
        const char* next = nullptr;
        index_t next_bytes = 0;
        if (shared && blocking::kPrefetchNextSliceEvery > 0) {
          const index_t pc2 = jc + NC < n ? pc : pc + KC, jc2 = jc + NC < n ? jc + NC : 0;
          if (pc2 < k) {
            const index_t kc2 = std::min(KC, k - pc2);
            next = reinterpret_cast<const char*>(shared->data + pc2 * shared->ld +
                                                 (shared->col + jc2) * kc2);
            next_bytes = index_t(sizeof(T)) * kc2 * std::min(NC, n - jc2);
          }
        }
        const index_t l2_per_call =
            blocking::kPrefetchNextSliceEvery > 0
                ? ceil_div(kc, std::max<index_t>(1, blocking::kPrefetchNextSliceEvery)) * 64
                : 0;
        // One A micro-panel stays in L1 while it sweeps every B micro-panel of B̃ (from L2).
        for (index_t ir = 0; ir < n_ir; ++ir) {
          const index_t i0 = ic + ir * MR;
          const index_t mr = std::min<index_t>(MR, m - i0);
          const T* ap = apanels + ir * MR * kc;
          for (index_t jr = 0; jr < n_jr; ++jr) {
            const index_t j0 = jc + jr * NR;
            const index_t nr = std::min<index_t>(NR, n - j0);
            T* ct = c + i0 * rsc + j0 * csc;
            const T* bt = bslice + jr * NR * kc;
            if (b_in_place && nr == NR) {
              const T* bi = b + pc * rsb + j0;
              if (a_in_place && mr == MR)
                micro_kernel<T, MR, NR, AForm::rows, MR, BForm::rows>(
                    kc, a + i0 * rsa + pc, rsa, bi, alpha, beta_pc, ct, rsc, csc, mr, nr, rsb);
              else if (mr == MR)
                micro_kernel<T, MR, NR, AForm::packed, MR, BForm::rows>(
                    kc, ap, 0, bi, alpha, beta_pc, ct, rsc, csc, mr, nr, rsb);
              else
                micro_kernel_partial<T, MR, NR, BForm::rows>(mr, kc, ap, bi, alpha, beta_pc, ct,
                                                             rsc, csc, nr, rsb);
            } else if (a_in_place && mr == MR)
              micro_kernel<T, MR, NR, AForm::rows>(kc, a + i0 * rsa + pc, rsa, bt, alpha, beta_pc,
                                                   ct, rsc, csc, mr, nr);
            else if (mr == MR) {
              const index_t fetched = (ir * n_jr + jr) * l2_per_call;
              if (fetched < next_bytes)
                micro_kernel<T, MR, NR, AForm::packed, MR, BForm::packed, true>(
                    kc, ap, 0, bt, alpha, beta_pc, ct, rsc, csc, mr, nr, NR,
                    reinterpret_cast<const T*>(next + fetched));
              else
                micro_kernel<T, MR, NR>(kc, ap, 0, bt, alpha, beta_pc, ct, rsc, csc, mr, nr);
            } else
              micro_kernel_partial<T, MR, NR>(mr, kc, ap, bt, alpha, beta_pc, ct, rsc, csc, nr, NR);
            if (last_pc) apply_epilogue(ep, ct, rsc, csc, mr, nr, col0 + j0);
          }
        }
      }
    }
  }
}

// C cut into row strips (and column groups of them) over one packing of B shared by the threads:
// no packing is repeated, so the chunks can be thin (a few micro-panels), which balances the
// threads. col0: the first column of this C in the epilogue's bias.
template <typename T, int NR>
void gemm_shared_b(index_t m, index_t n, index_t k, T alpha, const T* a, index_t rsa, index_t csa,
                   const T* b, index_t rsb, index_t csb, T beta, T* c, index_t rsc, index_t csc,
                   const Epilogue<T>& ep, index_t col0, int nt, bool b_in_place) {
  constexpr int MR = blocking::BP_ISA_NS<T>::MR;
  const index_t work = m * n * k, m_panels = ceil_div(m, MR), n_panels = ceil_div(n, NR);
  const index_t n_pad = n_panels * NR;
  const index_t b_bytes = sizeof(T) * k * n_pad;  // all of B packed
  T* bp = static_cast<T*>(thread_workspace(kSharedB, b_bytes));
  if (b_in_place)
    pack_b_partial_shared<T, NR>(n, k, b, rsb, csb, bp);
  else
    pack_b_shared<T, NR>(n, k, b, rsb, csb, bp, nt);
  const index_t target = std::max<index_t>(
      nt, std::min(nt * blocking::kSharedChunksPerThread, work / blocking::kMinSharedChunkWork));
  const index_t min_strip =
      b_bytes > blocking::kSharedBInL2Bytes ? blocking::kMinSharedStripPanels : 1;
  const index_t per_strip = std::max(min_strip, m_panels / target) * MR;
  const index_t strips = ceil_div(m, per_strip);
  // Fewer strips than that (a batch of 128 rows is 10 micro-panels): the columns are cut too,
  // in whole micro-panels, so each thread still takes several chunks and the threads end
  // together (10 one-panel strips on 2 threads would leave one thread idle for a panel).
  index_t per_group = ceil_div(n_panels, std::min(n_panels, ceil_div(target, strips))) * NR;
  index_t groups = ceil_div(n, per_group);
  // With several column groups, each chunk of a strip would pack the strip's rows of A again:
  // A is then packed once for all of them (unless the chunks read it in place), when the
  // repeats would cost more than the extra hand-off to the threads.
  const index_t m_pad = m_panels * MR;
  const bool repacks_a = groups > 1 && !reads_a_in_place<T, NR>(per_group, rsa, csa);
  const bool share_a = repacks_a && (groups - 1) * m * k >= blocking::kMinRepeatedAPackElements &&
                       sizeof(T) * k * m_pad <= blocking::kMaxSharedPackBytes;
  // Below that, the groups are dropped when the strips alone are enough to balance the threads.
  if (repacks_a && !share_a && strips >= blocking::kMinStripsPerThread * nt) {
    per_group = n_panels * NR;
    groups = 1;
  }
  T* ap = nullptr;
  if (share_a) {
    ap = static_cast<T*>(thread_workspace(kSharedA, sizeof(T) * k * m_pad));
    pack_a_shared<T, MR>(m, k, a, rsa, csa, ap, per_strip, nt);
  }
  auto tile = [&](index_t t) {
    const index_t lo = (t / groups) * per_strip, len = std::min(per_strip, m - lo);
    const index_t jlo = (t % groups) * per_group, jlen = std::min(per_group, n - jlo);
    const SharedB<T> shared{bp, n_pad, jlo};
    const SharedA<T> shared_a{ap, m_pad, lo};
    gemm_serial<T, NR>(len, jlen, k, alpha, a + lo * rsa, rsa, csa, b + jlo * csb, rsb, csb, beta,
                       c + lo * rsc + jlo * csc, rsc, csc, ep, col0 + jlo, &shared, b_in_place,
                       share_a ? &shared_a : nullptr);
  };
  parallel_for(strips * groups, nt, tile);
}

// C is cut into chunks (column strips, or row strips when C is tall) that the pool's threads take
// in turn; each chunk is a whole serial GEMM with its own packing. No barrier: a thread the OS has
// descheduled delays at most the chunk it holds, and every element of C is still summed by one
// thread in the same order, so the result does not depend on the threads.
template <typename T, int NR>
void gemm_run(index_t m, index_t n, index_t k, T alpha, const T* a, index_t rsa, index_t csa,
              const T* b, index_t rsb, index_t csb, T beta, T* c, index_t rsc, index_t csc,
              const Epilogue<T>& ep) {
  constexpr int MR = blocking::BP_ISA_NS<T>::MR;

  const index_t work = m * n * k;
  const int nt = static_cast<int>(std::max<index_t>(
      1, std::min<index_t>(get_num_threads(), work / blocking::kMinWorkPerThread)));
  const index_t m_panels = ceil_div(m, MR), n_panels = ceil_div(n, NR), n_pad = n_panels * NR;
  // A row-major B is read in place, not packed, when A has few micro-panels (each packed B
  // micro-panel would serve too few of them to repay the copy) and a k slice of B spans few pages.
  const index_t rsb_bytes = sizeof(T) * (rsb < 0 ? -rsb : rsb);
  const bool b_in_place = blocking::kInPlaceB && csb == 1 &&
                          m_panels <= blocking::kInPlaceBMaxAPanels &&
                          k_slice<T>(k) * rsb_bytes <= blocking::kInPlaceBMaxSliceBytes &&
                          rsb_bytes % blocking::kAliasingStrideBytes != 0;
  if (nt == 1)
    return gemm_serial<T, NR>(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, ep, 0,
                              nullptr, b_in_place);

  // B packed (B = Wᵀ of a layer's forward) for a narrow C whose A is read in place and small:
  // column strips that each pack their own columns of B, not one packing shared by the threads.
  // Neither packs anything twice, but a shared B̃ was read by each thread from the cache of the
  // core that packed it.
  const bool own_b = !b_in_place && n_panels >= nt &&
                     reads_a_in_place<T, NR>(n, rsa, csa) &&
                     index_t(sizeof(T)) * m * k <= blocking::kOwnBMaxABytes;
  if (m_panels >= 2 * nt && !own_b) {
    const index_t b_bytes = sizeof(T) * k * n_pad;  // all of B packed
    if (b_bytes <= blocking::kMaxSharedPackBytes)
      return gemm_shared_b<T, NR>(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, ep,
                                  0, nt, b_in_place);
    // B too big for one shared copy: one k slice at a time (the slices gemm_serial takes, so
    // each element of C is summed in the same order), in column blocks if a slice is too big too.
    // A is packed once (once a block), where chunks packing for themselves (below) would each
    // pack all of it.
    const index_t KC = k_slice<T>(k);
    const index_t max_panels =
        std::max<index_t>(1, blocking::kMaxSharedPackBytes / (index_t(sizeof(T)) * KC * NR));
    const index_t cols = ceil_div(n_panels, ceil_div(n_panels, max_panels)) * NR;
    const Epilogue<T> none{};  // the epilogue runs once, after the last slice
    for (index_t pc = 0; pc < k; pc += KC) {
      const index_t kc = std::min(KC, k - pc);
      for (index_t jlo = 0; jlo < n; jlo += cols)
        gemm_shared_b<T, NR>(m, std::min(cols, n - jlo), kc, alpha, a + pc * csa, rsa, csa,
                             b + pc * rsb + jlo * csb, rsb, csb, pc == 0 ? beta : T(1),
                             c + jlo * csc, rsc, csc, pc + kc == k ? ep : none, jlo, nt,
                             b_in_place);
    }
    return;
  }

  // Otherwise each chunk packs for itself: split the dimension whose strips duplicate less
  // packing (column strips each repack A (m·k), row strips each repack B (k·n)); column strips
  // for own_b (A read in place).
  const bool split_n = own_b || (n_panels >= nt && (m <= n || m_panels < nt));
  const index_t unit = split_n ? NR : MR, extent = split_n ? n : m;
  const index_t units = ceil_div(extent, unit);
  const index_t chunks = std::min(units, nt * blocking::kChunksPerThread);
  const index_t per_chunk = ceil_div(units, chunks) * unit;

  auto run = [&](index_t chunk) {
    const index_t lo = chunk * per_chunk;
    const index_t len = std::min(per_chunk, extent - lo);
    if (len <= 0) return;
    if (split_n)
      gemm_serial<T, NR>(m, len, k, alpha, a, rsa, csa, b + lo * csb, rsb, csb, beta, c + lo * csc,
                     rsc, csc, ep, lo, nullptr, b_in_place);
    else
      gemm_serial<T, NR>(len, n, k, alpha, a + lo * rsa, rsa, csa, b, rsb, csb, beta, c + lo * rsc,
                     rsc, csc, ep, 0, nullptr, b_in_place);
  };
  if (chunks == 1) return run(0);
  parallel_for(chunks, nt, run);
}

// C = alpha·A·B + beta·C, then the epilogue. A C at most one vector wide (the 10 classes of an
// output layer) gets micro-tiles one vector wide: the full-width tile would spend most of its
// multiply-adds on padding.
template <typename T>
void gemm_blocked(index_t m, index_t n, index_t k, T alpha, const T* a, index_t rsa, index_t csa,
                  const T* b, index_t rsb, index_t csb, T beta, T* c, index_t rsc, index_t csc,
                  const Epilogue<T>& ep) {
  constexpr int NR = blocking::BP_ISA_NS<T>::NR, kNarrow = lanes<T>;
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) return scale_c(m, n, beta, c, rsc, csc, ep);
  if (NR > kNarrow && n <= kNarrow)
    return gemm_run<T, kNarrow>(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, ep);
  gemm_run<T, NR>(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, ep);
}

template void gemm_blocked<float>(index_t, index_t, index_t, float, const float*, index_t,
                                  index_t, const float*, index_t, index_t, float, float*, index_t,
                                  index_t, const Epilogue<float>&);
template void gemm_blocked<double>(index_t, index_t, index_t, double, const double*, index_t,
                                   index_t, const double*, index_t, index_t, double, double*,
                                   index_t, index_t, const Epilogue<double>&);

}  // namespace BP_ISA_NS
}  // namespace blockprop
