#include "audit/record_format.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cstring>

namespace grey::audit {

const char* parse_error_text(ParseError error) {
    switch (error) {
        case ParseError::None: return "no error";
        case ParseError::NeedMore: return "the record runs past the end of the file (a torn or truncated write)";
        case ParseError::BadLength: return "the record's length fields are inconsistent";
        case ParseError::BadMagic: return "the record does not start with the record magic";
        case ParseError::BadType: return "the record type is empty, too long or has characters outside [A-Za-z0-9._-]";
        case ParseError::BadReserved: return "a reserved field is not zero";
    }
    return "unknown parse error";
}

std::array<uint8_t, header_size> encode_header(const Header& header, const HmacSha256& header_mac) {
    std::array<uint8_t, header_size> out{};
    std::memcpy(out.data(), header_magic.data(), header_magic.size());
    store_u32(out.data() + 8, header.version);
    store_u32(out.data() + 12, static_cast<uint32_t>(header_size));
    std::copy(header.log_id.begin(), header.log_id.end(), out.begin() + 16);
    std::copy(header.key_id.begin(), header.key_id.end(), out.begin() + 32);
    store_u64(out.data() + 48, header.created_ns);
    const Hash mac = header_mac.mac(Bytes(out.data(), header_mac_offset));
    std::copy(mac.begin(), mac.end(), out.begin() + header_mac_offset);
    return out;
}

std::string header_problem(Bytes file) {
    if (file.size() < header_size) return "the file is shorter than the " + std::to_string(header_size) + "-byte header";
    if (std::memcmp(file.data(), header_magic.data(), header_magic.size()) != 0) return "the file does not start with the magic \"GREYAUDT\"";
    if (const uint32_t version = load_u32(file.data() + 8); version < oldest_format_version || version > format_version)
        return "the log is format version " + std::to_string(version) + ", which this libgrey does not read (it reads versions " +
               std::to_string(oldest_format_version) + " to " + std::to_string(format_version) + ")";
    if (load_u32(file.data() + 12) != header_size) return "the header size field is not " + std::to_string(header_size);
    if (load_u64(file.data() + 56) != 0) return "the header's reserved field is not zero";
    return {};
}

std::optional<Header> parse_header(Bytes file) {
    if (!header_problem(file).empty()) return std::nullopt;
    Header header;
    header.version = load_u32(file.data() + 8);
    std::copy_n(file.data() + 16, 16, header.log_id.begin());
    std::copy_n(file.data() + 32, 16, header.key_id.begin());
    header.created_ns = load_u64(file.data() + 48);
    std::copy_n(file.data() + header_mac_offset, 32, header.mac.begin());
    return header;
}

bool valid_type(std::string_view type) {
    if (type.empty() || type.size() > max_type_length) return false;
    return std::all_of(type.begin(), type.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    });
}

ParseError parse_record(Bytes data, uint64_t offset, RecordView& out) {
    if (data.size() < 4) return ParseError::NeedMore;
    const uint32_t length = load_u32(data.data());
    if (length < record_fixed_size + 1 + record_trailer_size || length > max_record_size) return ParseError::BadLength;
    // Check the magic before deciding the record is merely cut short, so that garbage is not taken for
    // a torn write.
    if (data.size() >= 8 && load_u32(data.data() + 4) != record_magic) return ParseError::BadMagic;
    if (data.size() < length) return ParseError::NeedMore;
    const uint8_t* p = data.data();
    const uint16_t type_length = static_cast<uint16_t>(p[28] | p[29] << 8);
    const uint16_t reserved = static_cast<uint16_t>(p[30] | p[31] << 8);
    const uint32_t payload_length = load_u32(p + 32);
    if (reserved != 0) return ParseError::BadReserved;
    if (type_length == 0 || type_length > max_type_length || payload_length > max_payload_length) return ParseError::BadLength;
    if (static_cast<uint64_t>(record_fixed_size) + type_length + payload_length + record_trailer_size != length)
        return ParseError::BadLength;
    out.offset = offset;
    out.bytes = data.first(length);
    out.sequence = load_u64(p + 8);
    out.timestamp_ns = load_u64(p + 16);
    out.epoch = load_u32(p + 24);
    out.type = std::string_view(reinterpret_cast<const char*>(p + record_fixed_size), type_length);
    out.payload = std::string_view(reinterpret_cast<const char*>(p + record_fixed_size + type_length), payload_length);
    if (!valid_type(out.type)) return ParseError::BadType;
    return ParseError::None;
}

void append_unsealed(std::string& out, uint64_t timestamp_ns, std::string_view type, std::string_view payload) {
    const size_t length = record_fixed_size + type.size() + payload.size() + record_trailer_size;
    const size_t start = out.size();
    out.resize(start + length);  // zero-filled: sequence, epoch, previous hash and MAC wait for seal_record
    auto* p = reinterpret_cast<uint8_t*>(out.data() + start);
    store_u32(p, static_cast<uint32_t>(length));
    store_u32(p + 4, record_magic);
    store_u64(p + record_timestamp_offset, timestamp_ns);
    store_u16(p + 28, static_cast<uint16_t>(type.size()));
    store_u32(p + 32, static_cast<uint32_t>(payload.size()));
    std::memcpy(p + record_fixed_size, type.data(), type.size());
    std::memcpy(p + record_fixed_size + type.size(), payload.data(), payload.size());
}

Hash record_leaf(uint32_t version, const Sha256& sha, Bytes record) {
    return leaf_hash(sha, version == 1 ? record : record.first(record.size() - 32));
}

Hash record_mac(uint32_t version, const HmacSha256& key, Bytes record, const Hash& leaf) {
    return version == 1 ? key.mac(record.first(record.size() - 32)) : key.mac(Bytes(leaf));
}

namespace {
// Where the hashes of a record split: the bytes before the previous hash that fill whole SHA-256 blocks.
// The MAC's message starts on a block boundary (after the key's pad); the leaf's is one byte in (0x00).
constexpr size_t sha256_block = 64;
size_t mac_prefix(size_t length) { return (length - record_trailer_size) / sha256_block * sha256_block; }
size_t leaf_prefix(size_t length) {
    const size_t whole = (length - record_trailer_size + 1) / sha256_block * sha256_block;
    return whole == 0 ? 0 : whole - 1;
}
}  // namespace

void seal_prefix(uint32_t version, std::span<uint8_t> record, uint64_t sequence, uint32_t epoch, const HmacSha256& record_mac,
                 const Sha256& sha, SealPrefix& out) {
    uint8_t* p = record.data();
    store_u64(p + 8, sequence);
    store_u32(p + 24, epoch);
    if (version == 1) {
        record_mac.begin(out.mac);
        out.mac.update(Bytes(p, mac_prefix(record.size())));
    }
    sha.begin(0x00, out.leaf);
    out.leaf.update(Bytes(p, leaf_prefix(record.size())));
}

void seal_prefixes(uint32_t version, uint8_t* bytes, std::span<const size_t> offsets, uint64_t first_sequence, uint32_t epoch,
                   const HmacSha256& record_mac, const Sha256& sha, std::span<SealPrefix> out, Lanes lanes) {
    if (out.size() < offsets.size()) fail(GREY_ERROR_INTERNAL, "seal_prefixes: a state for every record");
    // A chunk at a time, its records grouped by the length of their leaf prefix (one length in the
    // common case of similar payloads), so that each multi-message pass hashes messages of one length.
    constexpr size_t chunk = 64;
    std::array<std::pair<size_t, uint32_t>, chunk> order;  // (leaf prefix length, index in the chunk)
    std::array<size_t, chunk> at;
    std::array<Sha256State*, chunk> states;
    for (size_t from = 0; from < offsets.size(); from += chunk) {
        const size_t n = std::min(chunk, offsets.size() - from);
        for (size_t i = 0; i < n; ++i) {
            uint8_t* p = bytes + offsets[from + i];
            const size_t length = load_u32(p);
            store_u64(p + 8, first_sequence + from + i);
            store_u32(p + 24, epoch);
            if (version == 1) {
                record_mac.begin(out[from + i].mac);
                out[from + i].mac.update(Bytes(p, mac_prefix(length)));
            }
            order[i] = {leaf_prefix(length), static_cast<uint32_t>(i)};
        }
        std::sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n));
        for (size_t run = 0; run < n;) {
            size_t end = run;
            for (; end < n && order[end].first == order[run].first; ++end) {
                // The leaf's message starts with 0x00, so its first prefix byte is the record's first.
                at[end - run] = offsets[from + order[end].second];
                states[end - run] = &out[from + order[end].second].leaf;
            }
            sha.begin_many(0x00, bytes, std::span(at).first(end - run), order[run].first, std::span(states).first(end - run), lanes);
            run = end;
        }
    }
}

Hash seal_chain(uint32_t version, std::span<uint8_t> record, const Hash& previous_hash, const HmacSha256& record_mac, SealPrefix& prefix) {
    uint8_t* p = record.data();
    const size_t length = record.size();
    std::copy(previous_hash.begin(), previous_hash.end(), p + length - record_trailer_size);
    const size_t leaf_done = leaf_prefix(length);
    if (version == 1) {
        const size_t mac_done = mac_prefix(length);
        prefix.mac.update(Bytes(p + mac_done, length - 32 - mac_done));
        const Hash mac = record_mac.finish(prefix.mac);
        std::copy(mac.begin(), mac.end(), p + length - 32);
        return prefix.leaf.finish_public(Bytes(p + leaf_done, length - leaf_done));
    }
    // Version 2: the leaf ends where the MAC begins; the MAC (seal_mac) waits.
    return prefix.leaf.finish_public(Bytes(p + leaf_done, length - 32 - leaf_done));
}

void seal_mac(uint32_t version, std::span<uint8_t> record, const Hash& leaf, const HmacSha256& record_mac) {
    if (version == 1) return;  // sealed by seal_chain
    const Hash mac = record_mac.mac(Bytes(leaf));
    std::copy(mac.begin(), mac.end(), record.data() + record.size() - 32);
}

Hash seal_rest(uint32_t version, std::span<uint8_t> record, const Hash& previous_hash, const HmacSha256& record_mac, SealPrefix& prefix) {
    const Hash leaf = seal_chain(version, record, previous_hash, record_mac, prefix);
    seal_mac(version, record, leaf, record_mac);
    return leaf;
}

Hash seal_record(uint32_t version, std::span<uint8_t> record, uint64_t sequence, uint32_t epoch, const Hash& previous_hash,
                 const HmacSha256& record_mac, const Sha256& sha) {
    SealPrefix prefix;
    seal_prefix(version, record, sequence, epoch, record_mac, sha, prefix);
    return seal_rest(version, record, previous_hash, record_mac, prefix);
}

Hash append_record(uint32_t version, std::string& out, const RecordFields& fields, const HmacSha256& record_mac, const Sha256& sha) {
    const size_t start = out.size();
    append_unsealed(out, fields.timestamp_ns, fields.type, fields.payload);
    const std::span<uint8_t> record(reinterpret_cast<uint8_t*>(out.data() + start), out.size() - start);
    return seal_record(version, record, fields.sequence, fields.epoch, fields.previous_hash, record_mac, sha);
}

}  // namespace grey::audit
