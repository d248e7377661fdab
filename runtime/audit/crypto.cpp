// OpenSSL 3 deprecates the SHA256_Init/Update/Final block functions in favour of EVP. They are still
// OpenSSL's own implementation (the same SHA-NI/AVX assembly EVP ends up in), but through EVP a
// ~300-byte record's HMAC, leaf hash and Merkle node hash cost about 1 us instead of 0.67 us on this
// project's benchmark machine, and a precomputed HMAC state can only be copied there with an
// allocation per message (EVP_MD_CTX_copy_ex). The audit log's throughput goals need the direct
// functions; everything else (Ed25519, file hashing, random bytes) stays on EVP.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "audit/crypto.hpp"

#include "audit/secure_file.hpp"
#include "audit/sha256_ni.hpp"
#include "audit/sha256_x16.hpp"
#include "core/error.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#if defined(OPENSSL_NO_DEPRECATED_3_0)
#error "libgrey's audit log needs OpenSSL's SHA256_Init/Update/Final (an OpenSSL built without no-deprecated)"
#endif

#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace grey::audit {

namespace {
[[noreturn]] void openssl_failure(const char* what) {
    // OpenSSL's error text names the failing function, never key bytes.
    char detail[256] = "no detail";
    if (const unsigned long code = ERR_get_error(); code != 0) ERR_error_string_n(code, detail, sizeof detail);
    ERR_clear_error();
    fail(GREY_ERROR_INTERNAL, std::string("OpenSSL: ") + what + " failed (" + detail + ")");
}

struct BioDeleter {
    void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
struct PkeyCtxDeleter {
    void operator()(EVP_PKEY_CTX* ctx) const noexcept { EVP_PKEY_CTX_free(ctx); }
};
}  // namespace

SecretKey& SecretKey::operator=(const SecretKey& other) {
    if (this != &other) bytes_ = other.bytes_;
    return *this;
}
SecretKey::~SecretKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }
WipedBytes::~WipedBytes() { OPENSSL_cleanse(bytes.data(), bytes.size()); }

void DigestDeleter::operator()(evp_md_st* md) const noexcept { EVP_MD_free(md); }
void DigestDeleter::operator()(evp_md_ctx_st* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
void PkeyDeleter::operator()(evp_pkey_st* key) const noexcept { EVP_PKEY_free(key); }

namespace {
// The digest's bytes from the eight state words (SHA-256 is big-endian).
void store_digest(const uint32_t* words, uint8_t* out) {
    for (size_t i = 0; i < 8; ++i) {
        const uint32_t word = __builtin_bswap32(words[i]);
        std::memcpy(out + 4 * i, &word, 4);
    }
}

// Completes a SHA-256 computation whose state is on a block boundary (nothing buffered in `ctx`) with
// the last `size` bytes of the message: the padding is laid out here and the blocks go straight to
// the compression function. The same digest as SHA256_Update + SHA256_Final, without their buffering
// and the wiping of the copied block: for the records' hashes (a few blocks each, millions a second)
// that bookkeeping was a fifth of the hashing's time. Returns false, doing nothing, when the state is
// not on a block boundary.
bool finish_aligned(SHA256_CTX& ctx, const uint8_t* tail, size_t size, uint8_t* out) {
    if (ctx.num != 0) return false;
    const uint64_t bits = (static_cast<uint64_t>(ctx.Nh) << 32 | ctx.Nl) + static_cast<uint64_t>(size) * 8;
    for (; size >= SHA256_CBLOCK; size -= SHA256_CBLOCK, tail += SHA256_CBLOCK) SHA256_Transform(&ctx, tail);
    // The last one or two blocks: the rest of the message, 0x80, zeros, the length in bits (big-endian).
    std::array<uint8_t, 2 * SHA256_CBLOCK> block;
    const size_t total = size + 1 + 8 <= SHA256_CBLOCK ? SHA256_CBLOCK : 2 * SHA256_CBLOCK;
    if (size > 0) std::memcpy(block.data(), tail, size);
    block[size] = 0x80;
    std::memset(block.data() + size + 1, 0, total - 8 - size - 1);
    const uint64_t bits_be = __builtin_bswap64(bits);
    std::memcpy(block.data() + total - 8, &bits_be, 8);
    SHA256_Transform(&ctx, block.data());
    if (total > SHA256_CBLOCK) SHA256_Transform(&ctx, block.data() + SHA256_CBLOCK);
    static_assert(sizeof(ctx.h[0]) == sizeof(uint32_t), "SHA256_CTX's state words are 32 bits");
    store_digest(reinterpret_cast<const uint32_t*>(ctx.h), out);
    return true;
}

void finish_hash(SHA256_CTX& ctx, Bytes tail, uint8_t* out) {
    if (finish_aligned(ctx, tail.data(), tail.size(), out)) return;
    SHA256_Update(&ctx, tail.data(), tail.size());
    SHA256_Final(out, &ctx);
}

enum class Path { One, Sixteen, ShaNi };

Path path_of(Lanes lanes) {
    switch (lanes) {
        case Lanes::Any: return have_sha256_ni() ? Path::ShaNi : have_sha256_x16() ? Path::Sixteen : Path::One;
        case Lanes::Sixteen: return have_sha256_x16() ? Path::Sixteen : Path::One;
        case Lanes::ShaNi: return have_sha256_ni() ? Path::ShaNi : Path::One;
        case Lanes::OneAtATime: break;
    }
    return Path::One;
}

// Digests of messages[i] for i < count, hashed on from `ctx` (on a block boundary): several at a time as
// `lanes` and the CPU allow, else one at a time. `secret`: `ctx` continues a key's pad (working copies are
// wiped).
void hash_many(const SHA256_CTX& ctx, const uint8_t* const* messages, size_t count, size_t length, Hash* out, bool secret, Lanes lanes) {
    size_t i = 0;
    const Path path = path_of(lanes);
    if (path == Path::ShaNi && length <= sha256_x16_max_length && ctx.num == 0) {
        // Each message padded in a block buffer of its own, then four streams at a time.
        const uint64_t bits_be = __builtin_bswap64(((static_cast<uint64_t>(ctx.Nh) << 32 | ctx.Nl) + static_cast<uint64_t>(length) * 8));
        const size_t blocks = (length + 9 + SHA256_CBLOCK - 1) / SHA256_CBLOCK, size = blocks * SHA256_CBLOCK;
        alignas(64) uint8_t padded[sha256_ni_streams][4 * SHA256_CBLOCK];
        uint32_t words[sha256_ni_streams][8];
        uint32_t* state[sha256_ni_streams];
        const uint8_t* data[sha256_ni_streams];
        for (size_t s = 0; s < sha256_ni_streams; ++s) {
            state[s] = words[s];
            data[s] = padded[s];
            padded[s][length] = 0x80;
            std::memset(padded[s] + length + 1, 0, size - 8 - length - 1);
            std::memcpy(padded[s] + size - 8, &bits_be, 8);
        }
        for (; i < count; i += sha256_ni_streams) {
            const size_t n = std::min(sha256_ni_streams, count - i);
            for (size_t s = 0; s < n; ++s) {
                std::memcpy(padded[s], messages[i + s], length);
                for (size_t k = 0; k < 8; ++k) words[s][k] = static_cast<uint32_t>(ctx.h[k]);
            }
            sha256_ni_blocks(state, data, n, blocks);
            for (size_t s = 0; s < n; ++s) store_digest(words[s], out[i + s].data());
        }
        if (secret) {
            OPENSSL_cleanse(padded, sizeof padded);
            OPENSSL_cleanse(words, sizeof words);
        }
        return;
    }
    if (path == Path::Sixteen && length <= sha256_x16_max_length && ctx.num == 0) {
        const uint64_t prior = (static_cast<uint64_t>(ctx.Nh) << 32 | ctx.Nl) / 8;
        uint32_t iv[8];
        for (int k = 0; k < 8; ++k) iv[k] = static_cast<uint32_t>(ctx.h[k]);
        // A few lanes' worth is not worth a 16-lane pass.
        for (; count - i >= 4; i += std::min(sha256_x16_lanes, count - i))
            sha256_x16(iv, prior, messages + i, std::min(sha256_x16_lanes, count - i), length, out + i, secret);
        if (secret) OPENSSL_cleanse(iv, sizeof iv);
    }
    for (; i < count; ++i) {
        SHA256_CTX copy = ctx;
        finish_hash(copy, Bytes(messages[i], length), out[i].data());
        if (secret) OPENSSL_cleanse(&copy, sizeof copy);
    }
}
}  // namespace

Hash Sha256::hash(int prefix, Bytes part1, Bytes part2) const {
    SHA256_CTX ctx;
    const uint8_t prefix_byte = static_cast<uint8_t>(prefix);
    Hash out{};
    // The functions only fail on a NULL context, which cannot happen here.
    SHA256_Init(&ctx);
    if (const size_t total = (prefix >= 0 ? 1 : 0) + part1.size() + part2.size(); total <= 2 * SHA256_CBLOCK) {
        // Short input (a Merkle node): one copy, then the blocks straight to the compression function.
        std::array<uint8_t, 2 * SHA256_CBLOCK> buffer;
        uint8_t* at = buffer.data();
        if (prefix >= 0) *at++ = prefix_byte;
        if (!part1.empty()) at = std::copy(part1.begin(), part1.end(), at);
        if (!part2.empty()) std::copy(part2.begin(), part2.end(), at);
        finish_aligned(ctx, buffer.data(), total, out.data());
    } else {
        if (prefix >= 0) SHA256_Update(&ctx, &prefix_byte, 1);
        SHA256_Update(&ctx, part1.data(), part1.size());
        if (!part2.empty()) SHA256_Update(&ctx, part2.data(), part2.size());
        SHA256_Final(out.data(), &ctx);
    }
    return out;
}

static_assert(sizeof(SHA256_CTX) == 112 && alignof(SHA256_CTX) <= 8, "Sha256State holds a SHA256_CTX");

namespace {
SHA256_CTX* context(std::array<uint8_t, 112>& bytes) { return reinterpret_cast<SHA256_CTX*>(bytes.data()); }
}  // namespace

Sha256State::Sha256State() = default;
Sha256State::~Sha256State() { OPENSSL_cleanse(ctx_.data(), ctx_.size()); }
Sha256State::Sha256State(const Sha256State& other) = default;
Sha256State& Sha256State::operator=(const Sha256State& other) = default;

void Sha256State::update(Bytes part) { SHA256_Update(context(ctx_), part.data(), part.size()); }

Hash Sha256State::finish() {
    Hash out{};
    finish_hash(*context(ctx_), {}, out.data());
    OPENSSL_cleanse(ctx_.data(), ctx_.size());
    return out;
}

Hash Sha256State::finish_public(Bytes tail) {
    Hash out{};
    finish_hash(*context(ctx_), tail, out.data());
    return out;
}

Sha256State Sha256::begin(int prefix) const {
    Sha256State state;
    begin(prefix, state);
    return state;
}

void Sha256::begin(int prefix, Sha256State& state) const {
    SHA256_Init(context(state.ctx_));
    if (prefix >= 0) {
        const uint8_t prefix_byte = static_cast<uint8_t>(prefix);
        state.update({&prefix_byte, 1});
    }
}

void Sha256::begin_many(int prefix, const uint8_t* base, std::span<const size_t> offsets, size_t length, std::span<Sha256State* const> states,
                        Lanes lanes) const {
    if (offsets.size() != states.size()) fail(GREY_ERROR_INTERNAL, "Sha256::begin_many: one state a message");
    const size_t absorbed = (prefix >= 0 ? 1 : 0) + length;
    size_t i = 0;
    const Path path = absorbed > 0 && absorbed % SHA256_CBLOCK == 0 ? path_of(lanes) : Path::One;
    const auto set_state = [](Sha256State& state, const uint32_t* words, uint64_t bits) {
        SHA256_CTX* ctx = context(state.ctx_);
        SHA256_Init(ctx);
        for (int k = 0; k < 8; ++k) ctx->h[k] = words[k];
        ctx->Nl = static_cast<SHA_LONG>(bits);
        ctx->Nh = static_cast<SHA_LONG>(bits >> 32);
    };
    if (path == Path::ShaNi) {
        // Four streams at a time; a prefix byte and the message's first 63 bytes are copied into a block
        // of their own, the rest is read in place.
        SHA256_CTX initial;
        SHA256_Init(&initial);
        alignas(64) uint8_t first[sha256_ni_streams][SHA256_CBLOCK];
        uint32_t words[sha256_ni_streams][8];
        uint32_t* state[sha256_ni_streams];
        const uint8_t* data[sha256_ni_streams];
        const uint8_t* firsts[sha256_ni_streams];
        for (size_t s = 0; s < sha256_ni_streams; ++s) {
            state[s] = words[s];
            firsts[s] = first[s];
        }
        for (; i < offsets.size(); i += sha256_ni_streams) {
            const size_t n = std::min(sha256_ni_streams, offsets.size() - i);
            for (size_t s = 0; s < n; ++s) {
                for (size_t k = 0; k < 8; ++k) words[s][k] = static_cast<uint32_t>(initial.h[k]);
                data[s] = base + offsets[i + s];
                if (prefix >= 0) {
                    first[s][0] = static_cast<uint8_t>(prefix);
                    std::memcpy(first[s] + 1, data[s], SHA256_CBLOCK - 1);
                }
            }
            size_t blocks = absorbed / SHA256_CBLOCK;
            if (prefix >= 0) {
                sha256_ni_blocks(state, firsts, n, 1);
                for (size_t s = 0; s < n; ++s) data[s] += SHA256_CBLOCK - 1;
                --blocks;
            }
            sha256_ni_blocks(state, data, n, blocks);
            for (size_t s = 0; s < n; ++s) set_state(*states[i + s], words[s], static_cast<uint64_t>(absorbed) * 8);
        }
        return;
    }
    // Offsets are gathered as 32-bit lane indices: a group's buffer is far smaller, but check.
    const auto fits = [&](size_t at) { return length <= static_cast<size_t>(INT32_MAX) && at <= static_cast<size_t>(INT32_MAX) - length; };
    if (path == Path::Sixteen) {
        SHA256_CTX initial;
        SHA256_Init(&initial);
        uint32_t iv[8];
        for (int k = 0; k < 8; ++k) iv[k] = static_cast<uint32_t>(initial.h[k]);
        const uint64_t bits = static_cast<uint64_t>(absorbed) * 8;
        alignas(64) std::array<int32_t, sha256_x16_lanes> at;
        uint32_t words[8][sha256_x16_lanes];
        // Fewer than four lanes' worth is not worth a 16-lane pass.
        while (offsets.size() - i >= 4) {
            const size_t count = std::min(sha256_x16_lanes, offsets.size() - i);
            if (!std::all_of(offsets.begin() + static_cast<std::ptrdiff_t>(i), offsets.begin() + static_cast<std::ptrdiff_t>(i + count), fits)) break;
            for (size_t l = 0; l < count; ++l) at[l] = static_cast<int32_t>(offsets[i + l]);
            sha256_x16_blocks(iv, base, at.data(), count, prefix, absorbed / SHA256_CBLOCK, words);
            for (size_t l = 0; l < count; ++l) {
                uint32_t lane[8];
                for (int k = 0; k < 8; ++k) lane[k] = words[k][l];
                set_state(*states[i + l], lane, bits);
            }
            i += count;
        }
    }
    for (; i < offsets.size(); ++i) {
        begin(prefix, *states[i]);
        states[i]->update(Bytes(base + offsets[i], length));
    }
}

struct HmacSha256::Pads {
    SHA256_CTX inner;  // after absorbing key XOR ipad
    SHA256_CTX outer;  // after absorbing key XOR opad
    ~Pads() { OPENSSL_cleanse(this, sizeof *this); }
};

HmacSha256::HmacSha256(const SecretKey& key) : pads_(std::make_unique<Pads>()) {
    // RFC 2104 with a 32-byte key: the key is zero-padded to the 64-byte block.
    static_assert(sizeof(Hash) <= SHA256_CBLOCK);
    std::array<uint8_t, SHA256_CBLOCK> block{};
    for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<uint8_t>((i < key.bytes().size() ? key.bytes()[i] : 0) ^ 0x36);
    SHA256_Init(&pads_->inner);
    SHA256_Update(&pads_->inner, block.data(), block.size());
    for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<uint8_t>((i < key.bytes().size() ? key.bytes()[i] : 0) ^ 0x5c);
    SHA256_Init(&pads_->outer);
    SHA256_Update(&pads_->outer, block.data(), block.size());
    OPENSSL_cleanse(block.data(), block.size());
}

HmacSha256::~HmacSha256() = default;
HmacSha256::HmacSha256(HmacSha256&&) noexcept = default;
HmacSha256& HmacSha256::operator=(HmacSha256&&) noexcept = default;

Hash HmacSha256::mac(Bytes message) const {
    // A copy of a pad state plus a message would let whoever reads it forge MACs of extensions of that
    // message, so the working copy is wiped as the EVP contexts were.
    SHA256_CTX ctx = pads_->inner;
    Hash inner{};
    finish_hash(ctx, message, inner.data());
    ctx = pads_->outer;
    Hash out{};
    finish_hash(ctx, inner, out.data());
    OPENSSL_cleanse(&ctx, sizeof ctx);
    return out;
}

Sha256State HmacSha256::begin() const {
    Sha256State inner;
    begin(inner);
    return inner;
}

void HmacSha256::begin(Sha256State& inner) const { std::memcpy(inner.ctx_.data(), &pads_->inner, sizeof pads_->inner); }

Hash HmacSha256::finish(Sha256State& inner) const {
    const Hash inner_digest = inner.finish();
    SHA256_CTX ctx = pads_->outer;
    Hash out{};
    finish_hash(ctx, inner_digest, out.data());
    OPENSSL_cleanse(&ctx, sizeof ctx);
    return out;
}

void HmacSha256::mac_many(std::span<const Hash> messages, std::span<Hash> out, Lanes lanes) const {
    if (out.size() != messages.size()) fail(GREY_ERROR_INTERNAL, "mac_many: as many outputs as messages");
    constexpr size_t chunk = 64;
    std::array<const uint8_t*, chunk> pointers;
    std::array<Hash, chunk> inner;
    for (size_t from = 0; from < messages.size(); from += chunk) {
        const size_t n = std::min(chunk, messages.size() - from);
        for (size_t i = 0; i < n; ++i) pointers[i] = messages[from + i].data();
        hash_many(pads_->inner, pointers.data(), n, sizeof(Hash), inner.data(), true, lanes);
        for (size_t i = 0; i < n; ++i) pointers[i] = inner[i].data();
        hash_many(pads_->outer, pointers.data(), n, sizeof(Hash), out.data() + from, true, lanes);
    }
    OPENSSL_cleanse(inner.data(), sizeof inner);
}

void Sha256::nodes(std::span<const Hash> children, std::span<Hash> parents, Lanes lanes) const {
    if (children.size() != 2 * parents.size()) fail(GREY_ERROR_INTERNAL, "Sha256::nodes: two children a parent");
    constexpr size_t chunk = 64, length = 1 + 2 * sizeof(Hash);
    std::array<std::array<uint8_t, length>, chunk> messages;
    std::array<const uint8_t*, chunk> pointers;
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    for (size_t from = 0; from < parents.size(); from += chunk) {
        const size_t n = std::min(chunk, parents.size() - from);
        for (size_t i = 0; i < n; ++i) {
            messages[i][0] = 0x01;
            std::memcpy(messages[i].data() + 1, children[2 * (from + i)].data(), sizeof(Hash));
            std::memcpy(messages[i].data() + 1 + sizeof(Hash), children[2 * (from + i) + 1].data(), sizeof(Hash));
            pointers[i] = messages[i].data();
        }
        hash_many(ctx, pointers.data(), n, length, parents.data() + from, false, lanes);
    }
}

bool equal_ct(Bytes a, Bytes b) { return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

bool equal_ct(const Hash& a, Bytes b) {
    if (b.size() != a.size()) return false;
    // Differences are OR-ed together and looked at once, at the end: no branch depends on a byte.
    uint64_t difference = 0;
    for (size_t i = 0; i < a.size(); i += sizeof(uint64_t)) {
        uint64_t x = 0, y = 0;
        std::memcpy(&x, a.data() + i, sizeof x);
        std::memcpy(&y, b.data() + i, sizeof y);
        difference |= x ^ y;
    }
    return difference == 0;
}

void random_bytes(std::span<uint8_t> out) {
    if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) openssl_failure("RAND_bytes");
}

std::string to_hex(Bytes bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string text;
    text.reserve(bytes.size() * 2);
    for (const uint8_t b : bytes) {
        text.push_back(digits[b >> 4]);
        text.push_back(digits[b & 15]);
    }
    return text;
}

bool from_hex(std::string_view hex, std::span<uint8_t> out) {
    if (hex.size() != out.size() * 2) return false;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (size_t i = 0; i < out.size(); ++i) {
        const int hi = nibble(hex[2 * i]);
        const int lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return true;
}

Hash sha256_file(const std::string& path) {
    // Hashed as it streams by, so any regular file will do, however large; a FIFO or a device is refused.
    const RegularFile file = open_regular_file(path, "file");
    const UniqueFd& fd = file.fd;
    std::unique_ptr<evp_md_ctx_st, DigestDeleter> ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestInit_ex2(ctx.get(), EVP_sha256(), nullptr) != 1) openssl_failure("SHA-256 init");
    uint8_t chunk[65536];
    for (;;) {
        const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(GREY_ERROR_IO, "cannot read '" + path + "': " + errno_text());
        }
        if (n == 0) break;
        if (EVP_DigestUpdate(ctx.get(), chunk, static_cast<size_t>(n)) != 1) openssl_failure("SHA-256");
    }
    Hash out{};
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(ctx.get(), out.data(), &length) != 1) openssl_failure("SHA-256");
    return out;
}

PkeyPtr ed25519_generate() {
    PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    if (!key) openssl_failure("Ed25519 key generation");
    return key;
}

std::array<uint8_t, 64> ed25519_sign(evp_pkey_st* private_key, Bytes message) {
    std::unique_ptr<evp_md_ctx_st, DigestDeleter> ctx(EVP_MD_CTX_new());
    std::array<uint8_t, 64> signature{};
    size_t length = signature.size();
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, private_key) != 1 ||
        EVP_DigestSign(ctx.get(), signature.data(), &length, message.data(), message.size()) != 1 || length != signature.size())
        openssl_failure("Ed25519 signing");
    return signature;
}

bool ed25519_verify(evp_pkey_st* public_key, Bytes message, Bytes signature) {
    std::unique_ptr<evp_md_ctx_st, DigestDeleter> ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, public_key) != 1) openssl_failure("Ed25519 verify init");
    const int ok = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(), message.size());
    ERR_clear_error();
    return ok == 1;
}

namespace {
std::vector<uint8_t> bio_contents(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return {reinterpret_cast<uint8_t*>(data), reinterpret_cast<uint8_t*>(data) + size};
}

PkeyPtr read_pem(const std::string& path, const std::vector<uint8_t>& pem, bool is_private) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) openssl_failure("BIO");
    PkeyPtr key(is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                           : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    ERR_clear_error();
    if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519)
        fail(GREY_ERROR_CORRUPT, "'" + path + "' is not a PEM Ed25519 " + (is_private ? "private" : "public") + " key");
    return key;
}
}  // namespace

void ed25519_write_private(const std::string& path, evp_pkey_st* key) {
    BioPtr bio(BIO_new(BIO_s_secmem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        openssl_failure("Ed25519 private key encoding");
    const WipedBytes pem{bio_contents(bio.get())};
    write_new_private_file(path, pem.bytes);
}

void ed25519_write_public(const std::string& path, evp_pkey_st* key) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) openssl_failure("Ed25519 public key encoding");
    replace_file(path, bio_contents(bio.get()), 0644);
}

PkeyPtr ed25519_read_private(const std::string& path) {
    const WipedBytes pem{read_private_file(path, 16384)};
    return read_pem(path, pem.bytes, true);
}

PkeyPtr ed25519_read_public(const std::string& path) { return read_pem(path, read_file(path, 16384), false); }

}  // namespace grey::audit
