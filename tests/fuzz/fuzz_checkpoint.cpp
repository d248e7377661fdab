// libFuzzer target: the checkpoint parser, and the signature's coverage. Whatever the parser accepts
// must print back to the same bytes. Each accepted checkpoint is then signed with a fixed Ed25519 key
// and one character of its text (chosen by the input) is changed: if the changed text still parses,
// its signature must no longer hold (every byte before the signature is signed, the hmac line too).
#include "audit/checkpoint.hpp"

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace {
grey::audit::PkeyPtr fixed_signing_key() {
    uint8_t seed[32];
    for (size_t i = 0; i < sizeof seed; ++i) seed[i] = static_cast<uint8_t>(0x40 + i);
    return grey::audit::PkeyPtr(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, sizeof seed));
}

// Another character of the same class, so that the text has a chance to stay canonical.
char changed(char c) {
    if (c >= '0' && c <= '8') return static_cast<char>(c + 1);
    if (c == '9') return '0';
    if (c >= 'a' && c <= 'e') return static_cast<char>(c + 1);
    if (c == 'f') return 'a';
    return 'x';
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace grey::audit;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::string why;
    auto checkpoint = parse_checkpoint(text, why);
    if (!checkpoint) {
        if (why.empty()) __builtin_trap();
        return 0;
    }
    if (checkpoint->text() != text) __builtin_trap();

    static const PkeyPtr key = fixed_signing_key();
    checkpoint->ed25519 = ed25519_sign(key.get(), as_bytes(checkpoint->signed_text()));
    if (!signature_covers_all(*checkpoint, key.get(), why) && checkpoint->version == 2) __builtin_trap();
    const std::string signed_text = checkpoint->text();
    const size_t covered = signed_text.find("ed25519 ");
    std::string edited = signed_text;
    const size_t at = size % covered;
    if (changed(edited[at]) == edited[at]) return 0;
    edited[at] = changed(edited[at]);
    const auto parsed = parse_checkpoint(edited, why);
    if (parsed && parsed->version == 2 && signature_covers_all(*parsed, key.get(), why)) __builtin_trap();
    return 0;
}
