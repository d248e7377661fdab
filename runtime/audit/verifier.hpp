// Verification of a whole log against the initial key and, optionally, checkpoints kept elsewhere.
// The first problem found is reported with a cause precise enough to tell tampering patterns apart.
#pragma once

#include "audit/checkpoint.hpp"
#include "audit/crypto.hpp"
#include "audit/key_schedule.hpp"
#include "audit/merkle.hpp"
#include "audit/record_format.hpp"

#include <optional>
#include <string>
#include <vector>

namespace grey::audit {

enum class Cause { Intact, Modified, Deleted, Reordered, Inserted, Truncated, Resealed, ForeignLog, Forked, Malformed };

struct VerifyReport {
    Cause cause = Cause::Intact;
    uint64_t records = 0;  // records that verified, in order, before the first bad one
    std::optional<uint64_t> bad_record;
    uint64_t bad_offset = 0;
    std::optional<uint32_t> bad_checkpoint;
    uint32_t last_epoch = 0;
    LogId log_id{};
    Hash head{};
    Hash root{};
    std::string detail;
    std::vector<Hash> leaves;  // leaf hashes of the verified records
    ChunkRoots chunks;         // Merkle roots of aligned chunks of them, computed while checking records
};

struct NamedText {
    std::string name;
    std::string text;
};

// Hashes on `threads` threads (0: one per core); the report is the same whatever their number.
VerifyReport verify_log(Bytes file, KeyChain& keys, const std::vector<NamedText>& checkpoints, evp_pkey_st* public_key,
                        size_t threads = 0);

// Structure-only walk of a log (no key): the records and where the first unparseable byte sits.
struct ParsedLog {
    Header header;
    std::vector<RecordView> records;
    uint64_t end = 0;  // offset of the first byte that is not part of a parsed record
    ParseError tail_error = ParseError::None;
};
std::optional<ParsedLog> parse_log(Bytes file);

}  // namespace grey::audit
