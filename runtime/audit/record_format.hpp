// The on-disk layout of the audit log (docs/audit-format.md is the byte-by-byte description; keep the
// two in step). Parsing here is pure: it checks structure only, never a MAC, and never trusts a length
// before checking it against the bytes that are actually there.
#pragma once

#include "audit/crypto.hpp"
#include "audit/key_schedule.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace grey::audit {

inline constexpr std::string_view header_magic = "GREYAUDT";
// Version 2 (written since this libgrey) hashes each record once for both its Merkle leaf and its MAC:
// leaf H(0x00 || record without its MAC), MAC HMAC(R(e), leaf). Version 1 logs (leaf over the whole
// record, MAC over the record without its MAC) are still read, verified and appended to as version 1.
inline constexpr uint32_t format_version = 2;
inline constexpr uint32_t oldest_format_version = 1;
inline constexpr size_t header_size = 96;
inline constexpr size_t header_mac_offset = 64;
inline constexpr uint32_t record_magic = 0x43455247;  // "GREC" little-endian
inline constexpr size_t record_fixed_size = 36;       // length .. payload length
inline constexpr size_t record_trailer_size = 64;     // previous hash + MAC
inline constexpr size_t max_type_length = 64;
inline constexpr size_t max_payload_length = 1u << 20;
inline constexpr size_t max_record_size = record_fixed_size + max_type_length + max_payload_length + record_trailer_size;

using LogId = std::array<uint8_t, 16>;

struct Header {
    uint32_t version = format_version;
    LogId log_id{};
    KeyId key_id{};
    uint64_t created_ns = 0;
    Hash mac{};
};

// A record parsed in place: the views point into the caller's buffer. (Kept small: a verifier holds
// one per record of the log.)
struct RecordView {
    uint64_t offset = 0;  // of the record in the file
    Bytes bytes;          // the whole record, length field through MAC
    uint64_t sequence = 0;
    uint64_t timestamp_ns = 0;
    uint32_t epoch = 0;
    std::string_view type;
    std::string_view payload;
    [[nodiscard]] Bytes previous_hash() const { return bytes.subspan(bytes.size() - 64, 32); }
    [[nodiscard]] Bytes mac() const { return bytes.last(32); }
};

enum class ParseError { None, NeedMore, BadLength, BadMagic, BadType, BadReserved };
const char* parse_error_text(ParseError error);

// Encodes the 96-byte header; `mac` is computed over the first 64 bytes with the header key.
std::array<uint8_t, header_size> encode_header(const Header& header, const HmacSha256& header_mac);
// Structure only: magic and version. The MAC is the verifier's business.
std::optional<Header> parse_header(Bytes file);
// Why parse_header refuses `file`, in words for an error message (a version this libgrey does not read
// is named as such); "" when it does not.
std::string header_problem(Bytes file);

// Parses the record starting at `data` (the file from that record to its end).
ParseError parse_record(Bytes data, uint64_t offset, RecordView& out);

// Record types: 1..64 bytes of [A-Za-z0-9._-]. "grey." names are written by libgrey itself.
bool valid_type(std::string_view type);
inline constexpr std::string_view reserved_type_prefix = "grey.";

struct RecordFields {
    uint64_t sequence;
    uint64_t timestamp_ns;
    uint32_t epoch;
    std::string_view type;
    std::string_view payload;
    const Hash& previous_hash;
};
// A record's leaf hash in a log of format `version`: version 1, SHA-256(0x00 || the whole record);
// version 2, SHA-256(0x00 || the record without its MAC). It is both the next record's previous hash and
// the record's Merkle leaf.
Hash record_leaf(uint32_t version, const Sha256& sha, Bytes record);
// The MAC `record` must carry: version 1, HMAC(R(e), the record without its MAC); version 2,
// HMAC(R(e), leaf), where `leaf` is record_leaf(2, ...) of the same record (ignored for version 1).
Hash record_mac(uint32_t version, const HmacSha256& key, Bytes record, const Hash& leaf);

// Appends the record, sealed as format `version` lays it out, to `out` and returns its leaf hash.
Hash append_record(uint32_t version, std::string& out, const RecordFields& fields, const HmacSha256& record_mac, const Sha256& sha);

// The two halves of append_record, for a writer that queues records before it knows where they go:
// append_unsealed lays out the record with its timestamp, type and payload, leaving the sequence
// number, epoch, previous hash and MAC zero; seal_record fills those in place (`record` is exactly the
// bytes append_unsealed added) and returns the leaf hash. The type and payload must already be valid.
void append_unsealed(std::string& out, uint64_t timestamp_ns, std::string_view type, std::string_view payload);
Hash seal_record(uint32_t version, std::span<uint8_t> record, uint64_t sequence, uint32_t epoch, const Hash& previous_hash,
                 const HmacSha256& record_mac, const Sha256& sha);
// seal_record in two halves. Only the last blocks of a record's leaf hash (and, in version 1, of its MAC)
// depend on the record before it (its hash comes 64 bytes before the end), so seal_prefix, which fills
// in the sequence number and epoch and hashes every whole block before that, may run for many records
// at once, on several threads; seal_rest then finishes them in order, each with its predecessor's leaf
// hash. (Version 2's MAC, two blocks over the leaf hash, is all in seal_rest.)
struct SealPrefix {
    Sha256State mac;   // version 1: the MAC's inner hash, through the whole blocks before the previous hash
    Sha256State leaf;  // SHA-256(0x00 || ...), likewise
};
void seal_prefix(uint32_t version, std::span<uint8_t> record, uint64_t sequence, uint32_t epoch, const HmacSha256& record_mac,
                 const Sha256& sha, SealPrefix& out);
// seal_prefix for the records at `offsets` in `bytes` (sequence numbers first_sequence, first_sequence + 1,
// ...), into out[i]: the leaf hashes' whole blocks of records of one length several at a time where the
// CPU allows (Sha256::begin_many; `lanes`), the same states as seal_prefix one record at a time.
void seal_prefixes(uint32_t version, uint8_t* bytes, std::span<const size_t> offsets, uint64_t first_sequence, uint32_t epoch,
                   const HmacSha256& record_mac, const Sha256& sha, std::span<SealPrefix> out, Lanes lanes = Lanes::Any);
Hash seal_rest(uint32_t version, std::span<uint8_t> record, const Hash& previous_hash, const HmacSha256& record_mac, SealPrefix& prefix);
// seal_rest in two steps, for a writer that walks the chain on one thread and leaves the MACs to
// others: seal_chain writes the previous hash and returns the leaf hash (version 1: and writes the MAC,
// whose message contains the previous hash); seal_mac then writes version 2's MAC, HMAC(R(e), leaf),
// which depends on nothing else, so records' MACs may be computed in any order, on any thread.
Hash seal_chain(uint32_t version, std::span<uint8_t> record, const Hash& previous_hash, const HmacSha256& record_mac, SealPrefix& prefix);
void seal_mac(uint32_t version, std::span<uint8_t> record, const Hash& leaf, const HmacSha256& record_mac);
// Writes a version 2 record's MAC, computed elsewhere (HmacSha256::mac_many of the leaf hashes), into its
// last 32 bytes.
inline void store_mac(std::span<uint8_t> record, const Hash& mac) { std::copy(mac.begin(), mac.end(), record.end() - 32); }

// SHA-256(0x00 || bytes): the "previous hash" of record 0 over the header, and (record_leaf) a record's
// leaf hash over the bytes its format version names.
inline Hash leaf_hash(const Sha256& sha, Bytes bytes) { return sha.hash(0x00, bytes); }

// Little-endian loads and stores; inline because parsing a large log calls them for every record.
inline uint32_t load_u32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
           static_cast<uint32_t>(p[3]) << 24;
}
inline uint64_t load_u64(const uint8_t* p) { return static_cast<uint64_t>(load_u32(p)) | static_cast<uint64_t>(load_u32(p + 4)) << 32; }
inline void store_u16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v);
    p[1] = static_cast<uint8_t>(v >> 8);
}
inline void store_u32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void store_u64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
// Where a record's timestamp lies (docs/audit-format.md).
inline constexpr size_t record_timestamp_offset = 16;

}  // namespace grey::audit
