// libFuzzer target: the writer opening a log whose tail is arbitrary bytes, as anyone who can write the
// log file can leave it. Whatever the tail, the writer either refuses (grey::Error), or appends and
// leaves a log that verifies intact, with its key file at an epoch the log's records justify.
//
// The log starts with three genuine records (epochs 0, 0, 1, under the initial key 0, 1, ..., 31) and
// the writer key is at epoch 1, anchored after record 1. The first input byte chooses how the rest is
// used: even, as raw bytes; odd, as records whose sequence numbers and previous-record hashes are set to
// continue the chain, so that the fuzzer explores epochs, MACs and lengths rather than broken chains.
#include "audit/verifier.hpp"
#include "audit/writer.hpp"
#include "core/error.hpp"
#include "core/mapped_file.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {
using namespace grey::audit;

SecretKey initial_key() {
    SecretKey key;
    for (size_t i = 0; i < key.mutable_bytes().size(); ++i) key.mutable_bytes()[i] = static_cast<uint8_t>(i);
    return key;
}

struct Fixture {
    std::string dir;
    std::vector<uint8_t> base;  // header and three records
    KeyFile writer_key;         // epoch 1, anchored after record 1
};

Fixture make_fixture() {
    Fixture f;
    std::string pattern = (std::filesystem::temp_directory_path() / "grey-fuzz-writer-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    f.dir = pattern;
    const SecretKey k0 = initial_key();
    const SecretKey k1 = next_epoch_key(k0);
    Header header;
    header.log_id.fill(0xA5);
    header.key_id = key_id_of(k0);
    header.created_ns = 1;
    const auto header_bytes = encode_header(header, HmacSha256(header_key(k0)));
    std::string log(header_bytes.begin(), header_bytes.end());
    Sha256 sha;
    Hash head = leaf_hash(sha, header_bytes);
    Hash anchor_head{};
    const uint32_t epochs[] = {0, 0, 1};
    for (uint64_t i = 0; i < 3; ++i) {
        if (i == 2) anchor_head = head;
        head = append_record(format_version, log, {i, 10 + i, epochs[i], "t", "{\"i\":" + std::to_string(i) + "}", head},
                             HmacSha256(record_key(epochs[i] == 0 ? k0 : k1)), sha);
    }
    f.base.assign(log.begin(), log.end());
    f.writer_key.role = KeyRole::Writer;
    f.writer_key.epoch = 1;
    f.writer_key.key_id = header.key_id;
    f.writer_key.key = k1;
    f.writer_key.anchor = KeyAnchor{header.log_id, 2, anchor_head};
    return f;
}

const Fixture& fixture() {
    static const Fixture f = make_fixture();
    static const bool cleanup = [] { return std::atexit([] { std::filesystem::remove_all(fixture().dir); }) == 0; }();
    (void)cleanup;
    return f;
}

// Sets the sequence number and previous hash of each record in `tail` so that it continues `file`.
void continue_chain(const std::vector<uint8_t>& file, std::vector<uint8_t>& tail) {
    const auto log = parse_log(file);
    Sha256 sha;
    Hash head = record_leaf(log->header.version, sha, log->records.back().bytes);
    uint64_t sequence = log->records.size();
    for (size_t at = 0; at < tail.size();) {
        RecordView record;
        if (parse_record(Bytes(tail).subspan(at), 0, record) != ParseError::None) break;
        uint8_t* p = tail.data() + at;
        for (int i = 0; i < 8; ++i) p[8 + i] = static_cast<uint8_t>(sequence >> (8 * i));
        std::copy(head.begin(), head.end(), p + record.bytes.size() - 64);
        head = record_leaf(log->header.version, sha, Bytes(p, record.bytes.size()));
        ++sequence;
        at += record.bytes.size();
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const Fixture& f = fixture();
    for (const auto& entry : std::filesystem::directory_iterator(f.dir)) std::filesystem::remove(entry.path());
    const std::string log_path = f.dir + "/audit.log";
    const std::string key_path = f.dir + "/writer.key";
    std::vector<uint8_t> tail(data + 1, data + size);
    if (data[0] % 2 == 1) continue_chain(f.base, tail);
    std::vector<uint8_t> file = f.base;
    file.insert(file.end(), tail.begin(), tail.end());
    {
        std::ofstream out(log_path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
    }
    write_new_key_file(key_path, f.writer_key);

    try {
        WriterOptions options;
        options.log_path = log_path;
        options.key_path = key_path;
        options.epoch_records = 2;
        Writer writer(options);
        writer.append("t", "{\"fuzz\":1}");
    } catch (const grey::Error&) {
        return 0;  // refused: fine, whatever the reason
    }
    // It appended: the log must verify, and the key must not have run ahead of the records.
    const grey::MappedFile written(log_path, "audit log");
    KeyChain keys(initial_key());
    const VerifyReport report = verify_log(written.bytes<uint8_t>(), keys, {}, nullptr);
    if (report.cause != Cause::Intact) __builtin_trap();
    const KeyFile key = read_key_file(key_path);
    if (key.epoch != report.last_epoch) __builtin_trap();
    return 0;
}
