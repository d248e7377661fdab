// Audit log throughput through the public API (appends of 200-byte JSON payloads, one at a time and in
// batches, with fdatasync per call and with group commit; verification of a whole log on 1, 2 and all
// cores) beside the floors it is measured against in the same run: the records' hashes
// (audit_hash_floor.hpp) on one and two threads, and writing and syncing the same bytes with nothing
// else to do. Results and the commands: bench/RESULTS.md.
#include "audit_hash_floor.hpp"
#include "grey.h"

#include <benchmark/benchmark.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <vector>

// Resolved at load time when the library has them: the same binary then measures an older libgrey too
// (LD_LIBRARY_PATH), which skips the batch benchmarks.
#pragma weak grey_audit_batch_create
#pragma weak grey_audit_batch_add
#pragma weak grey_audit_append_batch
#pragma weak grey_audit_batch_destroy

namespace {

class TempDir {
public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "grey-audit-bench-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) std::abort();
        path = pattern;
        verifier = path + "/v.key";
        writer = path + "/w.key";
        log = path + "/audit.log";
        grey_audit_keygen_options k = GREY_AUDIT_KEYGEN_OPTIONS_INIT;
        k.verifier_key_path = verifier.c_str();
        k.writer_key_path = writer.c_str();
        if (grey_audit_keygen(&k) != GREY_OK) std::abort();
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string path, verifier, writer, log;
};

constexpr const char* record_type = "bench";

// A 200-byte JSON object.
std::string payload_200() {
    std::string p = "{\"figure\":\"";
    p += std::string(200 - p.size() - 2, 'x');
    p += "\"}";
    return p;
}

// The size of a record of that type and payload in the log: 36 fixed bytes, type, payload, previous
// hash and MAC (docs/audit-format.md).
size_t record_size() { return 36 + std::string(record_type).size() + payload_200().size() + 64; }

constexpr uint32_t group_records = 1024;

// `epoch_records`: the key advances after this many records (the default, 10000, or 0: only by time,
// once an hour). Every advance syncs the log and replaces the key file, several fsyncs in all.
grey_audit_log* open_log(const TempDir& dir, grey_audit_durability durability, uint64_t epoch_records = 10000) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.log_path = dir.log.c_str();
    o.key_path = dir.writer.c_str();
    o.durability = durability;
    o.group_records = group_records;
    o.group_ms = 10;
    o.epoch_records = epoch_records;
    grey_audit_log* log = nullptr;
    if (grey_audit_log_create(&o, &log) != GREY_OK) std::abort();
    return log;
}

// CPU seconds (user + system) of every thread of the process: the appending thread, the log's
// committer, syncer and sealing helpers, the verifier's threads. On a machine other jobs load, wall-clock
// rates follow their load; the CPU a record costs moves much less, and bounds the rate the cores allow.
double process_cpu_seconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// `cpu_start`: process_cpu_seconds() when the log was opened. The counter cpu_us is the process's CPU
// per record, all threads together, from the open to the last sync.
void finish(benchmark::State& state, grey_audit_log* log, int64_t records, double cpu_start) {
    // Count only what reached the disk: the last group's sync is inside the timed region.
    if (grey_audit_flush(log) != GREY_OK) state.SkipWithError(grey_last_error());
    grey_audit_log_destroy(log);
    state.SetItemsProcessed(records);
    state.SetBytesProcessed(records * static_cast<int64_t>(payload_200().size()));
    if (records > 0) state.counters["cpu_us"] = (process_cpu_seconds() - cpu_start) * 1e6 / static_cast<double>(records);
}

// One iteration appends one record; state.range(0) is the epoch length (open_log).
void append_benchmark(benchmark::State& state, grey_audit_durability durability) {
    const TempDir dir;
    const double cpu_start = process_cpu_seconds();
    grey_audit_log* log = open_log(dir, durability, static_cast<uint64_t>(state.range(0)));
    const std::string payload = payload_200();
    for (auto _ : state)
        if (grey_audit_append(log, record_type, payload.c_str(), nullptr) != GREY_OK) state.SkipWithError(grey_last_error());
    finish(state, log, state.iterations(), cpu_start);
}

// One iteration fills a batch of state.range(0) records and appends it with grey_audit_append_batch;
// state.range(1) is the epoch length (open_log).
void batch_benchmark(benchmark::State& state, grey_audit_durability durability) {
    if (&grey_audit_append_batch == nullptr) {
        state.SkipWithError("this libgrey has no grey_audit_append_batch");
        return;
    }
    const TempDir dir;
    const double cpu_start = process_cpu_seconds();
    grey_audit_log* log = open_log(dir, durability, static_cast<uint64_t>(state.range(1)));
    grey_audit_batch* batch = nullptr;
    if (grey_audit_batch_create(&batch) != GREY_OK) std::abort();
    const std::string payload = payload_200();
    const int64_t count = state.range(0);
    for (auto _ : state) {
        for (int64_t i = 0; i < count; ++i)
            if (grey_audit_batch_add(batch, record_type, payload.c_str()) != GREY_OK) state.SkipWithError(grey_last_error());
        if (grey_audit_append_batch(log, batch, nullptr) != GREY_OK) state.SkipWithError(grey_last_error());
    }
    grey_audit_batch_destroy(batch);
    finish(state, log, state.iterations() * count, cpu_start);
}

void BM_AppendFsyncPerRecord(benchmark::State& state) { append_benchmark(state, GREY_AUDIT_DURABILITY_EVERY_RECORD); }
void BM_AppendGroupCommit(benchmark::State& state) { append_benchmark(state, GREY_AUDIT_DURABILITY_GROUP); }
void BM_AppendBatchFsyncPerBatch(benchmark::State& state) { batch_benchmark(state, GREY_AUDIT_DURABILITY_EVERY_RECORD); }
void BM_AppendBatchGroupCommit(benchmark::State& state) { batch_benchmark(state, GREY_AUDIT_DURABILITY_GROUP); }

// The disk's share of group commit: the bytes of the same records written in groups of group_records
// by one thread while another runs fdatasync over what has been written, as the log's committer and
// syncer do, with no hashing, checking or locking. A group commit cannot beat this rate.
void BM_DiskFloor(benchmark::State& state) {
    const TempDir dir;
    const int fd = ::open(dir.log.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) std::abort();
    const std::vector<char> group(group_records * record_size(), 'x');
    std::mutex mutex;
    std::condition_variable wake;
    uint64_t written = 0, synced = 0;
    bool done = false, failed = false;
    std::jthread syncer([&] {
        std::unique_lock lock(mutex);
        for (;;) {
            wake.wait(lock, [&] { return written > synced || done; });
            if (written == synced) return;
            const uint64_t target = written;
            lock.unlock();
            const bool ok = ::fdatasync(fd) == 0;
            lock.lock();
            failed |= !ok;
            synced = target;
            wake.notify_all();
        }
    });
    int64_t records = 0;
    for (auto _ : state) {
        if (::write(fd, group.data(), group.size()) != static_cast<ssize_t>(group.size())) failed = true;
        records += group_records;
        const std::lock_guard lock(mutex);
        written += group.size();
        wake.notify_all();
    }
    {
        std::unique_lock lock(mutex);
        wake.wait(lock, [&] { return synced == written; });
        done = true;
        wake.notify_all();
    }
    syncer.join();
    ::close(fd);
    if (failed) state.SkipWithError("write or fdatasync failed");
    state.SetItemsProcessed(records);
}

constexpr int64_t verified_records = 200000;

// Records of the size of the log's, filled with arbitrary bytes, to hash for the floor.
std::vector<uint8_t> floor_records() {
    std::vector<uint8_t> records(static_cast<size_t>(verified_records) * record_size());
    std::mt19937_64 random(1);
    for (auto& b : records) b = static_cast<uint8_t>(random());
    return records;
}

struct Seconds {
    double wall = 0;
    double cpu = 0;  // process_cpu_seconds() over the same span
};

// Seconds to hash `records` on `threads` threads (0: one per core), each taking an equal share.
Seconds time_hash_floor(const std::vector<uint8_t>& records, size_t threads) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    const size_t size = record_size();
    const size_t count = records.size() / size;
    const size_t share = (count + threads - 1) / threads;
    std::vector<uint64_t> sums(threads);
    const double cpu_start = process_cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    {
        std::vector<std::jthread> workers;
        for (size_t t = 0; t < threads; ++t)
            workers.emplace_back([&, t] {
                const size_t first = std::min(t * share, count), last = std::min(first + share, count);
                sums[t] = grey_bench::hash_floor(std::span(records).subspan(first * size, (last - first) * size), size);
            });
    }
    benchmark::DoNotOptimize(sums);
    return {std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), process_cpu_seconds() - cpu_start};
}

// The records' hashes alone, on state.range(0) threads.
void BM_HashFloor(benchmark::State& state) {
    const std::vector<uint8_t> records = floor_records();
    for (auto _ : state) state.SetIterationTime(time_hash_floor(records, static_cast<size_t>(state.range(0))).wall);
    state.SetItemsProcessed(state.iterations() * verified_records);
}

// Version 2's own two hashes (audit_hash_floor.hpp's hash_floor_v2), on state.range(0) threads: beside
// the floor above, not a replacement for it.
void BM_HashFloorV2(benchmark::State& state) {
    const std::vector<uint8_t> records = floor_records();
    const size_t size = record_size();
    for (auto _ : state) {
        const auto threads = static_cast<size_t>(state.range(0));
        const size_t count = records.size() / size, share = (count + threads - 1) / threads;
        std::vector<uint64_t> sums(threads);
        const auto start = std::chrono::steady_clock::now();
        {
            std::vector<std::jthread> workers;
            for (size_t t = 0; t < threads; ++t)
                workers.emplace_back([&, t] {
                    const size_t first = std::min(t * share, count), last = std::min(first + share, count);
                    sums[t] = grey_bench::hash_floor_v2(std::span(records).subspan(first * size, (last - first) * size), size);
                });
        }
        benchmark::DoNotOptimize(sums);
        state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    state.SetItemsProcessed(state.iterations() * verified_records);
}

// Verification of a log of state.range(1) records on state.range(0) threads (0: all cores). Each
// verification is followed, outside the timed region, by the hash floor on as many threads: the
// counter vs_floor is the verifier's rate over the floor's, measured moments apart, which another job
// on the machine moves much less than either rate. cpu_vs_floor is the same ratio of the CPU time the
// two took (all threads): what the verifier's work costs beside the floor's, whatever the load, and a
// bound on vs_floor however well the threads share the cores.
void BM_Verify(benchmark::State& state) {
    const TempDir dir;
    grey_audit_log* log = open_log(dir, GREY_AUDIT_DURABILITY_GROUP);
    const std::string payload = payload_200();
    const int64_t records = state.range(1);
    for (int64_t i = 0; i < records; ++i)
        if (grey_audit_append(log, record_type, payload.c_str(), nullptr) != GREY_OK) std::abort();
    if (grey_audit_flush(log) != GREY_OK) std::abort();
    grey_audit_log_destroy(log);
    const std::vector<uint8_t> floor = floor_records();
    grey_audit_verify_options v = GREY_AUDIT_VERIFY_OPTIONS_INIT;
    v.log_path = dir.log.c_str();
    v.key_path = dir.verifier.c_str();
    v.threads = static_cast<uint32_t>(state.range(0));
    double verify_seconds = 0, floor_seconds = 0, verify_cpu = 0, floor_cpu = 0;
    for (auto _ : state) {
        grey_audit_report report{};
        report.struct_size = sizeof report;
        const double cpu_start = process_cpu_seconds();
        const auto start = std::chrono::steady_clock::now();
        if (grey_audit_verify(&v, &report) != GREY_OK || report.cause != GREY_AUDIT_INTACT || report.records != static_cast<uint64_t>(records))
            state.SkipWithError("verification failed");
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        verify_cpu += process_cpu_seconds() - cpu_start;
        state.SetIterationTime(seconds);
        verify_seconds += seconds;
        const Seconds floor_time = time_hash_floor(floor, v.threads);
        floor_seconds += floor_time.wall;
        floor_cpu += floor_time.cpu;
        benchmark::DoNotOptimize(report);
    }
    state.SetItemsProcessed(state.iterations() * records);
    state.counters["floor"] = benchmark::Counter(static_cast<double>(state.iterations() * records) / floor_seconds);
    state.counters["vs_floor"] = benchmark::Counter(floor_seconds / verify_seconds);
    state.counters["cpu_vs_floor"] = benchmark::Counter(floor_cpu / verify_cpu);
}

// Wall-clock rates (real or manual time): a sync's wait is part of what an appender pays, and the
// floors and the verifier run on several threads.
BENCHMARK(BM_DiskFloor)->Unit(benchmark::kMicrosecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_AppendFsyncPerRecord)->ArgName("epoch_records")->Arg(10000)->Unit(benchmark::kMicrosecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_AppendBatchFsyncPerBatch)->ArgNames({"batch", "epoch_records"})->Args({256, 10000})->Unit(benchmark::kMicrosecond)
    ->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_AppendGroupCommit)->ArgName("epoch_records")->Arg(10000)->Arg(0)->Unit(benchmark::kMicrosecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_AppendBatchGroupCommit)->ArgNames({"batch", "epoch_records"})->Args({256, 10000})->Args({256, 0})
    ->Unit(benchmark::kMicrosecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_HashFloor)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseManualTime();
BENCHMARK(BM_HashFloorV2)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseManualTime();
BENCHMARK(BM_Verify)->ArgNames({"threads", "records"})->Args({1, verified_records})->Args({2, verified_records})->Args({0, verified_records})
    ->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseManualTime();

}  // namespace

BENCHMARK_MAIN();
