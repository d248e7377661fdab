// grey_kv_attend_async on the host backend, whose streams run their work on a thread of their own: the
// output equals the synchronous form's bit for bit, in order with the other work on the stream, for
// several calls queued at once; the cache's changes after a call wait for it; bad arguments are refused
// with nothing queued.
#include "kv_test_support.hpp"

#include <algorithm>
#include <cstring>

using namespace kvtest;

namespace {

struct StreamDeleter {
    void operator()(grey_stream* s) const { grey_stream_destroy(s); }
};
using Stream = std::unique_ptr<grey_stream, StreamDeleter>;

Stream make_stream(grey_context* context) {
    grey_stream* stream = nullptr;
    EXPECT_EQ(grey_stream_create(context, 0, &stream), GREY_OK) << grey_last_error();
    return Stream(stream);
}

// A cache with three ragged sequences (quantized blocks, the window, a partly filled last block).
struct Filled {
    Context context = make_context();
    grey_kv_cache_config config = [] {
        auto c = small_config();
        c.format = GREY_KV_INT4;
        return c;
    }();
    Cache cache = make_cache(context.get(), config);
    std::vector<uint64_t> sequences;

    Filled() {
        for (const uint32_t length : {1u, 9u, 30u}) {
            sequences.push_back(new_sequence(cache.get()));
            EXPECT_EQ(append(cache.get(), sequences.back(), iota_tokens(length), random_kv(config, length, 70 + length)), GREY_OK)
                << grey_last_error();
        }
    }
    [[nodiscard]] uint64_t io_bytes(uint32_t query_heads) const { return uint64_t{sequences.size()} * query_heads * config.head_dim * 4; }
    // What the synchronous form gives for layer `layer`.
    std::vector<float> expected(const grey_kv_attend_params& p, const std::vector<float>& queries) {
        std::vector<float> out(queries.size());
        EXPECT_EQ(grey_kv_attend(cache.get(), &p, sequences.data(), static_cast<uint32_t>(sequences.size()), queries.data(), out.data(),
                                 queries.size() * 4),
                  GREY_OK)
            << grey_last_error();
        return out;
    }
};

grey_kv_attend_params params_for(uint32_t layer, uint32_t query_heads) {
    grey_kv_attend_params p = GREY_KV_ATTEND_PARAMS_INIT;
    p.layer = layer;
    p.query_heads = query_heads;
    return p;
}

}  // namespace

// Queries written, attention for both layers and the output read back, all queued on one stream before
// anything is waited for.
TEST(KvAttendAsync, QueuedInOrderWithTheStreamsOtherWork) {
    Filled f;
    const uint64_t io = f.io_bytes(4);
    const auto queries = random_kv(f.config, 6, 9).keys;  // [layer 0: 3 x 4 x 32][layer 1: ...]
    const std::vector<float> q0(queries.begin(), queries.begin() + io / 4), q1(queries.begin() + io / 4, queries.begin() + io / 2);
    auto q = make_buffer(f.context.get(), 2 * io);
    auto out = make_buffer(f.context.get(), 2 * io + 8);
    auto stream = make_stream(f.context.get());
    std::vector<float> got(io / 2);
    const auto p0 = params_for(0, 4), p1 = params_for(1, 4);
    ASSERT_EQ(grey_buffer_write_async(q.get(), 0, q0.data(), io, stream.get()), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_write_async(q.get(), io, q1.data(), io, stream.get()), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_kv_attend_async(f.cache.get(), &p0, f.sequences.data(), 3, q.get(), 0, out.get(), 8, io, stream.get()), GREY_OK)
        << grey_last_error();
    ASSERT_EQ(grey_kv_attend_async(f.cache.get(), &p1, f.sequences.data(), 3, q.get(), io, out.get(), 8 + io, io, stream.get()), GREY_OK)
        << grey_last_error();
    ASSERT_EQ(grey_buffer_read_async(out.get(), 8, got.data(), 2 * io, stream.get()), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << grey_last_error();
    const auto e0 = f.expected(p0, q0), e1 = f.expected(p1, q1);
    EXPECT_EQ(std::memcmp(got.data(), e0.data(), io), 0);
    EXPECT_EQ(std::memcmp(got.data() + io / 4, e1.data(), io), 0);
}

// Many calls in flight at once, on two streams, each into its own part of the output.
TEST(KvAttendAsync, ManyCallsInFlightOnTwoStreams) {
    Filled f;
    const uint64_t io = f.io_bytes(2);
    const auto queries = random_kv(f.config, 3, 4).keys;
    const std::vector<float> qs(queries.begin(), queries.begin() + io / 4);
    auto q = make_buffer(f.context.get(), io);
    ASSERT_EQ(grey_buffer_write(q.get(), 0, qs.data(), io), GREY_OK);
    constexpr uint32_t kCalls = 24;
    auto out = make_buffer(f.context.get(), kCalls * io);
    Stream streams[] = {make_stream(f.context.get()), make_stream(f.context.get())};
    for (uint32_t i = 0; i < kCalls; ++i) {
        const auto p = params_for(i % 2, 2);
        ASSERT_EQ(grey_kv_attend_async(f.cache.get(), &p, f.sequences.data(), 3, q.get(), 0, out.get(), i * io, io, streams[i % 2].get()),
                  GREY_OK)
            << grey_last_error();
    }
    for (auto& s : streams) ASSERT_EQ(grey_stream_synchronize(s.get()), GREY_OK) << grey_last_error();
    const std::vector<float> expected[] = {f.expected(params_for(0, 2), qs), f.expected(params_for(1, 2), qs)};
    std::vector<float> got(io / 4);
    for (uint32_t i = 0; i < kCalls; ++i) {
        ASSERT_EQ(grey_buffer_read(out.get(), i * io, got.data(), io), GREY_OK);
        EXPECT_EQ(std::memcmp(got.data(), expected[i % 2].data(), io), 0) << "call " << i;
    }
}

// What a sequence holds is taken at the call: truncating, freeing, appending and destroying the cache
// afterwards leave the queued result as it was (the cache waits for the queued work before it frees,
// reuses or rewrites block memory).
TEST(KvAttendAsync, ChangesAfterTheCallDoNotReachIt) {
    auto f = std::make_unique<Filled>();
    const uint64_t io = f->io_bytes(2);
    const auto queries = random_kv(f->config, 3, 5).keys;
    const std::vector<float> qs(queries.begin(), queries.begin() + io / 4);
    const auto p = params_for(1, 2);
    const auto expected = f->expected(p, qs);
    auto q = make_buffer(f->context.get(), io);
    auto out = make_buffer(f->context.get(), 3 * io);
    ASSERT_EQ(grey_buffer_write(q.get(), 0, qs.data(), io), GREY_OK);
    auto stream = make_stream(f->context.get());
    ASSERT_EQ(grey_kv_attend_async(f->cache.get(), &p, f->sequences.data(), 3, q.get(), 0, out.get(), 0, io, stream.get()), GREY_OK);
    ASSERT_EQ(grey_kv_sequence_truncate(f->cache.get(), f->sequences[2], 3), GREY_OK) << grey_last_error();
    ASSERT_EQ(append(f->cache.get(), f->sequences[2], iota_tokens(27, 500), random_kv(f->config, 27, 99)), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_kv_attend_async(f->cache.get(), &p, f->sequences.data(), 3, q.get(), 0, out.get(), io, io, stream.get()), GREY_OK);
    const auto changed = f->expected(p, qs);
    ASSERT_EQ(grey_kv_sequence_free(f->cache.get(), f->sequences[1]), GREY_OK);
    ASSERT_EQ(grey_kv_attend_async(f->cache.get(), &p, &f->sequences[2], 1, q.get(), 2 * io / 3, out.get(), 2 * io, io / 3,
                                   stream.get()), GREY_OK);
    grey_context* context = f->context.release();  // the cache goes with the call queued, the context stays
    f.reset();
    ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << grey_last_error();
    std::vector<float> got(io / 4);
    ASSERT_EQ(grey_buffer_read(out.get(), 0, got.data(), io), GREY_OK);
    EXPECT_EQ(std::memcmp(got.data(), expected.data(), io), 0);
    ASSERT_EQ(grey_buffer_read(out.get(), io, got.data(), io), GREY_OK);
    EXPECT_EQ(std::memcmp(got.data(), changed.data(), io), 0);
    EXPECT_NE(std::memcmp(expected.data(), changed.data(), io), 0);  // the append did change what a call sees
    ASSERT_EQ(grey_buffer_read(out.get(), 2 * io, got.data(), io / 3), GREY_OK);
    EXPECT_EQ(std::memcmp(got.data(), changed.data() + 2 * (io / 12), io / 3), 0);  // sequence 2 alone, with its query of the batch
    stream.reset();
    q.reset();
    out.reset();
    grey_context_destroy(context);
}

TEST(KvAttendAsync, BadArgumentsAreRefusedWithNothingQueued) {
    Filled f;
    const uint64_t io = f.io_bytes(2);
    auto q = make_buffer(f.context.get(), io);
    auto out = make_buffer(f.context.get(), io);
    ASSERT_EQ(grey_buffer_fill(out.get(), 0, 0xCD, io), GREY_OK);
    auto stream = make_stream(f.context.get());
    const auto p = params_for(0, 2);
    auto refused = [&](grey_status status, const char* words) {
        EXPECT_NE(std::strstr(grey_last_error(), words), nullptr) << grey_last_error();
        return status;
    };
    const uint64_t* seqs = f.sequences.data();
    EXPECT_EQ(refused(grey_kv_attend_async(f.cache.get(), &p, seqs, 3, q.get(), 0, out.get(), 0, io, nullptr), "stream"),
              GREY_ERROR_INVALID_ARGUMENT);
    auto other = make_context();
    auto foreign = make_stream(other.get());
    EXPECT_EQ(refused(grey_kv_attend_async(f.cache.get(), &p, seqs, 3, q.get(), 0, out.get(), 0, io, foreign.get()), "another context"),
              GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(refused(grey_kv_attend_async(f.cache.get(), &p, seqs, 3, nullptr, 0, out.get(), 0, io, stream.get()), "queries"),
              GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(refused(grey_kv_attend_async(f.cache.get(), &p, seqs, 3, q.get(), 0, out.get(), 0, io - 4, stream.get()), "io_bytes"),
              GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(refused(grey_kv_attend_async(f.cache.get(), &p, seqs, 3, q.get(), 0, q.get(), 0, io, stream.get()), "overlap"),
              GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(refused(grey_kv_attend_async(nullptr, &p, seqs, 3, q.get(), 0, out.get(), 0, io, stream.get()), "cache"),
              GREY_ERROR_INVALID_ARGUMENT);
    // A sequence that does not exist, or is empty, is the call's own error, not the stream's.
    const uint64_t unknown[] = {seqs[0], 99, seqs[2]};
    EXPECT_EQ(grey_kv_attend_async(f.cache.get(), &p, unknown, 3, q.get(), 0, out.get(), 0, io, stream.get()), GREY_ERROR_NOT_FOUND);
    const uint64_t empty[] = {seqs[0], new_sequence(f.cache.get()), seqs[2]};
    EXPECT_EQ(refused(grey_kv_attend_async(f.cache.get(), &p, empty, 3, q.get(), 0, out.get(), 0, io, stream.get()), "empty"),
              GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << grey_last_error();
    std::vector<uint8_t> bytes(io);
    ASSERT_EQ(grey_buffer_read(out.get(), 0, bytes.data(), io), GREY_OK);
    EXPECT_EQ(std::count(bytes.begin(), bytes.end(), uint8_t{0xCD}), static_cast<long>(io));  // untouched by every failure
}
