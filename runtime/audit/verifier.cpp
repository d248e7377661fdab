#include "audit/verifier.hpp"

#include "audit/merkle.hpp"
#include "core/worker_pool.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <thread>

namespace grey::audit {

std::optional<ParsedLog> parse_log(Bytes file) {
    auto header = parse_header(file);
    if (!header) return std::nullopt;
    ParsedLog log{*header, {}, header_size, ParseError::None};
    // Size the vector once, guessing from the first record's length (a log's records are mostly alike):
    // growing it by doubling copied and faulted in several times its final size for a large log.
    if (file.size() >= header_size + 4) {
        const uint32_t first = load_u32(file.data() + header_size);
        if (first >= record_fixed_size + 1 + record_trailer_size) log.records.reserve((file.size() - header_size) / first + 1);
    }
    // Each record's offset depends on the length read from the one before, so the loads cannot overlap
    // by themselves and this loop was bound by memory latency: every cache line is fetched 8 KiB ahead.
    // (Parsing the records on all cores after a sequential pass for their extents was no faster.)
    constexpr uint64_t ahead = 8192;
    uint64_t fetched = header_size;
    while (log.end < file.size()) {
        for (const uint64_t until = std::min<uint64_t>(log.end + ahead, file.size()); fetched < until; fetched += 64)
            __builtin_prefetch(file.data() + fetched);
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

void check_records(const ParsedLog& log, Bytes file, KeyChain& keys, const Sha256& sha, WorkerPool& pool, VerifyReport& r) {
    const std::vector<RecordView>& records = log.records;
    const uint32_t version = log.header.version;
    const Hash header_leaf = leaf_hash(sha, file.first(header_size));
    auto leaf_at = [&](size_t i) { return record_leaf(version, sha, records[i].bytes); };
    // Whether record i's MAC holds under `key`, given its leaf hash.
    auto mac_matches = [&](const HmacSha256& key, size_t i, const Hash& leaf) {
        return equal_ct(record_mac(version, key, records[i].bytes, leaf), records[i].mac());
    };

    // The expensive part of checking a record (its leaf hash, its MAC under the key of the epoch it
    // claims, and whether it names the record before it by that record's leaf hash) does not depend on
    // the verdict on any other record, so it is done ahead of the sequential walk below, on all cores,
    // a window of records at a time. A window ends where the walk would stop at a leap of epochs it
    // refuses, and spans at most window_epochs epochs past the keys derived so far: a forged epoch field
    // then makes the verifier derive at most that many keys more than the walk itself reaches, as the
    // walk's own checks bound it.
    constexpr uint32_t window_epochs = 4096;
    constexpr uint8_t mac_holds_bit = 1;
    constexpr uint8_t chains_bit = 2;
    // Every check of the walk below holds for the record, given that the records before it verified:
    // the walk then only counts it, reading this byte rather than the record (a log's records no
    // longer fit in any cache by the time the walk reaches them).
    constexpr uint8_t passes_bit = 4;
    std::vector<Hash> leaves(records.size());
    std::vector<uint8_t> checks(records.size());
    r.chunks.roots.resize(records.size() / ChunkRoots::chunk);
    r.chunks.known.resize(records.size() / ChunkRoots::chunk);
    size_t hashed = 0;     // records [0, hashed) have their leaf hash and checks
    uint32_t derived = 0;  // the key chain holds every key through this epoch
    auto hash_window = [&](size_t start) {
        size_t end = start;
        uint32_t previous = start == 0 ? 0 : records[start - 1].epoch;
        uint32_t highest = derived;
        for (; end < records.size(); ++end) {
            const uint32_t e = records[end].epoch;
            if ((e > previous && e - previous > KeyChain::max_epoch_step) || e > KeyChain::max_epoch || e > derived + window_epochs) break;
            highest = std::max(highest, e);
            previous = e;
        }
        if (end == start) return;
        keys.derive_through(highest);
        derived = highest;
        pool.run(end - start, ChunkRoots::chunk, [&](size_t begin, size_t stop) {
            // Records come in epoch order, so one keyed MAC per block serves almost all of them. The
            // block hashes the record before it once more, to check the first record's chain link.
            std::optional<HmacSha256> mac;
            uint32_t mac_epoch = 0;
            Hash previous_leaf = start + begin == 0 ? header_leaf : leaf_at(start + begin - 1);
            for (size_t i = start + begin; i < start + stop; ++i) {
                const RecordView& rec = records[i];
                if (!mac || mac_epoch != rec.epoch) {
                    mac.emplace(keys.derived_record_key(rec.epoch));
                    mac_epoch = rec.epoch;
                }
                leaves[i] = leaf_at(i);
                const bool mac_ok = mac_matches(*mac, i, leaves[i]);
                const bool chain_ok = equal_public(rec.previous_hash(), previous_leaf);
                // The walk's other checks, for a record whose predecessors all verified (so that the
                // walk's current epoch is the previous record's): its sequence number is its position,
                // its epoch neither goes back nor leaps, and the next record's does not go back either
                // (the walk would look into that record's MAC for a re-seal then).
                const uint32_t previous_epoch = i == 0 ? 0 : records[i - 1].epoch;
                const bool in_order = rec.sequence == i && rec.epoch >= previous_epoch && rec.epoch - previous_epoch <= KeyChain::max_epoch_step &&
                                      (i + 1 == records.size() || records[i + 1].epoch >= rec.epoch);
                checks[i] = static_cast<uint8_t>((mac_ok ? mac_holds_bit : 0) | (chain_ok ? chains_bit : 0) |
                                                 (mac_ok && chain_ok && in_order ? passes_bit : 0));
                previous_leaf = leaves[i];
            }
            // While the leaves are at hand: the Merkle root of the block, when it is an aligned chunk
            // (a chunk of records that later fail verification is simply not used).
            r.chunks.offer(sha, leaves, start + begin, start + stop);
        });
        hashed = end;
    };
    auto leaf_of = [&](size_t i) { return i < hashed ? leaves[i] : leaf_at(i); };
    // Whether record i's MAC holds under its claimed epoch's key; nullopt when that epoch is beyond
    // what the key chain supports. A record no window covers (the walk is about to refuse it) is
    // checked here, one at a time.
    auto mac_holds = [&](size_t i) -> std::optional<bool> {
        if (i == hashed) hash_window(i);
        if (i < hashed) return (checks[i] & mac_holds_bit) != 0;
        HmacSha256* mac = keys.record_mac(records[i].epoch);
        if (mac == nullptr) return std::nullopt;
        return mac_matches(*mac, i, leaf_of(i));
    };
    // Whether record i names record i-1 (the header for record 0) by its leaf hash.
    auto chains = [&](size_t i) {
        if (i < hashed) return (checks[i] & chains_bit) != 0;
        return equal_public(records[i].previous_hash(), i == 0 ? header_leaf : leaf_of(i - 1));
    };
    // The report keeps the leaf hashes of the records that verified, in order, whichever way the walk ends.
    auto keep_verified_leaves = [&] {
        leaves.resize(r.records);
        r.leaves = std::move(leaves);
    };
    uint32_t epoch = 0;
    for (size_t i = 0; i < records.size(); ++i) {
        // A run of records that pass every check (passes_bit) is counted without being looked at again.
        // (Hashing the next window first changes nothing: mac_holds would hash it for this record anyway,
        // and hash_window hashes nothing where the epoch check below refuses the record.)
        if (i == hashed) hash_window(i);
        size_t run_end = i;
        while (run_end < hashed && (checks[run_end] & passes_bit) != 0) ++run_end;
        if (run_end > i) {
            r.records += run_end - i;
            epoch = records[run_end - 1].epoch;
            i = run_end - 1;
            continue;
        }
        const RecordView& rec = records[i];
        auto bad = [&](Cause cause, std::string detail) {
            keep_verified_leaves();
            r.cause = cause;
            r.bad_record = i;
            r.bad_offset = rec.offset;
            r.detail = "record " + std::to_string(i) + " (offset " + std::to_string(rec.offset) + "): " + std::move(detail);
        };
        if (rec.epoch > epoch && rec.epoch - epoch > KeyChain::max_epoch_step)
            return bad(Cause::Modified, "claims key epoch " + std::to_string(rec.epoch) + ", more than " +
                                            std::to_string(KeyChain::max_epoch_step) + " past the previous record's epoch " + std::to_string(epoch));
        const std::optional<bool> holds = mac_holds(i);
        if (!holds) return bad(Cause::Malformed, "claims key epoch " + std::to_string(rec.epoch) + ", beyond the supported maximum");
        if (!*holds) {
            uint32_t max_epoch_seen = 0;
            for (const auto& other : records) max_epoch_seen = std::max(max_epoch_seen, std::min(other.epoch, KeyChain::max_epoch));
            const uint64_t search_end = std::min<uint64_t>(max_epoch_seen, uint64_t{epoch} + reseal_search_limit);
            const Hash leaf = leaf_of(i);
            for (uint32_t e = rec.epoch + 1; e <= search_end; ++e)
                if (mac_matches(*keys.record_mac(e), i, leaf))
                    return bad(Cause::Resealed, "claims key epoch " + std::to_string(rec.epoch) + " but was sealed with the key of epoch " +
                                                    std::to_string(e) + " (re-sealed with a later, possibly stolen, key)");
            return bad(Cause::Modified, "fails its MAC check: its bytes were changed, or it was never sealed with this key");
        }
        if (rec.sequence < i)
            return bad(Cause::Inserted, "carries sequence " + std::to_string(rec.sequence) + ", which an earlier record already holds (a copied or replayed record)");
        if (rec.sequence > i) {
            const bool later = std::any_of(records.begin() + static_cast<std::ptrdiff_t>(i) + 1, records.end(),
                                           [i](const RecordView& v) { return v.sequence == i; });
            return bad(later ? Cause::Reordered : Cause::Deleted,
                       "carries sequence " + std::to_string(rec.sequence) + " where " + std::to_string(i) +
                           (later ? " was expected; record " + std::to_string(i) + " comes later (records were reordered)"
                                  : " was expected; records " + std::to_string(i) + " to " + std::to_string(rec.sequence - 1) + " are missing (deleted)"));
        }
        if (!chains(i))
            return bad(Cause::Inserted, "does not chain to the record before it (it was taken from another log sealed with this key)");
        if (rec.epoch < epoch) return bad(Cause::Resealed, "goes back to key epoch " + std::to_string(rec.epoch) + " after epoch " + std::to_string(epoch));
        // A record whose epoch is later than its successor's was re-sealed with a later epoch's key.
        if (i + 1 < records.size() && records[i + 1].epoch < rec.epoch && mac_holds(i + 1).value_or(false))
            return bad(Cause::Resealed, "claims key epoch " + std::to_string(rec.epoch) + ", later than the next record's epoch " +
                                            std::to_string(records[i + 1].epoch) + " (re-sealed with a later, possibly stolen, key)");
        epoch = rec.epoch;
        ++r.records;
    }
    const Hash previous = r.records == 0 ? header_leaf : leaf_of(r.records - 1);
    keep_verified_leaves();
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

void check_checkpoints(const std::vector<NamedText>& texts, KeyChain& keys, evp_pkey_st* public_key, const Sha256& sha, WorkerPool& pool,
                       VerifyReport& r) {
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
            // (A version 1 signature leaves out the hmac line, which the HMAC check above covers here.)
            if (!ed25519_verify(public_key, as_bytes(c->signed_text()), *c->ed25519)) return bad(k, Cause::Modified, "fails its Ed25519 signature check");
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
        if (merkle_root_parallel(sha, Hashes(r.leaves).first(c.size), pool, &r.chunks) != c.root)
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

VerifyReport verify_log(Bytes file, KeyChain& keys, const std::vector<NamedText>& checkpoints, evp_pkey_st* public_key, size_t threads) {
    VerifyReport r;
    Sha256 sha;
    const auto log = parse_log(file);
    if (!log) {
        r.cause = Cause::Malformed;
        r.detail = "not a grey audit log that this libgrey reads: " + header_problem(file);
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
    // The work is shared out in blocks of a Merkle chunk; a smaller log has no use for more threads.
    const size_t wanted = threads != 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
    WorkerPool pool(std::clamp<size_t>(log->records.size() / ChunkRoots::chunk, 1, wanted));
    check_records(*log, file, keys, sha, pool, r);
    r.root = merkle_root_parallel(sha, r.leaves, pool, &r.chunks);
    if (r.cause == Cause::Intact) check_checkpoints(checkpoints, keys, public_key, sha, pool, r);
    return r;
}

}  // namespace grey::audit
