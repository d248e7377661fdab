#include "audit/writer.hpp"

#include "core/error.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <future>
#include <ctime>
#include <memory>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace grey::audit {

uint64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

namespace {
// Holds flock(LOCK_EX) on the log for one write, so that appends of several processes never interleave.
class FileLock {
public:
    explicit FileLock(int fd) : fd_(fd) {
        while (::flock(fd_, LOCK_EX) != 0)
            if (errno != EINTR) fail(GREY_ERROR_IO, "cannot lock the audit log: " + errno_text());
    }
    ~FileLock() { ::flock(fd_, LOCK_UN); }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

private:
    int fd_;
};

uint64_t file_size(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) fail(GREY_ERROR_IO, "cannot stat the audit log: " + errno_text());
    return static_cast<uint64_t>(st.st_size);
}

std::vector<uint8_t> read_range(int fd, uint64_t offset, uint64_t length) {
    std::vector<uint8_t> bytes(length);
    size_t done = 0;
    while (done < length) {
        const ssize_t n = ::pread(fd, bytes.data() + done, length - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail(GREY_ERROR_IO, "cannot read the audit log: " + (n < 0 ? errno_text() : std::string("unexpected end")));
        done += static_cast<size_t>(n);
    }
    return bytes;
}

void sync_data(int fd) {
    if (::fdatasync(fd) != 0) fail(GREY_ERROR_IO, "cannot sync the audit log: " + errno_text());
}

bool all_zero(Bytes bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}
}  // namespace

Writer::Writer(WriterOptions options) : options_(std::move(options)), key_file_(options_.key_path, options_.on_step) {
    if (options_.durability == Durability::Group && (options_.group_records == 0 || options_.group_ms == 0))
        fail(GREY_ERROR_INVALID_ARGUMENT, "group commit needs group_records > 0 and group_ms > 0");
    if (options_.format_version < oldest_format_version || options_.format_version > format_version)
        fail(GREY_ERROR_INVALID_ARGUMENT, "audit log format version " + std::to_string(options_.format_version) + " is not one this libgrey writes");
    // Read before the log is opened, so that a wrong key creates no file; read again under the log's
    // lock if another process rotates it in between.
    load_key();
    if (!options_.signing_key_path.empty()) signing_key_ = ed25519_read_private(options_.signing_key_path);
    // No other thread runs yet; the locks only keep the functions' contracts.
    std::lock_guard commit_lock(commit_mutex_);
    open_or_create();
    std::lock_guard queue_lock(queue_mutex_);
    publish(written());
    if (options_.durability == Durability::Group) {
        // A batch may grow past group_records while the previous one is written; beyond this an
        // appending thread waits for the disk instead of queueing without bound.
        max_pending_records_ = std::max<uint64_t>(8ull * options_.group_records, 64);
        syncer_ = std::jthread([this](std::stop_token stop) { syncer_loop(std::move(stop)); });
        committer_ = std::jthread([this](std::stop_token stop) { committer_loop(std::move(stop)); });
    }
}

Writer::~Writer() {
    // The committer drains what is queued, then the syncer syncs what the committer wrote. Errors are
    // lost here; grey_audit_flush is the call that reports them.
    if (committer_.joinable()) {
        committer_.request_stop();
        committer_.join();
    }
    if (syncer_.joinable()) {
        syncer_.request_stop();
        syncer_.join();
    }
}

void Writer::load_key() {
    key_ = key_file_.load();
    key_ahead_of_file_ = false;
    if (key_.role != KeyRole::Writer)
        fail(GREY_ERROR_INVALID_ARGUMENT, "key file '" + options_.key_path +
                                              "' is a verifier key; a writer needs the writer key (greyctl audit keygen "
                                              "--writer-out), so that the verifier key stays at epoch 0");
}

void Writer::open_or_create() {
    fd_ = open_regular_file(options_.log_path, "audit log", O_RDWR | O_CREAT | O_NOFOLLOW, {}, 0640).fd;
    FileLock lock(fd_.get());
    if (key_file_.replaced_on_disk()) load_key();
    if (file_size(fd_.get()) == 0) {
        create_header();
    } else {
        const std::vector<uint8_t> header_bytes = read_range(fd_.get(), 0, std::min<uint64_t>(header_size, file_size(fd_.get())));
        const auto header = parse_header(header_bytes);
        if (!header) fail(GREY_ERROR_CORRUPT, "'" + options_.log_path + "' is not a grey audit log that this libgrey reads: " + header_problem(header_bytes));
        if (header->key_id != key_.key_id)
            fail(GREY_ERROR_INVALID_ARGUMENT, "audit log '" + options_.log_path + "' was created with a different key");
        // Past epoch 0 the hash chain up to the key's anchor vouches for the header instead.
        if (key_.epoch == 0) {
            HmacSha256 header_mac(header_key(key_.key));
            if (!equal_ct(header_mac.mac(Bytes(header_bytes.data(), header_mac_offset)), header->mac))
                fail(GREY_ERROR_CORRUPT, "audit log '" + options_.log_path + "': the header fails its MAC check");
        }
        log_id_ = header->log_id;
        version_ = header->version;  // appended records keep the log's format
        head_ = leaf_hash(sha_, header_bytes);
        end_offset_ = header_size;
    }
    if (key_.anchor && key_.anchor->log_id != log_id_)
        fail(GREY_ERROR_INVALID_ARGUMENT, "writer key file '" + options_.key_path + "' was advanced while writing another audit log (log id " +
                                              to_hex(key_.anchor->log_id) + ", not " + to_hex(log_id_) +
                                              "); a writer key past epoch 0 belongs to one log");
    record_mac_.emplace(record_key(key_.key));
    last_record_epoch_ = 0;
    epoch_started_ns_ = now_ns();
    catch_up(true);
}

void Writer::create_header() {
    if (key_.epoch != 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, "key file '" + options_.key_path + "' is at epoch " + std::to_string(key_.epoch) +
                                              "; a new log must start from an epoch-0 key");
    Header header;
    header.version = options_.format_version;
    random_bytes(header.log_id);
    header.key_id = key_.key_id;
    header.created_ns = now_ns();
    HmacSha256 header_mac(header_key(key_.key));
    const auto bytes = encode_header(header, header_mac);
    write_all(fd_.get(), bytes, "the audit log header");
    sync_data(fd_.get());
    fsync_directory_of(options_.log_path);
    log_id_ = header.log_id;
    version_ = header.version;
    head_ = leaf_hash(sha_, bytes);
    end_offset_ = header_size;
}

void Writer::catch_up(bool at_open) {
    const TailScan scan = absorb_file_tail();
    if (key_.epoch > 0 && !key_.anchor) {
        // A libgrey 0.1 key whose epoch has no record yet: its epoch begins at the end of the log.
        key_.anchor = KeyAnchor{log_id_, next_sequence_, head_};
        key_ahead_of_file_ = true;
    }
    // Before anything is sealed, the recovery record included: a record sealed with an older key than
    // the key file's would break the key file's promise that every record past its anchor uses its epoch.
    reconcile_key_file();
    if (scan.valid_end < scan.size)
        recover_tail(scan.valid_end, scan.size, scan.problem + (at_open ? " (found on open)" : " (left by another writer)"));
}

Writer::TailScan Writer::absorb_file_tail() {
    const uint64_t size = file_size(fd_.get());
    if (size < end_offset_)
        fail(GREY_ERROR_CORRUPT, "audit log '" + options_.log_path + "' shrank from " + std::to_string(end_offset_) + " to " +
                                     std::to_string(size) + " bytes while open");
    TailScan scan{end_offset_, size, {}};
    if (size > end_offset_) {
        const std::vector<uint8_t> bytes = read_range(fd_.get(), end_offset_, size - end_offset_);
        size_t at = 0;
        while (at < bytes.size()) {
            RecordView record;
            const ParseError error = parse_record(Bytes(bytes).subspan(at), end_offset_ + at, record);
            if (error != ParseError::None) {
                // What a crash leaves: a record cut short, or blocks the file system extended the file
                // with but never wrote (zeros). Past a structural break nothing can be parsed, so
                // everything from here on is the torn tail.
                scan.problem = parse_error_text(error);
                break;
            }
            const Hash leaf = record_leaf(version_, sha_, record.bytes);
            if (const std::string problem = authenticate(record, leaf); !problem.empty()) {
                // A complete record that does not verify is never taken for a torn write (that would let
                // anyone who can write the log make the writer throw records away) — unless it is the
                // last thing in the file and its MAC is all zeros: the shape of a write whose last block
                // never reached the disk.
                if (at + record.bytes.size() == bytes.size() && all_zero(record.mac())) {
                    scan.problem = problem + "; its MAC field is all zeros, as a write cut short by a crash leaves it";
                    break;
                }
                fail(GREY_ERROR_CORRUPT, "audit log '" + options_.log_path + "': the record at offset " + std::to_string(end_offset_ + at) +
                                             " (record " + std::to_string(next_sequence_) + ") cannot be verified by this writer: " + problem +
                                             ". Refusing to append to a log that the writer cannot verify up to its end; check it with "
                                             "greyctl audit verify and the verifier key");
            }
            accept(record, leaf);
            at += record.bytes.size();
        }
        end_offset_ += at;
        scan.valid_end = end_offset_;
    }
    check_anchor();
    return scan;
}

std::string Writer::authenticate(const RecordView& record, const Hash& leaf) {
    const auto epoch_text = [](uint32_t e) { return "key epoch " + std::to_string(e); };
    if (record.sequence != next_sequence_)
        return "it carries sequence " + std::to_string(record.sequence) + " where " + std::to_string(next_sequence_) + " was expected";
    if (!equal_public(record.previous_hash(), head_)) return "it does not chain to the record before it";
    if (record.epoch < last_record_epoch_) return "its " + epoch_text(record.epoch) + " is older than the previous record's";
    if (key_.anchor && next_sequence_ == key_.anchor->records) check_anchor();
    if (key_.anchor && next_sequence_ < key_.anchor->records) {
        // Sealed before the key reached its epoch, with keys this writer erased: the hash chain up to
        // the anchor vouches for it (check_anchor, once the chain gets there).
        if (record.epoch >= key_.epoch)
            return "it claims " + epoch_text(record.epoch) + " but comes before the point where the writer key reached epoch " +
                   std::to_string(key_.epoch);
        return {};
    }
    if (!key_.anchor && key_.epoch > 0) {
        // A writer key advanced by libgrey 0.1, which kept no anchor: the log's older records are
        // trusted this once, and the anchor is set where the key's epoch begins.
        if (record.epoch < key_.epoch) return {};
        key_.anchor = KeyAnchor{log_id_, next_sequence_, head_};
        key_ahead_of_file_ = true;
    }
    if (record.epoch < key_.epoch)
        return "it claims " + epoch_text(record.epoch) + ", older than the writer key's epoch " + std::to_string(key_.epoch) +
               ", yet comes after the point where the key reached that epoch (and this writer erased the keys that could check it)";
    if (record.epoch - key_.epoch > KeyChain::max_epoch_step)
        return "it claims " + epoch_text(record.epoch) + ", more than " + std::to_string(KeyChain::max_epoch_step) +
               " epochs past the writer key's epoch " + std::to_string(key_.epoch);
    if (record.epoch > KeyChain::max_epoch) return "it claims " + epoch_text(record.epoch) + ", beyond the supported maximum";
    if (record.epoch == key_.epoch)
        return equal_ct(record_mac(version_, *record_mac_, record.bytes, leaf), record.mac()) ? std::string() : "it fails its MAC check";
    // A later epoch: another writer moved the key on. Derive that key in memory, and keep it (writing
    // it to the key file, in reconcile_key_file) only if the record's MAC holds under it.
    SecretKey candidate = key_.key;
    for (uint32_t e = key_.epoch; e < record.epoch; ++e) candidate = next_epoch_key(candidate);
    HmacSha256 mac(record_key(candidate));
    if (!equal_ct(record_mac(version_, mac, record.bytes, leaf), record.mac()))
        return "it claims " + epoch_text(record.epoch) + " but fails its MAC check under that epoch's key";
    key_.key = candidate;  // overwrites, and so erases, the earlier key
    key_.epoch = record.epoch;
    key_.anchor = KeyAnchor{log_id_, next_sequence_, head_};
    record_mac_ = std::move(mac);
    key_ahead_of_file_ = true;
    return {};
}

void Writer::accept(const RecordView& record, const Hash& leaf) {
    head_ = leaf;
    range_.append(sha_, head_);
    ++next_sequence_;
    if (record.epoch != last_record_epoch_ || next_sequence_ == 1) {
        epoch_records_ = 0;
        epoch_started_ns_ = record.timestamp_ns;
    }
    last_record_epoch_ = record.epoch;
    if (record.epoch == key_.epoch) ++epoch_records_;
}

void Writer::check_anchor() {
    if (!key_.anchor || next_sequence_ > key_.anchor->records) return;
    if (next_sequence_ < key_.anchor->records)
        fail(GREY_ERROR_CORRUPT, "audit log '" + options_.log_path + "' holds " + std::to_string(next_sequence_) +
                                     " records, but its writer key moved to epoch " + std::to_string(key_.epoch) + " after " +
                                     std::to_string(key_.anchor->records) +
                                     ": records were removed from its end, or the log was replaced. Refusing to append; check it with "
                                     "greyctl audit verify and the verifier key");
    if (!equal_public(head_, key_.anchor->head))
        fail(GREY_ERROR_CORRUPT, "audit log '" + options_.log_path + "': its first " + std::to_string(next_sequence_) +
                                     " records are not the ones its writer key moved on after (their hash chain does not lead to the "
                                     "record the key file names): records were changed or replaced. Refusing to append; check it with "
                                     "greyctl audit verify and the verifier key");
}

void Writer::reconcile_key_file() {
    if (key_file_.replaced_on_disk()) {
        // Another process rotated the key (under this log's lock, which we hold now).
        const KeyFile disk = key_file_.load();
        const std::string where = "writer key file '" + options_.key_path + "'";
        if (disk.role != KeyRole::Writer || disk.key_id != key_.key_id)
            fail(GREY_ERROR_INVALID_ARGUMENT, where + " was replaced by another key while the log was open");
        if (disk.epoch >= key_.epoch) {
            if (disk.epoch - key_.epoch > KeyChain::max_epoch_step)
                fail(GREY_ERROR_CORRUPT, where + " jumped to epoch " + std::to_string(disk.epoch) + " from " + std::to_string(key_.epoch));
            SecretKey derived = key_.key;
            for (uint32_t e = key_.epoch; e < disk.epoch; ++e) derived = next_epoch_key(derived);
            if (!equal_ct(derived.bytes(), disk.key.bytes()))
                fail(GREY_ERROR_CORRUPT, where + " now holds a key that is not a later epoch of this writer's key");
            // A rotation with no record after it yet (its writer stopped, or crashed, before sealing one)
            // begins at the end of what we read; otherwise we followed its records to the same point.
            const KeyAnchor end{log_id_, next_sequence_, head_};
            const bool agrees = disk.epoch > key_.epoch ? disk.anchor == end : (!disk.anchor || !key_.anchor || disk.anchor == key_.anchor);
            if (!agrees)
                fail(GREY_ERROR_CORRUPT, where + " was advanced to epoch " + std::to_string(disk.epoch) +
                                             " at another point of the log than the one this writer read");
            if (disk.epoch == key_.epoch && !disk.anchor && key_.anchor) {
                key_ahead_of_file_ = true;  // a version 1 file: ours, with the anchor, replaces it below
            } else {
                key_ = disk;
                record_mac_.emplace(record_key(key_.key));
                key_ahead_of_file_ = false;
            }
        } else {
            key_ahead_of_file_ = true;  // behind the records we followed: ours replaces it below
        }
    }
    if (key_ahead_of_file_) persist_key(key_);
}

void Writer::persist_key(const KeyFile& key) {
    // The records before the anchor reach the disk before a key file that names them.
    sync_data(fd_.get());
    step("log synced");
    key_file_.replace(key);
    key_ahead_of_file_ = false;
}

void Writer::recover_tail(uint64_t valid_end, uint64_t size, const std::string& reason) {
    // Keep the discarded bytes beside the log: what a crash left is evidence, not rubbish.
    const std::vector<uint8_t> tail = read_range(fd_.get(), valid_end, size - valid_end);
    const std::string saved = options_.log_path + ".torn." + std::to_string(valid_end) + "." + std::to_string(now_ns());
    write_new_private_file(saved, tail);
    if (::ftruncate(fd_.get(), static_cast<off_t>(valid_end)) != 0)
        fail(GREY_ERROR_IO, "cannot truncate the torn tail of '" + options_.log_path + "': " + errno_text());
    sync_data(fd_.get());
    recovered_bytes_ += size - valid_end;
    const nlohmann::ordered_json payload = {{"offset", valid_end},
                                            {"discarded_bytes", size - valid_end},
                                            {"discarded_sha256", to_hex(sha_.hash(-1, tail))},
                                            {"saved_to", saved},
                                            {"reason", reason}};
    // The recovery is recorded, and synced, at once: the next reader must find it, even if this writer
    // never appends. (We hold the file lock, so nothing can come between the cut and this record.)
    Batch recovery;
    append_unsealed(recovery.bytes, now_ns(), "grey.recovery", payload.dump());
    recovery.records = 1;
    seal_and_write(recovery, true);
}

bool Writer::epoch_due(uint64_t now) const {
    const bool by_count = options_.epoch_records != 0 && epoch_records_ >= options_.epoch_records;
    const bool by_time = options_.epoch_seconds != 0 && now >= epoch_started_ns_ &&
                         now - epoch_started_ns_ >= options_.epoch_seconds * 1000000000ull;
    return by_count || by_time;
}

bool Writer::epoch_too_short_for(uint64_t records) const {
    return options_.epoch_records != 0 && epoch_records_ > 0 && epoch_records_ + records > options_.epoch_records;
}

std::future<void> Writer::advance_epoch_async(uint64_t now) {
    if (key_.epoch >= KeyChain::max_epoch)
        fail(GREY_ERROR_INVALID_ARGUMENT, "the writer key has reached epoch " + std::to_string(key_.epoch) +
                                              ", the last one a verifier accepts: start a new log with a new key");
    KeyFile next = key_;
    next.key = next_epoch_key(key_.key);
    ++next.epoch;
    // Every record so far was sealed with an earlier key; the key file says where they end.
    next.anchor = KeyAnchor{log_id_, next_sequence_, head_};
    // The new key reaches the disk before any record sealed with it (the caller waits for the returned
    // future, settle_epoch, before it writes one), so a crash never leaves records the key file can no
    // longer extend. Its syncs (the log's, then the key file's replacement: about four, 1.3 ms here)
    // run on another thread meanwhile, while this one seals the records that follow with the new key.
    // Until then this thread neither writes the log nor touches the key file.
    std::future<void> persisted = std::async(std::launch::async, [this, next] {
        sync_data(fd_.get());
        step("log synced");
        key_file_.replace(next);
    });
    key_ = next;  // overwrites, and so erases, the previous epoch's key
    key_ahead_of_file_ = true;  // until settle_epoch
    record_mac_.emplace(record_key(key_.key));
    epoch_records_ = 0;
    epoch_started_ns_ = now;
    return persisted;
}

void Writer::settle_epoch(std::future<void>& persisted) {
    if (!persisted.valid()) return;
    // On failure the key stays advanced in memory (its predecessor is erased) and key_ahead_of_file_
    // stays set: the next commit writes the key file first (reconcile_key_file).
    persisted.get();
    key_ahead_of_file_ = false;
}

void Writer::write_sealed(Bytes bytes, bool sync) {
    if (::lseek(fd_.get(), static_cast<off_t>(end_offset_), SEEK_SET) < 0)
        fail(GREY_ERROR_IO, "cannot seek in the audit log: " + errno_text());
    try {
        write_all(fd_.get(), bytes, "the audit log");
        if (sync) sync_data(fd_.get());
    } catch (...) {
        // Leave no half-written batch for the next open to find. We still hold the file lock, so the
        // bytes past end_offset_ are ours alone.
        if (::ftruncate(fd_.get(), static_cast<off_t>(end_offset_)) == 0) ::fdatasync(fd_.get());
        throw;
    }
    end_offset_ += bytes.size();
}

void Writer::commit(Batch& batch, bool sync) {
    FileLock lock(fd_.get());
    catch_up(false);
    seal_and_write(batch, sync);
}

Writer::Snapshot Writer::snapshot() const { return {next_sequence_, head_, range_, epoch_records_, last_record_epoch_}; }

void Writer::restore(const Snapshot& s) {
    next_sequence_ = s.next_sequence;
    head_ = s.head;
    range_ = s.range;
    epoch_records_ = s.epoch_records;
    last_record_epoch_ = s.last_record_epoch;
}

void Writer::seal_and_write(Batch& batch, bool sync) {
    Snapshot in_file = snapshot();  // the state that matches what the file holds
    size_t written = 0;             // bytes of the batch already in the file
    std::future<void> persisted;    // a new epoch's key file on its way to the disk (advance_epoch_async)
    bool new_epoch_unwritten = false;  // the key moved on since in_file, and none of its records is in the file
    try {
        const uint64_t now = now_ns();
        auto* p = reinterpret_cast<uint8_t*>(batch.bytes.data());
        unsealed_.clear();
        auto run = batch.runs.begin();
        uint64_t run_left = 0;  // records of a run still to come after the current one
        for (size_t at = 0; at < batch.bytes.size(); at += load_u32(p + at)) {
            if (run_left > 0) {
                --run_left;  // the key never advances inside a run
            } else {
                const uint64_t records = run != batch.runs.end() && run->offset == at ? (run++)->records : 1;
                if (epoch_due(now) || epoch_too_short_for(records)) {
                    // The key file about to be written names the last record sealed so far as the end of
                    // the old epoch, so those records go to the file first (its replacement syncs them).
                    seal_unsealed(p);
                    settle_epoch(persisted);
                    if (at > written) {
                        write_sealed(as_bytes(batch.bytes).subspan(written, at - written), false);
                        written = at;
                    }
                    in_file = snapshot();
                    persisted = advance_epoch_async(now);
                    new_epoch_unwritten = true;
                }
                run_left = records - 1;
            }
            unsealed_.push_back(at);
            ++epoch_records_;
            // A large batch goes to the file a piece at a time (never inside a run), while its bytes are
            // still in this core's cache from the sealing: written at the end, they were read back from
            // memory for the kernel's copy, which cost as much as a third of the sealing. Not while a new
            // key file is on its way to the disk: its records wait for it (and are sealed meanwhile).
            // (Whether it is there is asked every 256 records: asking may cost a system call.)
            const auto key_on_disk = [&] {
                if (!persisted.valid()) return true;
                if (unsealed_.size() % 256 != 0) return false;
                return persisted.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
            };
            if (constexpr size_t write_every = 1024; run_left == 0 && unsealed_.size() >= write_every && key_on_disk()) {
                const size_t end = at + load_u32(p + at);
                seal_unsealed(p);
                settle_epoch(persisted);
                write_sealed(as_bytes(batch.bytes).subspan(written, end - written), false);
                written = end;
                in_file = snapshot();
                new_epoch_unwritten = false;
            }
        }
        seal_unsealed(p);
        settle_epoch(persisted);
        write_sealed(as_bytes(batch.bytes).subspan(written), sync);
    } catch (...) {
        // Records that did not reach the file are dropped and the state is that of the file; the caller
        // sees the error. (A key that already advanced stays advanced: the file never lags behind the key.
        // A new epoch whose key file did not reach the disk begins again with no records.)
        if (persisted.valid()) persisted.wait();  // its thread uses this writer until it ends
        restore(in_file);
        if (new_epoch_unwritten) epoch_records_ = 0;
        throw;
    }
}

void Writer::seal_unsealed(uint8_t* bytes) {
    // A window at a time, so that the first halves kept meanwhile stay small however large a batch is.
    constexpr size_t window = 4096;
    for (size_t from = 0; from < unsealed_.size(); from += window)
        seal_window(bytes, std::span<const size_t>(unsealed_).subspan(from, std::min(window, unsealed_.size() - from)));
    unsealed_.clear();
}

void Writer::seal_window(uint8_t* bytes, std::span<const size_t> offsets) {
    const size_t n = offsets.size();
    if (prefixes_.size() < n) prefixes_.resize(n);
    if (leaves_.size() < n) leaves_.resize(n);
    auto record = [&](size_t i) { return std::span<uint8_t>(bytes + offsets[i], load_u32(bytes + offsets[i])); };
    const uint64_t first = next_sequence_;
    auto prefixes = [&](size_t begin, size_t end) {
        // Several records at a time where the CPU allows (seal_prefixes).
        seal_prefixes(version_, bytes, offsets.subspan(begin, end - begin), first + begin, key_.epoch, *record_mac_, sha_,
                      std::span(prefixes_).subspan(begin, end - begin));
    };
    auto chain = [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) {
            head_ = seal_chain(version_, record(i), head_, *record_mac_, prefixes_[i]);
            leaves_[i] = head_;
        }
    };
    auto macs = [&](size_t begin, size_t end) {
        if (version_ == 1) return;  // sealed with the chain
        // Several at a time where the CPU allows (HmacSha256::mac_many).
        std::array<Hash, 64> mac;
        for (size_t from = begin; from < end; from += mac.size()) {
            const size_t count = std::min(mac.size(), end - from);
            record_mac_->mac_many(Hashes(leaves_).subspan(from, count), std::span(mac).first(count));
            for (size_t i = 0; i < count; ++i) store_mac(record(from + i), mac[i]);
        }
    };
    // A block of records hashes for tens of microseconds, so handing it to another thread pays.
    constexpr unsigned block_height = 6;
    constexpr size_t block = size_t{1} << block_height;
    constexpr size_t max_sealing_threads = 4;
    if (n >= 2 * block && !sealers_) sealers_.emplace(std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), max_sealing_threads));
    if (n < 2 * block || sealers_->threads() == 1) {
        prefixes(0, n);
        chain(0, n);
        macs(0, n);
        for (size_t i = 0; i < n; ++i) range_.append(sha_, leaves_[i]);
    } else {
        // Two passes. First a pipeline: the helpers hash the blocks' first halves ahead, in order, while
        // this thread walks the chain (each record's leaf hash needs the one before it) through each
        // block as soon as its first halves are there, taking a block itself when no helper has started
        // it. Then every thread computes the blocks' MACs (version 2) and the roots of their Merkle
        // subtrees, several at a time where the CPU allows. So this thread hashes in order only what must
        // be: the last two of a version 2 record's nine SHA-256 blocks. (A second pass behind the walk,
        // block by block, measured no better: its helpers waited on the walk a block at a time.) Blocks
        // follow the sequence numbers' alignment (the first may be shorter), so that each full block is a
        // complete subtree of the log's tree, appended whole.
        const size_t lead = static_cast<size_t>((block - first % block) % block);  // < block < n
        const size_t blocks = (lead == 0 ? 0 : 1) + (n - lead + block - 1) / block;
        const auto range_of = [&](size_t k) {
            const size_t from = lead == 0 ? k * block : (k == 0 ? 0 : lead + (k - 1) * block);
            const size_t to = lead == 0 ? (k + 1) * block : lead + k * block;
            return std::pair(from, std::min(n, to));
        };
        const auto full = [&](size_t from, size_t to) { return to - from == block; };  // and so aligned
        if (subtree_roots_.size() < blocks) subtree_roots_.resize(blocks);
        const auto ready = std::make_unique<std::atomic<uint8_t>[]>(blocks);
        std::exception_ptr failure;
        std::mutex failure_mutex;
        const auto first_halves = [&](size_t begin, size_t end) {
            for (size_t k = begin; k < end; ++k) {
                const auto [from, to] = range_of(k);
                try {
                    prefixes(from, to);
                } catch (...) {
                    const std::lock_guard lock(failure_mutex);
                    if (!failure) failure = std::current_exception();
                }
                ready[k].store(1, std::memory_order_release);
                ready[k].notify_one();
            }
        };
        sealers_->post(blocks, 1, first_halves);
        try {
            for (size_t k = 0; k < blocks; ++k) {
                const auto [from, to] = range_of(k);
                if (sealers_->take(k)) prefixes(from, to);
                else ready[k].wait(0, std::memory_order_acquire);
                chain(from, to);
            }
        } catch (...) {
            sealers_->wait();  // the helpers use this frame's lambdas until then
            throw;
        }
        sealers_->wait();
        if (failure) std::rethrow_exception(failure);
        // Then the MACs and the subtrees' roots, which depend on nothing but the leaves, on every thread.
        const auto second_halves = [&](size_t begin, size_t end) {
            for (size_t k = begin; k < end; ++k) {
                const auto [from, to] = range_of(k);
                macs(from, to);
                if (full(from, to)) subtree_roots_[k] = complete_subtree_root(sha_, Hashes(leaves_).subspan(from, block));
            }
        };
        sealers_->run(blocks, 1, second_halves);
        for (size_t k = 0; k < blocks; ++k) {
            const auto [from, to] = range_of(k);
            if (full(from, to)) {
                range_.append_subtree(sha_, subtree_roots_[k], block_height);
            } else {
                for (size_t i = from; i < to; ++i) range_.append(sha_, leaves_[i]);
            }
        }
    }
    next_sequence_ += n;
    last_record_epoch_ = key_.epoch;
}

Writer::Written Writer::written() const { return {next_sequence_, head_, key_.epoch, recovered_bytes_, 0}; }

void Writer::publish(const Written& w) {
    // Writes reach here from the syncer and, synced already, from checkpoint() and per-record appends;
    // the file only grows, so the largest is the newest.
    if (w.records >= published_.records) published_ = w;
}

void Writer::rethrow_deferred() {
    if (sync_failure_) std::rethrow_exception(sync_failure_);
    if (deferred_error_) {
        std::exception_ptr error = std::exchange(deferred_error_, nullptr);
        std::rethrow_exception(error);
    }
}

std::optional<uint64_t> Writer::append(std::string_view type, std::string_view payload) {
    if (type.starts_with(reserved_type_prefix))
        fail(GREY_ERROR_INVALID_ARGUMENT, "record types starting with 'grey.' are reserved for libgrey");
    return append_any(type, payload);
}

std::optional<uint64_t> Writer::append_reserved(std::string_view type, std::string_view payload) {
    if (!type.starts_with(reserved_type_prefix)) fail(GREY_ERROR_INTERNAL, "append_reserved needs a 'grey.' type");
    return append_any(type, payload);
}

std::optional<uint64_t> Writer::append_any(std::string_view type, std::string_view payload) {
    check_record(type, payload);
    if (options_.durability == Durability::EveryRecord) return append_now(type, payload);
    const uint64_t timestamp = now_ns();
    const size_t size = record_fixed_size + type.size() + payload.size() + record_trailer_size;
    std::unique_lock lock = room_for(size, 1);
    const uint64_t before = filling_.records;
    append_unsealed(filling_.bytes, timestamp, type, payload);
    queued(before, 1);
    return std::nullopt;
}

std::optional<uint64_t> Writer::append_now(std::string_view type, std::string_view payload) {
    std::lock_guard commit_lock(commit_mutex_);
    single_.clear();
    append_unsealed(single_.bytes, now_ns(), type, payload);
    single_.records = 1;
    commit(single_, true);
    std::lock_guard queue_lock(queue_mutex_);
    publish(written());
    return next_sequence_ - 1;
}

std::optional<uint64_t> Writer::append_batch(RecordBatch& batch) {
    const uint64_t n = batch.records();
    if (options_.epoch_records != 0 && n > options_.epoch_records)
        fail(GREY_ERROR_INVALID_ARGUMENT, "a batch of " + std::to_string(n) + " records is longer than a key epoch (epoch_records " +
                                              std::to_string(options_.epoch_records) + "): split it, or open the log with a longer epoch");
    if (n == 0) return std::nullopt;
    batch.stamp(now_ns());
    if (options_.durability == Durability::Group) {
        std::unique_lock lock = room_for(batch.bytes().size(), n);
        const uint64_t before = filling_.records;
        if (n > 1) filling_.runs.push_back({filling_.bytes.size(), n});
        if (filling_.bytes.empty()) {
            std::swap(filling_.bytes, batch.bytes());  // the batch takes the empty buffer, capacity and all
        } else {
            filling_.bytes += batch.bytes();
        }
        queued(before, n);
        lock.unlock();
        batch.clear();
        return std::nullopt;
    }
    std::lock_guard commit_lock(commit_mutex_);
    // Sealed in place: the batch's buffer is lent to single_ for the commit, and given back after it.
    single_.clear();
    std::swap(single_.bytes, batch.bytes());
    single_.records = n;
    single_.runs.push_back({0, n});
    try {
        commit(single_, true);
    } catch (...) {
        std::swap(single_.bytes, batch.bytes());
        throw;
    }
    std::swap(single_.bytes, batch.bytes());
    batch.clear();
    std::lock_guard queue_lock(queue_mutex_);
    publish(written());
    return next_sequence_ - n;
}

std::unique_lock<std::mutex> Writer::room_for(size_t size, uint64_t records) {
    std::unique_lock lock(queue_mutex_);
    rethrow_deferred();
    // Backpressure: a full backlog waits for the committer to take it (bounded in records and, for
    // large payloads, in bytes; one record or batch always fits in an empty backlog).
    constexpr size_t max_pending_bytes = 64u << 20;
    progress_.wait(lock, [&] {
        return filling_.records == 0 || sync_failure_ ||
               (filling_.records + records <= max_pending_records_ && filling_.bytes.size() + size <= max_pending_bytes);
    });
    rethrow_deferred();
    if (filling_.records == 0) oldest_pending_ = std::chrono::steady_clock::now();
    return lock;
}

void Writer::queued(uint64_t before, uint64_t records) {
    filling_.records += records;
    accepted_ += records;
    // The committer waits for the first record (to start the group's clock) and for a full group.
    if (before == 0 || (before < options_.group_records && filling_.records >= options_.group_records)) work_.notify_one();
}

void Writer::flush() {
    std::unique_lock lock(queue_mutex_);
    rethrow_deferred();
    const uint64_t target = accepted_;
    ++flush_waiters_;  // the committer then takes the batch without waiting for the group to fill
    work_.notify_one();
    progress_.wait(lock, [&] { return settled_through_ >= target || sync_failure_; });
    --flush_waiters_;
    rethrow_deferred();
}

std::string Writer::checkpoint() {
    flush();
    std::lock_guard commit_lock(commit_mutex_);
    FileLock file_lock(fd_.get());
    catch_up(false);
    // A checkpoint must not cover bytes that a crash could still take away (another writer's, or a
    // group that was written but not yet synced).
    sync_data(fd_.get());
    {
        std::lock_guard queue_lock(queue_mutex_);
        publish(written());
    }
    Checkpoint c;
    c.log_id = log_id_;
    c.size = next_sequence_;
    c.root = range_.root(sha_);
    c.time_ns = now_ns();
    c.epoch = key_.epoch;
    HmacSha256 mac(checkpoint_key(key_.key));
    return seal_checkpoint(c, mac, signing_key_.get());
}

WriterState Writer::state() {
    std::lock_guard lock(queue_mutex_);
    return {published_.records, accepted_ - settled_through_, published_.epoch, log_id_, published_.head, published_.recovered_bytes};
}

void Writer::committer_loop(std::stop_token stop) {
    std::unique_lock lock(queue_mutex_);
    for (;;) {
        work_.wait(lock, stop, [&] { return filling_.records > 0; });
        if (filling_.records == 0) return;  // stopped with nothing queued
        // Wait for the group to fill, its oldest record to age, a flush, or the writer to close.
        const auto deadline = oldest_pending_ + std::chrono::milliseconds(options_.group_ms);
        work_.wait_until(lock, stop, deadline, [&] { return filling_.records >= options_.group_records || flush_waiters_ > 0; });
        std::swap(filling_, sealing_);
        taken_ += sealing_.records;
        const uint64_t own_through = taken_;
        const bool failed = static_cast<bool>(sync_failure_);
        progress_.notify_all();  // room for appending threads held back by a full backlog
        lock.unlock();

        std::exception_ptr error;
        {
            std::lock_guard commit_lock(commit_mutex_);
            if (!failed) {
                try {
                    commit(sealing_, false);
                } catch (...) {
                    error = std::current_exception();
                }
            }
            lock.lock();
            Written w = written();
            w.own_through = own_through;
            if (error) deferred_error_ = error;  // the batch was dropped; settled all the same
            to_sync_ = w;  // newer than any write before it: one fdatasync covers them all
            synced_.notify_one();
        }
        sealing_.clear();
    }
}

void Writer::syncer_loop(std::stop_token stop) {
    std::unique_lock lock(queue_mutex_);
    for (;;) {
        synced_.wait(lock, stop, [&] { return to_sync_.has_value(); });
        if (!to_sync_) return;  // stopped, and the committer (stopped first) left nothing to sync
        const Written w = *to_sync_;
        to_sync_.reset();
        lock.unlock();
        const bool ok = sync_failure_ ? false : ::fdatasync(fd_.get()) == 0;
        const std::string why = ok ? "" : errno_text();
        lock.lock();
        if (ok) {
            publish(w);
        } else if (!sync_failure_) {
            // After a failed fdatasync the kernel may have dropped the dirty pages: what the file holds
            // is unknown, so this writer stops here; reopening the log checks and recovers the file.
            sync_failure_ = std::make_exception_ptr(Error(GREY_ERROR_IO, "cannot sync the audit log: " + why +
                                                                             "; records after " + std::to_string(published_.records) +
                                                                             " may be lost: close the log and open it again"));
        }
        settled_through_ = std::max(settled_through_, w.own_through);
        progress_.notify_all();
    }
}

}  // namespace grey::audit
