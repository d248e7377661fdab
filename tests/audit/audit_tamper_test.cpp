// Every tamper pattern the issue names, each detected with its own cause, plus single-byte flips at
// every position of a log.
#include "audit/checkpoint.hpp"
#include "audit/crypto.hpp"
#include "audit/key_schedule.hpp"
#include "audit/merkle.hpp"
#include "audit_test_util.hpp"

#include <filesystem>

namespace grey::audit::test {
namespace {

class Tamper : public AuditTest {};

// The bytes of one record of `file`.
std::vector<uint8_t> slice(const std::vector<uint8_t>& file, const Span& span) {
    return {file.begin() + static_cast<long>(span.offset), file.begin() + static_cast<long>(span.offset + span.size)};
}

TEST_F(Tamper, IntactLogVerifies) {
    write_records(10);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 10u);
    EXPECT_EQ(r.first_bad_record, GREY_AUDIT_NO_RECORD);
}

TEST_F(Tamper, ModifiedPayloadIsModified) {
    write_records(10);
    auto file = read_all(log_path);
    const auto spans = record_spans(file);
    file[spans[3].offset + 40] ^= 0x01;  // inside the type/payload
    write_all_bytes(log_path, file);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_MODIFIED);
    EXPECT_EQ(r.first_bad_record, 3u);
    EXPECT_EQ(r.records, 3u);
    EXPECT_EQ(r.first_bad_offset, spans[3].offset);
}

TEST_F(Tamper, DeletedRecordIsDeleted) {
    write_records(10);
    auto file = read_all(log_path);
    const auto spans = record_spans(file);
    file.erase(file.begin() + static_cast<long>(spans[4].offset), file.begin() + static_cast<long>(spans[4].offset + spans[4].size));
    write_all_bytes(log_path, file);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_DELETED) << r.detail;
    EXPECT_EQ(r.first_bad_record, 4u);
}

TEST_F(Tamper, SwappedRecordsAreReordered) {
    write_records(10);
    const auto file = read_all(log_path);
    const auto spans = record_spans(file);
    std::vector<uint8_t> out(file.begin(), file.begin() + static_cast<long>(spans[5].offset));
    for (const auto& part : {slice(file, spans[6]), slice(file, spans[5])}) out.insert(out.end(), part.begin(), part.end());
    out.insert(out.end(), file.begin() + static_cast<long>(spans[7].offset), file.end());
    write_all_bytes(log_path, out);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_REORDERED) << r.detail;
    EXPECT_EQ(r.first_bad_record, 5u);
}

TEST_F(Tamper, CopiedRecordIsInserted) {
    write_records(10);
    auto file = read_all(log_path);
    const auto spans = record_spans(file);
    const std::vector<uint8_t> copy = slice(file, spans[2]);
    file.insert(file.begin() + static_cast<long>(spans[7].offset), copy.begin(), copy.end());
    write_all_bytes(log_path, file);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INSERTED) << r.detail;
    EXPECT_EQ(r.first_bad_record, 7u);
}

TEST_F(Tamper, RecordFromAnotherLogWithTheSameKeyIsInserted) {
    const std::string writer_copy = dir + "/writer-copy.key";
    std::filesystem::copy_file(writer_key, writer_copy);
    write_records(10);
    const std::string other = dir + "/other.log";
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.log_path = other.c_str();
    o.key_path = writer_copy.c_str();
    write_records(10, o);
    auto file = read_all(log_path);
    const auto spans = record_spans(file);
    const auto other_file = read_all(other);
    const auto other_spans = record_spans(other_file);
    // Same sequence number, valid MAC, but it chains to the other log's history.
    std::vector<uint8_t> out(file.begin(), file.begin() + static_cast<long>(spans[4].offset));
    const std::vector<uint8_t> foreign = slice(other_file, other_spans[4]);
    out.insert(out.end(), foreign.begin(), foreign.end());
    out.insert(out.end(), file.begin() + static_cast<long>(spans[5].offset), file.end());
    write_all_bytes(log_path, out);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INSERTED) << r.detail;
    EXPECT_EQ(r.first_bad_record, 4u);
}

TEST_F(Tamper, TruncationIsCaughtOnlyByACheckpoint) {
    grey_audit_log* log = open_log();
    for (int i = 0; i < 10; ++i) ASSERT_EQ(grey_audit_append(log, "test", "{}", nullptr), GREY_OK);
    const std::string checkpoint = dir + "/c10";
    ASSERT_EQ(grey_audit_checkpoint(log, checkpoint.c_str()), GREY_OK) << grey_last_error();
    grey_audit_log_destroy(log);
    auto file = read_all(log_path);
    file.resize(record_spans(file)[7].offset);
    write_all_bytes(log_path, file);
    EXPECT_EQ(verify().cause, GREY_AUDIT_INTACT);  // a clean cut is invisible without a checkpoint
    const auto r = verify({checkpoint});
    EXPECT_EQ(r.cause, GREY_AUDIT_TRUNCATED) << r.detail;
    EXPECT_EQ(r.first_bad_record, 7u);
    EXPECT_EQ(r.bad_checkpoint, 0u);
}

// A thief holds today's key (epoch 3) and rewrites a record of epoch 0.
class Reseal : public Tamper {
protected:
    void SetUp() override {
        Tamper::SetUp();
        grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
        o.epoch_records = 2;
        write_records(8, o);  // epochs 0,0,1,1,2,2,3,3
        stolen = read_key_file(writer_key);
        ASSERT_EQ(stolen.epoch, 3u);
    }
    void reseal(size_t index, uint32_t claimed_epoch) {
        auto file = read_all(log_path);
        const auto log = parse_log(file);
        const RecordView& rec = log->records[index];
        HmacSha256 mac(record_key(stolen.key));
        Sha256 sha;
        std::string sealed;
        Hash previous{};
        std::copy(rec.previous_hash().begin(), rec.previous_hash().end(), previous.begin());
        append_record(log->header.version, sealed, {rec.sequence, rec.timestamp_ns, claimed_epoch, rec.type, "{\"i\":999}", previous}, mac, sha);
        std::vector<uint8_t> out(file.begin(), file.begin() + static_cast<long>(rec.offset));
        out.insert(out.end(), sealed.begin(), sealed.end());
        out.insert(out.end(), file.begin() + static_cast<long>(rec.offset + rec.bytes.size()), file.end());
        write_all_bytes(log_path, out);
    }
    KeyFile stolen;
};

TEST_F(Reseal, RecordSealedWithALaterKeyIsResealed) {
    reseal(1, 0);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_RESEALED) << r.detail;
    EXPECT_EQ(r.first_bad_record, 1u);
}

TEST_F(Reseal, RecordClaimingALaterEpochIsResealed) {
    reseal(1, 3);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_RESEALED) << r.detail;
    EXPECT_EQ(r.first_bad_record, 1u);
}

TEST_F(Reseal, KeysAdvancePerEpochAndTheWriterKeyCannotVerify) {
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.last_epoch, 3u);
    grey_audit_verify_options v = GREY_AUDIT_VERIFY_OPTIONS_INIT;
    v.log_path = log_path.c_str();
    v.key_path = writer_key.c_str();
    grey_audit_report report{};
    report.struct_size = sizeof report;
    EXPECT_EQ(grey_audit_verify(&v, &report), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("epoch 3"), std::string::npos);
}

TEST_F(Tamper, LogSealedWithAnotherKeyIsForeign) {
    write_records(5);
    const std::string other_key = dir + "/other.key";
    grey_audit_keygen_options k = GREY_AUDIT_KEYGEN_OPTIONS_INIT;
    k.verifier_key_path = other_key.c_str();
    ASSERT_EQ(grey_audit_keygen(&k), GREY_OK);
    const auto r = verify({}, other_key);
    EXPECT_EQ(r.cause, GREY_AUDIT_FOREIGN_LOG) << r.detail;
}

TEST_F(Tamper, CheckpointsOfTwoHistoriesAreForked) {
    const std::string writer_copy = dir + "/writer-copy.key";
    write_records(3);
    std::filesystem::copy_file(writer_key, writer_copy);
    const std::string fork = dir + "/fork.log";
    std::filesystem::copy_file(log_path, fork);
    write_records(4, GREY_AUDIT_OPTIONS_INIT, 100);
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.log_path = fork.c_str();
    o.key_path = writer_copy.c_str();
    write_records(4, o, 200);  // same first three records, different next four

    const std::string c_main = dir + "/main.cp";
    const std::string c_fork = dir + "/fork.cp";
    grey_audit_log* log = open_log();
    ASSERT_EQ(grey_audit_checkpoint(log, c_main.c_str()), GREY_OK);
    grey_audit_log_destroy(log);
    log = open_log(o);
    ASSERT_EQ(grey_audit_checkpoint(log, c_fork.c_str()), GREY_OK);
    grey_audit_log_destroy(log);

    auto r = verify({c_main, c_fork});
    EXPECT_EQ(r.cause, GREY_AUDIT_FORKED) << r.detail;
    EXPECT_EQ(r.bad_checkpoint, 1u);
    r = verify({c_main}, "", nullptr, fork);  // the fork checked against the main log's checkpoint
    EXPECT_EQ(r.cause, GREY_AUDIT_FORKED) << r.detail;
}

TEST_F(Tamper, TornTailIsMalformedUntilRecovered) {
    write_records(5);
    auto file = read_all(log_path);
    file.resize(file.size() - 10);
    write_all_bytes(log_path, file);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_MALFORMED) << r.detail;
    EXPECT_EQ(r.first_bad_record, 4u);
}

// A log of several thousand records is checked in blocks on several threads: damage at and around the
// block (and Merkle chunk) boundaries is found at the same record, with the same cause, and the report's
// root covers exactly the records before it.
TEST_F(Tamper, LargeLogFindsTheFirstBadRecordAcrossBlocks) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.durability = GREY_AUDIT_DURABILITY_GROUP;
    o.group_records = 512;
    o.epoch_records = 700;  // epochs change inside blocks too
    write_records(5000, o);
    const auto original = read_all(log_path);
    const auto spans = record_spans(original);
    ASSERT_EQ(spans.size(), 5000u);
    Sha256 sha;
    std::vector<Hash> leaves;
    for (const auto& span : spans) leaves.push_back(record_leaf(format_version, sha, Bytes(original).subspan(span.offset, span.size)));
    const auto intact = verify();
    ASSERT_EQ(intact.cause, GREY_AUDIT_INTACT) << intact.detail;
    EXPECT_EQ(intact.records, 5000u);
    EXPECT_EQ(to_hex(Bytes(intact.root_hash, 32)), to_hex(merkle_root(sha, leaves)));
    EXPECT_EQ(intact.last_epoch, 7u);

    auto expect_first_bad = [&](const std::vector<uint8_t>& file, grey_audit_cause cause, size_t index, const std::string& what) {
        write_all_bytes(log_path, file);
        const auto r = verify();
        EXPECT_EQ(r.cause, cause) << what << ": " << r.detail;
        EXPECT_EQ(r.first_bad_record, index) << what;
        EXPECT_EQ(r.records, index) << what;
        EXPECT_EQ(to_hex(Bytes(r.root_hash, 32)), to_hex(merkle_root(sha, Hashes(leaves).first(index)))) << what;
    };
    for (const size_t at : {size_t{0}, size_t{1023}, size_t{1024}, size_t{1025}, size_t{2047}, size_t{3000}, size_t{4095},
                            size_t{4096}, size_t{4999}}) {
        auto file = original;
        file[spans[at].offset + 40] ^= 0x01;
        expect_first_bad(file, GREY_AUDIT_MODIFIED, at, "payload of record " + std::to_string(at));
    }
    {
        std::vector<uint8_t> file(original.begin(), original.begin() + static_cast<long>(spans[1023].offset));
        for (const auto& part : {slice(original, spans[1024]), slice(original, spans[1023])}) file.insert(file.end(), part.begin(), part.end());
        file.insert(file.end(), original.begin() + static_cast<long>(spans[1025].offset), original.end());
        expect_first_bad(file, GREY_AUDIT_REORDERED, 1023, "records 1023 and 1024 swapped");
    }
    {
        auto file = original;
        file.erase(file.begin() + static_cast<long>(spans[2048].offset), file.begin() + static_cast<long>(spans[2049].offset));
        expect_first_bad(file, GREY_AUDIT_DELETED, 2048, "record 2048 deleted");
    }
    {
        auto file = original;
        // (A copy from an earlier epoch would make record 3071 look re-sealed: its epoch would be later
        // than its successor's.)
        const auto copy = slice(original, spans[3000]);
        file.insert(file.begin() + static_cast<long>(spans[3072].offset), copy.begin(), copy.end());
        expect_first_bad(file, GREY_AUDIT_INSERTED, 3072, "record 3000 copied to 3072");
    }
    {
        auto file = original;
        file.resize(spans[4500].offset + 100);  // a torn tail
        write_all_bytes(log_path, file);
        const auto r = verify();
        EXPECT_EQ(r.cause, GREY_AUDIT_MALFORMED) << r.detail;
        EXPECT_EQ(r.first_bad_record, 4500u);
        EXPECT_EQ(r.records, 4500u);
        EXPECT_EQ(to_hex(Bytes(r.root_hash, 32)), to_hex(merkle_root(sha, Hashes(leaves).first(4500))));
    }
}

TEST_F(Tamper, EveryFlippedByteFailsVerification) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.epoch_records = 3;
    write_records(12, o);
    const auto original = read_all(log_path);
    ASSERT_EQ(verify().cause, GREY_AUDIT_INTACT);
    for (size_t at = 0; at < original.size(); ++at) {
        auto file = original;
        file[at] ^= static_cast<uint8_t>(1u << (at % 8));
        write_all_bytes(log_path, file);
        const auto r = verify();
        ASSERT_NE(r.cause, GREY_AUDIT_INTACT) << "flipping byte " << at << " went unnoticed";
    }
}

}  // namespace
}  // namespace grey::audit::test

namespace grey::audit::test {
namespace {

// Found by fuzz_checkpoint: an upper-case hex digit in the hmac line was accepted, giving one
// checkpoint two texts.
TEST(CheckpointText, OnlyTheCanonicalFormParses) {
    Checkpoint c;
    c.size = 5;
    c.time_ns = 7;
    c.hmac[0] = 0xab;
    std::string why;
    ASSERT_TRUE(parse_checkpoint(c.text(), why)) << why;
    std::string upper = c.text();
    upper.replace(upper.find("hmac ab"), 7, "hmac AB");
    EXPECT_FALSE(parse_checkpoint(upper, why));
    std::string leading_zero = c.text();
    leading_zero.replace(leading_zero.find("size 5"), 6, "size 05");
    EXPECT_FALSE(parse_checkpoint(leading_zero, why));
    EXPECT_FALSE(parse_checkpoint(c.text() + "extra\n", why));
    EXPECT_FALSE(parse_checkpoint(c.text().substr(0, c.text().size() - 1), why));
}

}  // namespace
}  // namespace grey::audit::test
