// The numbered jobs of a plugin's stream and the first failure one of them found, kept as grey_backend.h
// says ("Streams and events"): jobs are numbered in the order they are enqueued; an event recorded
// between two jobs stands for those numbered below the next one; a stream synchronize or idle query
// returns the kept failure and forgets it; an event's synchronize or query returns it, and keeps it, when
// the job that found it is one the event stands for. The CUDA, HIP and Level Zero plugins' asynchronous
// quantization keep theirs in one. Not synchronised: its owner's lock guards it.
#pragma once

#include "grey.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace grey::backend {

// An error a job found: the status and the message the synchronous call gives.
struct JobFailure {
    grey_status status;
    std::string message;
};

class JobFailures {
public:
    // The number the next job will get.
    [[nodiscard]] uint64_t next_job() const { return next_job_; }
    // The next job was enqueued (even in part): the one after it gets the next number.
    void advance() { ++next_job_; }

    // Keeps `failure` of job `job` unless an earlier one is kept.
    void keep(uint64_t job, JobFailure failure) {
        if (kept_.has_value()) return;
        kept_ = std::move(failure);
        kept_job_ = job;
    }
    [[nodiscard]] bool holds_one() const { return kept_.has_value(); }

    // The kept failure, forgotten (a stream synchronize or query that saw every job run).
    std::optional<JobFailure> take() { return std::exchange(kept_, std::nullopt); }
    // The kept failure if a job numbered below `end` found it, forgotten (a synchronize that saw those run).
    std::optional<JobFailure> take_before(uint64_t end) {
        if (!kept_.has_value() || kept_job_ >= end) return std::nullopt;
        return take();
    }
    // The kept failure if a job numbered below `end` found it; kept (an event's synchronize or query).
    [[nodiscard]] std::optional<JobFailure> before(uint64_t end) const {
        if (kept_.has_value() && kept_job_ < end) return kept_;
        return std::nullopt;
    }

private:
    uint64_t next_job_ = 0;
    std::optional<JobFailure> kept_;
    uint64_t kept_job_ = 0;
};

// What an event's latest record stands for: the jobs of one stream's `Journal` numbered below `end`,
// whose kept failure the event reports. Locked: an event may be recorded on one thread while another
// waits on it.
template <typename Journal>
class RecordedJobs {
public:
    void set(std::shared_ptr<Journal> journal, uint64_t end) {
        std::lock_guard lock(mutex_);
        journal_ = std::move(journal);
        end_ = end;
    }
    // The journal (null: never recorded after a stream's jobs) and the end of the latest record.
    [[nodiscard]] std::pair<std::shared_ptr<Journal>, uint64_t> get() const {
        std::lock_guard lock(mutex_);
        return {journal_, end_};
    }

private:
    mutable std::mutex mutex_;
    std::shared_ptr<Journal> journal_;
    uint64_t end_ = 0;
};

}  // namespace grey::backend
