// Signed checkpoints: a small text note committing to the log's Merkle root at a size, meant to be kept
// off the machine. docs/audit-format.md gives the exact grammar.
#pragma once

#include "audit/crypto.hpp"
#include "audit/key_schedule.hpp"
#include "audit/record_format.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace grey::audit {

// Version 2 (written since 0.2): the Ed25519 signature covers every line before it, the hmac line
// included. Version 1 signed only the lines before "hmac", so its hmac line can be checked only with the
// verifier key; it is still read, and refused where only a public key would vouch for it.
inline constexpr uint32_t checkpoint_version = 2;

struct Checkpoint {
    uint32_t version = checkpoint_version;
    LogId log_id{};
    uint64_t size = 0;
    Hash root{};
    uint64_t time_ns = 0;
    uint32_t epoch = 0;
    Hash hmac{};
    std::optional<std::array<uint8_t, 64>> ed25519;
    // The text the HMAC covers: every line before "hmac".
    [[nodiscard]] std::string body() const;
    // The text the Ed25519 signature covers: version 2, body and hmac line; version 1, the body only.
    [[nodiscard]] std::string signed_text() const;
    // The whole canonical text: body, hmac line, and the ed25519 line when there is a signature.
    [[nodiscard]] std::string text() const;
};

// Fills hmac (and ed25519 when a signing key is given) and returns the full text.
std::string seal_checkpoint(Checkpoint& checkpoint, const HmacSha256& checkpoint_mac, evp_pkey_st* signing_key);

// Whether the Ed25519 signature holds for every meaningful byte under `public_key`. False for an
// unsigned checkpoint, and for version 1, whose signature leaves the hmac line out; `why` says which.
bool signature_covers_all(const Checkpoint& checkpoint, evp_pkey_st* public_key, std::string& why);

// Strict parse; nullopt with `why` set on anything that is not exactly the grammar.
std::optional<Checkpoint> parse_checkpoint(std::string_view text, std::string& why);

// Decimal without sign or leading zeros, fitting in uint64_t (the audit text formats all use it).
bool parse_decimal(std::string_view text, uint64_t& out);

}  // namespace grey::audit
