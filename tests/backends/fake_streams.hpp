// Streams for the fake GPU drivers: work enqueued on a stream is deferred, as a GPU defers it, and runs
// only when something waits for it (a stream synchronize or query, an event synchronize or query of an
// event recorded on it, or a stream that waits for such an event reaching its turn), so a plugin that
// forgets to wait, or frees host memory too early, reads or writes the wrong bytes here too. Work on the
// null stream, or on a handle this does not know, runs at once. Events are tokens that remember the
// stream of their latest record. One thread at a time runs a stream's work (its runner lock), so work
// runs in order even when several threads wait on one stream; flush_until lets a thread wait for a
// point of a stream (an event) without running past it, as a host thread waiting for an event would.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace fake {

class DeferredStreams {
public:
    void* create() {
        std::lock_guard lock(mutex_);
        void* s = reinterpret_cast<void*>(next_stream_++);
        queues_[s];
        runners_[s] = std::make_shared<std::recursive_mutex>();
        return s;
    }
    // Runs the stream's work (a driver completes the work of a destroyed stream), then forgets it.
    bool destroy(void* stream) {
        flush(stream);
        std::lock_guard lock(mutex_);
        runners_.erase(stream);
        return queues_.erase(stream) == 1;
    }
    [[nodiscard]] bool exists(void* stream) {
        std::lock_guard lock(mutex_);
        return queues_.count(stream) == 1;
    }
    [[nodiscard]] size_t queued(void* stream) {
        std::lock_guard lock(mutex_);
        const auto q = queues_.find(stream);
        return q == queues_.end() ? 0 : q->second.size();
    }
    void enqueue(void* stream, std::function<void()> work) {
        if (stream != nullptr) {
            std::lock_guard lock(mutex_);
            if (auto q = queues_.find(stream); q != queues_.end()) {
                q->second.push_back(std::move(work));
                return;
            }
        }
        work();
    }
    // Runs a stream's queue in order; work may flush other streams (a wait), so only the stream's runner
    // lock is held while it runs.
    void flush(void* stream) {
        const auto runner = runner_of(stream);
        if (!runner) return;
        std::lock_guard run(*runner);
        while (run_next(stream)) {
        }
    }
    // Runs a stream's queue in order until `reached()` holds (checked before each piece of work) or the
    // queue is empty; true if `reached()` holds. While another thread runs the stream (it may be blocked in
    // a piece of work, waiting for this one), this only waits for it to get there.
    template <typename Reached>
    bool flush_until(void* stream, Reached&& reached) {
        const auto runner = runner_of(stream);
        while (!reached()) {
            if (!runner) return false;
            std::unique_lock run(*runner, std::try_to_lock);
            if (!run.owns_lock()) {
                std::this_thread::yield();
                continue;
            }
            if (!reached() && !run_next(stream)) return reached();
        }
        return true;
    }
    // Every stream's queue: what work on a legacy null stream waits for first.
    void flush_all() {
        std::vector<void*> all;
        {
            std::lock_guard lock(mutex_);
            for (const auto& [s, q] : queues_) all.push_back(s);
        }
        for (void* s : all) flush(s);
    }
    void* create_event() {
        std::lock_guard lock(mutex_);
        return reinterpret_cast<void*>(next_event_++);
    }
    void destroy_event(void* event) {
        std::lock_guard lock(mutex_);
        recorded_on_.erase(event);
    }
    void record(void* event, void* stream) {
        std::lock_guard lock(mutex_);
        recorded_on_[event] = stream;
    }
    [[nodiscard]] void* recorded_on(void* event) {
        std::lock_guard lock(mutex_);
        const auto found = recorded_on_.find(event);
        return found != recorded_on_.end() ? found->second : nullptr;
    }
    // Work enqueued on `stream` after this waits for the work of the event's stream.
    void wait(void* stream, void* event) {
        void* producer = recorded_on(event);
        if (producer != nullptr && producer != stream) enqueue(stream, [this, producer] { flush(producer); });
    }

private:
    std::shared_ptr<std::recursive_mutex> runner_of(void* stream) {
        std::lock_guard lock(mutex_);
        const auto r = runners_.find(stream);
        return r != runners_.end() ? r->second : nullptr;
    }
    // Runs the stream's next piece of work; false when there is none. The caller holds its runner lock.
    bool run_next(void* stream) {
        std::function<void()> next;
        {
            std::lock_guard lock(mutex_);
            auto q = queues_.find(stream);
            if (q == queues_.end() || q->second.empty()) return false;
            next = std::move(q->second.front());
            q->second.erase(q->second.begin());
        }
        next();
        return true;
    }

    std::mutex mutex_;
    uintptr_t next_stream_ = 0x2000;
    uintptr_t next_event_ = 0x300000;
    std::map<void*, std::vector<std::function<void()>>> queues_;
    std::map<void*, std::shared_ptr<std::recursive_mutex>> runners_;
    std::map<void*, void*> recorded_on_;
};

}  // namespace fake
