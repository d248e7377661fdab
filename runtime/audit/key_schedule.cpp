#include "audit/key_schedule.hpp"

#include "audit/secure_file.hpp"
#include "core/error.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <charconv>

namespace grey::audit {

namespace {
SecretKey derive(const SecretKey& key, std::string_view label) {
    HmacSha256 mac(key);
    return SecretKey(mac.mac(label));
}

constexpr std::string_view key_file_magic_v1 = "grey-audit-key v1";
constexpr std::string_view key_file_magic_v2 = "grey-audit-key v2";

// Decimal without sign or leading zeros.
template <typename Integer>
bool parse_decimal_field(std::string_view text, Integer& out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size() && !text.empty() && (text.size() == 1 || text[0] != '0');
}
}  // namespace

SecretKey next_epoch_key(const SecretKey& key) { return derive(key, "grey-audit/v1/ratchet"); }
SecretKey record_key(const SecretKey& epoch_key) { return derive(epoch_key, "grey-audit/v1/record"); }
SecretKey checkpoint_key(const SecretKey& epoch_key) { return derive(epoch_key, "grey-audit/v1/checkpoint"); }
SecretKey header_key(const SecretKey& initial_key) { return derive(initial_key, "grey-audit/v1/header"); }

KeyId key_id_of(const SecretKey& initial_key) {
    const SecretKey full = derive(initial_key, "grey-audit/v1/key-id");
    KeyId id{};
    std::copy_n(full.bytes().begin(), id.size(), id.begin());
    return id;
}

std::string encode_key_file(const KeyFile& key) {
    std::string text;
    text.reserve(300);
    text += key.anchor ? key_file_magic_v2 : key_file_magic_v1;
    text += "\nrole ";
    text += key.role == KeyRole::Writer ? "writer" : "verifier";
    text += "\nepoch " + std::to_string(key.epoch);
    text += "\nkey-id " + to_hex(key.key_id);
    text += "\nkey " + to_hex(key.key.bytes());
    if (key.anchor) text += "\nanchor " + to_hex(key.anchor->log_id) + " " + std::to_string(key.anchor->records) + " " + to_hex(key.anchor->head);
    text += "\n";
    return text;
}

KeyFile parse_key_file(const std::string& path, std::string_view text) {
    auto bad = [&](const char* what) { fail(GREY_ERROR_CORRUPT, "key file '" + path + "' is malformed: " + what); };
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        if (nl == std::string_view::npos) bad("the last line has no newline");
        lines.push_back(text.substr(0, nl));
        text.remove_prefix(nl + 1);
    }
    const bool v2 = !lines.empty() && lines[0] == key_file_magic_v2;
    if (!(lines.size() == 5 && lines[0] == key_file_magic_v1) && !(lines.size() == 6 && v2))
        bad("expected 5 lines starting with 'grey-audit-key v1', or 6 starting with 'grey-audit-key v2'");
    KeyFile key;
    if (lines[1] == "role writer") key.role = KeyRole::Writer;
    else if (lines[1] == "role verifier") key.role = KeyRole::Verifier;
    else bad("line 2 must be 'role writer' or 'role verifier'");
    constexpr std::string_view epoch_prefix = "epoch ";
    if (!lines[2].starts_with(epoch_prefix) || !parse_decimal_field(lines[2].substr(epoch_prefix.size()), key.epoch))
        bad("line 3 must be 'epoch N' with N a decimal 32-bit number");
    if (!lines[3].starts_with("key-id ") || !from_hex(lines[3].substr(7), key.key_id)) bad("line 4 must be 'key-id' and 32 hex digits");
    if (!lines[4].starts_with("key ") || !from_hex(lines[4].substr(4), key.key.mutable_bytes())) bad("line 5 must be 'key' and 64 hex digits");
    if (key.epoch == 0 && key.key_id != key_id_of(key.key)) bad("the key id does not belong to the key");
    if (key.role == KeyRole::Verifier && key.epoch != 0) bad("a verifier key must be at epoch 0");
    if (v2) {
        if (key.role != KeyRole::Writer || key.epoch == 0) bad("only a writer key past epoch 0 carries an anchor");
        // "anchor <32 hex> <records> <64 hex>"
        std::vector<std::string_view> fields;
        for (std::string_view rest = lines[5];;) {
            const auto space = rest.find(' ');
            fields.push_back(rest.substr(0, space));
            if (space == std::string_view::npos) break;
            rest.remove_prefix(space + 1);
        }
        KeyAnchor anchor;
        if (fields.size() != 4 || fields[0] != "anchor" || !from_hex(fields[1], anchor.log_id) || !parse_decimal_field(fields[2], anchor.records) ||
            !from_hex(fields[3], anchor.head))
            bad("line 6 must be 'anchor', 32 hex digits, a decimal record count and 64 hex digits");
        key.anchor = anchor;
    }
    return key;
}

void write_new_key_file(const std::string& path, const KeyFile& key) {
    std::string text = encode_key_file(key);
    const WipedBytes bytes{std::vector<uint8_t>(text.begin(), text.end())};
    OPENSSL_cleanse(text.data(), text.size());
    write_new_private_file(path, bytes.bytes);
}

KeyFile read_key_file(const std::string& path) {
    const WipedBytes file{read_private_file(path, max_key_file_size)};
    return parse_key_file(path, std::string_view(reinterpret_cast<const char*>(file.bytes.data()), file.bytes.size()));
}

KeyChain::KeyChain(const SecretKey& initial_key)
    : key_id_(key_id_of(initial_key)), header_key_(header_key(initial_key)), newest_(initial_key) {
    keys_.push_back({record_key(newest_), checkpoint_key(newest_)});
}

bool KeyChain::derive_through(uint32_t epoch) {
    if (epoch > max_epoch) return false;
    while (keys_.size() <= epoch) {
        newest_ = next_epoch_key(newest_);
        keys_.push_back({record_key(newest_), checkpoint_key(newest_)});
    }
    return true;
}

HmacSha256* KeyChain::record_mac(uint32_t epoch) {
    if (!derive_through(epoch)) return nullptr;
    if (!record_mac_ || record_mac_epoch_ != epoch) {
        record_mac_.emplace(keys_[epoch].record);
        record_mac_epoch_ = epoch;
    }
    return &*record_mac_;
}

HmacSha256* KeyChain::checkpoint_mac(uint32_t epoch) {
    if (!derive_through(epoch)) return nullptr;
    if (!checkpoint_mac_ || checkpoint_mac_epoch_ != epoch) {
        checkpoint_mac_.emplace(keys_[epoch].checkpoint);
        checkpoint_mac_epoch_ = epoch;
    }
    return &*checkpoint_mac_;
}

}  // namespace grey::audit
