// quant/q4_1.cpp — Q4_1: blocks of 32 4-bit codes with scale and min, x = d·q + m. Its layout (plain
// nibbles); the ggml reference quantiser, exact dequantiser and Q4_1·Q8_1 dot come from
// legacy_common.h.
#include <cstdint>

#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/legacy_common.h"

namespace kvant {
namespace {

static_assert(kQK4_1 == legacy::kElems);

void unpack_q4_1(const block_q4_1& b, int* codes) { legacy::unpack_nibbles(b.qs, codes); }
void pack_q4_1(const int* codes, block_q4_1* b) { legacy::pack_nibbles(codes, b->qs); }

}  // namespace

const QuantTraits formats::kQ4_1 = {
    GgmlType::Q4_1, kQK4_1, sizeof(block_q4_1), GgmlType::Q8_1,
    legacy::dequantize_row_with_min<block_q4_1, unpack_q4_1>,
    legacy::quantize_row_with_min<block_q4_1, pack_q4_1, 15, int8_t>,
    legacy::vec_dot_with_min_q8_1<block_q4_1, unpack_q4_1>,
};

}  // namespace kvant
