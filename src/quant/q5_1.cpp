// quant/q5_1.cpp — Q5_1: blocks of 32 5-bit codes (4 low bits in qs, 5th bits in qh) with scale and
// min, x = d·q + m. Its layout; the ggml reference quantiser, exact dequantiser and Q5_1·Q8_1 dot come
// from legacy_common.h.
#include <cstdint>

#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/legacy_common.h"

namespace kvant {
namespace {

static_assert(kQK5_1 == legacy::kElems);

void unpack_q5_1(const block_q5_1& b, int* codes) { legacy::unpack_q5(b.qs, b.qh, codes); }
void pack_q5_1(const int* codes, block_q5_1* b) { legacy::pack_q5(codes, b->qs, b->qh); }

}  // namespace

const QuantTraits formats::kQ5_1 = {
    GgmlType::Q5_1, kQK5_1, sizeof(block_q5_1), GgmlType::Q8_1,
    legacy::dequantize_row_with_min<block_q5_1, unpack_q5_1>,
    legacy::quantize_row_with_min<block_q5_1, pack_q5_1, 31, uint8_t>,
    legacy::vec_dot_with_min_q8_1<block_q5_1, unpack_q5_1>,
};

}  // namespace kvant
