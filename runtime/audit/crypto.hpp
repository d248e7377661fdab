// The few cryptographic primitives the audit log needs, over OpenSSL 3: SHA-256, HMAC-SHA256 (RFC 2104
// over OpenSSL's SHA-256, checked against EVP_MAC and RFC 4231 in the tests), constant-time comparison,
// secure random bytes and Ed25519. Every OpenSSL object is owned by a unique_ptr so that no error path
// leaks one, and secret bytes are wiped with OPENSSL_cleanse.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct evp_md_st;
struct evp_md_ctx_st;
struct evp_pkey_st;

namespace grey::audit {

using Hash = std::array<uint8_t, 32>;
using Bytes = std::span<const uint8_t>;

inline Bytes as_bytes(std::string_view text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// 32 secret bytes that are wiped when they go out of scope or are overwritten.
class SecretKey {
public:
    SecretKey() = default;
    explicit SecretKey(const Hash& bytes) : bytes_(bytes) {}
    SecretKey(const SecretKey& other) = default;
    SecretKey& operator=(const SecretKey& other);
    ~SecretKey();
    [[nodiscard]] const Hash& bytes() const { return bytes_; }
    [[nodiscard]] Hash& mutable_bytes() { return bytes_; }

private:
    Hash bytes_{};
};

// Bytes that held secrets (a key file's text), wiped on scope exit.
struct WipedBytes {
    explicit WipedBytes(std::vector<uint8_t> contents) : bytes(std::move(contents)) {}
    std::vector<uint8_t> bytes;
    WipedBytes(const WipedBytes&) = delete;
    WipedBytes& operator=(const WipedBytes&) = delete;
    ~WipedBytes();
};

struct DigestDeleter {
    void operator()(evp_md_st* md) const noexcept;
    void operator()(evp_md_ctx_st* ctx) const noexcept;
};
struct PkeyDeleter {
    void operator()(evp_pkey_st* key) const noexcept;
};
using PkeyPtr = std::unique_ptr<evp_pkey_st, PkeyDeleter>;

// A SHA-256 computation part of the way through its message: a writer hashes the blocks of a record
// that come before its chain field ahead of time, on any thread, and the rest once the previous
// record's hash is known. Begun from an HMAC key's pad it is as secret as the key, so it is wiped when
// it is finished or destroyed.
class Sha256State {
public:
    Sha256State();
    ~Sha256State();
    Sha256State(const Sha256State& other);
    Sha256State& operator=(const Sha256State& other);
    void update(Bytes part);
    // The digest of everything given; the state is wiped and must be begun again before further use.
    Hash finish();
    // update(tail), then the digest, without wiping the state (which must be begun again before further
    // use): for hashes of public bytes only (a record's leaf hash), never a state begun from a key's pad.
    Hash finish_public(Bytes tail);

private:
    friend class Sha256;
    friend class HmacSha256;
    // OpenSSL's SHA256_CTX, whose header crypto.hpp keeps out of the rest of the code (crypto.cpp checks
    // the size and alignment).
    alignas(8) std::array<uint8_t, 112> ctx_{};
};

// How the hashes of many independent messages run: Any takes the fastest the CPU has (four interleaved on
// the SHA extensions, else sixteen at a time in AVX-512 registers, else one at a time through OpenSSL);
// the others ask for one path, which falls back to one at a time on a CPU without it. The same bytes
// every way; tests ask for each path, OneAtATime being what a CPU with neither extension takes.
enum class Lanes { Any, OneAtATime, Sixteen, ShaNi };

// SHA-256 of short messages. Hashing ~300-byte records is the hot path of both append and verify, and
// OpenSSL 3's EVP layer costs about half as much again as the hashing itself per call, so this uses
// OpenSSL's SHA256_* block functions directly (crypto.cpp says more). Stateless: one object may be used
// from several threads at once.
class Sha256 {
public:
    // SHA-256(prefix || part1 || part2); `prefix` < 0 means no prefix byte (RFC 6962 leaves use 0x00,
    // interior nodes 0x01).
    Hash hash(int prefix, Bytes part1, Bytes part2 = {}) const;
    // The state after `prefix` (as above), for messages given piece by piece.
    Sha256State begin(int prefix) const;
    // The same, into an existing state (no temporary to copy and wipe).
    void begin(int prefix, Sha256State& state) const;
    // *states[i] = begin(prefix) fed with base[offsets[i], offsets[i] + length), where `length` (plus
    // one for a prefix byte) is a whole number of 64-byte blocks: the records' leaf hashes ahead of their
    // chain field, which are independent of one another. Several at a time as `lanes` and the CPU allow
    // (the 16-lane path reads straight from `base`), else one at a time; the same states. `prefix` is
    // 0x00 or -1 (none).
    void begin_many(int prefix, const uint8_t* base, std::span<const size_t> offsets, size_t length, std::span<Sha256State* const> states,
                    Lanes lanes = Lanes::Any) const;
    // Merkle interior nodes: parents[i] = SHA-256(0x01 || children[2i] || children[2i+1]). Several at a
    // time as `lanes` and the CPU allow, else one at a time; the same bytes.
    void nodes(std::span<const Hash> children, std::span<Hash> parents, Lanes lanes = Lanes::Any) const;
};

// HMAC-SHA256 (RFC 2104) keyed once, then used for many messages: the SHA-256 states after the key's
// inner and outer pads are computed once, so a message costs its own blocks and one more. Those states
// are as secret as the key and are wiped with it. mac() is const and may run on several threads at once.
class HmacSha256 {
public:
    explicit HmacSha256(const SecretKey& key);
    ~HmacSha256();
    HmacSha256(HmacSha256&&) noexcept;
    HmacSha256& operator=(HmacSha256&&) noexcept;
    HmacSha256(const HmacSha256&) = delete;
    HmacSha256& operator=(const HmacSha256&) = delete;
    Hash mac(Bytes message) const;
    Hash mac(std::string_view label) const { return mac(as_bytes(label)); }
    // out[i] = mac(messages[i]) for 32-byte messages (version 2's records MAC their leaf hash): several at
    // a time as `lanes` and the CPU allow, else one at a time.
    void mac_many(std::span<const Hash> messages, std::span<Hash> out, Lanes lanes = Lanes::Any) const;
    // The same in two steps, for a message given piece by piece: begin() is the inner hash's state
    // after the key's pad, which the caller feeds with update(); finish() completes the MAC and wipes it.
    Sha256State begin() const;
    void begin(Sha256State& inner) const;
    Hash finish(Sha256State& inner) const;

private:
    struct Pads;  // the two SHA-256 states; defined in crypto.cpp, where OpenSSL's header is
    std::unique_ptr<Pads> pads_;
};

// Constant-time equality of two equally long byte strings (CRYPTO_memcmp); false if lengths differ.
// For MACs, which a timing difference would help forge.
bool equal_ct(Bytes a, Bytes b);
// The same for two MACs: every byte compared whatever the others hold, without CRYPTO_memcmp's call and
// byte-at-a-time loop, which were a twentieth of a verification's time.
bool equal_ct(const Hash& a, Bytes b);
// Plain equality, for hashes anyone can compute (the chain's previous-record hash): no secret to leak,
// and CRYPTO_memcmp's byte-at-a-time loop was a tenth of a verification's time.
inline bool equal_public(Bytes a, Bytes b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

// Bytes from the OpenSSL CSPRNG.
void random_bytes(std::span<uint8_t> out);

std::string to_hex(Bytes bytes);
// Lower- or upper-case hex of exactly out.size() bytes; false on any other input.
bool from_hex(std::string_view hex, std::span<uint8_t> out);

Hash sha256_file(const std::string& path);

// Ed25519 (RFC 8032) through EVP_PKEY_ED25519.
PkeyPtr ed25519_generate();
std::array<uint8_t, 64> ed25519_sign(evp_pkey_st* private_key, Bytes message);
bool ed25519_verify(evp_pkey_st* public_key, Bytes message, Bytes signature);
// PEM files: the private key as PKCS#8 (written 0600, refused if readable by others), the public key
// as SubjectPublicKeyInfo.
void ed25519_write_private(const std::string& path, evp_pkey_st* key);
void ed25519_write_public(const std::string& path, evp_pkey_st* key);
PkeyPtr ed25519_read_private(const std::string& path);
PkeyPtr ed25519_read_public(const std::string& path);

}  // namespace grey::audit
