#include "codec/rans.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace grey::codec {
namespace {

constexpr const char* kRansStream = "rANS stream";

void fill_starts(RansTable& table) {
    uint32_t start = 0;
    for (size_t s = 0; s < 256; ++s) {
        table.start[s] = static_cast<uint16_t>(start);
        start += table.frequency[s];
    }
}

}  // namespace

RansTable rans_table_for(std::span<const uint8_t> symbols) {
    RansTable table;
    if (symbols.empty()) return table;
    std::array<uint64_t, 256> counts{};
    for (uint8_t s : symbols) ++counts[s];
    const uint64_t total = symbols.size();
    int64_t assigned = 0;
    size_t most = 0;
    for (size_t s = 0; s < 256; ++s) {
        if (counts[s] == 0) continue;
        const uint64_t scaled = counts[s] * kRansProbTotal / total;
        table.frequency[s] = static_cast<uint16_t>(std::max<uint64_t>(1, scaled));
        assigned += table.frequency[s];
        if (counts[s] > counts[most]) most = s;
    }
    // Rounding down leaves a remainder, which the most frequent symbol takes (it costs it the least);
    // raising rare symbols to 1 can overshoot, which the largest frequencies give back one at a time.
    int64_t excess = assigned - static_cast<int64_t>(kRansProbTotal);
    if (excess < 0) table.frequency[most] = static_cast<uint16_t>(table.frequency[most] - excess);
    while (excess > 0) {
        const auto largest = std::max_element(table.frequency.begin(), table.frequency.end());
        --*largest;
        --excess;
    }
    fill_starts(table);
    return table;
}

void encode_rans(std::span<const uint8_t> symbols, std::vector<std::byte>& out) {
    const RansTable table = rans_table_for(symbols);
    std::array<uint8_t, 32> present{};
    for (size_t s = 0; s < 256; ++s)
        if (table.frequency[s] != 0) present[s / 8] = static_cast<uint8_t>(present[s / 8] | (1u << (s % 8)));
    for (uint8_t b : present) put<uint8_t>(out, b);
    for (size_t s = 0; s < 256; ++s)
        if (table.frequency[s] != 0) put<uint16_t>(out, table.frequency[s]);

    std::array<uint32_t, kRansLanes> states{};
    states.fill(kRansStateLow);
    std::array<std::vector<uint16_t>, kRansLanes> words;
    for (auto& lane_words : words) lane_words.reserve(symbols.size() / kRansLanes + 4);
    // rANS is last in, first out: encode backwards so that each lane decodes forwards. The lanes advance
    // together, one symbol each per step, so that their independent divisions overlap in the CPU.
    const size_t steps = (symbols.size() + kRansLanes - 1) / kRansLanes;
    for (size_t k = steps; k-- > 0;) {
        for (uint32_t lane = 0; lane < kRansLanes; ++lane) {
            const size_t i = k * kRansLanes + lane;
            if (i >= symbols.size()) break;
            const uint8_t s = symbols[i];
            const uint32_t freq = table.frequency[s];
            uint32_t state = states[lane];
            const uint64_t limit = (uint64_t{kRansStateLow >> kRansProbBits} << 16) * freq;
            if (state >= limit) {
                words[lane].push_back(static_cast<uint16_t>(state & 0xFFFFu));
                state >>= 16;
            }
            states[lane] = ((state / freq) << kRansProbBits) + (state % freq) + table.start[s];
        }
    }
    for (auto& lane_words : words) std::reverse(lane_words.begin(), lane_words.end());
    for (uint32_t state : states) put<uint32_t>(out, state);
    for (const auto& lane_words : words) put<uint32_t>(out, static_cast<uint32_t>(lane_words.size()));
    for (const auto& lane_words : words) {
        const size_t at = out.size();
        out.resize(at + lane_words.size() * 2);
        std::memcpy(out.data() + at, lane_words.data(), lane_words.size() * 2);
    }
}

void decode_rans(FieldReader& in, std::span<uint8_t> symbols) {
    const auto present = in.take(32, "symbol bitmap");
    RansTable table;
    uint32_t sum = 0;
    for (size_t s = 0; s < 256; ++s) {
        if ((std::to_integer<uint8_t>(present[s / 8]) >> (s % 8) & 1u) == 0) continue;
        const auto freq = in.read<uint16_t>("symbol frequency");
        if (freq == 0 || freq > kRansProbTotal) corrupt(kRansStream, "symbol " + std::to_string(s) + " has frequency " + std::to_string(freq));
        table.frequency[s] = freq;
        sum += freq;
    }
    if (symbols.empty() ? sum != 0 : sum != kRansProbTotal)
        corrupt(kRansStream, "the frequencies sum to " + std::to_string(sum) + ", not " + std::to_string(symbols.empty() ? 0 : kRansProbTotal));
    fill_starts(table);
    std::array<uint8_t, kRansProbTotal> slot_symbol{};
    for (size_t s = 0; s < 256; ++s)
        std::fill_n(slot_symbol.begin() + table.start[s], table.frequency[s], static_cast<uint8_t>(s));

    std::array<uint32_t, kRansLanes> states{};
    std::array<uint32_t, kRansLanes> counts{};
    for (auto& state : states) {
        state = in.read<uint32_t>("lane state");
        if (state < kRansStateLow) corrupt(kRansStream, "a lane state " + std::to_string(state) + " is below the range");
    }
    uint64_t total_words = 0;
    for (auto& count : counts) {
        count = in.read<uint32_t>("lane word count");
        total_words += count;
    }
    const auto all_words = in.take(total_words * 2, "lane words");
    // Each lane reads its own run of words; the lanes advance together (one symbol each per step) so that
    // their dependency chains overlap, as the threads of a warp do on a GPU.
    std::array<const std::byte*, kRansLanes> next{};
    std::array<const std::byte*, kRansLanes> end{};
    const std::byte* lane_start = all_words.data();
    for (uint32_t lane = 0; lane < kRansLanes; ++lane) {
        next[lane] = lane_start;
        lane_start += uint64_t{counts[lane]} * 2;
        end[lane] = lane_start;
    }
    for (size_t base = 0; base < symbols.size(); base += kRansLanes) {
        const uint32_t lanes = static_cast<uint32_t>(std::min<size_t>(kRansLanes, symbols.size() - base));
        for (uint32_t lane = 0; lane < lanes; ++lane) {
            uint32_t state = states[lane];
            const uint32_t slot = state & (kRansProbTotal - 1);
            const uint8_t s = slot_symbol[slot];
            state = table.frequency[s] * (state >> kRansProbBits) + slot - table.start[s];
            if (state < kRansStateLow) {
                if (next[lane] == end[lane]) corrupt(kRansStream, "lane " + std::to_string(lane) + " reads past its words");
                state = (state << 16) | load<uint16_t>(next[lane]);
                next[lane] += 2;
            }
            states[lane] = state;
            symbols[base + lane] = s;
        }
    }
    for (uint32_t lane = 0; lane < kRansLanes; ++lane)
        if (next[lane] != end[lane] || states[lane] != kRansStateLow)
            corrupt(kRansStream, "lane " + std::to_string(lane) + " does not end where its encoder began");
}

}  // namespace grey::codec
