// Every cache-blocking parameter and micro-kernel shape, in one place (BLIS naming).
//
//   C (m×n) is cut into NC-wide column panels; K into KC-deep slices; M into MC-tall blocks.
//   B̃ = packed KC×NC slice of B: sized for the L2 cache, streamed by the micro-kernel.
//   Ã = packed MC×KC block of A: one MR×KC micro-panel of it sweeps B̃ (in L1 where KC allows).
//   Micro-kernel: an MR×NR tile of C held in vector registers, NR a multiple of the vector width.
//
// Sized for the machines the binary targets: L1d 32 KiB, L2 ≥ 1 MiB (Skylake-SP and later) for
// AVX-512; L2 256 KiB (Haswell) for AVX2 and the portable build.
#pragma once
#include "blockprop/types.h"

namespace blockprop {
namespace blocking {

template <typename T>
struct avx512;
template <>
struct avx512<float> {
  static constexpr int MR = 14;         // 14×2 zmm accumulators + 2 for B + broadcasts = 32 zmm
  static constexpr int NR = 32;         // two zmm of 16 floats
  static constexpr index_t KC = 1024;   // few k slices (each rereads C); panels stream from L2 ¹
  static constexpr index_t MC = 1008;   // Ã 1008×1024×4 B = 4 MiB, in L3
  static constexpr index_t NC = 128;    // B̃ 1024×128×4 B = 512 KiB, in a 1 MiB L2 with room
};
// ¹ Every k slice reads and writes all of C again, which cost more than keeping the micro-panels
// in L1 saved: the micro-kernel prefetches B̃, and A streams in order. Measured, 2 threads, KC
// 384 → 1024: 2048³ NN/NT/TN 68/66/69% → 73/72/70% of peak, 1024³ 69/71/70% → 74/73/73%,
// 128×128×784 NN 57% → 61%;
// float64, KC 192 → 512: 1024³ NN 66% → 69% of its peak, 128×128×784 NN 52% → 59%.
template <>
struct avx512<double> {
  static constexpr int MR = 14;         // 14×2 zmm accumulators, as for float
  static constexpr int NR = 16;         // two zmm of 8 doubles
  static constexpr index_t KC = 512;    // the same 4 KiB a k step as float's, for the same reason ¹
  static constexpr index_t MC = 1008;   // Ã 1008×512×8 B = 4 MiB, in L3
  static constexpr index_t NC = 128;    // B̃ 512×128×8 B = 512 KiB, in a 1 MiB L2 with room
};

template <typename T>
struct avx2;
template <>
struct avx2<float> {
  static constexpr int MR = 6;          // 6×2 ymm accumulators + 2 for B + broadcast ≤ 16 ymm
  static constexpr int NR = 16;         // two ymm of 8 floats
  static constexpr index_t KC = 256;    // A micro-panel 6×256×4 B = 6 KiB in L1d
  static constexpr index_t MC = 960;    // Ã 960×256×4 B = 960 KiB, in L3
  static constexpr index_t NC = 192;    // B̃ 256×192×4 B = 192 KiB, in a 256 KiB L2
};
template <>
struct avx2<double> {
  static constexpr int MR = 6;          // 6×2 ymm accumulators
  static constexpr int NR = 8;          // two ymm of 4 doubles
  static constexpr index_t KC = 256;    // A micro-panel 6×256×8 B = 12 KiB in L1d
  static constexpr index_t MC = 960;    // Ã 960×256×8 B = 1.9 MiB, in L3
  static constexpr index_t NC = 96;     // B̃ 256×96×8 B = 192 KiB, in a 256 KiB L2
};

template <typename T>
struct generic;
template <>
struct generic<float> {
  static constexpr int MR = 6;          // 6×2 xmm accumulators of the 16 SSE registers
  static constexpr int NR = 8;          // two xmm of 4 floats
  static constexpr index_t KC = 256;    // A micro-panel 6×256×4 B = 6 KiB in L1d
  static constexpr index_t MC = 960;    // Ã 960×256×4 B = 960 KiB, in L3
  static constexpr index_t NC = 192;    // B̃ 256×192×4 B = 192 KiB, in L2
};
template <>
struct generic<double> {
  static constexpr int MR = 6;          // 6×2 xmm accumulators
  static constexpr int NR = 4;          // two xmm of 2 doubles
  static constexpr index_t KC = 256;    // A micro-panel 6×256×8 B = 12 KiB in L1d
  static constexpr index_t MC = 960;    // Ã 960×256×8 B = 1.9 MiB, in L3
  static constexpr index_t NC = 96;     // B̃ 256×96×8 B = 192 KiB, in L2
};

// bfloat16 products (gemm_bf16): operands packed as bfloat16, 2 bytes an element.
// AVX512-BF16: VDPBF16PS takes a pair of k per 32-bit lane, so a k step of the float32 kernel's
// tile is two here; the same 14×32 tile (28 accumulators), packed panels half the bytes.
struct avx512_bf16 {
  static constexpr int MR = 14;         // 14×2 zmm accumulators, as for float
  static constexpr int NR = 32;         // two zmm of 16 float sums (of 16 pairs of bf16)
  static constexpr index_t KC = 2048;   // float's 4 KiB a k step (not tuned: this path is slow here ²)
  static constexpr index_t MC = 1008;   // a thread's Ã at most 1008×2048×2 B = 4 MiB, as float's
  static constexpr index_t NC = 128;    // B̃ 2048×128×2 B = 512 KiB, in a 1 MiB L2 with room
};
// ² On the development CPU (Sapphire Rapids class) VDPBF16PS does float32 FMA's FLOP/s at best
// and this kernel half of them: AMX is the bf16 path there; README, "bfloat16 compute".
// AMX: TDPBF16PS multiplies a 16×32 tile of A by a 32×16 tile of B (pairs of k as above) into a
// 16×16 float tile; 4 accumulator tiles make a 32×32 block of C, k in steps of 32.
struct amx_bf16 {
  static constexpr int MR = 32;         // two 16-row tiles of A
  static constexpr int NR = 32;         // two 16-column tiles of B (the AVX512-BF16 B̃ layout)
  static constexpr int KSTEP = 32;      // a tile row: 32 bf16 of k
  static constexpr index_t KC = 2048;   // A panel 32×2048×2 B = 128 KiB, in L2
  static constexpr index_t MC = 1024;   // a thread's Ã at most 1024×2048×2 B = 4 MiB
  static constexpr index_t NC = 128;    // B̃ 2048×128×2 B = 512 KiB, in L2
};

// Row counts of the extra micro-kernels for the partial last micro-panel of A (those below the
// ISA's MR are built): few enough to keep the code small, close enough that at most 3 rows are
// padding, not up to MR − 1 (a batch of 128 ends in 2 rows, of 32 and 256 in 4).
constexpr int kPartialPanelRows[] = {2, 4, 7, 10};

// Below this many multiply-adds per thread a GEMM runs on fewer threads: waking a thread costs
// more than it saves. Measured, 1 against 2 threads (time ratio, NN/NT/TN; AVX-512 and AVX2
// alike): 64³ and 80³ ran 4–29% faster on one, 96³ mostly and 112³ 7–34% faster on two.
constexpr index_t kMinWorkPerThread = 64 * 64 * 64;

// A multithreaded GEMM is cut into this many chunks per thread, taken in turn: enough that a
// thread the OS delays (a busy machine) holds up little work, few enough that the A or B packing
// each chunk repeats stays small.
constexpr index_t kChunksPerThread = 4;

// A multithreaded GEMM packs B once, shared by the threads, when it takes at most this many bytes
// (a 2048×2048 float B): a larger copy would fall out of L3. A larger B is shared a k slice at a
// time (in column blocks if a slice is larger too), rather than chunks packing A and B for
// themselves, which packed all of A once a chunk. Measured, 2 threads, against NumPy, per-chunk
// packing → column blocks → k slices: 3000³ float NN 0.87–0.90 → 0.91–1.00 → 1.01–1.04×, TN
// 0.84–0.87 → 0.92–0.98 → 0.96–0.99×; 4096³ float NN 0.98 → 0.95–0.99 → 1.02–1.03×; 2048³ double
// NN 0.84–0.86 → 0.96–0.99 → 0.98–1.04×. Column blocks of 48 or 128 MiB measured as 16.
constexpr index_t kMaxSharedPackBytes = index_t(16) << 20;

// With B packed once and shared, chunks of C of about this many per thread: row strips of whole
// micro-panels, cut into column groups too when there are fewer rows (a 128-row batch: 10
// one-panel strips × 2 groups on 2 threads). Chunks cost nothing extra then, and thin ones keep
// the threads balanced.
constexpr index_t kSharedChunksPerThread = 8;

// ... but no more chunks than leave each this many multiply-adds: below it the hand-offs and the
// repeated packing of A's rows cost more than the balance gains (measured, 2 threads, % of peak:
// 128³ NN/NT/TN 50/39/48 → 58/45/56, 96³ NN/TN 31/35 → 50/50; 2¹⁹ lost 128³ its balance).
constexpr index_t kMinSharedChunkWork = index_t(1) << 18;

// ... but when the shared B̃ is larger than this (it cannot stay in L2), strips are at least
// kMinSharedStripPanels micro-panels tall, columns cut into more groups instead: each B̃ slice
// then comes from L3 once per such strip and serves its panels from L2, not once per panel.
// Measured, 2 threads, % of peak, one-panel strips → four: 256×1024×784 NT/NN 64/65 → 74/73,
// 256×1024×1024 60/59 → 68/69, 256×2048×512 60/62 → 72/70, 512×1024×1024 69/70 → 71/75; on
// shapes whose B̃ fits L2 (128×784×128) taller strips cost 2–7 points, hence the threshold.
constexpr index_t kSharedBInL2Bytes = index_t(1) << 20;  // 1 MiB: Skylake-SP's L2, half of SPR's
constexpr index_t kMinSharedStripPanels = 4;

// With B shared and C cut into column groups too, A is packed once for all chunks (not once a
// chunk) when the chunks would repeat at least this many elements of packing: below it the extra
// hand-off to the threads costs more (measured, 2 threads, % of peak, packed once against once a
// chunk: 256×1024×1024 NN/NT 68/65 → 69/68, 64×1024×1024 NN 48 → 50; 128×784×128 NN, whose
// chunks repeat 16 K elements, 63 → 56).
constexpr index_t kMinRepeatedAPackElements = index_t(1) << 18;

// ... and when they are not (fewer repeats than that), C is not cut into column groups at all
// if there are at least this many row strips per thread: the groups' balance did not repay
// packing A again. Measured, 2 threads, µs, 3 rounds: 128×128×784 TN 109–113 → 93–100,
// 128×784×128 TN 112–117 → 101–108 (10 one-panel strips each).
constexpr index_t kMinStripsPerThread = 4;

// A narrow C (A read in place) whose B must be packed is cut into column strips that pack their
// own columns of B, rather than sharing one packing, when A takes at most this many bytes: each
// strip then reads all of A, from L2. Measured, 2 threads, µs, shared → own: 128³ NT 30 → 20,
// 128×128×784 NT 111 → 95, 64×256×512 NT 86 → 73, 256×128×784 NT 178 → 160; AVX2 (which packs
// every B) 128³ NN/NT 34/36 → 25/27, 32×128×784 NN/NT 62/76 → 55/67; 1024×128×784 (3.2 MB of A)
// NN/NT 588/600 → 660/650, hence the bound.
constexpr index_t kOwnBMaxABytes = index_t(1) << 20;

// A row-major A is read in place, not packed, when C has at most this many NR-wide panels: each
// packed A micro-panel would serve too few micro-kernel calls to repay its transpose (measured:
// 10000×128×784 NT gains 8–40%; C 512 wide loses ~5%, 1024 wide ~10%).
constexpr index_t kInPlaceAMaxPanels = 8;

// ... unless A's row stride is a multiple of this: then its MR rows fall in the same L1d sets
// (32 KiB, 8-way: 4 KiB per way) and evict each other, which packing avoids.
constexpr index_t kAliasingStrideBytes = 4096;

// A row-major B is read in place by the micro-kernel, not packed, on AVX-512 only: on AVX2 the
// gains were small and mixed (−3 to +7 points of peak on batch-sized shapes), so it packs B.
constexpr bool kInPlaceB = BP_VEC_BYTES == 64;
// It is, when A has at most this many micro-panels (each packed B micro-panel would be read by
// too few of them to repay the copy) ...
constexpr index_t kInPlaceBMaxAPanels = 40;
// ... and a k slice of B (KC rows × row stride) spans at most this many bytes: the micro-kernel
// touches a new row of B, often a new page, every k step. Measured, 2 threads, % of peak, in place
// against packed: 128×784×128 NN/TN 56/54 → 58/61, 128×128×784 66/52 → 68/63, 256³ 66/64 → 69/69,
// 128×784×256 54/55 → 58/60; slices of 1 MiB were mixed (512³ 69/71 → 68/77), of 2 MiB or more
// 13–19 points slower (700³, 256×1000×1000, 128×2000×500).
constexpr index_t kInPlaceBMaxSliceBytes = index_t(784) << 10;

// The micro-kernel prefetches B̃ this many k-iterations ahead (4 KiB for AVX-512 float): B̃
// comes from L2 or L3, and the hardware prefetcher alone left the FMA units waiting (measured,
// 2 threads: 1024³ NN 58–62% → 67–73% of peak, 2048³ NT 66% → 72%; 16 to 64 all alike).
constexpr index_t kPrefetchBIterations = 32;

// The micro-kernel prefetches its tile of C this many k-iterations before the write-back (rows
// of C on different pages: 28 cache lines a tile). Measured, 2 threads: with KC 384, 2048³ NN
// 71–73% → 75–76% of peak; with KC 1024 (fewer write-backs) large GEMMs are unchanged and
// 128×128×784 NT 57% → 61%, TN 49% → 54%. Off (0) on AVX2 and the portable build, where it was
// not shown to help.
constexpr index_t kPrefetchCIterations = BP_VEC_BYTES == 64 ? 48 : 0;

// With B packed once and shared, each thread's first A micro-panel on a B̃ slice streams it
// from L3; the micro-kernel meanwhile asks the next slice into L2, a line every this many k
// steps. Timed per micro-kernel call (2048³ NN, 2 threads): first-panel calls took 1.35–1.45×
// as long as the others, 1.14–1.18× with it; whole GEMMs, 8 alternated rounds: 2048³ NN/NT/TN
// 72.8/74.6/71.5 → 73.8/73.3/73.0% of peak (as large as the noise). Re-measured against a build
// without it, 5 alternated rounds, 2 threads: without it 1024³ NN/NT/TN took 1.02–1.03× as long,
// 2048³ 1.03–1.05× (medians; the ranges do not overlap), float64 1024³ 1.05× (best of each), the
// layer shapes 128×784×128 and 32×128×784 the same; kept. 0: off (AVX2 and the portable build,
// where it was not measured).
constexpr index_t kPrefetchNextSliceEvery = BP_VEC_BYTES == 64 ? 2 : 0;

// Packing a column-major A (Xᵀ in dW = δᵀ·X) prefetches the column this many ahead: each column
// of a block is a few cache lines on its own page, a pattern the hardware prefetcher misses.
constexpr index_t kPrefetchAColumnsAhead = 8;

// Element-wise loops (optimizer updates) run on several threads only from this length on: below
// it the memory traffic takes less time than waking the threads.
constexpr index_t kMinParallelElements = index_t(1) << 15;

}  // namespace blocking
}  // namespace blockprop
