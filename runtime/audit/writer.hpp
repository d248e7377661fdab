// The appending side of the audit log: one Writer per open log file. Thread-safe; several processes may
// append to the same file, each under an exclusive flock for the duration of a write.
#pragma once

#include "audit/checkpoint.hpp"
#include "audit/crypto.hpp"
#include "audit/key_schedule.hpp"
#include "audit/merkle.hpp"
#include "audit/record_format.hpp"
#include "audit/secure_file.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace grey::audit {

enum class Durability { EveryRecord, Group };

struct WriterOptions {
    std::string log_path;
    std::string key_path;          // a writer key file; advanced in place at every epoch change
    std::string signing_key_path;  // optional Ed25519 private key for checkpoints
    Durability durability = Durability::EveryRecord;
    uint32_t group_records = 256;  // group commit: write when this many records wait...
    uint32_t group_ms = 10;        // ...or when the oldest has waited this long
    uint64_t epoch_records = 0;    // move to the next key after this many records (0: never by count)
    uint64_t epoch_seconds = 0;    // ...or after this many seconds (0: never by time)
};

struct WriterState {
    uint64_t records = 0;          // records in the file (durable)
    uint64_t pending = 0;          // records accepted but not yet written (group commit)
    uint32_t epoch = 0;
    LogId log_id{};
    Hash head{};                   // leaf hash of the last record
    uint64_t recovered_bytes = 0;  // torn tail removed when this writer opened the log
};

uint64_t now_ns();

class Writer {
public:
    explicit Writer(WriterOptions options);
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Queues a record; writes it (and everything queued) now when durability is per record or the
    // group is full. Returns its sequence number when it was written during this call.
    std::optional<uint64_t> append(std::string_view type, std::string_view payload);
    // The same for libgrey's own record types ("grey.proof"), which append() refuses.
    std::optional<uint64_t> append_reserved(std::string_view type, std::string_view payload);
    // Writes and syncs everything queued.
    void flush();
    // Flushes, then signs a checkpoint of the whole file as it stands.
    std::string checkpoint();
    WriterState state();

private:
    struct Pending {
        std::string type;
        std::string payload;
        uint64_t timestamp_ns;
    };
    struct Snapshot {
        uint64_t next_sequence;
        Hash head;
        CompactRange range;
        uint64_t epoch_records;
        uint32_t last_record_epoch;
    };

    void open_or_create();
    void create_header();
    // Reads the records in [end_offset_, file size), extending the state; removes a torn tail.
    void absorb_file_tail(bool at_open);
    void recover_tail(uint64_t valid_end, uint64_t file_size, const std::string& reason);
    void advance_key_to(uint32_t epoch, bool persist);
    void maybe_advance_epoch(uint64_t now);
    void flush_locked();
    void seal_and_write_pending();
    std::optional<uint64_t> append_any(std::string_view type, std::string_view payload);
    void write_sealed(const std::string& bytes);
    void rethrow_deferred();
    void flusher_loop(std::stop_token stop);

    WriterOptions options_;
    std::mutex mutex_;
    std::condition_variable_any wake_;
    UniqueFd fd_;
    KeyFile key_;  // the current epoch's key; the previous one is overwritten when it advances
    std::optional<HmacSha256> record_mac_;
    PkeyPtr signing_key_;
    Sha256 sha_;
    LogId log_id_{};
    uint64_t end_offset_ = 0;
    uint64_t next_sequence_ = 0;
    Hash head_{};
    CompactRange range_;
    uint32_t last_record_epoch_ = 0;
    uint64_t epoch_records_ = 0;
    uint64_t epoch_started_ns_ = 0;
    uint64_t recovered_bytes_ = 0;
    std::vector<Pending> pending_;
    uint64_t oldest_pending_ns_ = 0;
    std::string seal_buffer_;
    std::exception_ptr deferred_error_;
    std::jthread flusher_;  // last: stopped and joined before anything it uses is destroyed
};

}  // namespace grey::audit
