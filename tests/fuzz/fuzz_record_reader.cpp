// libFuzzer target: the log reader and verifier on arbitrary bytes. Must never crash, hang or read out
// of bounds, and must never call a modified log intact.
#include "audit/verifier.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace grey::audit;
    const Bytes file(data, size);
    if (const auto log = parse_log(file)) {
        for (const auto& record : log->records)
            if (record.bytes.size() < record_fixed_size + record_trailer_size || record.offset + record.bytes.size() > size) __builtin_trap();
    }
    // A fixed key: the seeds are logs written with it, so mutations reach the MAC and chain checks.
    SecretKey key;
    for (size_t i = 0; i < key.mutable_bytes().size(); ++i) key.mutable_bytes()[i] = static_cast<uint8_t>(i);
    KeyChain keys(key);
    const VerifyReport report = verify_log(file, keys, {}, nullptr);
    if (report.records > size / (record_fixed_size + record_trailer_size)) __builtin_trap();
    return 0;
}
