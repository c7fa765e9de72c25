// quant/q4_0.cpp — Q4_0: blocks of 32 4-bit codes, x = d·(q−8). Its layout (plain nibbles); the ggml
// reference quantiser, exact dequantiser and Q4_0·Q8_0 dot come from legacy_common.h.
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/legacy_common.h"

namespace kvant {
namespace {

static_assert(kQK4_0 == legacy::kElems);

void unpack_q4_0(const block_q4_0& b, int* codes) { legacy::unpack_nibbles(b.qs, codes); }
void pack_q4_0(const int* codes, block_q4_0* b) { legacy::pack_nibbles(codes, b->qs); }

}  // namespace

const QuantTraits formats::kQ4_0 = {
    GgmlType::Q4_0, kQK4_0, sizeof(block_q4_0), GgmlType::Q8_0,
    legacy::dequantize_row_centered<block_q4_0, unpack_q4_0, 8>,
    legacy::quantize_row_centered<block_q4_0, pack_q4_0, 8>,
    legacy::vec_dot_centered_q8_0<block_q4_0, unpack_q4_0, 8>,
};

}  // namespace kvant
