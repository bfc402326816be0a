// The device engine's result staging (issue 14 item 4; docs/cuda.md "Stream pipeline"): a batch's results leave
// the device through double-buffered staging, so that batch k's device-to-host copy runs while the host prepares
// and the device computes batch k+1, and batch k's rows reach the tracks' matrices only when batch k+1 has been
// queued (or at drain()).
//
// The logic (slots, rotation, delivery order, what an error leaves behind) is plain C++ here and runs on every
// backend; what differs is one small interface, CopyQueue:
//   CUDA (cuda/device_engine_backend.cu): pinned host buffers (cudaHostAlloc), a device-to-host stream and a
//     host-to-device stream (non-blocking), cudaMemcpyAsync, and events ordering them against the compute stream;
//   host backend: ordinary buffers and memcpy at once (HostCopyQueue); in the tests also DeferredCopyQueue, whose
//     device-to-host copies run only when waited for, as an asynchronous copy may, so that a delivery or a buffer
//     reuse that does not wait for its copy reads stale data in CI.
// C++17 (nvcc compiles it too); no CUDA header.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

namespace songlines::features::device_engine {

/// The backend's buffers and copies. "Compute order" is the order of the backend's compute work (CUDA: the legacy
/// default stream that Thrust, cuFFT and cuBLAS use here; host: program order).
class CopyQueue {
 public:
  virtual ~CopyQueue() = default;
  virtual void* alloc_host(size_t bytes) = 0;  ///< pinned on CUDA
  virtual void free_host(void* p) noexcept = 0;
  virtual void* alloc_device(size_t bytes) = 0;
  virtual void free_device(void* p) noexcept = 0;
  /// device -> device in compute order (after the compute work queued so far, before any queued later).
  virtual void device_to_device(void* dst, const void* src, size_t bytes) = 0;
  /// device -> host after the compute work queued so far; may return before the copy is done (CUDA).
  virtual void device_to_host(void* host, const void* device, size_t bytes) = 0;
  /// host -> device; the compute work queued after it waits for it, the host does not (CUDA): `host` must stay
  /// unchanged until a wait() on a later ticket.
  virtual void host_to_device(void* device, const void* host, size_t bytes) = 0;
  /// A ticket covering every copy (either direction) queued so far.
  virtual int64_t record() = 0;
  /// Blocks the host until the copies of `ticket` are done.
  virtual void wait(int64_t ticket) = 0;
  /// Blocks until every copy is done; never throws (destructors, error paths).
  virtual void wait_all() noexcept = 0;
};

/// The host backend's CopyQueue: ordinary memory, every copy done when it is queued.
class HostCopyQueue final : public CopyQueue {
 public:
  void* alloc_host(size_t bytes) override { return ::operator new(bytes > 0 ? bytes : 1); }
  void free_host(void* p) noexcept override { ::operator delete(p); }
  void* alloc_device(size_t bytes) override { return ::operator new(bytes > 0 ? bytes : 1); }
  void free_device(void* p) noexcept override { ::operator delete(p); }
  void device_to_device(void* dst, const void* src, size_t bytes) override { copy(dst, src, bytes); }
  void device_to_host(void* host, const void* device, size_t bytes) override { copy(host, device, bytes); }
  void host_to_device(void* device, const void* host, size_t bytes) override { copy(device, host, bytes); }
  int64_t record() override { return ++tickets_; }
  void wait(int64_t) override {}
  void wait_all() noexcept override {}

 private:
  static void copy(void* dst, const void* src, size_t bytes) {
    if (bytes > 0) std::memcpy(dst, src, bytes);
  }
  int64_t tickets_ = 0;
};

/// Tests: device_to_host copies are held back until a wait() covers them (then done in order), as an asynchronous
/// copy engine may. host_to_device copies are done at once (the compute that follows needs them), but an
/// asynchronous one may read its source any time until a wait() covers it: the source is kept and compared then,
/// and a source changed before that counts in stale_uploads and makes wait() throw std::logic_error. Everything
/// else as HostCopyQueue.
class DeferredCopyQueue final : public CopyQueue {
 public:
  void* alloc_host(size_t bytes) override { return host_.alloc_host(bytes); }
  void free_host(void* p) noexcept override { host_.free_host(p); }
  void* alloc_device(size_t bytes) override { return host_.alloc_device(bytes); }
  void free_device(void* p) noexcept override { host_.free_device(p); }
  void device_to_device(void* dst, const void* src, size_t bytes) override { host_.device_to_device(dst, src, bytes); }
  void device_to_host(void* host, const void* device, size_t bytes) override {
    held_.push_back({host, device, bytes, -1});
  }
  void host_to_device(void* device, const void* host, size_t bytes) override {
    host_.host_to_device(device, host, bytes);
    const char* p = static_cast<const char*>(host);
    uploads_.push_back({p, std::vector<char>(p, p + bytes), -1});
  }
  int64_t record() override {
    ++tickets_;
    for (Held& h : held_)
      if (h.ticket < 0) h.ticket = tickets_;
    for (Upload& u : uploads_)
      if (u.ticket < 0) u.ticket = tickets_;
    return tickets_;
  }
  void wait(int64_t ticket) override {
    const int64_t stale_before = stale_uploads;
    while (!uploads_.empty() && uploads_.front().ticket >= 0 && uploads_.front().ticket <= ticket) {
      check(uploads_.front());
      uploads_.pop_front();
    }
    if (stale_uploads != stale_before)
      throw std::logic_error("DeferredCopyQueue: an upload's source changed before a wait covered its copy");
    while (!held_.empty() && held_.front().ticket >= 0 && held_.front().ticket <= ticket) {
      const Held h = held_.front();
      held_.pop_front();
      if (h.bytes > 0) std::memcpy(h.host, h.device, h.bytes);
      ++copies_done;
    }
  }
  void wait_all() noexcept override {
    for (const Held& h : held_)
      if (h.bytes > 0) std::memcpy(h.host, h.device, h.bytes);
    copies_done += static_cast<int64_t>(held_.size());
    held_.clear();
    for (const Upload& u : uploads_) check(u);
    uploads_.clear();
  }
  /// device_to_host copies not yet done.
  size_t held() const { return held_.size(); }
  int64_t copies_done = 0;
  /// host_to_device copies whose source changed before a wait covered them (an asynchronous copy could have read
  /// the new bytes).
  int64_t stale_uploads = 0;

 private:
  struct Held {
    void* host;
    const void* device;
    size_t bytes;
    int64_t ticket;
  };
  struct Upload {
    const char* source;
    std::vector<char> bytes;  // the source when the copy was queued
    int64_t ticket;
  };
  void check(const Upload& u) noexcept {
    if (!u.bytes.empty() && std::memcmp(u.source, u.bytes.data(), u.bytes.size()) != 0) ++stale_uploads;
  }
  HostCopyQueue host_;
  std::deque<Held> held_;
  std::deque<Upload> uploads_;
  int64_t tickets_ = 0;
};

/// Double-buffered staging of batch results on their way to host rows:
///   begin(bytes)  opens the next slot (two slots, used in turn); a slot still holding an earlier batch delivers it
///                 first (waits for its copy, then copies the rows out), so batches are delivered in order;
///   add(...)      packs device results into the slot's device buffer, in compute order (the engine's buffers
///                 may then be overwritten by the next batch), and notes where the rows go;
///   end()         one device -> host copy of the slot into its host buffer (pinned on CUDA), asynchronous;
///   drain()       delivers every closed batch, oldest first (before the host reads the rows);
///   discard()     forgets the batches not delivered (after an error, when their destinations may be gone).
/// A batch whose begin() had no end() (its computation threw) is never delivered: the next begin(), drain() or
/// discard() drops it.
class StagedDownloads {
 public:
  explicit StagedDownloads(CopyQueue& queue) : queue_(queue) {}
  ~StagedDownloads() {
    queue_.wait_all();
    for (Slot& s : slots_) release(s);
  }
  StagedDownloads(const StagedDownloads&) = delete;
  StagedDownloads& operator=(const StagedDownloads&) = delete;

  void begin(size_t bytes) {
    drop_open();
    Slot& s = slots_[next_];
    if (s.state == State::kClosed) deliver(s);  // the older of the two: order is kept
    if (s.capacity < bytes) {
      const size_t capacity = std::max(bytes, s.capacity + s.capacity / 2);
      release(s);
      s.device = queue_.alloc_device(capacity);
      s.host = queue_.alloc_host(capacity);
      s.capacity = capacity;
    }
    s.state = State::kOpen;
    s.used = 0;
    s.limit = bytes;
    s.scatters.clear();
    s.order = ++batches_;
    open_ = next_;
    next_ ^= 1;
  }

  void add(const void* device, void* host_dst, size_t bytes) {
    if (open_ < 0) throw std::logic_error("StagedDownloads::add outside begin()/end()");
    Slot& s = slots_[open_];
    if (s.used + bytes > s.limit) throw std::logic_error("StagedDownloads::add past the bytes given to begin()");
    queue_.device_to_device(static_cast<char*>(s.device) + s.used, device, bytes);
    s.scatters.push_back({s.used, host_dst, bytes});
    s.used += bytes;
  }

  void end() {
    if (open_ < 0) throw std::logic_error("StagedDownloads::end without begin()");
    Slot& s = slots_[open_];
    queue_.device_to_host(s.host, s.device, s.used);
    s.ticket = queue_.record();
    s.state = State::kClosed;
    open_ = -1;
  }

  void drain() {
    drop_open();
    Slot* first = &slots_[0];
    Slot* second = &slots_[1];
    if (second->order < first->order) std::swap(first, second);
    for (Slot* s : {first, second})
      if (s->state == State::kClosed) deliver(*s);
  }

  void discard() noexcept {
    queue_.wait_all();  // no copy may still write into a buffer that is reused
    for (Slot& s : slots_) {
      s.state = State::kFree;
      s.scatters.clear();
    }
    open_ = -1;
  }

  /// Batches delivered so far (tests).
  int64_t delivered() const { return delivered_; }

 private:
  enum class State { kFree, kOpen, kClosed };
  struct Scatter {
    size_t offset;
    void* dst;
    size_t bytes;
  };
  struct Slot {
    void* host = nullptr;
    void* device = nullptr;
    size_t capacity = 0, used = 0, limit = 0;  // limit: the bytes given to begin()
    std::vector<Scatter> scatters;
    int64_t ticket = -1;
    uint64_t order = 0;
    State state = State::kFree;
  };

  void deliver(Slot& s) {
    queue_.wait(s.ticket);
    for (const Scatter& sc : s.scatters)
      if (sc.bytes > 0) std::memcpy(sc.dst, static_cast<const char*>(s.host) + sc.offset, sc.bytes);
    s.scatters.clear();
    s.state = State::kFree;
    ++delivered_;
  }
  void drop_open() {
    if (open_ < 0) return;
    slots_[open_].state = State::kFree;  // its packing copies are in compute order: nothing left in flight
    slots_[open_].scatters.clear();
    open_ = -1;
  }
  void release(Slot& s) noexcept {
    queue_.free_host(s.host);
    queue_.free_device(s.device);
    s.host = s.device = nullptr;
    s.capacity = 0;
  }

  CopyQueue& queue_;
  Slot slots_[2];
  int next_ = 0;   // the slot the next begin() takes
  int open_ = -1;  // the slot between begin() and end(), if any
  uint64_t batches_ = 0;
  int64_t delivered_ = 0;
};

/// Double-buffered staging of batch inputs on their way to the device: begin(bytes) opens the next of two slots
/// (host memory, pinned on CUDA), first waiting until that slot's previous upload is done; add() packs host data
/// into it; end(device) queues one host -> device copy of the slot, which the compute queued afterwards waits for.
/// So the host packs batch k+1 while batch k's upload may still be in flight from the other slot.
class StagedUploads {
 public:
  explicit StagedUploads(CopyQueue& queue) : queue_(queue) {}
  ~StagedUploads() {
    queue_.wait_all();
    for (Slot& s : slots_) queue_.free_host(s.host);
  }
  StagedUploads(const StagedUploads&) = delete;
  StagedUploads& operator=(const StagedUploads&) = delete;

  void begin(size_t bytes) {
    Slot& s = slots_[next_];
    if (s.ticket >= 0) queue_.wait(s.ticket);  // its previous upload has read it
    s.ticket = -1;
    if (s.capacity < bytes) {
      const size_t capacity = std::max(bytes, s.capacity + s.capacity / 2);
      queue_.free_host(s.host);
      s.host = nullptr;
      s.capacity = 0;
      s.host = queue_.alloc_host(capacity);
      s.capacity = capacity;
    }
    s.used = 0;
    s.limit = bytes;
    open_ = next_;
    next_ ^= 1;
  }
  /// Appends bytes from host memory to the open slot; returns their offset in it.
  size_t add(const void* host, size_t bytes) {
    if (open_ < 0) throw std::logic_error("StagedUploads::add outside begin()/end()");
    Slot& s = slots_[open_];
    if (s.used + bytes > s.limit) throw std::logic_error("StagedUploads::add past the bytes given to begin()");
    if (bytes > 0) std::memcpy(static_cast<char*>(s.host) + s.used, host, bytes);
    const size_t at = s.used;
    s.used += bytes;
    return at;
  }
  /// Queues the slot's bytes to `device` (room for them); the compute queued after this waits for the copy.
  void end(void* device) {
    if (open_ < 0) throw std::logic_error("StagedUploads::end without begin()");
    Slot& s = slots_[open_];
    queue_.host_to_device(device, s.host, s.used);
    s.ticket = queue_.record();
    open_ = -1;
  }

 private:
  struct Slot {
    void* host = nullptr;
    size_t capacity = 0, used = 0, limit = 0;
    int64_t ticket = -1;
  };
  CopyQueue& queue_;
  Slot slots_[2];
  int next_ = 0;
  int open_ = -1;
};

}  // namespace songlines::features::device_engine
