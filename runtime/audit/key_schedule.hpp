// The forward-secure key schedule and the key file that carries it.
//
//   K(e+1)          = HMAC-SHA256(K(e), "grey-audit/v1/ratchet")        one-way: K(e) cannot be recovered
//   record key R(e) = HMAC-SHA256(K(e), "grey-audit/v1/record")
//   checkpoint C(e) = HMAC-SHA256(K(e), "grey-audit/v1/checkpoint")
//   header key      = HMAC-SHA256(K(0), "grey-audit/v1/header")
//   key id          = first 16 bytes of HMAC-SHA256(K(0), "grey-audit/v1/key-id")
//
// The writer holds only K(e) and erases K(e-1) when it moves on; the verifier holds K(0) and derives the
// rest itself.
#pragma once

#include "audit/crypto.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace grey::audit {

using KeyId = std::array<uint8_t, 16>;

enum class KeyRole { Writer, Verifier };

// Where a writer key's epoch begins in one log: the first `records` records of the log with this id
// were all sealed before the key reached its epoch, and the last of them has leaf hash `head` (for
// `records` = 0, the header's hash H(0x00 || header)). Every later record is sealed with this epoch's
// key or a later one, which the writer can derive. So a writer that can no longer check the MACs of old
// records (it erased their keys) still authenticates the whole log: the prefix through the hash chain
// up to `head`, the rest through MACs. Not secret.
struct KeyAnchor {
    std::array<uint8_t, 16> log_id{};
    uint64_t records = 0;
    Hash head{};
    bool operator==(const KeyAnchor&) const = default;
};

struct KeyFile {
    KeyRole role = KeyRole::Writer;
    uint32_t epoch = 0;
    KeyId key_id{};
    SecretKey key;
    // Writer keys past epoch 0 (key file version 2). A version 1 writer key past epoch 0, written by
    // libgrey 0.1, has none: the writer trusts that log's older records once and records the anchor.
    std::optional<KeyAnchor> anchor;
};

SecretKey next_epoch_key(const SecretKey& key);
SecretKey record_key(const SecretKey& epoch_key);
SecretKey checkpoint_key(const SecretKey& epoch_key);
SecretKey header_key(const SecretKey& initial_key);
KeyId key_id_of(const SecretKey& initial_key);

// Text form ("grey-audit-key v1", or v2 with an anchor line); docs/audit-format.md gives it line by
// line. Errors never quote the file's contents.
std::string encode_key_file(const KeyFile& key);
KeyFile parse_key_file(const std::string& path, std::string_view text);
// Creates a key file with mode 0600, refusing an existing file. (The writer replaces its key file
// through WriterKeyFile, which leaves no earlier key behind.)
void write_new_key_file(const std::string& path, const KeyFile& key);
// Reads a key file after checking that only its owner can access it.
KeyFile read_key_file(const std::string& path);
inline constexpr size_t max_key_file_size = 4096;

// The verifier's view: K(0), with every epoch's record and checkpoint key derived on demand. A log may
// claim any epoch, so derivation is bounded: beyond `max_epoch` it refuses.
class KeyChain {
public:
    static constexpr uint32_t max_epoch = 1u << 20;
    // A writer advances one epoch per record at most (a crash between rewriting the key file and the
    // next record adds one more), so a larger step between consecutive records is never genuine; the
    // bound also caps how many keys a forged epoch field can make the verifier derive.
    static constexpr uint32_t max_epoch_step = 1024;
    explicit KeyChain(const SecretKey& initial_key);
    [[nodiscard]] const KeyId& key_id() const { return key_id_; }
    [[nodiscard]] const SecretKey& header() const { return header_key_; }
    // A MAC keyed for `epoch`, valid until the next call of the same function; nullptr when `epoch`
    // exceeds max_epoch.
    HmacSha256* record_mac(uint32_t epoch);
    HmacSha256* checkpoint_mac(uint32_t epoch);
    // Derives the keys of every epoch up to `epoch`; false beyond max_epoch.
    bool derive_through(uint32_t epoch);
    // The record key of an epoch derive_through already reached. Const, so that several threads may
    // read keys while none derives.
    [[nodiscard]] const SecretKey& derived_record_key(uint32_t epoch) const { return keys_.at(epoch).record; }

private:
    KeyId key_id_{};
    SecretKey header_key_;
    SecretKey newest_;  // K(keys_.size() - 1)
    struct EpochKeys {
        SecretKey record;
        SecretKey checkpoint;
    };
    std::vector<EpochKeys> keys_;
    // Records come in epoch order, so one keyed context per purpose serves almost every record.
    std::optional<HmacSha256> record_mac_;
    uint32_t record_mac_epoch_ = 0;
    std::optional<HmacSha256> checkpoint_mac_;
    uint32_t checkpoint_mac_epoch_ = 0;
};

}  // namespace grey::audit
