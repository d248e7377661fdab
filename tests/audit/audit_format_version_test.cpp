// Record format versions (docs/audit-format.md): new logs are version 2 (leaf over the record without
// its MAC, MAC over the leaf); version 1 logs, and proofs made from them, still verify and are appended
// to as version 1; a version this libgrey does not know is refused in words. The record hashes are
// checked against OpenSSL's one-shot SHA256/HMAC, not against libgrey's own sealing code.
#include "audit/key_schedule.hpp"
#include "audit/merkle.hpp"
#include "audit/proofs.hpp"
#include "audit/writer.hpp"
#include "audit_test_util.hpp"
#include "core/error.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <filesystem>

namespace grey::audit::test {
namespace {

Hash reference_sha256(uint8_t prefix, Bytes message) {
    std::vector<uint8_t> bytes{prefix};
    bytes.insert(bytes.end(), message.begin(), message.end());
    Hash out{};
    SHA256(bytes.data(), bytes.size(), out.data());
    return out;
}

Hash reference_hmac(const SecretKey& key, Bytes message) {
    Hash out{};
    unsigned int length = 0;
    HMAC(EVP_sha256(), key.bytes().data(), static_cast<int>(key.bytes().size()), message.data(), message.size(), out.data(), &length);
    return out;
}

// The leaf hash and MAC a record must have, from the format's definition.
Hash reference_leaf(uint32_t version, Bytes record) {
    return reference_sha256(0x00, version == 1 ? record : record.first(record.size() - 32));
}
Hash reference_mac(uint32_t version, const SecretKey& record_key, Bytes record) {
    return version == 1 ? reference_hmac(record_key, record.first(record.size() - 32)) : reference_hmac(record_key, reference_leaf(2, record));
}

SecretKey record_key_of_epoch(const SecretKey& initial, uint32_t epoch) {
    SecretKey k = initial;
    for (uint32_t e = 0; e < epoch; ++e) k = next_epoch_key(k);
    return record_key(k);
}

class FormatVersion : public AuditTest {
protected:
    // Checks every record of the log byte for byte against the definition of `version`: the header's
    // version field, each MAC, and each previous-hash link; returns the leaf hashes.
    std::vector<Hash> expect_layout(uint32_t version) {
        const auto file = read_all(log_path);
        const auto log = parse_log(file);
        EXPECT_TRUE(log.has_value());
        if (!log) return {};
        EXPECT_EQ(load_u32(file.data() + 8), version);
        EXPECT_EQ(log->header.version, version);
        const SecretKey initial = read_key_file(verifier_key).key;
        std::vector<Hash> leaves;
        Hash previous = reference_sha256(0x00, Bytes(file).first(header_size));
        for (const RecordView& r : log->records) {
            EXPECT_EQ(to_hex(r.previous_hash()), to_hex(previous)) << "record " << r.sequence;
            EXPECT_EQ(to_hex(r.mac()), to_hex(reference_mac(version, record_key_of_epoch(initial, r.epoch), r.bytes))) << "record " << r.sequence;
            previous = reference_leaf(version, r.bytes);
            leaves.push_back(previous);
        }
        return leaves;
    }

    // Appends `count` records through the internal writer, creating a log of format `version`.
    void write_with_writer(uint32_t version, int count, Durability durability = Durability::EveryRecord, uint64_t epoch_records = 0) {
        WriterOptions o;
        o.log_path = log_path;
        o.key_path = writer_key;
        o.durability = durability;
        o.epoch_records = epoch_records;
        o.format_version = version;
        Writer writer(o);
        for (int i = 0; i < count; ++i) writer.append("test", "{\"i\":" + std::to_string(i) + "}");
        writer.flush();
    }

    std::string checkpoint_now(const std::string& name) {
        const std::string path = dir + "/" + name;
        grey_audit_log* log = open_log();
        EXPECT_NE(log, nullptr);
        EXPECT_EQ(grey_audit_checkpoint(log, path.c_str()), GREY_OK) << grey_last_error();
        grey_audit_log_destroy(log);
        return path;
    }

    // Writes the proof text that `prove` produces to a file and returns its path.
    std::string proof_file(const std::string& name, const std::function<grey_status(char*, size_t, size_t*)>& prove) {
        size_t length = 0;
        EXPECT_EQ(prove(nullptr, 0, &length), GREY_ERROR_BUFFER_TOO_SMALL);
        std::string text(length + 1, '\0');
        EXPECT_EQ(prove(text.data(), text.size(), &length), GREY_OK) << grey_last_error();
        text.resize(length);
        const std::string path = dir + "/" + name;
        write_all_bytes(path, {text.begin(), text.end()});
        return path;
    }

    // Inclusion proofs of records 0 and size-1 and a consistency proof from `old_size` to `size`, checked
    // against the checkpoints; returns the first line of the inclusion proof.
    std::string prove_and_check(const std::string& old_checkpoint, uint64_t old_size, const std::string& checkpoint, uint64_t size) {
        std::string first_line;
        for (const uint64_t index : {uint64_t{0}, size - 1}) {
            const std::string p = proof_file("inclusion-" + std::to_string(index), [&](char* b, size_t n, size_t* l) {
                return grey_audit_prove_inclusion(log_path.c_str(), index, size, b, n, l);
            });
            EXPECT_EQ(grey_audit_check_proof(p.c_str(), checkpoint.c_str(), nullptr, nullptr), GREY_OK) << grey_last_error();
            const auto text = read_all(p);
            first_line.assign(text.begin(), std::find(text.begin(), text.end(), '\n'));
        }
        const std::string c = proof_file("consistency", [&](char* b, size_t n, size_t* l) {
            return grey_audit_prove_consistency(log_path.c_str(), old_size, size, b, n, l);
        });
        EXPECT_EQ(grey_audit_check_proof(c.c_str(), checkpoint.c_str(), old_checkpoint.c_str(), nullptr), GREY_OK) << grey_last_error();
        return first_line;
    }

    void set_header_version(uint32_t version) {
        auto file = read_all(log_path);
        store_u32(file.data() + 8, version);
        write_all_bytes(log_path, file);
    }
};

TEST_F(FormatVersion, NewLogsAreVersion2HashedAsDocumented) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.epoch_records = 3;
    write_records(5, o);
    o.durability = GREY_AUDIT_DURABILITY_GROUP;
    o.group_records = 4;
    write_records(9, o, 5);  // group commit seals on the helper threads for larger batches; here in order
    const std::vector<Hash> leaves = expect_layout(2);
    ASSERT_EQ(leaves.size(), 14u);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 14u);
    EXPECT_EQ(to_hex(Bytes(r.head_hash, 32)), to_hex(leaves.back()));
    Sha256 sha;
    EXPECT_EQ(to_hex(Bytes(r.root_hash, 32)), to_hex(merkle_root(sha, leaves)));
    EXPECT_NE(records_json().find("\"hash\":\"" + to_hex(leaves[3]) + "\""), std::string::npos);
}

// Group commit seals a batch in pieces on several threads (first halves ahead, the chain in order, version
// 2's MACs after the chain, in any order); the log must hold exactly the bytes that sealing the same
// records one at a time, in order, gives. Payloads of many lengths put the chain field at every offset
// in its block. Both versions, with a key rotation inside the run.
TEST_F(FormatVersion, GroupCommitGivesTheBytesOfOneAtATimeSealing) {
    for (const uint32_t version : {1u, 2u}) {
        // A key pair at epoch 0 and a log of its own for each version.
        const std::string prefix = dir + "/v" + std::to_string(version), log_file = prefix + ".log";
        const std::string writer_file = prefix + "-writer.key", verifier_file = prefix + "-verifier.key";
        grey_audit_keygen_options k = GREY_AUDIT_KEYGEN_OPTIONS_INIT;
        k.verifier_key_path = verifier_file.c_str();
        k.writer_key_path = writer_file.c_str();
        ASSERT_EQ(grey_audit_keygen(&k), GREY_OK) << grey_last_error();
        WriterOptions o;
        o.log_path = log_file;
        o.key_path = writer_file;
        o.durability = Durability::Group;
        o.group_records = 1500;
        o.group_ms = 1000;
        o.epoch_records = 2000;
        o.format_version = version;
        constexpr int count = 3000;
        {
            Writer writer(o);
            for (int i = 0; i < count; ++i) writer.append("group", "{\"p\":\"" + std::string(static_cast<size_t>(i * 7 % 200), 'x') + "\"}");
            writer.flush();
        }
        const auto file = read_all(log_file);
        const auto log = parse_log(file);
        ASSERT_TRUE(log.has_value());
        ASSERT_EQ(log->records.size(), static_cast<size_t>(count));
        // The same records (their timestamps, epochs, types and payloads as the log gives them), sealed
        // one at a time after the same header.
        const SecretKey initial = read_key_file(verifier_file).key;
        Sha256 sha;
        std::string expected(reinterpret_cast<const char*>(file.data()), header_size);
        Hash previous = leaf_hash(sha, Bytes(file).first(header_size));
        for (const RecordView& r : log->records) {
            const HmacSha256 mac(record_key_of_epoch(initial, r.epoch));
            previous = append_record(version, expected, {r.sequence, r.timestamp_ns, r.epoch, r.type, r.payload, previous}, mac, sha);
        }
        ASSERT_EQ(expected.size(), file.size());
        EXPECT_TRUE(std::equal(file.begin(), file.end(), reinterpret_cast<const uint8_t*>(expected.data()))) << "version " << version;
        EXPECT_EQ(log->records.back().epoch, 1u);
        const auto r = verify({}, verifier_file, nullptr, log_file);
        EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
        EXPECT_EQ(r.records, static_cast<uint64_t>(count));
        EXPECT_EQ(to_hex(Bytes(r.head_hash, 32)), to_hex(previous));
    }
}

// The pieces of sealing (record_format.hpp) in the order the writer's threads may run them give the
// bytes of seal_record, for records of every length around the block boundaries.
TEST(AuditSealing, PiecesInAnyOrderGiveTheBytesOfSealRecord) {
    Sha256 sha;
    Hash key_bytes{};
    key_bytes[0] = 42;
    const HmacSha256 mac(record_key(SecretKey(key_bytes)));
    for (const uint32_t version : {1u, 2u}) {
        std::string whole, pieces;
        std::vector<size_t> offsets;
        for (size_t i = 0; i < 300; ++i) {
            offsets.push_back(whole.size());
            const std::string payload = "\"" + std::string(i, 'y') + "\"";
            append_unsealed(whole, 1000 + i, "t", payload);
        }
        pieces = whole;
        auto record = [&](std::string& bytes, size_t i) {
            auto* p = reinterpret_cast<uint8_t*>(bytes.data() + offsets[i]);
            return std::span<uint8_t>(p, load_u32(p));
        };
        Hash previous{};
        std::vector<Hash> leaves;
        for (size_t i = 0; i < offsets.size(); ++i) {
            previous = seal_record(version, record(whole, i), i, 3, previous, mac, sha);
            leaves.push_back(previous);
        }
        std::vector<SealPrefix> prefixes(offsets.size());
        for (size_t i = offsets.size(); i-- > 0;) seal_prefix(version, record(pieces, i), i, 3, mac, sha, prefixes[i]);
        Hash chain{};
        std::vector<Hash> chained;
        for (size_t i = 0; i < offsets.size(); ++i) {
            chain = seal_chain(version, record(pieces, i), chain, mac, prefixes[i]);
            chained.push_back(chain);
        }
        for (size_t i = offsets.size(); i-- > 0;) seal_mac(version, record(pieces, i), chained[i], mac);
        EXPECT_EQ(leaves, chained) << "version " << version;
        EXPECT_EQ(whole, pieces) << "version " << version;
    }
}

// seal_prefixes (the sealing threads' first halves, several records at a time where the CPU allows) gives
// the states of seal_prefix one record at a time, on every path (OneAtATime is a CPU without SHA-NI or
// AVX-512's),
// for records of every leaf prefix length class (none, 1 to 6 blocks and 1 MiB payloads), in one
// length or mixed in a chunk, more chunks than one, and a first record at the buffer's first byte:
// the sealed bytes are seal_record's, byte for byte, in both versions.
TEST(AuditSealing, PrefixesManyAtOnceGiveTheBytesOfSealRecord) {
    Sha256 sha;
    Hash key_bytes{};
    key_bytes[0] = 7;
    const HmacSha256 mac(record_key(SecretKey(key_bytes)));
    std::vector<std::vector<size_t>> layouts;  // payload lengths
    for (size_t blocks = 0; blocks <= 6; ++blocks) {
        // 40 records whose leaf prefix is `blocks` whole blocks, at every payload length that gives it.
        std::vector<size_t> lengths;
        for (size_t i = 0; i < 40; ++i) lengths.push_back(blocks == 0 ? i % 26 : blocks * 64 - 27 + i % 64);
        layouts.push_back(lengths);
    }
    std::vector<size_t> mixed;
    for (size_t i = 0; i < 300; ++i) mixed.push_back(i % 7 == 0 ? 150 : (i * 37) % 450);  // runs of one length among others
    layouts.push_back(mixed);
    layouts.push_back({max_payload_length - 2, 5, max_payload_length - 2, max_payload_length - 2, max_payload_length - 2, 70, max_payload_length - 2});
    for (const uint32_t version : {1u, 2u})
        for (const auto& lengths : layouts)
            for (const Lanes lanes : {Lanes::Any, Lanes::OneAtATime, Lanes::Sixteen, Lanes::ShaNi}) {
                std::string whole;
                std::vector<size_t> offsets;
                for (size_t i = 0; i < lengths.size(); ++i) {
                    offsets.push_back(whole.size());
                    append_unsealed(whole, 1000 + i, "type.x", "\"" + std::string(lengths[i], static_cast<char>('a' + i % 26)) + "\"");
                }
                std::string pieces = whole;
                auto record = [&](std::string& bytes, size_t i) {
                    auto* p = reinterpret_cast<uint8_t*>(bytes.data() + offsets[i]);
                    return std::span<uint8_t>(p, load_u32(p));
                };
                Hash previous{}, chain{};
                std::vector<SealPrefix> prefixes(offsets.size());
                seal_prefixes(version, reinterpret_cast<uint8_t*>(pieces.data()), offsets, 77, 3, mac, sha, prefixes, lanes);
                for (size_t i = 0; i < offsets.size(); ++i) {
                    previous = seal_record(version, record(whole, i), 77 + i, 3, previous, mac, sha);
                    chain = seal_rest(version, record(pieces, i), chain, mac, prefixes[i]);
                    ASSERT_EQ(chain, previous) << "version " << version << " record " << i << " payload " << lengths[i];
                }
                EXPECT_TRUE(whole == pieces) << "version " << version << " " << lengths.size() << " records";
            }
}

TEST_F(FormatVersion, LargeGroupCommitBatchesSealAsVersion2) {
    // Batches of 512 are shared out among the sealing threads (seal_prefix ahead, seal_rest in order).
    write_with_writer(2, 3000, Durability::Group, 700);
    const std::vector<Hash> leaves = expect_layout(2);
    ASSERT_EQ(leaves.size(), 3000u);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 3000u);
    EXPECT_EQ(r.last_epoch, 4u);
}

TEST_F(FormatVersion, Version1LogsStillVerifyAndStayVersion1) {
    // A version 1 log as libgrey 0.2 wrote it (the writer's version 1 path is that code), across epochs.
    write_with_writer(1, 5, Durability::EveryRecord, 2);
    write_with_writer(1, 600, Durability::Group, 250);
    ASSERT_EQ(expect_layout(1).size(), 605u);
    const std::string old_checkpoint = checkpoint_now("old.checkpoint");
    // This libgrey appends to it, through the C API, as version 1.
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.epoch_records = 2;
    write_records(5, o);
    const std::vector<Hash> leaves = expect_layout(1);
    ASSERT_EQ(leaves.size(), 610u);
    const std::string checkpoint = checkpoint_now("new.checkpoint");
    const auto r = verify({old_checkpoint, checkpoint});
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 610u);
    Sha256 sha;
    EXPECT_EQ(to_hex(Bytes(r.root_hash, 32)), to_hex(merkle_root(sha, leaves)));
    EXPECT_EQ(prove_and_check(old_checkpoint, 605, checkpoint, 610), "grey-audit-inclusion v1");
    // Tampering is still found.
    auto file = read_all(log_path);
    const auto spans = record_spans(file);
    file[spans[300].offset + 40] ^= 1;
    write_all_bytes(log_path, file);
    const auto bad = verify();
    EXPECT_EQ(bad.cause, GREY_AUDIT_MODIFIED) << bad.detail;
    EXPECT_EQ(bad.first_bad_record, 300u);
}

TEST_F(FormatVersion, Version2ProofsAreVersion2) {
    write_records(6);
    const std::string old_checkpoint = checkpoint_now("old.checkpoint");
    write_records(5);
    const std::string checkpoint = checkpoint_now("new.checkpoint");
    EXPECT_EQ(prove_and_check(old_checkpoint, 6, checkpoint, 11), "grey-audit-inclusion v2");
    const auto text = read_all(dir + "/consistency");
    EXPECT_EQ(std::string(text.begin(), text.begin() + 26), "grey-audit-consistency v2\n");
    // A proof's leaf is the record's leaf hash in its log's format: version 2 leaves out the MAC.
    std::string why;
    const auto inclusion = read_all(dir + "/inclusion-10");
    const auto proof = parse_proof(std::string(inclusion.begin(), inclusion.end()), why);
    ASSERT_TRUE(proof) << why;
    EXPECT_EQ(proof->version, 2u);
    EXPECT_EQ(to_hex(proof->leaf), to_hex(expect_layout(2)[10]));
}

TEST_F(FormatVersion, ProofVersionsThisLibgreyDoesNotReadAreRefusedInWords) {
    write_records(3);
    const std::string checkpoint = checkpoint_now("c");
    const std::string p = proof_file("p", [&](char* b, size_t n, size_t* l) { return grey_audit_prove_inclusion(log_path.c_str(), 1, 3, b, n, l); });
    auto text = read_all(p);
    for (const std::string version : {"3", "0", "02", "", "x"}) {
        std::string changed(text.begin(), text.end());
        changed.replace(changed.find(" v2\n") + 2, 1, version);
        write_all_bytes(p, {changed.begin(), changed.end()});
        EXPECT_EQ(grey_audit_check_proof(p.c_str(), checkpoint.c_str(), nullptr, nullptr), GREY_ERROR_INVALID_ARGUMENT) << version;
        EXPECT_NE(std::string(grey_last_error()).find("which this libgrey does not read (it reads versions 1 to 2)"), std::string::npos)
            << version << ": " << grey_last_error();
    }
}

TEST_F(FormatVersion, EveryByteOfAVersion2RecordIsCovered) {
    write_records(3);
    const auto original = read_all(log_path);
    const auto spans = record_spans(original);
    ASSERT_EQ(spans.size(), 3u);
    // Length, magic, sequence, time, epoch, type and payload lengths, reserved, type, payload, link, MAC.
    for (size_t at = spans[1].offset; at < spans[1].offset + spans[1].size; ++at) {
        auto file = original;
        file[at] ^= static_cast<uint8_t>(1u << (at % 8));
        write_all_bytes(log_path, file);
        const auto r = verify();
        ASSERT_NE(r.cause, GREY_AUDIT_INTACT) << "flipping byte " << at - spans[1].offset << " of record 1 went unnoticed";
        EXPECT_EQ(r.first_bad_record, 1u) << "byte " << at - spans[1].offset << ": " << r.detail;
        EXPECT_EQ(r.records, 1u);
    }
    // The header too: its MAC covers the version field, and record 0 links to its hash.
    for (size_t at = 0; at < header_size; ++at) {
        auto file = original;
        file[at] ^= static_cast<uint8_t>(1u << (at % 8));
        write_all_bytes(log_path, file);
        ASSERT_NE(verify().cause, GREY_AUDIT_INTACT) << "flipping header byte " << at << " went unnoticed";
    }
}

TEST_F(FormatVersion, ATamperedMacFieldAloneIsFoundAndTheWriterRefusesIt) {
    write_records(4);
    auto file = read_all(log_path);
    const auto spans = record_spans(file);
    // The MAC field is outside the leaf in version 2: the chain holds, so only the MAC check can see it.
    file[spans[2].offset + spans[2].size - 1] ^= 0x80;
    write_all_bytes(log_path, file);
    const auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_MODIFIED) << r.detail;
    EXPECT_EQ(r.first_bad_record, 2u);
    EXPECT_NE(std::string(r.detail).find("fails its MAC check"), std::string::npos) << r.detail;
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.log_path = log_path.c_str();
    o.key_path = writer_key.c_str();
    grey_audit_log* log = nullptr;
    EXPECT_EQ(grey_audit_log_create(&o, &log), GREY_ERROR_CORRUPT);
    EXPECT_NE(std::string(grey_last_error()).find("fails its MAC check"), std::string::npos) << grey_last_error();
}

TEST_F(FormatVersion, ARecordSealedTheOtherVersionsWayIsModified) {
    for (const uint32_t version : {1u, 2u}) {
        std::filesystem::remove(log_path);
        write_with_writer(version, 4);
        auto file = read_all(log_path);
        const auto log = parse_log(file);
        const RecordView& last = log->records.back();
        const SecretKey key = record_key(read_key_file(verifier_key).key);
        // The MAC the other version would give the same bytes.
        const Hash other = reference_mac(version == 1 ? 2 : 1, key, last.bytes);
        std::copy(other.begin(), other.end(), file.begin() + static_cast<long>(last.offset + last.bytes.size() - 32));
        write_all_bytes(log_path, file);
        const auto r = verify();
        EXPECT_EQ(r.cause, GREY_AUDIT_MODIFIED) << "version " << version << ": " << r.detail;
        EXPECT_EQ(r.first_bad_record, 3u);
    }
}

TEST_F(FormatVersion, ChangingTheHeaderVersionIsModified) {
    write_records(3);
    set_header_version(1);  // a version 2 log read as version 1 would hash its records differently
    auto r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_MODIFIED) << r.detail;
    EXPECT_NE(std::string(r.detail).find("header fails its MAC check"), std::string::npos) << r.detail;
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.log_path = log_path.c_str();
    o.key_path = writer_key.c_str();
    grey_audit_log* log = nullptr;
    EXPECT_EQ(grey_audit_log_create(&o, &log), GREY_ERROR_CORRUPT);
    EXPECT_NE(std::string(grey_last_error()).find("header fails its MAC check"), std::string::npos) << grey_last_error();
}

TEST_F(FormatVersion, UnknownVersionsAreRefusedInWords) {
    write_records(3);
    for (const uint32_t version : {0u, 3u, 0xFFFFFFFFu}) {
        set_header_version(version);
        const std::string expected = "format version " + std::to_string(version) + ", which this libgrey does not read (it reads versions 1 to 2)";
        const auto r = verify();
        EXPECT_EQ(r.cause, GREY_AUDIT_MALFORMED);
        EXPECT_NE(std::string(r.detail).find(expected), std::string::npos) << r.detail;
        grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
        o.log_path = log_path.c_str();
        o.key_path = writer_key.c_str();
        grey_audit_log* log = nullptr;
        EXPECT_EQ(grey_audit_log_create(&o, &log), GREY_ERROR_CORRUPT);
        EXPECT_NE(std::string(grey_last_error()).find(expected), std::string::npos) << grey_last_error();
        size_t length = 0;
        EXPECT_EQ(grey_audit_records_json(log_path.c_str(), 0, 0, nullptr, 0, &length), GREY_ERROR_CORRUPT);
        EXPECT_NE(std::string(grey_last_error()).find(expected), std::string::npos) << grey_last_error();
        char buffer[4096];
        EXPECT_EQ(grey_audit_prove_inclusion(log_path.c_str(), 0, 1, buffer, sizeof buffer, &length), GREY_ERROR_CORRUPT);
        EXPECT_NE(std::string(grey_last_error()).find(expected), std::string::npos) << grey_last_error();
    }
    // The internal writer refuses to create a log of a version it does not write.
    std::filesystem::remove(log_path);
    EXPECT_THROW(write_with_writer(3, 1), Error);
    EXPECT_FALSE(std::filesystem::exists(log_path));
}

TEST_F(FormatVersion, TruncatedVersion2Logs) {
    write_records(6);
    const std::string checkpoint = checkpoint_now("c");
    const auto original = read_all(log_path);
    const auto spans = record_spans(original);
    // Whole records gone: the checkpoint covers more than the log holds.
    write_all_bytes(log_path, {original.begin(), original.begin() + static_cast<long>(spans[4].offset)});
    auto r = verify({checkpoint});
    EXPECT_EQ(r.cause, GREY_AUDIT_TRUNCATED) << r.detail;
    EXPECT_EQ(r.records, 4u);
    // Cut inside a record: a torn tail, which the writer recovers, sealing its recovery record as version 2.
    write_all_bytes(log_path, {original.begin(), original.begin() + static_cast<long>(spans[5].offset + 100)});
    r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_MALFORMED) << r.detail;
    EXPECT_EQ(r.first_bad_record, 5u);
    EXPECT_EQ(r.first_bad_offset, spans[5].offset);
    write_records(1);
    expect_layout(2);
    r = verify();
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 7u);  // 5 kept, grey.recovery, the new one
    EXPECT_NE(records_json().find("\"type\":\"grey.recovery\""), std::string::npos);
}

// tests/data/audit-v1: a log, checkpoints, proofs and a proof artifact written by libgrey before format
// version 2 (its README says how).
class CommittedVersion1Log : public FormatVersion {
protected:
    void SetUp() override {
        FormatVersion::SetUp();
        const std::filesystem::path data = std::filesystem::path(GREY_TEST_DATA_DIR) / "audit-v1";
        std::filesystem::copy(data, dir + "/v1", std::filesystem::copy_options::recursive);
        verifier_key = dir + "/v1/verifier.key";
        writer_key = dir + "/v1/writer.key";
        log_path = dir + "/v1/audit.log";
        // git keeps no 0600; the key files are refused without it.
        for (const auto& key : {verifier_key, writer_key})
            std::filesystem::permissions(key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    std::string file(const std::string& name) const { return dir + "/v1/" + name; }
};

TEST_F(CommittedVersion1Log, VerifiesWithItsCheckpointsProofsAndArtifact) {
    const std::vector<Hash> leaves = expect_layout(1);
    ASSERT_EQ(leaves.size(), 10u);
    const auto r = verify({file("c6.checkpoint"), file("c10.checkpoint")});
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 10u);
    EXPECT_EQ(r.last_epoch, 3u);
    EXPECT_EQ(grey_audit_check_proof(file("inclusion-4-of-10.proof").c_str(), file("c10.checkpoint").c_str(), nullptr, nullptr), GREY_OK)
        << grey_last_error();
    EXPECT_EQ(grey_audit_check_proof(file("consistency-6-to-10.proof").c_str(), file("c10.checkpoint").c_str(), file("c6.checkpoint").c_str(),
                                     nullptr),
              GREY_OK)
        << grey_last_error();
    // This libgrey makes the same proofs from it, byte for byte.
    const std::string inclusion = proof_file("again-inclusion", [&](char* b, size_t n, size_t* l) {
        return grey_audit_prove_inclusion(log_path.c_str(), 4, 10, b, n, l);
    });
    EXPECT_EQ(read_all(inclusion), read_all(file("inclusion-4-of-10.proof")));
    const std::string consistency = proof_file("again-consistency", [&](char* b, size_t n, size_t* l) {
        return grey_audit_prove_consistency(log_path.c_str(), 6, 10, b, n, l);
    });
    EXPECT_EQ(read_all(consistency), read_all(file("consistency-6-to-10.proof")));
    grey_proof_report report{};
    report.struct_size = sizeof report;
    ASSERT_EQ(grey_proof_verify(log_path.c_str(), verifier_key.c_str(), file("proofs/739659eed08ccbd9.json").c_str(), &report, nullptr), GREY_OK)
        << grey_last_error();
    EXPECT_EQ(report.verified, 1u);
    EXPECT_EQ(report.record, 5u);
}

TEST_F(CommittedVersion1Log, IsAppendedToAsVersion1) {
    grey_audit_options o = GREY_AUDIT_OPTIONS_INIT;
    o.epoch_records = 3;
    write_records(4, o);
    ASSERT_EQ(expect_layout(1).size(), 14u);
    const std::string checkpoint = checkpoint_now("c14.checkpoint");
    const auto r = verify({file("c6.checkpoint"), file("c10.checkpoint"), checkpoint});
    EXPECT_EQ(r.cause, GREY_AUDIT_INTACT) << r.detail;
    EXPECT_EQ(r.records, 14u);
    EXPECT_EQ(prove_and_check(file("c10.checkpoint"), 10, checkpoint, 14), "grey-audit-inclusion v1");
    // Tampering with the committed records is still found.
    auto bytes = read_all(log_path);
    const auto spans = record_spans(bytes);
    bytes[spans[7].offset + spans[7].size - 40] ^= 4;  // in record 7's previous hash
    write_all_bytes(log_path, bytes);
    const auto bad = verify();
    EXPECT_EQ(bad.cause, GREY_AUDIT_MODIFIED) << bad.detail;
    EXPECT_EQ(bad.first_bad_record, 7u);
}

}  // namespace
}  // namespace grey::audit::test
