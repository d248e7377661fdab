// Audit log throughput through the public API: appends of 200-byte JSON payloads with fsync per record
// and with group commit, and verification of a whole log. Results and the command: bench/RESULTS.md.
#include "grey.h"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

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
    std::string path, verifier, writer, log;
};

// A 200-byte JSON object.
std::string payload_200() {
    std::string p = "{\"figure\":\"";
    p += std::string(200 - p.size() - 2, 'x');
    p += "\"}";
    return p;
}

grey_audit_log* open_log(const TempDir& dir, grey_audit_durability durability) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.log_path = dir.log.c_str();
    o.key_path = dir.writer.c_str();
    o.durability = durability;
    o.group_records = 1024;
    o.group_ms = 10;
    grey_audit_log* log = nullptr;
    if (grey_audit_open(&o, &log) != GREY_OK) std::abort();
    return log;
}

void append_benchmark(benchmark::State& state, grey_audit_durability durability) {
    const TempDir dir;
    grey_audit_log* log = open_log(dir, durability);
    const std::string payload = payload_200();
    for (auto _ : state)
        if (grey_audit_append(log, "bench", payload.c_str(), nullptr) != GREY_OK) state.SkipWithError(grey_last_error());
    // Count only what reached the disk: the last group is synced inside the timed region's accounting.
    if (grey_audit_flush(log) != GREY_OK) state.SkipWithError(grey_last_error());
    grey_audit_close(log);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(payload.size()));
}

void BM_AppendFsyncPerRecord(benchmark::State& state) { append_benchmark(state, GREY_AUDIT_DURABILITY_EVERY_RECORD); }
void BM_AppendGroupCommit(benchmark::State& state) { append_benchmark(state, GREY_AUDIT_DURABILITY_GROUP); }

void BM_Verify(benchmark::State& state) {
    const TempDir dir;
    grey_audit_log* log = open_log(dir, GREY_AUDIT_DURABILITY_GROUP);
    const std::string payload = payload_200();
    const int64_t records = state.range(0);
    for (int64_t i = 0; i < records; ++i)
        if (grey_audit_append(log, "bench", payload.c_str(), nullptr) != GREY_OK) std::abort();
    if (grey_audit_flush(log) != GREY_OK) std::abort();
    grey_audit_close(log);
    grey_audit_verify_options v = GREY_AUDIT_VERIFY_OPTIONS_INIT;
    v.log_path = dir.log.c_str();
    v.key_path = dir.verifier.c_str();
    for (auto _ : state) {
        grey_audit_report report{};
        report.struct_size = sizeof report;
        if (grey_audit_verify(&v, &report) != GREY_OK || report.cause != GREY_AUDIT_INTACT || report.records != static_cast<uint64_t>(records))
            state.SkipWithError("verification failed");
        benchmark::DoNotOptimize(report);
    }
    state.SetItemsProcessed(state.iterations() * records);
}

// Wall-clock rates (UseRealTime): a sync's wait is part of what an appender pays.
BENCHMARK(BM_AppendFsyncPerRecord)->Unit(benchmark::kMicrosecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_AppendGroupCommit)->Unit(benchmark::kMicrosecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_Verify)->Arg(200000)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
