// Streams and events through grey.h: ordering, cross-stream waits, errors surfacing at synchronize,
// destroying with work pending and refused input. Every behaviour test runs on the host device (the host
// backend's streams: a worker thread each) and on a device of the fake plugin, which has no streams (the
// runtime runs the work at enqueue), so the semantics are checked on both paths.
#include "grey.h"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace {

struct ContextDeleter {
    void operator()(grey_context* c) const noexcept { grey_context_destroy(c); }
};
struct StreamDeleter {
    void operator()(grey_stream* s) const noexcept { grey_stream_destroy(s); }
};
struct EventDeleter {
    void operator()(grey_event* e) const noexcept { grey_event_destroy(e); }
};
struct BufferDeleter {
    void operator()(grey_buffer* b) const noexcept { grey_buffer_destroy(b); }
};
using Context = std::unique_ptr<grey_context, ContextDeleter>;
using Stream = std::unique_ptr<grey_stream, StreamDeleter>;
using Event = std::unique_ptr<grey_event, EventDeleter>;
using Buffer = std::unique_ptr<grey_buffer, BufferDeleter>;

// The host device (0) and the first device of the fake plugin (1), which has no streams.
Context make_context() {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backend_dir = GREY_TEST_PLUGIN_DIR;
    options.backends = "fake";
    grey_context* context = nullptr;
    EXPECT_EQ(grey_context_create(&options, &context), GREY_OK) << grey_last_error();
    return Context(context);
}

Stream make_stream(grey_context* context, uint32_t device) {
    grey_stream* stream = nullptr;
    EXPECT_EQ(grey_stream_create(context, device, &stream), GREY_OK) << grey_last_error();
    return Stream(stream);
}

Event make_event(grey_context* context, uint32_t device) {
    grey_event* event = nullptr;
    EXPECT_EQ(grey_event_create(context, device, &event), GREY_OK) << grey_last_error();
    return Event(event);
}

Buffer make_buffer(grey_context* context, uint32_t device, uint64_t size) {
    grey_buffer* buffer = nullptr;
    EXPECT_EQ(grey_buffer_create(context, device, size, &buffer), GREY_OK) << grey_last_error();
    return Buffer(buffer);
}

std::vector<unsigned char> pattern(size_t n, unsigned seed) {
    std::vector<unsigned char> bytes(n);
    for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<unsigned char>((i * 131 + seed * 7 + (i >> 8)) & 0xFF);
    return bytes;
}

uint64_t checksum_of(const std::vector<unsigned char>& bytes) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < bytes.size(); ++i) sum += (uint64_t{bytes[i]} + 1) * (i * 0x9E3779B97F4A7C15ull + 0xD6E8FEB86659FD93ull);
    return sum;
}

class Streams : public ::testing::TestWithParam<uint32_t> {
protected:
    Context context = make_context();
    uint32_t device = GetParam();
};

TEST_P(Streams, WorkOnOneStreamRunsInOrder) {
    constexpr size_t kSize = 1 << 16;
    auto stream = make_stream(context.get(), device);
    auto a = make_buffer(context.get(), device, kSize);
    auto b = make_buffer(context.get(), device, kSize);
    // Twenty versions of the same range, each overwriting the last, then a copy, a fill of part of the
    // copy, a read and a checksum: only the order enqueued gives the expected bytes.
    std::vector<std::vector<unsigned char>> versions;
    for (unsigned v = 0; v < 20; ++v) versions.push_back(pattern(kSize, v));
    for (const auto& version : versions) ASSERT_EQ(grey_buffer_write_async(a.get(), 0, version.data(), kSize, stream.get()), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_copy_async(b.get(), 0, a.get(), 0, kSize, stream.get()), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_fill_async(b.get(), 100, 0x5A, 1000, stream.get()), GREY_OK) << grey_last_error();
    std::vector<unsigned char> got(kSize);
    uint64_t sum = 0;
    ASSERT_EQ(grey_buffer_read_async(b.get(), 0, got.data(), kSize, stream.get()), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_checksum_async(b.get(), 0, kSize, &sum, stream.get()), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << grey_last_error();
    auto expected = versions.back();
    std::memset(expected.data() + 100, 0x5A, 1000);
    EXPECT_EQ(got, expected);
    EXPECT_EQ(sum, checksum_of(expected));
    uint32_t done = 0;
    ASSERT_EQ(grey_stream_query(stream.get(), &done), GREY_OK);
    EXPECT_EQ(done, 1u);
}

TEST_P(Streams, AnEventOrdersTwoStreams) {
    constexpr size_t kSize = 32 << 20;
    auto producer = make_stream(context.get(), device);
    auto consumer = make_stream(context.get(), device);
    auto ready = make_event(context.get(), device);
    auto buffer = make_buffer(context.get(), device, kSize);
    std::vector<std::vector<unsigned char>> versions;
    for (unsigned v = 0; v < 2; ++v) versions.push_back(pattern(kSize, v + 1));
    // The consumer waits for the producer's last write before it reads; without the wait it would read
    // while the producer is still filling and writing (a few hundred megabytes of work).
    for (unsigned fill = 0; fill < 8; ++fill)
        ASSERT_EQ(grey_buffer_fill_async(buffer.get(), 0, static_cast<uint8_t>(fill), kSize, producer.get()), GREY_OK);
    for (const auto& version : versions) ASSERT_EQ(grey_buffer_write_async(buffer.get(), 0, version.data(), kSize, producer.get()), GREY_OK);
    ASSERT_EQ(grey_event_record(ready.get(), producer.get()), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_wait_event(consumer.get(), ready.get()), GREY_OK) << grey_last_error();
    std::vector<unsigned char> got(kSize);
    uint64_t sum = 0;
    ASSERT_EQ(grey_buffer_read_async(buffer.get(), 0, got.data(), kSize, consumer.get()), GREY_OK);
    ASSERT_EQ(grey_buffer_checksum_async(buffer.get(), 0, kSize, &sum, consumer.get()), GREY_OK);
    ASSERT_EQ(grey_stream_synchronize(consumer.get()), GREY_OK) << grey_last_error();
    EXPECT_EQ(got, versions.back());
    EXPECT_EQ(sum, checksum_of(versions.back()));
    // The event has completed, and so has everything the producer did before it.
    uint32_t done = 0;
    ASSERT_EQ(grey_event_query(ready.get(), &done), GREY_OK);
    EXPECT_EQ(done, 1u);
    ASSERT_EQ(grey_event_synchronize(ready.get()), GREY_OK);
    double ms = -1;
    auto start = make_event(context.get(), device);
    ASSERT_EQ(grey_event_record(start.get(), producer.get()), GREY_OK);
    ASSERT_EQ(grey_buffer_fill_async(buffer.get(), 0, 1, kSize, producer.get()), GREY_OK);
    ASSERT_EQ(grey_event_record(ready.get(), producer.get()), GREY_OK);
    ASSERT_EQ(grey_event_elapsed_ms(start.get(), ready.get(), &ms), GREY_OK) << grey_last_error();
    EXPECT_GE(ms, 0.0);
    ASSERT_EQ(grey_stream_synchronize(producer.get()), GREY_OK);
}

TEST_P(Streams, DestroyingAStreamWaitsForItsWork) {
    constexpr size_t kSize = 1 << 20;
    auto buffer = make_buffer(context.get(), device, kSize);
    const auto data = pattern(kSize, 9);
    std::vector<unsigned char> got(kSize, 0);
    uint64_t sum = 0;
    {
        auto stream = make_stream(context.get(), device);
        for (int i = 0; i < 8; ++i) ASSERT_EQ(grey_buffer_write_async(buffer.get(), 0, data.data(), kSize, stream.get()), GREY_OK);
        ASSERT_EQ(grey_buffer_read_async(buffer.get(), 0, got.data(), kSize, stream.get()), GREY_OK);
        ASSERT_EQ(grey_buffer_checksum_async(buffer.get(), 0, kSize, &sum, stream.get()), GREY_OK);
    }  // destroyed with the work possibly still queued
    EXPECT_EQ(got, data);
    EXPECT_EQ(sum, checksum_of(data));
}

TEST_P(Streams, TheContextDestroysWhatIsLeft) {
    grey_stream* stream = nullptr;
    grey_event* event = nullptr;
    grey_buffer* buffer = nullptr;
    void* host = nullptr;
    ASSERT_EQ(grey_stream_create(context.get(), device, &stream), GREY_OK);
    ASSERT_EQ(grey_event_create(context.get(), device, &event), GREY_OK);
    ASSERT_EQ(grey_buffer_create(context.get(), device, 4096, &buffer), GREY_OK);
    ASSERT_EQ(grey_host_alloc(context.get(), device, 4096, &host), GREY_OK);
    std::memset(host, 7, 4096);
    ASSERT_EQ(grey_buffer_write_async(buffer, 0, host, 4096, stream), GREY_OK);
    ASSERT_EQ(grey_event_record(event, stream), GREY_OK);
    context.reset();  // the sanitizers see anything left behind
}

TEST_P(Streams, PinnedHostMemoryCarriesTransfers) {
    constexpr uint64_t kSize = 100000;
    void* host = nullptr;
    ASSERT_EQ(grey_host_alloc(context.get(), device, kSize, &host), GREY_OK) << grey_last_error();
    ASSERT_NE(host, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(host) % 64, 0u);
    const auto data = pattern(kSize, 3);
    std::memcpy(host, data.data(), kSize);
    auto buffer = make_buffer(context.get(), device, kSize);
    auto stream = make_stream(context.get(), device);
    std::vector<unsigned char> got(kSize);
    ASSERT_EQ(grey_buffer_write_async(buffer.get(), 0, host, kSize, stream.get()), GREY_OK);
    ASSERT_EQ(grey_buffer_read_async(buffer.get(), 0, got.data(), kSize, stream.get()), GREY_OK);
    ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK);
    EXPECT_EQ(got, data);
    ASSERT_EQ(grey_host_free(context.get(), host), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_host_free(context.get(), host), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("not given by grey_host_alloc"), std::string::npos) << grey_last_error();
    int local = 0;
    EXPECT_EQ(grey_host_free(context.get(), &local), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_host_free(context.get(), nullptr), GREY_OK);
    EXPECT_EQ(grey_host_alloc(context.get(), device, 0, &host), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_host_alloc(context.get(), 99, 64, &host), GREY_ERROR_INVALID_ARGUMENT);
}

TEST_P(Streams, RefusedInputEnqueuesNothing) {
    auto context2 = make_context();
    auto stream = make_stream(context.get(), device);
    const uint32_t other_device = device == 0 ? 1 : 0;
    auto other_stream = make_stream(context.get(), other_device);
    auto foreign_stream = make_stream(context2.get(), device);
    auto buffer = make_buffer(context.get(), device, 256);
    auto other_buffer = make_buffer(context.get(), other_device, 256);
    std::vector<unsigned char> bytes(256, 1);
    uint64_t sum = 0;

    EXPECT_EQ(grey_buffer_write_async(buffer.get(), 0, bytes.data(), 256, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_STREQ(grey_last_error(), "stream must not be NULL");
    EXPECT_EQ(grey_buffer_write_async(buffer.get(), 0, bytes.data(), 256, other_stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("the stream is on device"), std::string::npos) << grey_last_error();
    EXPECT_EQ(grey_buffer_read_async(buffer.get(), 0, bytes.data(), 256, foreign_stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("another context"), std::string::npos) << grey_last_error();
    EXPECT_EQ(grey_buffer_write_async(buffer.get(), 200, bytes.data(), 100, stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("lies outside the buffer"), std::string::npos) << grey_last_error();
    EXPECT_EQ(grey_buffer_write_async(buffer.get(), 0, nullptr, 16, stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_copy_async(buffer.get(), 0, other_buffer.get(), 0, 16, stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_copy_async(buffer.get(), 0, buffer.get(), 8, 16, stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_fill_async(buffer.get(), 250, 0, 16, stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_checksum_async(buffer.get(), 0, 16, nullptr, stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_checksum_async(buffer.get(), 0, 16, &sum, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_stream_synchronize(nullptr), GREY_ERROR_INVALID_ARGUMENT);
    uint32_t done = 0;
    EXPECT_EQ(grey_stream_query(nullptr, &done), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_stream_query(stream.get(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    grey_stream* none = nullptr;
    EXPECT_EQ(grey_stream_create(context.get(), 99, &none), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_stream_create(nullptr, 0, &none), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(none, nullptr);
    // Nothing was enqueued: the stream is idle and has no error.
    ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << grey_last_error();
    grey_stream_destroy(nullptr);
    grey_event_destroy(nullptr);
}

TEST_P(Streams, EventsRefuseWhatTheyCannotMean) {
    auto context2 = make_context();
    auto stream = make_stream(context.get(), device);
    const uint32_t other_device = device == 0 ? 1 : 0;
    auto other_stream = make_stream(context.get(), other_device);
    auto foreign_stream = make_stream(context2.get(), device);
    auto never = make_event(context.get(), device);
    auto here = make_event(context.get(), device);
    auto there = make_event(context.get(), other_device);
    uint32_t done = 7;
    double ms = 0;

    EXPECT_EQ(grey_stream_wait_event(stream.get(), never.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("has never been recorded"), std::string::npos) << grey_last_error();
    EXPECT_EQ(grey_event_synchronize(never.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_event_query(never.get(), &done), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(done, 7u);
    EXPECT_EQ(grey_event_elapsed_ms(never.get(), never.get(), &ms), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_event_record(never.get(), other_stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("the event is on device"), std::string::npos) << grey_last_error();
    EXPECT_EQ(grey_event_record(never.get(), foreign_stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_event_record(nullptr, stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_event_record(never.get(), nullptr), GREY_ERROR_INVALID_ARGUMENT);

    ASSERT_EQ(grey_event_record(here.get(), stream.get()), GREY_OK);
    ASSERT_EQ(grey_event_record(there.get(), other_stream.get()), GREY_OK);
    EXPECT_EQ(grey_event_elapsed_ms(here.get(), there.get(), &ms), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("one device"), std::string::npos) << grey_last_error();
    EXPECT_EQ(grey_event_elapsed_ms(here.get(), here.get(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_stream_wait_event(foreign_stream.get(), here.get()), GREY_ERROR_INVALID_ARGUMENT);
    // Waiting for an event of another device (another backend here) is allowed: it orders the streams.
    EXPECT_EQ(grey_stream_wait_event(stream.get(), there.get()), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_event_elapsed_ms(here.get(), here.get(), &ms), GREY_OK);
    EXPECT_EQ(ms, 0.0);
    grey_event* none = nullptr;
    EXPECT_EQ(grey_event_create(context.get(), 99, &none), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(none, nullptr);
    ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK);
}

INSTANTIATE_TEST_SUITE_P(HostAndNoStreamBackend, Streams, ::testing::Values(0u, 1u),
                         [](const auto& param_info) { return param_info.param == 0 ? std::string("HostStreams") : std::string("RunAtEnqueue"); });

// --- Errors the work finds surface at the next synchronize, with the synchronous call's message.

std::vector<float> with_nan(size_t n) {
    std::vector<float> x(n);
    std::iota(x.begin(), x.end(), 1.0f);
    x[n / 2] = std::numeric_limits<float>::quiet_NaN();
    return x;
}

TEST(StreamErrors, ANanInputFailsAtSynchronizeWithTheSynchronousMessage) {
    auto context = make_context();
    const auto x = with_nan(4 * 128);
    const auto desc = grey::test::desc_of({4, 128});
    grey_quant_params params = GREY_QUANT_PARAMS_INIT;
    ASSERT_EQ(grey_quant_params_from_name("int8", &params), GREY_OK);
    uint64_t quantized_bytes = 0;
    ASSERT_EQ(grey_quant_size(&desc, &params, &quantized_bytes), GREY_OK);
    auto source = make_buffer(context.get(), 0, x.size() * 4);
    auto quantized = make_buffer(context.get(), 0, quantized_bytes);
    ASSERT_EQ(grey_buffer_write(source.get(), 0, x.data(), x.size() * 4), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer(&desc, source.get(), 0, &params, quantized.get(), 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    const std::string synchronous_message = grey_last_error();
    ASSERT_FALSE(synchronous_message.empty());

    auto stream = make_stream(context.get(), 0);
    auto after = make_event(context.get(), 0);
    ASSERT_EQ(grey_quantize_buffer_async(&desc, source.get(), 0, &params, quantized.get(), 0, stream.get()), GREY_OK) << grey_last_error();
    // Work after the failure still runs.
    std::vector<float> back(x.size());
    ASSERT_EQ(grey_buffer_read_async(source.get(), 0, back.data(), x.size() * 4, stream.get()), GREY_OK);
    ASSERT_EQ(grey_event_record(after.get(), stream.get()), GREY_OK);
    EXPECT_EQ(grey_event_synchronize(after.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_last_error(), synchronous_message);
    uint32_t done = 0;
    EXPECT_EQ(grey_event_query(after.get(), &done), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_stream_synchronize(stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_last_error(), synchronous_message);
    EXPECT_EQ(std::memcmp(back.data(), x.data(), x.size() * 4), 0);
    // Reported once: the stream has forgotten it.
    EXPECT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_query(stream.get(), &done), GREY_OK);
    EXPECT_EQ(done, 1u);

    // Good input through the async pair gives the synchronous calls' bytes.
    std::vector<float> good(4 * 128);
    std::iota(good.begin(), good.end(), -200.0f);
    std::vector<std::byte> expected(quantized_bytes);
    ASSERT_EQ(grey_quantize(&desc, good.data(), good.size() * 4, &params, expected.data(), expected.size(), nullptr), GREY_OK);
    auto restored = make_buffer(context.get(), 0, good.size() * 4);
    std::vector<std::byte> got(quantized_bytes);
    std::vector<float> decoded(good.size()), expected_decoded(good.size());
    ASSERT_EQ(grey_dequantize(&desc, &params, expected.data(), expected.size(), expected_decoded.data(), expected_decoded.size() * 4), GREY_OK);
    ASSERT_EQ(grey_buffer_write_async(source.get(), 0, good.data(), good.size() * 4, stream.get()), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer_async(&desc, source.get(), 0, &params, quantized.get(), 0, stream.get()), GREY_OK);
    ASSERT_EQ(grey_dequantize_buffer_async(&desc, &params, quantized.get(), 0, restored.get(), 0, stream.get()), GREY_OK);
    ASSERT_EQ(grey_buffer_read_async(quantized.get(), 0, got.data(), got.size(), stream.get()), GREY_OK);
    ASSERT_EQ(grey_buffer_read_async(restored.get(), 0, decoded.data(), decoded.size() * 4, stream.get()), GREY_OK);
    ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << grey_last_error();
    EXPECT_EQ(got, expected);
    EXPECT_EQ(decoded, expected_decoded);
}

TEST(StreamErrors, AFailureOfABackendWithoutStreamsWaitsForSynchronize) {
    auto context = make_context();
    auto buffer = make_buffer(context.get(), 1, 64);
    std::vector<unsigned char> bytes(13, 1);
    ASSERT_EQ(grey_buffer_write(buffer.get(), 13, bytes.data(), 13), GREY_ERROR_BACKEND);
    const std::string synchronous_message = grey_last_error();
    EXPECT_EQ(synchronous_message, "fake: the device rejected a write of 13 bytes at offset 13");

    auto stream = make_stream(context.get(), 1);
    auto after = make_event(context.get(), 1);
    ASSERT_EQ(grey_buffer_write_async(buffer.get(), 13, bytes.data(), 13, stream.get()), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_event_record(after.get(), stream.get()), GREY_OK);
    EXPECT_EQ(grey_event_synchronize(after.get()), GREY_ERROR_BACKEND);
    EXPECT_EQ(grey_last_error(), synchronous_message);
    EXPECT_EQ(grey_stream_synchronize(stream.get()), GREY_ERROR_BACKEND);
    EXPECT_EQ(grey_last_error(), synchronous_message);
    EXPECT_EQ(grey_stream_synchronize(stream.get()), GREY_OK);
    // A stream destroyed with an error it still keeps logs it and frees everything.
    ASSERT_EQ(grey_buffer_write_async(buffer.get(), 13, bytes.data(), 13, stream.get()), GREY_OK);
}

// Several streams quantizing at once, each from its own thread, then destroyed with work still pending:
// every result is the synchronous call's, and each stream's NaN failure is its own (run under tsan too).
TEST(StreamErrors, SeveralStreamsQuantizeAtOnceAndDestroyWithWorkPending) {
    auto context = make_context();
    const auto desc = grey::test::desc_of({8, 256});
    grey_quant_params params = GREY_QUANT_PARAMS_INIT;
    ASSERT_EQ(grey_quant_params_from_name("q4_0", &params), GREY_OK);
    uint64_t quantized_bytes = 0;
    ASSERT_EQ(grey_quant_size(&desc, &params, &quantized_bytes), GREY_OK);
    constexpr int kStreams = 3, kJobs = 20;
    std::vector<std::vector<float>> inputs(kStreams);
    std::vector<std::vector<std::byte>> expected(kStreams, std::vector<std::byte>(quantized_bytes));
    for (int s = 0; s < kStreams; ++s) {
        inputs[s].resize(8 * 256);
        for (size_t i = 0; i < inputs[s].size(); ++i) inputs[s][i] = std::sin(static_cast<float>(i * (s + 1))) * static_cast<float>(s + 2);
        ASSERT_EQ(grey_quantize(&desc, inputs[s].data(), inputs[s].size() * 4, &params, expected[s].data(), quantized_bytes, nullptr), GREY_OK);
    }
    const auto bad = with_nan(8 * 256);
    std::vector<std::vector<std::byte>> got(kStreams, std::vector<std::byte>(quantized_bytes));
    std::vector<std::string> errors(kStreams);
    std::vector<std::thread> threads;
    for (int s = 0; s < kStreams; ++s)
        threads.emplace_back([&, s] {
            auto stream = make_stream(context.get(), 0);
            auto source = make_buffer(context.get(), 0, inputs[s].size() * 4);
            auto quantized = make_buffer(context.get(), 0, quantized_bytes);
            for (int j = 0; j < kJobs; ++j) {
                const auto& input = j == s ? bad : inputs[s];
                EXPECT_EQ(grey_buffer_write_async(source.get(), 0, input.data(), input.size() * 4, stream.get()), GREY_OK);
                EXPECT_EQ(grey_quantize_buffer_async(&desc, source.get(), 0, &params, quantized.get(), 0, stream.get()), GREY_OK);
            }
            if (grey_stream_synchronize(stream.get()) != GREY_OK) errors[s] = grey_last_error();
            // Pending when the stream goes: destroying it waits for the work, before the buffers go.
            EXPECT_EQ(grey_quantize_buffer_async(&desc, source.get(), 0, &params, quantized.get(), 0, stream.get()), GREY_OK);
            EXPECT_EQ(grey_buffer_read_async(quantized.get(), 0, got[s].data(), quantized_bytes, stream.get()), GREY_OK);
            stream.reset();
        });
    for (auto& t : threads) t.join();
    for (int s = 0; s < kStreams; ++s) {
        EXPECT_EQ(got[s], expected[s]) << "stream " << s;
        EXPECT_NE(errors[s].find("element 1024 is NaN"), std::string::npos) << errors[s];
    }
}

// Host streams are threads of libgrey: no vendor handle to give, and the refusal says why.
TEST(StreamErrors, NativeHandlesAreRefusedWhereThereAreNone) {
    auto context = make_context();
    auto host = make_stream(context.get(), 0);
    auto fake = make_stream(context.get(), 1);
    grey_memory_kind kind = GREY_MEMORY_KIND_FORCE32;
    uint64_t handle = 77;
    EXPECT_EQ(grey_stream_native_handle(host.get(), &kind, &handle), GREY_ERROR_UNSUPPORTED);
    EXPECT_EQ(std::string(grey_last_error()),
              "grey_stream_native_handle: the stream is on device 0 of backend 'host', which has no native streams (its streams are libgrey's own)");
    EXPECT_EQ(grey_stream_native_handle(fake.get(), &kind, &handle), GREY_ERROR_UNSUPPORTED);
    EXPECT_NE(std::string(grey_last_error()).find("backend 'fake', which has no native streams (its async work runs when it is enqueued)"),
              std::string::npos)
        << grey_last_error();
    EXPECT_EQ(kind, GREY_MEMORY_KIND_FORCE32);
    EXPECT_EQ(handle, 77u);
    EXPECT_EQ(grey_stream_native_handle(nullptr, &kind, &handle), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_stream_native_handle(host.get(), nullptr, &handle), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_stream_native_handle(host.get(), &kind, nullptr), GREY_ERROR_INVALID_ARGUMENT);
}

TEST(StreamErrors, QuantizationNeedsKernelsOnTheStreamsDevice) {
    auto context = make_context();
    const auto desc = grey::test::desc_of({4, 128});
    grey_quant_params params = GREY_QUANT_PARAMS_INIT;
    ASSERT_EQ(grey_quant_params_from_name("int8", &params), GREY_OK);
    auto source = make_buffer(context.get(), 1, 4 * 128 * 4);
    auto quantized = make_buffer(context.get(), 1, 4096);
    auto stream = make_stream(context.get(), 1);
    EXPECT_EQ(grey_quantize_buffer_async(&desc, source.get(), 0, &params, quantized.get(), 0, stream.get()), GREY_ERROR_UNSUPPORTED);
    auto host_stream = make_stream(context.get(), 0);
    EXPECT_EQ(grey_dequantize_buffer_async(&desc, &params, quantized.get(), 0, source.get(), 0, host_stream.get()), GREY_ERROR_UNSUPPORTED);
    EXPECT_EQ(grey_quantize_buffer_async(&desc, source.get(), 0, &params, quantized.get(), 0, nullptr), GREY_ERROR_UNSUPPORTED);
    ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK);
}

}  // namespace
