// bfloat16 GEMM leaf kernels on AMX: A packed in tile order (rounding as it packs), the tile
// configuration, and the TDPBF16PS kernel on a 32×32 block of C. B̃ is AVX512-BF16's pair layout:
// a 16-column half of it, 16 pairs deep, is one B tile read with a 128-byte row stride.
// See bf16_kernels.h.
#include "isa_bf16/bf16_simd.h"

#include "isa/blocking.h"

namespace blockprop {
namespace avx512 {
namespace bf16 {

namespace {
constexpr int MR = blocking::amx_bf16::MR, NR = blocking::amx_bf16::NR;
constexpr int KB = blocking::amx_bf16::KSTEP;  // k values in a tile row
static_assert(MR == 32 && NR == 32 && KB == 32, "the kernel is 2×2 tiles of 16×16");
}  // namespace

void pack_a_amx(index_t mr, index_t kc, const float* a, index_t rsa, index_t csa, bf16_t* dst,
                index_t kp) {
  std::uint32_t* d = reinterpret_cast<std::uint32_t*>(dst);  // row i of block kb: 16 words
  const index_t blocks = kp / KB;
  for (index_t kb = 0; kb < blocks; ++kb) {
    const index_t p0 = kb * KB, n = kc - p0;  // k values of this block present in A (may be ≤ 0)
    std::uint32_t* blk = d + kb * MR * 16;
    if (csa == 1) {  // row-major A: a row's 32 k values are its tile row
      for (index_t i = 0; i < MR; ++i)
        _mm512_storeu_si512(blk + i * 16, i < mr && n > 0 ? pairs_along(a + i * rsa + p0, n)
                                                          : _mm512_setzero_si512());
    } else if (rsa == 1) {  // column-major A: pairs across two columns, then transposed to rows
      for (index_t i0 = 0; i0 < MR; i0 += 16) {
        const __mmask16 m = first(mr - i0);
        __m512i r[16];
        for (int u = 0; u < 16; ++u) {
          const index_t p = p0 + 2 * u;
          const __m512 x = p < kc ? _mm512_maskz_loadu_ps(m, a + i0 + p * csa) : _mm512_setzero_ps();
          const __m512 y = p + 1 < kc ? _mm512_maskz_loadu_ps(m, a + i0 + (p + 1) * csa)
                                      : _mm512_setzero_ps();
          r[u] = pairs_across(x, y);
        }
        transpose16(r);
        for (int i = 0; i < 16; ++i) _mm512_storeu_si512(blk + (i0 + i) * 16, r[i]);
      }
    } else {
      for (index_t i = 0; i < MR; ++i)
        for (index_t u = 0; u < 16; ++u) {
          const index_t p = p0 + 2 * u;
          const bf16_t lo = i < mr && p < kc ? round_scalar(a[i * rsa + p * csa]) : 0;
          const bf16_t hi = i < mr && p + 1 < kc ? round_scalar(a[i * rsa + (p + 1) * csa]) : 0;
          blk[i * 16 + u] = lo | std::uint32_t(hi) << 16;
        }
    }
  }
}

namespace {
// LDTILECFG's 64-byte operand: palette 1, tiles 0–7 all 16 rows of 64 bytes (0–3 C, 4–5 A, 6–7 B).
struct alignas(64) TileConfig {
  std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
  std::uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  std::uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};
}  // namespace

void amx_begin() {
  static const TileConfig config;
  _tile_loadconfig(&config);
}

void amx_end() { _tile_release(); }

void kernel_amx(index_t kp, const bf16_t* a, const bf16_t* b, float alpha, float beta, float* c,
                index_t rsc, index_t csc, index_t mr, index_t nr) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (index_t kb = 0, blocks = kp / KB; kb < blocks; ++kb) {
    const bf16_t* ab = a + kb * MR * KB;   // 32 rows of 64 bytes
    const bf16_t* bb = b + kb * 16 * 2 * NR;  // 16 pairs of 128 bytes
    _tile_loadd(4, ab, 64);
    _tile_loadd(5, ab + 16 * KB, 64);
    _tile_loadd(6, bb, 4 * NR);
    _tile_loadd(7, bb + 32, 4 * NR);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  alignas(64) float tile[MR * NR];
  _tile_stored(0, tile, 4 * NR);
  _tile_stored(1, tile + 16, 4 * NR);
  _tile_stored(2, tile + 16 * NR, 4 * NR);
  _tile_stored(3, tile + 16 * NR + 16, 4 * NR);
  write_back(tile, NR, alpha, beta, c, rsc, csc, mr, nr);
}

}  // namespace bf16
}  // namespace avx512
}  // namespace blockprop
