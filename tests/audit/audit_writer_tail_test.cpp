// The writer trusts nothing in the log it has not authenticated: a forged record at the tail (any epoch),
// or a prefix changed or cut behind the key's back, makes it refuse to append — it never moves its key on
// the word of an unverified record. What a crash really leaves is still recovered.
#include "audit/key_schedule.hpp"
#include "audit_test_util.hpp"

#include <random>

namespace grey::audit::test {
namespace {

class WriterTail : public AuditTest {
protected:
    grey_status try_append(grey_audit_options o = GREY_AUDIT_OPTIONS_INIT) {
        o.log_path = log_path.c_str();
        o.key_path = writer_key.c_str();
        grey_audit_log* log = nullptr;
        grey_status status = grey_audit_log_create(&o, &log);
        if (status == GREY_OK) status = grey_audit_append(log, "t", "{\"after\":1}", nullptr);
        grey_audit_log_destroy(log);
        return status;
    }
    static Hash random_mac(std::mt19937& random) {
        Hash mac{};
        for (auto& b : mac) b = static_cast<uint8_t>(random());
        return mac;
    }
    uint32_t key_epoch() { return read_key_file(writer_key).epoch; }
};

TEST_F(WriterTail, ForgedTailRecordsAreRefusedAndTheKeyStaysPut) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.epoch_records = 2;
    write_records(5, o);  // epochs 0,0,1,1,2: the key is at epoch 2
    ASSERT_EQ(key_epoch(), 2u);
    const auto clean_log = read_all(log_path);
    const auto clean_key = read_all(writer_key);
    std::mt19937 random(7);
    // Later epochs (within and beyond what a verifier accepts), the key's own epoch, and older ones.
    for (const uint32_t epoch : {3u, 4u, 2u + 1024u, 2u + 1025u, 1u << 20, (1u << 20) + 1, UINT32_MAX, 2u, 1u, 0u}) {
        auto forged = clean_log;
        const auto record = forged_record(forged, epoch, random_mac(random));
        forged.insert(forged.end(), record.begin(), record.end());
        write_all_bytes(log_path, forged);
        EXPECT_EQ(try_append(o), GREY_ERROR_CORRUPT) << "epoch " << epoch;
        const std::string message = grey_last_error();
        EXPECT_NE(message.find("cannot be verified by this writer"), std::string::npos) << message;
        EXPECT_NE(message.find("offset " + std::to_string(clean_log.size())), std::string::npos) << message;
        EXPECT_EQ(read_all(writer_key), clean_key) << "epoch " << epoch << ": the key file moved";
        EXPECT_EQ(read_all(log_path), forged) << "epoch " << epoch << ": the log was changed";
        // The verifier agrees that the record is not genuine.
        EXPECT_NE(verify().cause, GREY_AUDIT_INTACT) << "epoch " << epoch;
    }
    // Once the forged record is gone, the writer carries on from where it was.
    write_all_bytes(log_path, clean_log);
    ASSERT_EQ(try_append(o), GREY_OK) << grey_last_error();
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 6u);
    EXPECT_EQ(key_epoch(), 2u);
}

TEST_F(WriterTail, RepeatedForgeriesNeverAdvanceTheKey) {
    // The report's attack, repeated: each round a 103-byte record claiming epoch + 1024.
    write_records(2);
    std::mt19937 random(11);
    for (int round = 0; round < 5; ++round) {
        auto file = read_all(log_path);
        const auto log = parse_log(file);
        const auto record = forged_record(file, log->records.back().epoch + 1024, random_mac(random));
        ASSERT_EQ(record.size(), 103u);
        append_bytes(log_path, record);
        EXPECT_EQ(try_append(), GREY_ERROR_CORRUPT);
        EXPECT_EQ(key_epoch(), 0u);
        write_all_bytes(log_path, file);  // the operator removes it, as verify names it
        ASSERT_EQ(try_append(), GREY_OK) << grey_last_error();
    }
    EXPECT_EQ(verify().cause, GREY_AUDIT_INTACT);
    EXPECT_EQ(verify().records, 7u);
}

TEST_F(WriterTail, ReplayedAndOutOfChainRecordsAreRefused) {
    write_records(4);
    const auto clean = read_all(log_path);
    const auto spans = record_spans(clean);
    // A genuine record copied to the end: its MAC holds, its sequence and chain do not.
    auto replayed = clean;
    replayed.insert(replayed.end(), clean.begin() + static_cast<long>(spans[1].offset), clean.begin() + static_cast<long>(spans[1].offset + spans[1].size));
    write_all_bytes(log_path, replayed);
    EXPECT_EQ(try_append(), GREY_ERROR_CORRUPT);
    EXPECT_NE(std::string(grey_last_error()).find("sequence 1 where 4 was expected"), std::string::npos) << grey_last_error();
    EXPECT_EQ(read_all(log_path), replayed);  // not truncated away as a torn write
}

TEST_F(WriterTail, CrashDebrisIsStillRecovered) {
    write_records(3);
    const auto clean = read_all(log_path);
    const auto clean_key = read_all(writer_key);
    std::mt19937 random(3);
    // A record cut short, and a complete one whose last block never reached the disk (MAC all zeros),
    // even one that claims a later epoch: both are torn writes, saved beside the log and recorded.
    const auto whole = forged_record(clean, 0, random_mac(random));
    const std::vector<std::vector<uint8_t>> tails = {
        {whole.begin(), whole.begin() + 50}, forged_record(clean, 0, Hash{}), forged_record(clean, 700, Hash{}), std::vector<uint8_t>(40, 0)};
    for (const auto& tail : tails) {
        auto file = clean;
        file.insert(file.end(), tail.begin(), tail.end());
        write_all_bytes(log_path, file);
        ASSERT_EQ(try_append(), GREY_OK) << grey_last_error();
        const auto r = verify();
        EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
        EXPECT_EQ(r.records, 5u);  // the three, the recovery record, the new one
        EXPECT_EQ(read_all(writer_key), clean_key);
        write_all_bytes(log_path, clean);
    }
}

TEST_F(WriterTail, ChangesBehindTheKeysEpochAreCaught) {
    // Records of epochs whose keys the writer erased can no longer be checked by their MACs; the key
    // file's anchor (the hash of the last record before its epoch) still vouches for all of them.
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.epoch_records = 2;
    write_records(6, o);  // epochs 0,0,1,1,2,2: the key reached epoch 2 after record 3
    ASSERT_EQ(key_epoch(), 2u);
    const auto clean = read_all(log_path);
    const auto spans = record_spans(clean);

    auto changed = clean;
    changed[spans[1].offset + 40] ^= 1;  // a payload byte of an epoch-0 record
    write_all_bytes(log_path, changed);
    EXPECT_EQ(try_append(o), GREY_ERROR_CORRUPT);
    EXPECT_NE(std::string(grey_last_error()).find("does not chain"), std::string::npos) << grey_last_error();

    // The same change with the hash chain repaired after it: the chain no longer reaches the anchor.
    std::vector<uint8_t> rechained(clean.begin(), clean.begin() + static_cast<long>(spans[0].offset));
    const SecretKey nobody;  // whatever key: the writer cannot check epoch 0 or 1 any more
    for (size_t i = 0; i < 4; ++i) {
        const auto log = parse_log(clean);
        const RecordView& rec = log->records[i];
        const auto sealed = sealed_record(rechained, nobody, rec.epoch, rec.type, i == 1 ? "{\"i\":999}" : std::string(rec.payload));
        rechained.insert(rechained.end(), sealed.begin(), sealed.end());
    }
    write_all_bytes(log_path, rechained);
    EXPECT_EQ(try_append(o), GREY_ERROR_CORRUPT);
    EXPECT_NE(std::string(grey_last_error()).find("not the ones its writer key moved on after"), std::string::npos) << grey_last_error();

    // Records cut from the end, back before the point where the key reached its epoch.
    write_all_bytes(log_path, {clean.begin(), clean.begin() + static_cast<long>(spans[3].offset)});
    EXPECT_EQ(try_append(o), GREY_ERROR_CORRUPT);
    EXPECT_NE(std::string(grey_last_error()).find("records were removed from its end"), std::string::npos) << grey_last_error();

    write_all_bytes(log_path, clean);
    ASSERT_EQ(try_append(o), GREY_OK) << grey_last_error();
    EXPECT_EQ(verify().cause, GREY_AUDIT_INTACT);
}

TEST_F(WriterTail, AWriterFollowsAnotherWritersRotationsOnlyThroughVerifiedRecords) {
    // Two writers on one log and one key file, one of them rotating at every record.
    grey_audit_options rotating = GREY_AUDIT_OPTIONS_INIT;
    rotating.epoch_records = 1;
    grey_audit_options steady = GREY_AUDIT_OPTIONS_INIT;
    steady.epoch_records = 0;
    steady.epoch_seconds = 0;
    grey_audit_log* a = open_log(rotating);
    grey_audit_log* b = open_log(steady);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    for (int i = 0; i < 6; ++i) {
        ASSERT_EQ(grey_audit_append(a, "a", "{}", nullptr), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_audit_append(b, "b", "{}", nullptr), GREY_OK) << grey_last_error();
    }
    grey_audit_log_info info{};
    info.struct_size = sizeof info;
    ASSERT_EQ(grey_audit_log_info_get(b, &info), GREY_OK);
    EXPECT_EQ(info.epoch, 5u);
    grey_audit_log_destroy(a);
    grey_audit_log_destroy(b);
    EXPECT_EQ(key_epoch(), 5u);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 12u);
    ASSERT_EQ(try_append(steady), GREY_OK) << grey_last_error();
}

TEST_F(WriterTail, AKeyAdvancedByAnOlderVersionIsAnchoredOnFirstUse) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.epoch_records = 2;
    write_records(5, o);
    KeyFile key = read_key_file(writer_key);
    ASSERT_TRUE(key.anchor.has_value());
    // libgrey 0.1 wrote the same key without an anchor line (key file version 1).
    const KeyAnchor anchor = *key.anchor;
    key.anchor.reset();
    std::filesystem::remove(writer_key);
    write_new_key_file(writer_key, key);
    ASSERT_EQ(read_all(writer_key)[16], '1');  // "grey-audit-key v1"
    ASSERT_EQ(try_append(o), GREY_OK) << grey_last_error();
    const KeyFile upgraded = read_key_file(writer_key);
    ASSERT_TRUE(upgraded.anchor.has_value());
    EXPECT_EQ(*upgraded.anchor, anchor);
    EXPECT_EQ(verify().cause, GREY_AUDIT_INTACT);

    // A 0.1 key that moved on with no record of its epoch yet (a crash right after the rotation): its
    // epoch begins at the end of the log.
    KeyFile ahead = read_key_file(writer_key);
    ahead.key = next_epoch_key(ahead.key);
    ++ahead.epoch;
    ahead.anchor.reset();
    std::filesystem::remove(writer_key);
    write_new_key_file(writer_key, ahead);
    const auto before = parse_log(read_all(log_path));
    const size_t records_before = before->records.size();
    ASSERT_EQ(try_append(), GREY_OK) << grey_last_error();
    const KeyFile anchored = read_key_file(writer_key);
    ASSERT_TRUE(anchored.anchor.has_value());
    EXPECT_EQ(anchored.anchor->records, records_before);
    EXPECT_EQ(anchored.epoch, ahead.epoch);
    EXPECT_EQ(verify().cause, GREY_AUDIT_INTACT);
}

TEST_F(WriterTail, AKeyAdvancedOnAnotherLogIsRefused) {
    const std::string copy = dir + "/writer-copy.key";
    std::filesystem::copy_file(writer_key, copy);
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.epoch_records = 1;
    write_records(3, o);
    const std::string other = dir + "/other.log";
    grey_audit_options other_options = o;
    other_options.log_path = other.c_str();
    other_options.key_path = copy.c_str();
    write_records(1, other_options);  // the copy's log exists, at epoch 0
    other_options.key_path = writer_key.c_str();
    grey_audit_log* log = nullptr;
    EXPECT_EQ(grey_audit_log_create(&other_options, &log), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("belongs to one log"), std::string::npos) << grey_last_error();
}

}  // namespace
}  // namespace grey::audit::test
