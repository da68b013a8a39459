// gemm_plan: how a GEMM of one shape is cut across threads, and its block sizes, for this
// instruction set's blocking. Pure: the shape, the strides and the thread count decide it all.
#include "isa/isa_prelude.h"

#include <algorithm>

#include "isa/gemm_plan.h"
#include "isa/simd.h"

namespace blockprop {
namespace BP_ISA_NS {
namespace {

// A narrow C uses each packed A micro-panel too few times to repay the packing (a transpose for
// row-major A): a chunk of C at most this wide reads the full micro-panels of a row-major A in
// place, unless A's row stride would put them in the same L1 sets. 0: never.
template <typename T, int NR>
index_t a_in_place_cols(index_t rsa, index_t csa) {
  const bool ok = csa == 1 && (rsa * index_t(sizeof(T))) % blocking::kAliasingStrideBytes != 0;
  return ok ? blocking::kInPlaceAMaxPanels * NR : 0;
}

// C cut into row strips (and column groups of them) over one packing of B shared by the threads:
// no packing is repeated, so the chunks can be thin (a few micro-panels), which balances them.
template <typename T, int NR>
GemmSharedBPlan plan_shared_b(index_t m, index_t n, index_t k, index_t a_cols, int nt) {
  constexpr int MR = blocking::BP_ISA_NS<T>::MR;
  const index_t work = m * n * k, m_panels = ceil_div(m, MR), n_panels = ceil_div(n, NR);
  const index_t b_bytes = sizeof(T) * k * n_panels * NR;  // all of B packed
  const index_t target = std::max<index_t>(
      nt, std::min(nt * blocking::kSharedChunksPerThread, work / blocking::kMinSharedChunkWork));
  const index_t min_strip =
      b_bytes > blocking::kSharedBInL2Bytes ? blocking::kMinSharedStripPanels : 1;
  GemmSharedBPlan s;
  s.strip_rows = std::max(min_strip, m_panels / target) * MR;
  s.strips = ceil_div(m, s.strip_rows);
  // Fewer strips than that (a batch of 128 rows is 10 micro-panels): the columns are cut too,
  // in whole micro-panels, so each thread still takes several chunks and the threads end
  // together (10 one-panel strips on 2 threads would leave one thread idle for a panel).
  s.group_cols = ceil_div(n_panels, std::min(n_panels, ceil_div(target, s.strips))) * NR;
  s.groups = ceil_div(n, s.group_cols);
  // With several column groups, each chunk of a strip would pack the strip's rows of A again:
  // A is then packed once for all of them (unless the chunks read it in place), when the
  // repeats would cost more than the extra hand-off to the threads.
  const bool repacks_a = s.groups > 1 && s.group_cols > a_cols;
  s.share_a = repacks_a && (s.groups - 1) * m * k >= blocking::kMinRepeatedAPackElements &&
              sizeof(T) * k * m_panels * MR <= blocking::kMaxSharedPackBytes;
  // Below that, the groups are dropped when the strips alone are enough to balance the threads.
  if (repacks_a && !s.share_a && s.strips >= blocking::kMinStripsPerThread * nt) {
    s.group_cols = n_panels * NR;
    s.groups = 1;
  }
  return s;
}

template <typename T, int NR>
GemmPlan plan(index_t m, index_t n, index_t k, index_t rsa, index_t csa, index_t rsb, index_t csb,
              int threads) {
  using Blk = blocking::BP_ISA_NS<T>;
  constexpr int MR = Blk::MR;
  GemmPlan p;
  p.mr = MR;
  p.nr = NR;
  p.nc = Blk::NC;
  p.kc = k_slice<T>(k);
  const index_t work = m * n * k;
  const int nt = static_cast<int>(
      std::max<index_t>(1, std::min<index_t>(threads, work / blocking::kMinWorkPerThread)));
  p.threads = nt;
  const index_t m_panels = ceil_div(m, MR), n_panels = ceil_div(n, NR);
  // A row-major B is read in place, not packed, when A has few micro-panels (each packed B
  // micro-panel would serve too few of them to repay the copy) and a k slice of B spans few pages.
  const index_t rsb_bytes = sizeof(T) * (rsb < 0 ? -rsb : rsb);
  p.b_in_place = blocking::kInPlaceB && csb == 1 && m_panels <= blocking::kInPlaceBMaxAPanels &&
                 p.kc * rsb_bytes <= blocking::kInPlaceBMaxSliceBytes &&
                 rsb_bytes % blocking::kAliasingStrideBytes != 0;
  p.a_in_place_cols = a_in_place_cols<T, NR>(rsa, csa);
  if (nt == 1) {
    p.mc = m_block<T>(m);
    p.a_in_place = n <= p.a_in_place_cols;
    return p;
  }

  // B packed (B = Wᵀ of a layer's forward) for a narrow C whose A is read in place and small:
  // column strips that each pack their own columns of B, not one packing shared by the threads.
  // Neither packs anything twice, but a shared B̃ was read by each thread from the cache of the
  // core that packed it.
  const bool own_b = !p.b_in_place && n_panels >= nt && n <= p.a_in_place_cols &&
                     index_t(sizeof(T)) * m * k <= blocking::kOwnBMaxABytes;
  if (m_panels >= 2 * nt && !own_b) {
    const index_t b_bytes = sizeof(T) * k * n_panels * NR;  // all of B packed
    index_t cols = n, depth = k;
    p.strategy = GemmStrategy::shared_b;
    if (b_bytes > blocking::kMaxSharedPackBytes) {
      // B too big for one shared copy: one k slice at a time (the slices gemm_serial takes, so
      // each element of C is summed in the same order), in column blocks if a slice is too big
      // too. A is packed once (once a block), where private chunks would each pack all of it.
      const index_t max_panels =
          std::max<index_t>(1, blocking::kMaxSharedPackBytes / (index_t(sizeof(T)) * p.kc * NR));
      p.strategy = GemmStrategy::shared_b_k_slices;
      p.block_cols = ceil_div(n_panels, ceil_div(n_panels, max_panels)) * NR;
      p.blocks = ceil_div(n, p.block_cols);
      cols = std::min(p.block_cols, n);
      depth = p.kc;
    }
    p.shared = plan_shared_b<T, NR>(m, cols, depth, p.a_in_place_cols, nt);
    p.mc = m_block<T>(std::min(p.shared.strip_rows, m));
    p.a_in_place = !p.shared.share_a && std::min(p.shared.group_cols, n) <= p.a_in_place_cols;
    return p;
  }

  // Otherwise each chunk packs for itself: split the dimension whose strips duplicate less
  // packing (column strips each repack A (m·k), row strips each repack B (k·n)); column strips
  // for own_b (A read in place).
  p.strategy = own_b ? GemmStrategy::own_b_columns : GemmStrategy::private_chunks;
  p.split_n = own_b || (n_panels >= nt && (m <= n || m_panels < nt));
  const index_t unit = p.split_n ? NR : MR, extent = p.split_n ? n : m;
  const index_t units = ceil_div(extent, unit);
  const index_t chunks = std::min(units, nt * blocking::kChunksPerThread);
  p.chunk_size = ceil_div(units, chunks) * unit;
  p.chunks = ceil_div(extent, p.chunk_size);
  p.mc = m_block<T>(p.split_n ? m : std::min(p.chunk_size, m));
  p.a_in_place = (p.split_n ? std::min(p.chunk_size, n) : n) <= p.a_in_place_cols;
  return p;
}

}  // namespace

// The micro-tile one vector wide for a C at most that narrow (the 10 classes of an output layer):
// the full-width tile would spend most of its multiply-adds on padding.
template <typename T>
GemmPlan gemm_plan(index_t m, index_t n, index_t k, index_t rsa, index_t csa, index_t rsb,
                   index_t csb, int threads) {
  constexpr int NR = blocking::BP_ISA_NS<T>::NR, kNarrow = lanes<T>;
  if (NR > kNarrow && n <= kNarrow) return plan<T, kNarrow>(m, n, k, rsa, csa, rsb, csb, threads);
  return plan<T, NR>(m, n, k, rsa, csa, rsb, csb, threads);
}

template GemmPlan gemm_plan<float>(index_t, index_t, index_t, index_t, index_t, index_t, index_t,
                                   int);
template GemmPlan gemm_plan<double>(index_t, index_t, index_t, index_t, index_t, index_t, index_t,
                                    int);

}  // namespace BP_ISA_NS
}  // namespace blockprop
