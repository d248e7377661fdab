#include "audit/checkpoint.hpp"

#include <charconv>
#include <vector>

namespace grey::audit {

namespace {
constexpr std::string_view magic_v1 = "grey-audit-checkpoint v1";
constexpr std::string_view magic_v2 = "grey-audit-checkpoint v2";

// Splits text into '\n'-terminated lines; false if the text does not end with a newline.
bool split_lines(std::string_view text, std::vector<std::string_view>& lines) {
    while (!text.empty()) {
        const auto nl = text.find('\n');
        if (nl == std::string_view::npos) return false;
        lines.push_back(text.substr(0, nl));
        text.remove_prefix(nl + 1);
    }
    return true;
}

bool field(std::string_view line, std::string_view name, std::string_view& value) {
    if (line.size() <= name.size() || !line.starts_with(name) || line[name.size()] != ' ') return false;
    value = line.substr(name.size() + 1);
    return true;
}
}  // namespace

bool parse_decimal(std::string_view text, uint64_t& out) {
    if (text.empty() || text.size() > 20 || (text.size() > 1 && text[0] == '0')) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
}

std::string Checkpoint::body() const {
    std::string text;
    text += version == 1 ? magic_v1 : magic_v2;
    text += "\nlog " + to_hex(log_id);
    text += "\nsize " + std::to_string(size);
    text += "\nroot " + to_hex(root);
    text += "\ntime " + std::to_string(time_ns);
    text += "\nepoch " + std::to_string(epoch);
    text += "\n";
    return text;
}

std::string Checkpoint::signed_text() const { return version == 1 ? body() : body() + "hmac " + to_hex(hmac) + "\n"; }

std::string Checkpoint::text() const {
    std::string out = body() + "hmac " + to_hex(hmac) + "\n";
    if (ed25519) out += "ed25519 " + to_hex(*ed25519) + "\n";
    return out;
}

std::string seal_checkpoint(Checkpoint& checkpoint, const HmacSha256& checkpoint_mac, evp_pkey_st* signing_key) {
    checkpoint.version = checkpoint_version;
    checkpoint.hmac = checkpoint_mac.mac(checkpoint.body());
    if (signing_key != nullptr) checkpoint.ed25519 = ed25519_sign(signing_key, as_bytes(checkpoint.signed_text()));
    return checkpoint.text();
}

bool signature_covers_all(const Checkpoint& checkpoint, evp_pkey_st* public_key, std::string& why) {
    if (!checkpoint.ed25519) {
        why = "carries no Ed25519 signature";
        return false;
    }
    if (checkpoint.version == 1) {
        why = "is a version 1 checkpoint, whose Ed25519 signature does not cover its hmac line; check it with the verifier key "
              "(greyctl audit verify --checkpoint), or take a new checkpoint";
        return false;
    }
    if (!ed25519_verify(public_key, as_bytes(checkpoint.signed_text()), *checkpoint.ed25519)) {
        why = "fails its Ed25519 signature check";
        return false;
    }
    return true;
}

std::optional<Checkpoint> parse_checkpoint(std::string_view text, std::string& why) {
    std::vector<std::string_view> lines;
    if (text.size() > 4096 || !split_lines(text, lines)) {
        why = "not a checkpoint: too long, or the last line has no newline";
        return std::nullopt;
    }
    if ((lines.size() != 7 && lines.size() != 8) || (lines[0] != magic_v2 && lines[0] != magic_v1)) {
        why = "not a checkpoint: expected 7 or 8 lines starting with 'grey-audit-checkpoint v2' (or v1)";
        return std::nullopt;
    }
    Checkpoint c;
    c.version = lines[0] == magic_v1 ? 1 : 2;
    std::string_view value;
    uint64_t epoch = 0;
    auto bad = [&](const char* line) {
        why = std::string("malformed checkpoint: bad '") + line + "' line";
        return std::nullopt;
    };
    if (!field(lines[1], "log", value) || !from_hex(value, c.log_id)) return bad("log");
    if (!field(lines[2], "size", value) || !parse_decimal(value, c.size)) return bad("size");
    if (!field(lines[3], "root", value) || !from_hex(value, c.root)) return bad("root");
    if (!field(lines[4], "time", value) || !parse_decimal(value, c.time_ns)) return bad("time");
    if (!field(lines[5], "epoch", value) || !parse_decimal(value, epoch) || epoch > UINT32_MAX) return bad("epoch");
    c.epoch = static_cast<uint32_t>(epoch);
    if (!field(lines[6], "hmac", value) || !from_hex(value, c.hmac)) return bad("hmac");
    if (lines.size() == 8) {
        std::array<uint8_t, 64> signature{};
        if (!field(lines[7], "ed25519", value) || !from_hex(value, signature)) return bad("ed25519");
        c.ed25519 = signature;
    }
    // Only the canonical form (lower-case hex, no leading zeros) is accepted, so that one checkpoint has
    // exactly one text.
    if (c.text() != text) return bad("canonical form");
    return c;
}

}  // namespace grey::audit
