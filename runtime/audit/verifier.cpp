#include "audit/verifier.hpp"

#include "audit/merkle.hpp"
#include "audit/secure_file.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

namespace grey::audit {

MappedFile::MappedFile(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT) fail(GREY_ERROR_NOT_FOUND, "audit log '" + path + "' does not exist");
        fail(GREY_ERROR_IO, "cannot open audit log '" + path + "': " + errno_text());
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail(GREY_ERROR_IO, "cannot stat '" + path + "': " + errno_text());
    if (!S_ISREG(st.st_mode)) fail(GREY_ERROR_INVALID_ARGUMENT, "'" + path + "' is not a regular file");
    size_ = static_cast<size_t>(st.st_size);
    if (size_ == 0) return;
    void* map = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (map == MAP_FAILED) fail(GREY_ERROR_IO, "cannot map '" + path + "': " + errno_text());
    data_ = static_cast<const uint8_t*>(map);
}

MappedFile::~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

std::optional<ParsedLog> parse_log(Bytes file) {
    auto header = parse_header(file);
    if (!header) return std::nullopt;
    ParsedLog log{*header, {}, header_size, ParseError::None};
    while (log.end < file.size()) {
        RecordView record;
        log.tail_error = parse_record(file.subspan(log.end), log.end, record);
        if (log.tail_error != ParseError::None) break;
        log.records.push_back(record);
        log.end += record.bytes.size();
    }
    return log;
}

namespace {
// How far past a record's claimed epoch the verifier looks for the key that really sealed it.
constexpr uint32_t reseal_search_limit = 64;

void check_records(const ParsedLog& log, Bytes file, KeyChain& keys, const Sha256& sha, VerifyReport& r) {
    uint32_t max_epoch_seen = 0;
    for (const auto& rec : log.records) max_epoch_seen = std::max(max_epoch_seen, std::min(rec.epoch, KeyChain::max_epoch));
    Hash previous = leaf_hash(sha, file.first(header_size));
    uint32_t epoch = 0;
    r.leaves.reserve(log.records.size());
    for (size_t i = 0; i < log.records.size(); ++i) {
        const RecordView& rec = log.records[i];
        auto bad = [&](Cause cause, std::string detail) {
            r.cause = cause;
            r.bad_record = i;
            r.bad_offset = rec.offset;
            r.detail = "record " + std::to_string(i) + " (offset " + std::to_string(rec.offset) + "): " + std::move(detail);
        };
        if (rec.epoch > epoch && rec.epoch - epoch > KeyChain::max_epoch_step)
            return bad(Cause::Modified, "claims key epoch " + std::to_string(rec.epoch) + ", more than " +
                                            std::to_string(KeyChain::max_epoch_step) + " past the previous record's epoch " + std::to_string(epoch));
        HmacSha256* mac = keys.record_mac(rec.epoch);
        if (mac == nullptr) return bad(Cause::Malformed, "claims key epoch " + std::to_string(rec.epoch) + ", beyond the supported maximum");
        if (!equal_ct(mac->mac(rec.authenticated()), rec.mac())) {
            const uint64_t search_end = std::min<uint64_t>(max_epoch_seen, uint64_t{epoch} + reseal_search_limit);
            for (uint32_t e = rec.epoch + 1; e <= search_end; ++e)
                if (equal_ct(keys.record_mac(e)->mac(rec.authenticated()), rec.mac()))
                    return bad(Cause::Resealed, "claims key epoch " + std::to_string(rec.epoch) + " but was sealed with the key of epoch " +
                                                    std::to_string(e) + " (re-sealed with a later, possibly stolen, key)");
            return bad(Cause::Modified, "fails its MAC check: its bytes were changed, or it was never sealed with this key");
        }
        if (rec.sequence < i)
            return bad(Cause::Inserted, "carries sequence " + std::to_string(rec.sequence) + ", which an earlier record already holds (a copied or replayed record)");
        if (rec.sequence > i) {
            const bool later = std::any_of(log.records.begin() + static_cast<std::ptrdiff_t>(i) + 1, log.records.end(),
                                           [i](const RecordView& v) { return v.sequence == i; });
            return bad(later ? Cause::Reordered : Cause::Deleted,
                       "carries sequence " + std::to_string(rec.sequence) + " where " + std::to_string(i) +
                           (later ? " was expected; record " + std::to_string(i) + " comes later (records were reordered)"
                                  : " was expected; records " + std::to_string(i) + " to " + std::to_string(rec.sequence - 1) + " are missing (deleted)"));
        }
        if (!equal_public(rec.previous_hash(), previous))
            return bad(Cause::Inserted, "does not chain to the record before it (it was taken from another log sealed with this key)");
        if (rec.epoch < epoch) return bad(Cause::Resealed, "goes back to key epoch " + std::to_string(rec.epoch) + " after epoch " + std::to_string(epoch));
        // A record whose epoch is later than its successor's was re-sealed with a later epoch's key.
        if (i + 1 < log.records.size() && log.records[i + 1].epoch < rec.epoch) {  // (lookahead)
            const RecordView& next = log.records[i + 1];
            HmacSha256* next_mac = keys.record_mac(next.epoch);
            if (next_mac != nullptr && equal_ct(next_mac->mac(next.authenticated()), next.mac()))
                return bad(Cause::Resealed, "claims key epoch " + std::to_string(rec.epoch) + ", later than the next record's epoch " +
                                                std::to_string(next.epoch) + " (re-sealed with a later, possibly stolen, key)");
        }
        epoch = rec.epoch;
        previous = leaf_hash(sha, rec.bytes);
        r.leaves.push_back(previous);
        ++r.records;
    }
    r.last_epoch = epoch;
    r.head = previous;
    if (log.tail_error != ParseError::None) {
        r.cause = Cause::Malformed;
        r.bad_record = log.records.size();
        r.bad_offset = log.end;
        r.detail = "the bytes from offset " + std::to_string(log.end) + " do not form a record: " + parse_error_text(log.tail_error) +
                   " (a crash leaves this; opening the log for writing recovers it)";
    }
}

void check_checkpoints(const std::vector<NamedText>& texts, KeyChain& keys, evp_pkey_st* public_key, const Sha256& sha, VerifyReport& r) {
    std::vector<Checkpoint> checkpoints;
    auto bad = [&](size_t k, Cause cause, std::string detail) {
        r.cause = cause;
        r.bad_checkpoint = static_cast<uint32_t>(k);
        r.detail = "checkpoint " + std::to_string(k) + " ('" + texts[k].name + "'): " + std::move(detail);
    };
    for (size_t k = 0; k < texts.size(); ++k) {
        std::string why;
        auto c = parse_checkpoint(texts[k].text, why);
        if (!c) return bad(k, Cause::Malformed, why);
        if (c->log_id != r.log_id) return bad(k, Cause::ForeignLog, "belongs to another log (log id " + to_hex(c->log_id) + ")");
        HmacSha256* mac = keys.checkpoint_mac(c->epoch);
        if (mac == nullptr || !equal_ct(mac->mac(c->body()), c->hmac)) return bad(k, Cause::Modified, "fails its HMAC check");
        if (public_key != nullptr) {
            if (!c->ed25519) return bad(k, Cause::Modified, "carries no Ed25519 signature, but a public key was given");
            if (!ed25519_verify(public_key, as_bytes(c->body()), *c->ed25519)) return bad(k, Cause::Modified, "fails its Ed25519 signature check");
        }
        checkpoints.push_back(*c);
    }
    for (size_t a = 0; a < checkpoints.size(); ++a)
        for (size_t b = a + 1; b < checkpoints.size(); ++b)
            if (checkpoints[a].size == checkpoints[b].size && checkpoints[a].root != checkpoints[b].root)
                return bad(b, Cause::Forked, "has the same size as checkpoint " + std::to_string(a) + " but a different root (two histories)");
    for (size_t k = 0; k < checkpoints.size(); ++k) {
        const Checkpoint& c = checkpoints[k];
        if (c.size > r.records) continue;
        if (merkle_root(sha, Hashes(r.leaves).first(c.size)) != c.root)
            return bad(k, Cause::Forked, "the log's first " + std::to_string(c.size) +
                                             " records do not hash to its root: the log was rewritten after the checkpoint (forked history)");
    }
    for (size_t k = 0; k < checkpoints.size(); ++k)
        if (checkpoints[k].size > r.records) {
            bad(k, Cause::Truncated, "covers " + std::to_string(checkpoints[k].size) + " records but the log holds only " + std::to_string(r.records));
            r.bad_record = r.records;
            return;
        }
}
}  // namespace

VerifyReport verify_log(Bytes file, KeyChain& keys, const std::vector<NamedText>& checkpoints, evp_pkey_st* public_key) {
    VerifyReport r;
    Sha256 sha;
    const auto log = parse_log(file);
    if (!log) {
        r.cause = Cause::Malformed;
        r.detail = "not a grey audit log: the header is missing or malformed";
        return r;
    }
    r.log_id = log->header.log_id;
    r.head = leaf_hash(sha, file.first(header_size));
    if (log->header.key_id != keys.key_id()) {
        r.cause = Cause::ForeignLog;
        r.detail = "the log was created with a different key (its key id is " + to_hex(log->header.key_id) + ")";
        return r;
    }
    HmacSha256 header_mac(keys.header());
    if (!equal_ct(header_mac.mac(file.first(header_mac_offset)), log->header.mac)) {
        r.cause = Cause::Modified;
        r.detail = "the header fails its MAC check";
        return r;
    }
    check_records(*log, file, keys, sha, r);
    r.root = merkle_root(sha, r.leaves);
    if (r.cause == Cause::Intact) check_checkpoints(checkpoints, keys, public_key, sha, r);
    return r;
}

}  // namespace grey::audit
