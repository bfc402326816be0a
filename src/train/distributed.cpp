#include "train/distributed.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include <torch/version.h>

#if SONGLINES_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if SONGLINES_HAVE_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#endif

namespace songlines::train {

namespace {

// libtorch 2.x splits a process group into ProcessGroup and its Backend (ProcessGroupGloo/NCCL are Backends);
// in 1.13 they are ProcessGroups. Both have the collectives used here with the same signatures.
#if TORCH_VERSION_MAJOR >= 2
using BackendBase = c10d::Backend;
#else
using BackendBase = c10d::ProcessGroup;
#endif

int parse_int(const std::string& name, const std::string& value, int lo, int hi) {
  const std::string range = " in " + std::to_string(lo) + ".." + std::to_string(hi);
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || end != value.c_str() + value.size() || errno == ERANGE || v < lo || v > hi)
    throw ConfigError(name + ": expected an integer" + range + ", got \"" + value + "\"");
  return static_cast<int>(v);
}

std::string required(const EnvLookup& env, const std::string& name, const std::string& why) {
  auto v = env(name);
  if (!v || v->empty()) throw ConfigError(name + ": not set (" + why + ")");
  return *v;
}

constexpr int kMaxWorld = 1 << 20;
constexpr int kMaxPort = 65535;

// Splits at commas outside brackets; ConfigError on unbalanced brackets or an empty item.
std::vector<std::string> split_top_level(const std::string& list) {
  auto bad = [&](const std::string& why) { return ConfigError("SLURM_JOB_NODELIST: " + why + " in \"" + list + "\""); };
  std::vector<std::string> items;
  std::string cur;
  int depth = 0;
  for (char c : list) {
    if (c == '[' && ++depth > 1) throw bad("nested '['");
    if (c == ']' && --depth < 0) throw bad("']' without '['");
    if (c == ',' && depth == 0) {
      if (cur.empty()) throw bad("an empty host name");
      items.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (depth != 0) throw bad("'[' without ']'");
  if (cur.empty()) throw bad("an empty host name");
  items.push_back(cur);
  return items;
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

void expand_item(const std::string& item, const std::string& list, std::vector<std::string>& out) {
  const auto lb = item.find('[');
  if (lb == std::string::npos) {
    out.push_back(item);
    return;
  }
  const auto rb = item.find(']', lb);
  const std::string prefix = item.substr(0, lb), inner = item.substr(lb + 1, rb - lb - 1);
  std::vector<std::string> rest;
  expand_item(item.substr(rb + 1), list, rest);
  auto bad = [&](const std::string& why) { return ConfigError("SLURM_JOB_NODELIST: " + why + " in \"" + list + "\""); };
  size_t start = 0;
  while (start <= inner.size()) {
    const auto comma = inner.find(',', start);
    const std::string range = inner.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto dash = range.find('-');
    const std::string lo = range.substr(0, dash), hi = dash == std::string::npos ? lo : range.substr(dash + 1);
    if (!all_digits(lo) || !all_digits(hi) || lo.size() > 9 || hi.size() > 9)
      throw bad("\"[" + inner + "]\" is not a list of numbers and ranges a-b");
    const long a = std::stol(lo), b = std::stol(hi);
    if (a > b) throw bad("the range " + range + " runs backwards");
    for (long v = a; v <= b; ++v) {
      std::string num = std::to_string(v);
      if (num.size() < lo.size()) num.insert(0, lo.size() - num.size(), '0');  // node[01-04]: keep the width
      for (const auto& r : rest) out.push_back(prefix + num + r);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
}

std::string first_line(const std::exception& e) {
  const auto* ce = dynamic_cast<const c10::Error*>(&e);
  std::string s = ce ? ce->what_without_backtrace() : e.what();
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// Every tensor (one dtype) in one contiguous 1-D buffer on device, so that one collective moves them all; and back.
torch::Tensor flatten(const std::vector<torch::Tensor>& tensors, const torch::Device& device) {
  std::vector<torch::Tensor> flat;
  for (const auto& t : tensors) flat.push_back(t.reshape(-1));
  return torch::cat(flat).to(device).contiguous();
}

void unflatten(const torch::Tensor& buf, std::vector<torch::Tensor>& tensors) {
  int64_t off = 0;
  for (auto& t : tensors) {
    t.copy_(buf.slice(0, off, off + t.numel()).view(t.sizes()));
    off += t.numel();
  }
}

std::mutex g_group_mutex;
std::shared_ptr<DistributedGroup> g_group;

}  // namespace

LaunchEnvironment parse_launch_environment(const EnvLookup& env) {
  LaunchEnvironment out;
  if (auto t = env("SONGLINES_COLLECTIVE_TIMEOUT"); t && !t->empty())
    out.timeout_s = parse_int("SONGLINES_COLLECTIVE_TIMEOUT", *t, 1, 7 * 24 * 3600);
  if (auto ws = env("WORLD_SIZE"); ws && !ws->empty()) {  // torchrun (or any env:// launcher)
    out.launcher = "torchrun";
    out.world_size = parse_int("WORLD_SIZE", *ws, 1, kMaxWorld);
    out.rank = parse_int("RANK", required(env, "RANK", "WORLD_SIZE is set"), 0, out.world_size - 1);
    auto lr = env("LOCAL_RANK");
    out.local_rank = lr && !lr->empty() ? parse_int("LOCAL_RANK", *lr, 0, out.world_size - 1) : 0;
    if (out.distributed()) {
      out.master_addr = required(env, "MASTER_ADDR", "WORLD_SIZE is " + *ws);
      out.master_port =
          parse_int("MASTER_PORT", required(env, "MASTER_PORT", "WORLD_SIZE is " + *ws), 1, kMaxPort);
    }
    return out;
  }
  if (auto pid = env("SLURM_PROCID"); pid && !pid->empty()) {  // a task of srun
    out.launcher = "slurm";
    out.world_size = parse_int("SLURM_NTASKS", required(env, "SLURM_NTASKS", "SLURM_PROCID is set"), 1, kMaxWorld);
    out.rank = parse_int("SLURM_PROCID", *pid, 0, out.world_size - 1);
    auto lid = env("SLURM_LOCALID");
    out.local_rank = lid && !lid->empty() ? parse_int("SLURM_LOCALID", *lid, 0, out.world_size - 1) : 0;
    if (out.distributed()) {
      if (auto a = env("MASTER_ADDR"); a && !a->empty()) {
        out.master_addr = *a;
      } else {
        out.master_addr = expand_slurm_nodelist(required(env, "SLURM_JOB_NODELIST", "rank 0's host")).front();
      }
      if (auto p = env("MASTER_PORT"); p && !p->empty()) {
        out.master_port = parse_int("MASTER_PORT", *p, 1, kMaxPort);
      } else if (auto job = env("SLURM_JOB_ID"); job && !job->empty()) {
        // One port per job, so two jobs sharing a first node do not meet (the convention of many Slurm recipes).
        out.master_port = 20000 + parse_int("SLURM_JOB_ID", *job, 0, 2147483647) % 20000;
      } else {
        throw ConfigError("MASTER_PORT: not set, and no SLURM_JOB_ID to derive it from");
      }
    }
  }
  return out;
}

LaunchEnvironment launch_environment() {
  return parse_launch_environment([](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  });
}

std::vector<std::string> expand_slurm_nodelist(const std::string& list) {
  std::vector<std::string> out;
  for (const auto& item : split_top_level(list)) expand_item(item, list, out);
  return out;
}

std::string to_string(CollectiveBackend b) { return b == CollectiveBackend::kNccl ? "nccl" : "gloo"; }

bool gloo_available() { return SONGLINES_HAVE_GLOO != 0; }
bool nccl_available() { return SONGLINES_HAVE_NCCL != 0; }

struct DistributedGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<BackendBase> pg;
  torch::Device device{torch::kCPU};  // where collective buffers live
  std::chrono::milliseconds timeout{0};
};

DistributedGroup::DistributedGroup(LaunchEnvironment env, CollectiveBackend backend, std::unique_ptr<Impl> impl)
    : env_(std::move(env)), backend_(backend), impl_(std::move(impl)) {}

DistributedGroup::~DistributedGroup() = default;

std::shared_ptr<DistributedGroup> DistributedGroup::join(const LaunchEnvironment& env, const torch::Device& device) {
  if (!env.distributed()) throw UsageError("distributed: world size 1 needs no process group");
  const std::string who = "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size);
  const std::string at = env.master_addr + ":" + std::to_string(env.master_port);
  const CollectiveBackend backend =
      device.is_cuda() && nccl_available() ? CollectiveBackend::kNccl : CollectiveBackend::kGloo;
  if (backend == CollectiveBackend::kGloo && !gloo_available())
    throw UsageError("distributed: this build has no Gloo (the c10d CPU engine): install Debian's libgloo-dev and "
                     "rebuild (scripts/setup.sh), or run one process");
  auto impl = std::make_unique<Impl>();
  impl->timeout = std::chrono::seconds(env.timeout_s);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = impl->timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    if (backend == CollectiveBackend::kNccl) {
#if SONGLINES_HAVE_NCCL
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(env.local_rank % c10::cuda::device_count()));
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = impl->timeout;
      impl->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, o);
      impl->device = torch::Device(torch::kCUDA, c10::cuda::current_device());
#endif
    } else {
#if SONGLINES_HAVE_GLOO
      auto o = c10d::ProcessGroupGloo::Options::create(impl->timeout);
      // The address the other ranks reach this one at: GLOO_SOCKET_IFNAME's interface (as in PyTorch), loopback
      // for a job on one machine, else this host's name.
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (is_loopback(env.master_addr))
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      impl->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, o);
#endif
    }
  } catch (const std::exception& e) {
    // The store's server waits for every rank to connect, then each process group meets every other rank
    // through it; a rank that never starts shows up in either step.
    throw CollectiveError("distributed: rendezvous at " + at + " (" + env.launcher + ", " + to_string(backend) +
                          ") failed on " + who + " (timeout " + std::to_string(env.timeout_s) + " s): " + first_line(e) +
                          ". Every rank must start, and reach MASTER_ADDR:MASTER_PORT, within the timeout "
                          "(SONGLINES_COLLECTIVE_TIMEOUT)");
  }
  return std::shared_ptr<DistributedGroup>(new DistributedGroup(env, backend, std::move(impl)));
}

void DistributedGroup::collective(const std::string& op, const std::string& what, const std::function<void()>& body,
                                  int timeout_s) {
  try {
    body();
  } catch (const std::exception& e) {
    throw CollectiveError("distributed: " + op + " of " + what + " failed on rank " + std::to_string(rank()) +
                          " of " + std::to_string(world_size()) + " (" + to_string(backend_) + ", timeout " +
                          std::to_string(timeout_s > 0 ? timeout_s : env_.timeout_s) + " s): " + first_line(e) +
                          ". Another rank has died, hung longer than the timeout (SONGLINES_COLLECTIVE_TIMEOUT), "
                          "or cannot be reached; see its log");
  }
}

void DistributedGroup::all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what) {
  if (tensors.empty()) return;
  std::vector<torch::Tensor> buf{flatten(tensors, impl_->device)};
  collective("all-reduce", what, [&] {
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    impl_->pg->allreduce(buf, o)->wait(impl_->timeout);
  });
  unflatten(buf[0], tensors);
}

void DistributedGroup::broadcast(std::vector<torch::Tensor>& tensors, const std::string& what) {
  if (tensors.empty()) return;
  std::vector<torch::Tensor> buf{flatten(tensors, impl_->device)};
  collective("broadcast", what, [&] {
    c10d::BroadcastOptions o;
    o.rootRank = 0;
    impl_->pg->broadcast(buf, o)->wait(impl_->timeout);
  });
  unflatten(buf[0], tensors);
}

std::string DistributedGroup::broadcast_bytes(const std::string& bytes, const std::string& what) {
  std::vector<torch::Tensor> size{torch::tensor({static_cast<int64_t>(rank() == 0 ? bytes.size() : 0)}, torch::kLong)};
  broadcast(size, what + " (size)");
  const int64_t n = size[0].item<int64_t>();
  if (n == 0) return {};
  std::vector<torch::Tensor> data{torch::empty({n}, torch::kUInt8)};
  if (rank() == 0) std::memcpy(data[0].data_ptr<uint8_t>(), bytes.data(), static_cast<size_t>(n));
  broadcast(data, what);
  auto cpu = data[0].to(torch::kCPU).contiguous();
  return std::string(reinterpret_cast<const char*>(cpu.data_ptr<uint8_t>()), static_cast<size_t>(n));
}

bool DistributedGroup::broadcast_flag(bool value, const std::string& what) {
  std::vector<torch::Tensor> t{torch::tensor({value ? 1 : 0}, torch::kInt)};
  broadcast(t, what);
  return t[0].item<int>() != 0;
}

double DistributedGroup::all_reduce_sum(double value, const std::string& what) {
  std::vector<torch::Tensor> t{torch::tensor({value}, torch::kFloat64)};
  all_reduce_sum(t, what);
  return t[0].item<double>();
}

std::vector<std::string> DistributedGroup::all_gather_bytes(const std::string& bytes, const std::string& what) {
  // Each rank fills its own row of a zeroed [world, longest] table; a sum over the ranks is then the gathered table.
  const int64_t world = world_size(), me = rank();
  std::vector<torch::Tensor> sizes{torch::zeros({world}, torch::kLong)};
  sizes[0][me] = static_cast<int64_t>(bytes.size());
  all_reduce_sum(sizes, what + " (sizes)");
  const auto size = sizes[0].contiguous();
  const int64_t* n = size.data_ptr<int64_t>();
  const int64_t longest = *std::max_element(n, n + world);
  std::vector<std::string> out(static_cast<size_t>(world));
  if (longest == 0) return out;
  std::vector<torch::Tensor> table{torch::zeros({world, longest}, torch::kInt)};  // int32: Gloo sums it everywhere
  {
    auto row = table[0][me];
    int32_t* dst = row.data_ptr<int32_t>();
    for (size_t i = 0; i < bytes.size(); ++i) dst[i] = static_cast<unsigned char>(bytes[i]);
  }
  all_reduce_sum(table, what);
  const auto cpu = table[0].to(torch::kCPU).contiguous();
  for (int64_t r = 0; r < world; ++r) {
    const int32_t* src = cpu.data_ptr<int32_t>() + r * longest;
    out[static_cast<size_t>(r)].resize(static_cast<size_t>(n[r]));
    for (int64_t i = 0; i < n[r]; ++i) out[static_cast<size_t>(r)][static_cast<size_t>(i)] = static_cast<char>(src[i]);
  }
  return out;
}

void DistributedGroup::barrier(const std::string& what, int timeout_s) {
  const std::chrono::milliseconds timeout = timeout_s > 0 ? std::chrono::milliseconds(std::chrono::seconds(timeout_s))
                                                          : impl_->timeout;
  collective("barrier", what, [&] {
    c10d::BarrierOptions o;
    o.timeout = timeout;
    impl_->pg->barrier(o)->wait(timeout);
  }, timeout_s);
}

DistributedGroup* current_group() {
  std::lock_guard<std::mutex> lock(g_group_mutex);
  return g_group.get();
}

void set_current_group(std::shared_ptr<DistributedGroup> group) {
  std::lock_guard<std::mutex> lock(g_group_mutex);
  g_group = std::move(group);
}

bool is_writer_rank() {
  const DistributedGroup* g = current_group();
  return !g || g->rank() == 0;
}

void broadcast_module(DistributedGroup& group, torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> tensors;
  for (auto& p : module.parameters()) tensors.push_back(p.data());
  for (auto& b : module.buffers()) tensors.push_back(b.data());
  // One broadcast per dtype (cat needs one); models here are float32 with perhaps integer buffers.
  std::map<c10::ScalarType, std::vector<torch::Tensor>> by_type;
  for (auto& t : tensors) by_type[t.scalar_type()].push_back(t);
  for (auto& [type, group_tensors] : by_type) group.broadcast(group_tensors, "the model's parameters");
}

void all_reduce_gradients(DistributedGroup& group, const std::vector<torch::Tensor>& params, double weight) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  std::vector<bool> had;
  for (const auto& p : params) {
    had.push_back(p.grad().defined());
    grads.push_back(p.grad().defined() ? p.grad().mul(weight) : torch::zeros_like(p));
  }
  group.all_reduce_sum(grads, "gradients");
  for (size_t i = 0; i < params.size(); ++i) {
    auto p = params[i];
    // A parameter no rank used keeps no gradient (Adam then skips it, as in one process).
    if (!had[i] && grads[i].abs().max().item<double>() == 0) continue;
    if (!had[i]) p.mutable_grad() = torch::zeros_like(p);
    p.mutable_grad().copy_(grads[i]);
  }
}

}  // namespace songlines::train
