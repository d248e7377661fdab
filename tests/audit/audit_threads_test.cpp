// The audit log's threads under load, for ThreadSanitizer (the tsan preset builds and runs these, label
// audit-threads; the default and asan presets run them too): appending threads, batches, flushes and
// state readers against the committer and syncer of group commit while the key advances, and
// verification on several threads of an intact and of a tampered log.
#include "audit_test_util.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <thread>

namespace grey::audit::test {
namespace {

class AuditThreads : public AuditTest {};

TEST_F(AuditThreads, GroupCommitTakesAppendsBatchesFlushesAndReadersFromManyThreadsWhileTheKeyAdvances) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.durability = GREY_AUDIT_DURABILITY_GROUP;
    o.group_records = 16;
    o.group_ms = 1;
    o.epoch_records = 100;  // the key advances about twenty times, between and inside groups
    grey_audit_log* log = open_log(o);
    ASSERT_NE(log, nullptr);
    constexpr int appenders = 3, singles = 200, batches = 5, batch_records = 10;
    std::atomic<int> running{appenders};
    std::vector<std::thread> threads;
    for (int t = 0; t < appenders; ++t)
        threads.emplace_back([log, t, &running] {
            grey_audit_batch* batch = nullptr;
            EXPECT_EQ(grey_audit_batch_create(&batch), GREY_OK);
            int next = 0;  // this thread's records are numbered in the order it appends them
            for (int i = 0; i < singles; ++i) {
                const std::string payload = "{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(next++) + "}";
                EXPECT_EQ(grey_audit_append(log, "single", payload.c_str(), nullptr), GREY_OK) << grey_last_error();
                if (i % (singles / batches) == 0) {
                    for (int r = 0; r < batch_records; ++r) {
                        const std::string p = "{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(next++) + "}";
                        EXPECT_EQ(grey_audit_batch_add(batch, "batch", p.c_str()), GREY_OK) << grey_last_error();
                    }
                    EXPECT_EQ(grey_audit_append_batch(log, batch, nullptr), GREY_OK) << grey_last_error();
                }
            }
            grey_audit_batch_destroy(batch);
            running.fetch_sub(1);
        });
    // Meanwhile another thread flushes and reads the state: durable records only ever grow.
    threads.emplace_back([log, &running] {
        uint64_t durable = 0;
        while (running.load() > 0) {
            EXPECT_EQ(grey_audit_flush(log), GREY_OK) << grey_last_error();
            grey_audit_log_info info{};
            info.struct_size = sizeof info;
            EXPECT_EQ(grey_audit_log_info_get(log, &info), GREY_OK);
            EXPECT_GE(info.records, durable);
            durable = info.records;
        }
    });
    for (auto& t : threads) t.join();
    ASSERT_EQ(grey_audit_flush(log), GREY_OK) << grey_last_error();
    grey_audit_log_destroy(log);

    constexpr uint64_t total = appenders * (singles + batches * batch_records);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, total);
    EXPECT_GE(r.last_epoch, total / o.epoch_records - 1);
    // No record lost, doubled or reordered within its thread; each batch's records consecutive.
    std::map<int, int> next;
    const auto records = nlohmann::json::parse(records_json());
    ASSERT_EQ(records.size(), total);
    for (size_t k = 0; k < records.size(); ++k) {
        const int t = records[k]["payload"]["t"];
        const int i = records[k]["payload"]["i"];
        EXPECT_EQ(i, next[t]++) << "record " << k;
        // A batch's records follow each other: the record before a batch record (other than the first
        // of its batch) is the one its thread numbered just before it.
        if (records[k]["type"] == "batch" && i % (singles / batches + batch_records) != 1) {
            ASSERT_GT(k, 0u);
            EXPECT_EQ(records[k - 1]["payload"]["t"].get<int>(), t) << "record " << k;
            EXPECT_EQ(records[k - 1]["payload"]["i"].get<int>(), i - 1) << "record " << k;
        }
    }
    for (int t = 0; t < appenders; ++t) EXPECT_EQ(next[t], singles + batches * batch_records) << "thread " << t;
}

TEST_F(AuditThreads, VerificationOnSeveralThreadsFindsTheSameFirstBadRecord) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.durability = GREY_AUDIT_DURABILITY_GROUP;
    o.group_records = 300;
    o.epoch_records = 250;
    write_records(3000, o);
    // verify() checks that one thread, all cores and three threads give the same report.
    const auto intact = verify();
    ASSERT_EQ(intact.cause, GREY_AUDIT_INTACT) << intact.detail;
    EXPECT_EQ(intact.records, 3000u);
    EXPECT_EQ(intact.last_epoch, 11u);
    const auto original = read_all(log_path);
    const auto spans = record_spans(original);
    ASSERT_EQ(spans.size(), 3000u);
    // A flipped byte fails the record's MAC; a copied record keeps its MAC but not its place, which the
    // sequential walk's other checks find.
    for (const size_t at : {size_t{1}, size_t{999}, size_t{2100}, size_t{2999}}) {
        auto file = original;
        file[spans[at].offset + 40] ^= 0x20;
        write_all_bytes(log_path, file);
        const auto r = verify();
        EXPECT_EQ(r.cause, GREY_AUDIT_MODIFIED) << r.detail;
        EXPECT_EQ(r.first_bad_record, at);
        EXPECT_EQ(r.records, at);
    }
    {
        auto file = original;
        const auto copy = std::vector<uint8_t>(original.begin() + static_cast<long>(spans[1600].offset),
                                               original.begin() + static_cast<long>(spans[1600].offset + spans[1600].size));
        file.insert(file.begin() + static_cast<long>(spans[1601].offset), copy.begin(), copy.end());
        write_all_bytes(log_path, file);
        const auto r = verify();
        EXPECT_EQ(r.cause, GREY_AUDIT_INSERTED) << r.detail;
        EXPECT_EQ(r.first_bad_record, 1601u);
        EXPECT_EQ(r.records, 1601u);
    }
}

}  // namespace
}  // namespace grey::audit::test
