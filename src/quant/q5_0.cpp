// quant/q5_0.cpp — Q5_0: blocks of 32 5-bit codes (4 low bits in qs, 5th bits in qh), x = d·(q−16).
// Its layout; the ggml reference quantiser, exact dequantiser and Q5_0·Q8_0 dot come from
// legacy_common.h.
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/legacy_common.h"

namespace kvant {
namespace {

static_assert(kQK5_0 == legacy::kElems);

void unpack_q5_0(const block_q5_0& b, int* codes) { legacy::unpack_q5(b.qs, b.qh, codes); }
void pack_q5_0(const int* codes, block_q5_0* b) { legacy::pack_q5(codes, b->qs, b->qh); }

}  // namespace

const QuantTraits formats::kQ5_0 = {
    GgmlType::Q5_0, kQK5_0, sizeof(block_q5_0), GgmlType::Q8_0,
    legacy::dequantize_row_centered<block_q5_0, unpack_q5_0, 16>,
    legacy::quantize_row_centered<block_q5_0, pack_q5_0, 16>,
    legacy::vec_dot_centered_q8_0<block_q5_0, unpack_q5_0, 16>,
};

}  // namespace kvant
