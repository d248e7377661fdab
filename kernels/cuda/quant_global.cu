// The global path of RTN quantization, for scales shared by runs that are not neighbours (INT8 and FP8
// per channel on an inner axis, FP8 per tensor) and for rows too long for grey_quant_rows:
// grey_quant_absmax gathers every parameter set's statistics, grey_quant_param_sets turns them into
// parameter sets, grey_quant_encode writes the codes. grey_quant_encode also finishes the MSE path
// (quant_search.cu), with the parameter sets the search chose.
#include "quant_params.cuh"
#include "quant_position.cuh"

// Global statistics for INT8 / INT8_TOKEN / FP8: the absolute maximum of every parameter set, as float
// bits (non-negative floats order as their bits), through shared memory when the sets fit there.
// Threads take consecutive stretches of elements, so a per-tensor or per-row scale costs one atomic per
// stretch, not per element.
extern "C" __global__ void grey_quant_absmax(grey_qk_args a) {
    extern __shared__ unsigned int shared_max[];
    const bool in_shared = a.param_count <= GREY_QK_SHARED_STATISTICS;
    if (in_shared) {
        for (uint64_t p = threadIdx.x; p < a.param_count; p += blockDim.x) shared_max[p] = 0;
        __syncthreads();
    }
    unsigned int* global_max = reinterpret_cast<unsigned int*>(a.absmax_bits);
    const uint64_t stretch = 16;
    for (uint64_t start = global_thread() * stretch; start < a.elements; start += grid_threads() * stretch) {
        const uint64_t end = start + stretch < a.elements ? start + stretch : a.elements;
        Position at = locate(a, start);
        float m = 0.0f;
        for (uint64_t i = start; i < end; ++i) {
            const float v = load_element(a, i);
            note_if_not_finite(a, i, v);
            m = fmaxf(m, fabsf(v));
            if (at.offset + 1 == a.run_length || i + 1 == end) {  // the set changes after i, or the stretch ends
                if (in_shared) atomicMax(&shared_max[at.set], __float_as_uint(m));
                else atomicMax(&global_max[at.set], __float_as_uint(m));
                m = 0.0f;
            }
            advance(a, at);
        }
    }
    if (in_shared) {
        __syncthreads();
        for (uint64_t p = threadIdx.x; p < a.param_count; p += blockDim.x)
            if (shared_max[p] != 0) atomicMax(&global_max[p], shared_max[p]);
    }
}

// The parameter sets of the global path, from the statistics grey_quant_absmax gathered.
extern "C" __global__ void grey_quant_param_sets(grey_qk_args a) {
    const unsigned int* absmax = reinterpret_cast<const unsigned int*>(a.absmax_bits);
    Coding* codings = reinterpret_cast<Coding*>(a.codings);
    for (uint64_t p = global_thread(); p < a.param_count; p += grid_threads()) {
        const Stats s{__uint_as_float(absmax[p]), 0.0f, 0.0f, 0.0f};
        codings[p] = make_coding(a.format, s, 1.0f);
        store_checked_params(a, p, codings[p]);
    }
}

// Encodes with the parameter sets in a.codings (global and MSE paths). Planar formats: a thread per four
// elements; ggml blocks: a thread per block (whose header was stored with its parameter set).
extern "C" __global__ void grey_quant_encode(grey_qk_args a) {
    __shared__ Tables tables;
    build_tables(a.format, kEncodeTables, tables);
    const Coding* codings = reinterpret_cast<const Coding*>(a.codings);
    unsigned char* out = reinterpret_cast<unsigned char*>(a.quantized);
    if (is_ggml(a.format)) {
        for (uint64_t b = global_thread(); b < a.param_count; b += grid_threads()) {
            const Coding c = codings[b];
            unsigned char* codes = out + b * ggml_block_bytes(a.format) + ggml_header_bytes(a.format);
            for (uint64_t j = 0; j < 32; ++j) {
                const uint32_t q = encode(a.format, c, load_element(a, 32 * b + j), tables);
                if (a.format == kQ8_0 || j < 16) codes[j] = static_cast<unsigned char>(q);
                else codes[j - 16] |= static_cast<unsigned char>(q << 4);  // Q4: code j+16 in the high nibble
            }
        }
        return;
    }
    const bool four_bit = is_four_bit(a.format);
    const uint64_t chunks = (a.elements + 3) / 4;
    for (uint64_t chunk = global_thread(); chunk < chunks; chunk += grid_threads()) {
        const uint64_t first = 4 * chunk;
        const uint64_t count = a.elements - first < 4 ? a.elements - first : 4;
        // Loops over k stay unrolled with constant indices: an array indexed at run time would live in
        // local memory.
        float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (count == 4) {
            load4(a, first, v);
        } else {
#pragma unroll
            for (int k = 0; k < 4; ++k)
                if (k < count) v[k] = load_element(a, first + k);
        }
        Position at = locate(a, first);
        uint32_t q[4] = {0, 0, 0, 0};
#pragma unroll
        for (int k = 0; k < 4; ++k)
            if (k < count) {
                q[k] = encode(a.format, codings[at.set], v[k], tables);
                advance(a, at);
            }
        if (four_bit) {  // element counts of 4-bit formats are multiples of their groups
            store_u16(a.quantized + first / 2, q[0] | (q[1] << 4) | (q[2] << 8) | (q[3] << 12));
        } else if (count == 4) {
            store_u32(a.quantized + first, pack_bytes(q));
        } else {
#pragma unroll
            for (int k = 0; k < 4; ++k)
                if (k < count) out[first + k] = static_cast<unsigned char>(q[k]);
        }
    }
}

