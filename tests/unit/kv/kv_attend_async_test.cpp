// KvCache::attend_async over a backend whose streams run queued attention only when they are waited
// for: the host backend with its kv_attend_async, event and synchronize slots replaced, so that the
// test decides when the queued work runs. What it shows cannot depend on timing: a truncation, an append
// that reuses dropped block memory and the cache's destruction each run the queued attention before they
// change a block's bytes (else it would read the new ones, or freed memory); a finished call's event and
// staging are used again.
#include "host_backend_support.hpp"
#include "kv/kv_cache.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace {

// The queued attention, in order, run when a wait reaches it.
struct Deferred {
    std::vector<std::function<void()>> jobs;
    size_t ran = 0;
    std::map<grey_backend_event*, size_t> marks;  // an event stands for the jobs queued before its record
    uint32_t events_made = 0;

    void run_until(size_t end) {
        for (; ran < end; ++ran) jobs[ran]();
    }
};
Deferred deferred;
const grey_backend_vtable real = grey::test::host_vtable();

grey_status deferred_attend(void* state, grey_backend_stream*, const grey_backend_kv_attend_job* job, void* staging) {
    EXPECT_NE(staging, nullptr);
    // The job's tables copied into the staging, as a GPU backend stages its upload: the runtime keeps it.
    const uint64_t blocks = job->table_offsets[job->batch];
    EXPECT_GE(GREY_BACKEND_KV_ATTEND_STAGING_BYTES(job->batch, blocks), 4 * 8 * uint64_t{job->batch} + 8);
    auto* words = static_cast<uint64_t*>(staging);
    std::memcpy(words, job->first, job->batch * 8);
    std::memcpy(words + job->batch, job->last, job->batch * 8);
    std::memcpy(words + 2 * job->batch, job->table_offsets, (job->batch + 1) * 8);
    auto block_list = std::make_shared<std::vector<grey_backend_buffer*>>(job->blocks, job->blocks + blocks);
    auto quantized = std::make_shared<std::vector<uint8_t>>(job->quantized, job->quantized + blocks);
    auto layout = std::make_shared<grey_kv_layout>(*job->layout);
    grey_backend_kv_attend_job copy = *job;
    deferred.jobs.push_back([=] {
        grey_backend_kv_attend_job j = copy;
        j.layout = layout.get();
        j.first = words;
        j.last = words + copy.batch;
        j.table_offsets = words + 2 * copy.batch;
        j.blocks = block_list->data();
        j.quantized = quantized->data();
        ASSERT_EQ(real.kv_attend(state, &j), GREY_OK);
    });
    return GREY_OK;
}
grey_status deferred_event_create(void* state, uint32_t device, grey_backend_event** out) {
    ++deferred.events_made;
    return real.event_create(state, device, out);
}
grey_status deferred_record(void* state, grey_backend_event* event, grey_backend_stream* stream) {
    deferred.marks[event] = deferred.jobs.size();
    return real.event_record(state, event, stream);
}
grey_status deferred_event_synchronize(void* state, grey_backend_event* event) {
    deferred.run_until(deferred.marks[event]);
    return real.event_synchronize(state, event);
}
grey_status deferred_event_query(void* state, grey_backend_event* event, uint32_t* out_done) {
    if (deferred.ran < deferred.marks[event]) {
        *out_done = 0;
        return GREY_OK;
    }
    *out_done = 1;  // the host stream's own record completes at once: waited for, so that the answer is certain
    return real.event_synchronize(state, event);
}
grey_status deferred_stream_synchronize(void* state, grey_backend_stream* stream) {
    deferred.run_until(deferred.jobs.size());
    return real.stream_synchronize(state, stream);
}

std::unique_ptr<grey::Backend> deferring_backend() {
    grey_backend_vtable vt = grey::test::host_vtable();
    vt.kv_attend_async = deferred_attend;
    vt.event_create = deferred_event_create;
    vt.event_create_untimed = deferred_event_create;
    vt.event_record = deferred_record;
    vt.event_synchronize = deferred_event_synchronize;
    vt.event_query = deferred_event_query;
    vt.stream_synchronize = deferred_stream_synchronize;
    return grey::test::host_backend_over(vt);
}

class KvAttendAsync : public ::testing::Test {
protected:
    void SetUp() override {
        deferred = Deferred{};
        backend = deferring_backend();
        grey_kv_cache_config c = GREY_KV_CACHE_CONFIG_INIT;
        c.layers = 1;
        c.kv_heads = 1;
        c.head_dim = 16;
        c.tokens_per_block = 4;
        c.window_tokens = 4;
        c.capacity_bytes = 1u << 20;
        shape = grey::kv::validated_shape(c);
        cache = std::make_unique<grey::kv::KvCache>(shape, *backend, 0);
        stream = backend->stream_create(0);
        io = backend->buffer_alloc(0, 2 * kIo);
        std::vector<float> q(kIo / 4);
        for (size_t i = 0; i < q.size(); ++i) q[i] = std::sin(0.3f * static_cast<float>(i));
        backend->buffer_write(io, 0, q.data(), kIo);
        queries = q;
    }
    void TearDown() override {
        cache.reset();
        backend->stream_destroy(stream);
        backend->buffer_free(io);
    }
    // `n` tokens of K/V from `seed` appended to `sequence`.
    void append(uint64_t sequence, uint32_t n, uint32_t seed, int32_t first_id) {
        std::mt19937 rng(seed);
        std::normal_distribution<float> normal;
        std::vector<float> k(n * shape.head_dim), v(k.size());
        for (auto& x : k) x = normal(rng);
        for (auto& x : v) x = normal(rng);
        std::vector<int32_t> ids(n);
        for (uint32_t i = 0; i < n; ++i) ids[i] = first_id + static_cast<int32_t>(i);
        cache->append(sequence, ids, k, v);
    }
    std::vector<float> attend_now(uint64_t sequence) const {
        std::vector<float> out(kIo / 4);
        cache->attend(params(), std::span(&sequence, 1), queries, out);
        return out;
    }
    void attend_queued(uint64_t sequence) {
        cache->attend_async(params(), std::span(&sequence, 1), grey_backend_memory{io, nullptr, 0, kIo}, grey_backend_memory{io, nullptr, kIo, kIo},
                            stream);
    }
    std::vector<float> output() const {
        std::vector<float> out(kIo / 4);
        backend->buffer_read(io, kIo, out.data(), kIo);
        return out;
    }
    static grey_kv_attend_params params() {
        grey_kv_attend_params p = GREY_KV_ATTEND_PARAMS_INIT;
        p.query_heads = 1;
        return p;
    }

    static constexpr uint64_t kIo = 16 * 4;
    std::unique_ptr<grey::Backend> backend;
    grey::kv::KvShape shape{};
    std::unique_ptr<grey::kv::KvCache> cache;
    grey_backend_stream* stream = nullptr;
    grey_backend_buffer* io = nullptr;
    std::vector<float> queries;
};

TEST_F(KvAttendAsync, TruncatingRunsTheQueuedAttentionFirst) {
    const uint64_t seq = cache->create_sequence(1);
    append(seq, 10, 1, 100);
    const auto before = attend_now(seq);
    attend_queued(seq);
    EXPECT_EQ(deferred.ran, 0u);
    cache->truncate(seq, 2);
    EXPECT_EQ(deferred.ran, 1u);  // the truncation waited for it
    append(seq, 8, 2, 500);  // into the block the queued call read, and into memory of blocks dropped
    const auto after = attend_now(seq);
    ASSERT_NE(before, after);
    EXPECT_EQ(output(), before);
}

TEST_F(KvAttendAsync, DroppingABlockRunsTheQueuedAttentionFirst) {
    const uint64_t a = cache->create_sequence(1), b = cache->create_sequence(2);
    append(a, 7, 3, 100);
    const auto before = attend_now(a);
    attend_queued(a);
    append(b, 3, 4, 200);  // no block of the cache is dropped: the queued work may wait
    EXPECT_EQ(deferred.ran, 0u);
    append(a, 2, 5, 300);  // a's second block fills and leaves the window: its window form is dropped
    EXPECT_EQ(deferred.ran, 1u);
    EXPECT_EQ(output(), before);
}

TEST_F(KvAttendAsync, DestroyingTheCacheRunsTheQueuedAttentionFirst) {
    const uint64_t seq = cache->create_sequence(1);
    append(seq, 13, 6, 100);
    const auto before = attend_now(seq);
    attend_queued(seq);
    cache.reset();
    EXPECT_EQ(deferred.ran, 1u);
    EXPECT_EQ(output(), before);
}

TEST_F(KvAttendAsync, FinishedCallsLendTheirEventAndStagingToTheNext) {
    const uint64_t seq = cache->create_sequence(1);
    append(seq, 5, 7, 100);
    for (int i = 0; i < 6; ++i) {
        attend_queued(seq);
        deferred.run_until(deferred.jobs.size());  // the stream passes it
    }
    EXPECT_EQ(deferred.events_made, 1u);
    // Three in flight at once take three.
    for (int i = 0; i < 3; ++i) attend_queued(seq);
    EXPECT_EQ(deferred.events_made, 3u);
    EXPECT_EQ(deferred.ran, 6u);
}

}  // namespace
