// grey_audit_append_batch: records checked as they are added, appended as one run (consecutive, one key
// epoch, one write), all or nothing when the write fails, in both durability modes.
#include "audit_test_util.hpp"

#include <nlohmann/json.hpp>

#include <csignal>
#include <sys/resource.h>

#include <set>
#include <thread>

namespace grey::audit::test {
namespace {

class AuditBatch : public AuditTest {
protected:
    void TearDown() override {
        grey_audit_batch_destroy(batch);
        AuditTest::TearDown();
    }
    grey_audit_batch* make_batch() {
        grey_audit_batch* b = nullptr;
        EXPECT_EQ(grey_audit_batch_create(&b), GREY_OK) << grey_last_error();
        return b;
    }
    // Adds records {"i": first} .. {"i": first + count - 1} of `type`.
    void add(grey_audit_batch* b, int first, int count, const char* type = "batch") {
        for (int i = first; i < first + count; ++i) {
            const std::string payload = "{\"i\":" + std::to_string(i) + "}";
            ASSERT_EQ(grey_audit_batch_add(b, type, payload.c_str()), GREY_OK) << grey_last_error();
        }
    }
    nlohmann::json records() { return nlohmann::json::parse(records_json()); }
    grey_audit_batch* batch = nullptr;
};

TEST_F(AuditBatch, AppendsConsecutiveDurableRecords) {
    batch = make_batch();
    grey_audit_log* log = open_log();
    ASSERT_EQ(grey_audit_append(log, "single", "{}", nullptr), GREY_OK);
    add(batch, 0, 5);
    uint64_t first = 0;
    ASSERT_EQ(grey_audit_append_batch(log, batch, &first), GREY_OK) << grey_last_error();
    EXPECT_EQ(first, 1u);
    // The batch is empty again, and reusable.
    ASSERT_EQ(grey_audit_append_batch(log, batch, &first), GREY_OK);
    EXPECT_EQ(first, UINT64_MAX);
    add(batch, 5, 3);
    ASSERT_EQ(grey_audit_append_batch(log, batch, &first), GREY_OK);
    EXPECT_EQ(first, 6u);
    grey_audit_log_info info{};
    info.struct_size = sizeof info;
    ASSERT_EQ(grey_audit_log_info_get(log, &info), GREY_OK);
    EXPECT_EQ(info.records, 9u);  // durable on return
    grey_audit_log_destroy(log);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 9u);
    const auto all = records();
    for (int i = 0; i < 8; ++i) {
        EXPECT_EQ(all[static_cast<size_t>(i + 1)]["type"], "batch");
        EXPECT_EQ(all[static_cast<size_t>(i + 1)]["payload"]["i"], i);
    }
}

// A batch of more records than the writer hashes at a time (windows of 4096, blocks of 64, on several
// threads), in per-record mode, after records that put its sequence numbers off any block boundary.
TEST_F(AuditBatch, ALargeBatchIsSealedIntact) {
    batch = make_batch();
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.epoch_records = 0;
    grey_audit_log* log = open_log(o);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(grey_audit_append(log, "single", "{}", nullptr), GREY_OK);
    add(batch, 0, 10000);
    uint64_t first = 0;
    ASSERT_EQ(grey_audit_append_batch(log, batch, &first), GREY_OK) << grey_last_error();
    EXPECT_EQ(first, 3u);
    grey_audit_log_destroy(log);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 10003u);
    const auto all = records();
    for (size_t i = 3; i < all.size(); i += 997) EXPECT_EQ(all[i]["payload"]["i"], i - 3);
}

TEST_F(AuditBatch, RefusedEntriesAreNamedAndLeaveTheBatchAsItWas) {
    batch = make_batch();
    add(batch, 0, 2);
    EXPECT_EQ(grey_audit_batch_add(batch, "t", "{not json"), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_STREQ(grey_last_error(), "entry 2: payload is not valid JSON (at byte 1)");
    EXPECT_EQ(grey_audit_batch_add(batch, "grey.proof", "{}"), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_STREQ(grey_last_error(), "entry 2: record types starting with 'grey.' are reserved for libgrey");
    EXPECT_EQ(grey_audit_batch_add(batch, "bad type!", "{}"), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("entry 2: record type must be"), std::string::npos);
    EXPECT_EQ(grey_audit_batch_add(batch, "t", "{\"a\":1,\"a\":2}"), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_batch_add(nullptr, "t", "{}"), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_batch_add(batch, nullptr, "{}"), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_batch_add(batch, "t", nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_batch_create(nullptr), GREY_ERROR_INVALID_ARGUMENT);
    grey_audit_log* log = open_log();
    EXPECT_EQ(grey_audit_append_batch(nullptr, batch, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_audit_append_batch(log, nullptr, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ(grey_audit_append_batch(log, batch, nullptr), GREY_OK) << grey_last_error();
    grey_audit_log_destroy(log);
    grey_audit_batch_destroy(nullptr);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 2u);  // the two good entries, nothing of the refused ones
}

TEST_F(AuditBatch, ABatchHoldsAtMost64MiB) {
    batch = make_batch();
    // A 1 MiB payload: a JSON string of 1 MiB - 2 characters between its quotes.
    const std::string payload = "\"" + std::string((1u << 20) - 2, 'x') + "\"";
    int added = 0;
    while (grey_audit_batch_add(batch, "big", payload.c_str()) == GREY_OK) ++added;
    EXPECT_EQ(added, 63);  // each record is its payload plus 103 bytes
    EXPECT_EQ(std::string(grey_last_error()), "entry 63: the batch would hold more than 64 MiB of records: append it and start another");
}

TEST_F(AuditBatch, ABatchLongerThanAnEpochIsRefused) {
    batch = make_batch();
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.epoch_records = 4;
    grey_audit_log* log = open_log(o);
    add(batch, 0, 5);
    EXPECT_EQ(grey_audit_append_batch(log, batch, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("a batch of 5 records is longer than a key epoch (epoch_records 4)"), std::string::npos)
        << grey_last_error();
    grey_audit_log_destroy(log);
    o.epoch_records = 5;
    log = open_log(o);
    uint64_t first = 0;
    ASSERT_EQ(grey_audit_append_batch(log, batch, &first), GREY_OK) << grey_last_error();  // the batch was kept
    EXPECT_EQ(first, 0u);
    grey_audit_log_destroy(log);
    EXPECT_EQ(verify().records, 5u);
}

// The key advances before a batch that would outlast the epoch, never inside it.
TEST_F(AuditBatch, ABatchNeverStraddlesTwoKeyEpochs) {
    batch = make_batch();
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.epoch_records = 10;
    grey_audit_log* log = open_log(o);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(grey_audit_append(log, "single", "{}", nullptr), GREY_OK);
    add(batch, 0, 8);
    ASSERT_EQ(grey_audit_append_batch(log, batch, nullptr), GREY_OK) << grey_last_error();
    add(batch, 8, 2);  // fits in what is left of epoch 1
    ASSERT_EQ(grey_audit_append_batch(log, batch, nullptr), GREY_OK) << grey_last_error();
    grey_audit_log_destroy(log);
    const auto all = records();
    ASSERT_EQ(all.size(), 13u);
    for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i]["epoch"], i < 3 ? 0 : 1) << i;
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.last_epoch, 1u);
}

// In a child whose files may not grow past `limit_bytes` more (so that a write fails with EFBIG):
// appends `singles` records, then a batch of `batch_records`, and returns 0 when the batch failed as
// an I/O error.
int append_past_a_file_size_limit(const std::string& log_path, const std::string& key, grey_audit_durability durability,
                                  int singles, int batch_records, uint64_t limit_bytes) {
    std::signal(SIGXFSZ, SIG_IGN);
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.log_path = log_path.c_str();
    o.key_path = key.c_str();
    o.durability = durability;
    o.epoch_records = 10;
    grey_audit_log* log = nullptr;
    if (grey_audit_log_create(&o, &log) != GREY_OK) return 10;
    for (int i = 0; i < singles; ++i)
        if (grey_audit_append(log, "single", "{}", nullptr) != GREY_OK) return 11;
    if (grey_audit_flush(log) != GREY_OK) return 12;
    const rlimit limit{std::filesystem::file_size(log_path) + limit_bytes, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 13;
    grey_audit_batch* b = nullptr;
    if (grey_audit_batch_create(&b) != GREY_OK) return 14;
    for (int i = 0; i < batch_records; ++i)
        if (grey_audit_batch_add(b, "batch", "{\"padding\":\"................................................\"}") != GREY_OK) return 15;
    grey_status status = grey_audit_append_batch(log, b, nullptr);
    if (status == GREY_OK) status = grey_audit_flush(log);  // group commit reports the write's error here
    grey_audit_batch_destroy(b);
    grey_audit_log_destroy(log);
    return status == GREY_ERROR_IO ? 0 : 16;
}

class AuditBatchWriteFailure : public AuditBatch, public ::testing::WithParamInterface<grey_audit_durability> {};

TEST_P(AuditBatchWriteFailure, LeavesNoneOfTheBatch) {
    // The batch's records take 167 bytes each: the file may grow by two of them and a bit.
    constexpr uint64_t room = 400;
    // 4 singles, then a batch of 5 that fits in epoch 0.
    const auto status = exit_status_within(60, [&] { return append_past_a_file_size_limit(log_path, writer_key, GetParam(), 4, 5, room); });
    ASSERT_EQ(status, 0);
    auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 4u);
    // The same after the key advanced for the batch: 8 singles, and a batch of 5 that epoch 0 has no
    // room for. The key's rotation is kept; none of the batch is (had the key advanced inside the
    // batch, its first two records would have reached the file before the rotation).
    std::filesystem::remove(log_path);
    std::filesystem::remove(writer_key);
    std::filesystem::remove(verifier_key);
    grey_audit_keygen_options k = GREY_AUDIT_KEYGEN_OPTIONS_INIT;
    k.verifier_key_path = verifier_key.c_str();
    k.writer_key_path = writer_key.c_str();
    ASSERT_EQ(grey_audit_keygen(&k), GREY_OK);
    const auto rotated = exit_status_within(60, [&] { return append_past_a_file_size_limit(log_path, writer_key, GetParam(), 8, 5, room); });
    ASSERT_EQ(rotated, 0);
    r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 8u);
    // And the log takes appends again.
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.epoch_records = 10;
    grey_audit_log* log = open_log(o);
    ASSERT_NE(log, nullptr);
    ASSERT_EQ(grey_audit_append(log, "after", "{}", nullptr), GREY_OK) << grey_last_error();
    grey_audit_log_destroy(log);
    r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 9u);
    EXPECT_EQ(r.last_epoch, 1u);
}

INSTANTIATE_TEST_SUITE_P(BothModes, AuditBatchWriteFailure,
                         ::testing::Values(GREY_AUDIT_DURABILITY_EVERY_RECORD, GREY_AUDIT_DURABILITY_GROUP));

// Batches from several threads, mixed with single appends, in groups smaller than a batch: each
// batch's records stay together and in order, and a batch larger than a group is sealed on several
// threads.
TEST_F(AuditBatch, GroupCommitKeepsEachBatchTogether) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.durability = GREY_AUDIT_DURABILITY_GROUP;
    o.group_records = 50;
    o.epoch_records = 700;
    grey_audit_log* log = open_log(o);
    ASSERT_NE(log, nullptr);
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t)
        threads.emplace_back([this, log, t] {
            grey_audit_batch* b = make_batch();
            for (int round = 0; round < 10; ++round) {
                const std::string type = "t" + std::to_string(t) + "-" + std::to_string(round);
                add(b, 0, 150 + 40 * t, type.c_str());
                uint64_t first = 0;
                EXPECT_EQ(grey_audit_append_batch(log, b, &first), GREY_OK) << grey_last_error();
                EXPECT_EQ(first, UINT64_MAX);
                EXPECT_EQ(grey_audit_append(log, "single", "{}", nullptr), GREY_OK);
            }
            grey_audit_batch_destroy(b);
        });
    for (auto& t : threads) t.join();
    ASSERT_EQ(grey_audit_flush(log), GREY_OK) << grey_last_error();
    grey_audit_log_destroy(log);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 10u * (150 + 190 + 230) + 30);
    const auto all = records();
    std::set<std::string> seen;
    for (size_t i = 0; i < all.size();) {
        const std::string type = all[i]["type"];
        if (type == "single") {
            ++i;
            continue;
        }
        EXPECT_TRUE(seen.insert(type).second) << type << " appears in two places";
        const uint32_t epoch = all[i]["epoch"];
        int expected = 0;
        for (; i < all.size() && all[i]["type"] == type; ++i, ++expected) {
            EXPECT_EQ(all[i]["payload"]["i"], expected) << type;
            EXPECT_EQ(all[i]["epoch"], epoch) << type;
        }
        EXPECT_EQ(expected, 150 + 40 * (type[1] - '0')) << type;
    }
    EXPECT_EQ(seen.size(), 30u);
}

}  // namespace
}  // namespace grey::audit::test
