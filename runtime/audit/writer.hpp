// The appending side of the audit log: one Writer per open log file. Thread-safe; several processes may
// append to the same file, each under an exclusive flock for the duration of a write.
#pragma once

#include "audit/checkpoint.hpp"
#include "audit/crypto.hpp"
#include "audit/key_schedule.hpp"
#include "audit/merkle.hpp"
#include "audit/record_batch.hpp"
#include "audit/record_format.hpp"
#include "audit/secure_file.hpp"
#include "core/worker_pool.hpp"
#include "audit/writer_key_file.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace grey::audit {

enum class Durability { EveryRecord, Group };

struct WriterOptions {
    std::string log_path;
    std::string key_path;          // a writer key file; replaced at every epoch change (WriterKeyFile)
    std::string signing_key_path;  // optional Ed25519 private key for checkpoints
    Durability durability = Durability::EveryRecord;
    uint32_t group_records = 256;  // group commit: write when this many records wait...
    uint32_t group_ms = 10;        // ...or when the oldest has waited this long
    uint64_t epoch_records = 0;    // move to the next key after this many records (0: never by count)
    uint64_t epoch_seconds = 0;    // ...or after this many seconds (0: never by time)
    StepHook on_step;              // tests only: called at each step of a key rotation
    // The record format of a log this writer creates (docs/audit-format.md); an existing log keeps its
    // own. Tests only: they make version 1 logs, as an older libgrey wrote them, with it.
    uint32_t format_version = audit::format_version;
};

struct WriterState {
    uint64_t records = 0;          // records in the file (durable)
    uint64_t pending = 0;          // records accepted but not yet durable (group commit)
    uint32_t epoch = 0;
    LogId log_id{};
    Hash head{};                   // leaf hash of the last record
    uint64_t recovered_bytes = 0;  // torn tail removed when this writer opened the log
};

uint64_t now_ns();

// In group mode three stages overlap: appending threads lay records out in a batch; a committer thread
// takes the batch when it is full (or its oldest record has waited group_ms), takes the file lock,
// seals the records (sequence, epoch, chain, MAC) after whatever other processes wrote, and writes
// them; a syncer thread calls fdatasync and only then reports those records durable (state().records,
// flush()). So the next batch fills and is sealed while the previous one is synced, and an appending
// thread never waits for the disk unless it runs a whole backlog ahead of it.
class Writer {
public:
    explicit Writer(WriterOptions options);
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Per-record durability: writes and syncs the record, and returns its sequence number. Group
    // commit: queues it and returns nullopt; it is durable once state().records covers it, and flush()
    // waits for that.
    std::optional<uint64_t> append(std::string_view type, std::string_view payload);
    // The same for libgrey's own record types ("grey.proof"), which append() refuses.
    std::optional<uint64_t> append_reserved(std::string_view type, std::string_view payload);
    // Appends the batch's records as one run: consecutive in the file and sealed with one key (the key
    // advances before the run rather than inside it), so that a failed write leaves none of them.
    // Per-record durability: written with one fdatasync; returns the first one's sequence number.
    // Group commit: queued together; returns nullopt. The batch is emptied once its records are taken;
    // on failure it is left as it was. A batch of more records than epoch_records is refused.
    std::optional<uint64_t> append_batch(RecordBatch& batch);
    // Returns once every record queued before the call is written and synced; reports an error the
    // background stages met.
    void flush();
    // Flushes, then signs a checkpoint of the whole file as it stands (synced first).
    std::string checkpoint();
    WriterState state();

private:
    // Records in their on-disk layout (append_unsealed), waiting to be sealed.
    struct Batch {
        // A run of records from append_batch, which one key epoch must cover.
        struct Run {
            size_t offset;
            uint64_t records;
        };
        std::string bytes;
        uint64_t records = 0;
        std::vector<Run> runs;  // in order of offset; single records are not listed
        void clear() {
            bytes.clear();
            records = 0;
            runs.clear();
        }
    };
    struct Snapshot {
        uint64_t next_sequence;
        Hash head;
        CompactRange range;
        uint64_t epoch_records;
        uint32_t last_record_epoch;
    };
    // What the file holds after a write; handed to the syncer, published by state() once synced.
    struct Written {
        uint64_t records = 0;
        Hash head{};
        uint32_t epoch = 0;
        uint64_t recovered_bytes = 0;
        uint64_t own_through = 0;  // this writer's queued records settled (written or dropped) up to here
    };

    // File and sealing state: the functions below need commit_mutex_ (and, once the log is open, its
    // file lock).
    void load_key();
    void open_or_create();
    void create_header();
    // Takes in what other writers (or a crash) left past end_offset_: authenticates it, recovers a torn
    // tail, and brings the key file in step. Every record appended after it is sealed on a tail that
    // this writer verified.
    void catch_up(bool at_open);
    struct TailScan {
        uint64_t valid_end = 0;  // the end of the last record that verified
        uint64_t size = 0;       // the file's size; bytes between the two are a torn tail
        std::string problem;     // why the torn tail is not a record
    };
    // Reads the records in [end_offset_, file size) and extends the state by each one that verifies;
    // stops at a torn tail; refuses (GREY_ERROR_CORRUPT) a complete record it cannot verify.
    TailScan absorb_file_tail();
    // Why `record`, the next one in the file, cannot be accepted ("" when it can). May move the key on
    // in memory, to a later epoch whose key the record's MAC proves.
    std::string authenticate(const RecordView& record, const Hash& leaf);
    void accept(const RecordView& record, const Hash& leaf);
    // The writer key's anchor must name the records this writer read from the log; throws when not.
    void check_anchor();
    // Brings the key file and the key in memory in step: adopts a rotation another process made, or
    // writes the key this writer moved to while reading records another process sealed.
    void reconcile_key_file();
    void persist_key(const KeyFile& key);
    void recover_tail(uint64_t valid_end, uint64_t file_size, const std::string& reason);
    [[nodiscard]] bool epoch_due(uint64_t now) const;
    // Whether a run of `records` would outlast the current epoch (its key advances before the run then).
    [[nodiscard]] bool epoch_too_short_for(uint64_t records) const;
    // Moves the key on in memory and starts making the new key file durable on another thread;
    // settle_epoch waits for that (rethrowing its failure), and must return before any record sealed
    // with the new key is written.
    std::future<void> advance_epoch_async(uint64_t now);
    void settle_epoch(std::future<void>& persisted);
    // Under the file lock: takes in other writers' records, seals `batch` after them and writes it,
    // syncing when `sync` is set. On failure the state is as it was after the last bytes that reached
    // the file: a batch that spans a key rotation is written in two parts (see seal_and_write).
    void commit(Batch& batch, bool sync);
    // The part of commit() after the file lock and the tail: seals and writes, or rolls back and throws.
    void seal_and_write(Batch& batch, bool sync);
    // Seals the records of `bytes` at unsealed_ with the current key, in order after head_: their first
    // halves on the sealing threads, then the rest one after another (record_format.hpp's seal_prefix).
    void seal_unsealed(uint8_t* bytes);
    void seal_window(uint8_t* bytes, std::span<const size_t> offsets);
    void write_sealed(Bytes bytes, bool sync);
    [[nodiscard]] Snapshot snapshot() const;
    void restore(const Snapshot& s);
    void step(std::string_view name) const {
        if (options_.on_step) options_.on_step(name);
    }
    [[nodiscard]] Written written() const;

    // Pipeline state: the functions below need queue_mutex_.
    void publish(const Written& w);
    void rethrow_deferred();
    std::optional<uint64_t> append_any(std::string_view type, std::string_view payload);
    std::optional<uint64_t> append_now(std::string_view type, std::string_view payload);
    // Group commit: waits until the backlog has room for `records` more records of `size` bytes in all,
    // and returns holding queue_mutex_, for the caller to lay them out at the end of filling_; then
    // queued() counts them (filling_ held `before` records) and wakes the committer when it should look.
    std::unique_lock<std::mutex> room_for(size_t size, uint64_t records);
    void queued(uint64_t before, uint64_t records);
    void committer_loop(std::stop_token stop);
    void syncer_loop(std::stop_token stop);

    WriterOptions options_;

    std::mutex commit_mutex_;  // taken before queue_mutex_ when both are needed
    UniqueFd fd_;
    WriterKeyFile key_file_;
    KeyFile key_;  // the current epoch's key; the previous one is overwritten when it advances
    bool key_ahead_of_file_ = false;  // key_ moved on (following verified records) and is not on disk yet
    std::optional<HmacSha256> record_mac_;
    PkeyPtr signing_key_;
    Sha256 sha_;
    uint32_t version_ = format_version;  // the log's record format
    LogId log_id_{};
    uint64_t end_offset_ = 0;
    uint64_t next_sequence_ = 0;
    Hash head_{};
    CompactRange range_;
    uint32_t last_record_epoch_ = 0;
    uint64_t epoch_records_ = 0;
    uint64_t epoch_started_ns_ = 0;
    uint64_t recovered_bytes_ = 0;
    Batch single_;   // per-record mode's one record
    Batch sealing_;  // the committer's batch, swapped with filling_ so both keep their capacity
    std::vector<size_t> unsealed_;     // offsets of records seal_and_write has numbered but not hashed
    std::vector<SealPrefix> prefixes_;  // the first halves of a window of them
    std::vector<Hash> leaves_;          // their leaf hashes, for the MACs (version 2) computed after the chain
    std::vector<Hash> subtree_roots_;   // the Merkle roots of a window's full, aligned blocks
    std::optional<WorkerPool> sealers_;  // started for the first batch large enough to share out

    std::mutex queue_mutex_;
    std::condition_variable_any work_;      // wakes the committer
    std::condition_variable_any synced_;    // wakes the syncer
    std::condition_variable progress_;      // a batch was taken or records settled
    Batch filling_;
    std::chrono::steady_clock::time_point oldest_pending_;
    uint64_t accepted_ = 0;         // records this writer queued, ever
    uint64_t taken_ = 0;            // ...of which the committer took
    uint64_t settled_through_ = 0;  // ...of which every one up to here is durable or dropped
    uint32_t flush_waiters_ = 0;
    std::optional<Written> to_sync_;  // the newest write not yet synced
    Written published_;
    std::exception_ptr deferred_error_;  // reported once, by the next call
    std::exception_ptr sync_failure_;    // reported by every later call: the file's state is unknown
    uint64_t max_pending_records_ = 0;
    std::jthread syncer_;     // declared last: stopped and joined (committer first) in ~Writer
    std::jthread committer_;
};

}  // namespace grey::audit
