// The launch environment of data-parallel training (torchrun's and Slurm's variables, Slurm host lists, bad
// values), and the c10d collectives themselves between two process groups of this process on 127.0.0.1.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "support/loopback_port.h"
#include "support/test_support.h"
#include "train/distributed.h"

namespace songlines::train {
namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

// A ConfigError whose message names the variable and holds the given text.
void expect_config_error(const std::map<std::string, std::string>& vars, const std::string& variable,
                         const std::string& text) {
  try {
    parse_launch_environment(env_of(vars));
    FAIL() << "no error for " << variable;
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(variable + ":", 0), 0u) << what;
    EXPECT_NE(what.find(text), std::string::npos) << what;
  }
}

TEST(LaunchEnvironment, NoLauncherIsOneProcess) {
  auto env = parse_launch_environment(env_of({}));
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.rank, 0);
  EXPECT_FALSE(env.distributed());
  EXPECT_EQ(env.launcher, "none");
  EXPECT_EQ(env.timeout_s, kDefaultCollectiveTimeoutS);
}

TEST(LaunchEnvironment, ReadsTorchrunsVariables) {
  auto env = parse_launch_environment(env_of({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "1"},
                                              {"MASTER_ADDR", "10.0.0.7"}, {"MASTER_PORT", "29500"},
                                              {"SONGLINES_COLLECTIVE_TIMEOUT", "42"}}));
  EXPECT_EQ(env.launcher, "torchrun");
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_addr, "10.0.0.7");
  EXPECT_EQ(env.master_port, 29500);
  EXPECT_EQ(env.timeout_s, 42);
  // torchrun inside a Slurm allocation: torchrun's variables win.
  auto both = parse_launch_environment(env_of({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "a"},
                                               {"MASTER_PORT", "1234"}, {"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}}));
  EXPECT_EQ(both.launcher, "torchrun");
  EXPECT_EQ(both.world_size, 2);
  // A world of one needs no rendezvous address.
  EXPECT_EQ(parse_launch_environment(env_of({{"WORLD_SIZE", "1"}, {"RANK", "0"}})).world_size, 1);
}

TEST(LaunchEnvironment, ReadsSlurmsVariablesAndTheFirstNodeOfTheJob) {
  auto env = parse_launch_environment(env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                                              {"SLURM_JOB_NODELIST", "gpu[07-08,11],login2"},
                                              {"SLURM_JOB_ID", "123456"}}));
  EXPECT_EQ(env.launcher, "slurm");
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_addr, "gpu07");
  EXPECT_EQ(env.master_port, 20000 + 123456 % 20000);
  // MASTER_ADDR / MASTER_PORT exported by the job script win over the derived ones.
  auto exported = parse_launch_environment(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"},
                                                   {"SLURM_JOB_NODELIST", "n[1-2]"}, {"MASTER_ADDR", "n2"},
                                                   {"MASTER_PORT", "4000"}}));
  EXPECT_EQ(exported.master_addr, "n2");
  EXPECT_EQ(exported.master_port, 4000);
}

TEST(LaunchEnvironment, BadValuesAreConfigErrorsNamingTheVariable) {
  const std::map<std::string, std::string> ok{{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "h"},
                                              {"MASTER_PORT", "29500"}};
  auto with = [&](const std::string& k, const std::string& v) {
    auto m = ok;
    if (v.empty()) m.erase(k); else m[k] = v;
    return m;
  };
  expect_config_error(with("WORLD_SIZE", "two"), "WORLD_SIZE", "got \"two\"");
  expect_config_error(with("WORLD_SIZE", "0"), "WORLD_SIZE", "got \"0\"");
  expect_config_error(with("RANK", "2"), "RANK", "in 0..1, got \"2\"");
  expect_config_error(with("RANK", "-1"), "RANK", "got \"-1\"");
  expect_config_error(with("RANK", "1x"), "RANK", "got \"1x\"");
  expect_config_error(with("RANK", ""), "RANK", "not set");
  expect_config_error(with("LOCAL_RANK", "9"), "LOCAL_RANK", "got \"9\"");
  expect_config_error(with("MASTER_ADDR", ""), "MASTER_ADDR", "not set");
  expect_config_error(with("MASTER_PORT", "70000"), "MASTER_PORT", "in 1..65535, got \"70000\"");
  expect_config_error(with("SONGLINES_COLLECTIVE_TIMEOUT", "0"), "SONGLINES_COLLECTIVE_TIMEOUT", "got \"0\"");
  expect_config_error({{"SLURM_PROCID", "0"}}, "SLURM_NTASKS", "not set");
  expect_config_error({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}}, "SLURM_PROCID", "in 0..3, got \"4\"");
  expect_config_error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_ID", "1"}}, "SLURM_JOB_NODELIST",
                      "not set");
  expect_config_error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "n[3-1]"}},
                      "SLURM_JOB_NODELIST", "runs backwards");
  expect_config_error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "n1"}}, "MASTER_PORT",
                      "SLURM_JOB_ID");
}

TEST(SlurmNodelist, ExpandsRangesListsAndPadding) {
  using V = std::vector<std::string>;
  EXPECT_EQ(expand_slurm_nodelist("node[01-04,07]"), (V{"node01", "node02", "node03", "node04", "node07"}));
  EXPECT_EQ(expand_slurm_nodelist("login1"), (V{"login1"}));
  EXPECT_EQ(expand_slurm_nodelist("a1,b[2-3],c"), (V{"a1", "b2", "b3", "c"}));
  EXPECT_EQ(expand_slurm_nodelist("rack[1-2]-n[8-9]"), (V{"rack1-n8", "rack1-n9", "rack2-n8", "rack2-n9"}));
  EXPECT_EQ(expand_slurm_nodelist("gpu[9-11]"), (V{"gpu9", "gpu10", "gpu11"}));
  for (const std::string bad : {"node[01-", "node]1", "n[[1]]", "a,,b", "", "n[1-x]", "n[]", "n[4-2]"}) {
    try {
      expand_slurm_nodelist(bad);
      ADD_FAILURE() << "no error for \"" << bad << "\"";
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("SLURM_JOB_NODELIST: ", 0), 0u) << e.what();
    }
  }
}

LaunchEnvironment loopback(int rank, int port, int timeout_s) {
  LaunchEnvironment e;
  e.world_size = 2;
  e.rank = rank;
  e.local_rank = rank;
  e.master_addr = "127.0.0.1";
  e.master_port = port;
  e.launcher = "test";
  e.timeout_s = timeout_s;
  return e;
}

TEST(DistributedGroup, GradientsAverageParametersAndBytesComeFromRankZero) {
  if (!gloo_available()) GTEST_SKIP() << "built without Gloo";
  const int port = testing::free_tcp_port();
  // Rank r: a linear layer seeded differently (rank 0's weights must win), gradient (r+1) * 1, weight 1/4 and 3/4
  // (rank 0 had 1 row of a 4-row batch, rank 1 had 3): averaged gradient = 1/4 * 1 + 3/4 * 2 = 1.75.
  std::mutex init_mutex;
  auto body = [&](int rank, std::vector<float>* weights, std::vector<float>* grad, std::string* bytes) {
    auto group = DistributedGroup::join(loopback(rank, port, 30), torch::kCPU);
    // The two ranks are threads of one process sharing torch's global generator: seeding and drawing the
    // initial weights is one step under a lock, or the threads' draws interleave.
    torch::nn::Linear lin(nullptr);
    {
      const std::lock_guard<std::mutex> lock(init_mutex);
      torch::manual_seed(100 + rank);
      lin = torch::nn::Linear(3, 2);
    }
    broadcast_module(*group, *lin);
    for (auto& p : lin->parameters()) p.mutable_grad() = torch::full_like(p, rank + 1.0);
    all_reduce_gradients(*group, lin->parameters(), rank == 0 ? 0.25 : 0.75);
    auto w = lin->weight.detach().contiguous();
    weights->assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
    auto g = lin->weight.grad().contiguous();
    grad->assign(g.data_ptr<float>(), g.data_ptr<float>() + g.numel());
    *bytes = group->broadcast_bytes(rank == 0 ? std::string("rank zero\0bytes", 15) : "other", "a test record");
  };
  std::vector<float> w0, w1, g0, g1;
  std::string b0, b1;
  std::thread other([&] { body(1, &w1, &g1, &b1); });
  body(0, &w0, &g0, &b0);
  other.join();
  torch::manual_seed(100);
  torch::nn::Linear expected(3, 2);
  auto we = expected->weight.detach().contiguous();
  EXPECT_EQ(w0, std::vector<float>(we.data_ptr<float>(), we.data_ptr<float>() + we.numel()));
  EXPECT_EQ(w1, w0);
  for (float g : g0) EXPECT_FLOAT_EQ(g, 1.75f);
  EXPECT_EQ(g1, g0);
  EXPECT_EQ(b0, std::string("rank zero\0bytes", 15));
  EXPECT_EQ(b1, b0);
}

TEST(DistributedGroup, AllGatherBytesGivesEveryRanksBytesInRankOrderAndABarrierWaitsForAll) {
  if (!gloo_available()) GTEST_SKIP() << "built without Gloo";
  const int port = testing::free_tcp_port();
  // Different lengths, a zero byte and bytes >= 0x80 (signed char) must come back as they were.
  const std::vector<std::string> sent{std::string("r0\0\xff", 4), "rank one, longer"};
  std::vector<std::string> got0, got1;
  std::chrono::steady_clock::time_point left1;
  std::thread other([&] {
    auto group = DistributedGroup::join(loopback(1, port, 30), torch::kCPU);
    got1 = group->all_gather_bytes(sent[1], "a test record");
    group->barrier("a test barrier");
    left1 = std::chrono::steady_clock::now();
  });
  auto group = DistributedGroup::join(loopback(0, port, 30), torch::kCPU);
  got0 = group->all_gather_bytes(sent[0], "a test record");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto entered0 = std::chrono::steady_clock::now();
  group->barrier("a test barrier", 60);
  other.join();
  EXPECT_EQ(got0, sent);
  EXPECT_EQ(got1, sent);
  EXPECT_GE(left1, entered0) << "rank 1 left the barrier before rank 0 entered it";
}

TEST(DistributedGroup, ACollectiveWithADeadRankIsAnErrorNamingTheRank) {
  if (!gloo_available()) GTEST_SKIP() << "built without Gloo";
  const int port = testing::free_tcp_port();
  std::thread other([&] {
    auto group = DistributedGroup::join(loopback(1, port, 5), torch::kCPU);
    // Leaves without taking part in the collective below: its sockets close as a dead process's would.
  });
  auto group = DistributedGroup::join(loopback(0, port, 5), torch::kCPU);
  other.join();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<torch::Tensor> t{torch::ones({4})};
  try {
    group->all_reduce_sum(t, "gradients");
    FAIL() << "the all-reduce succeeded without rank 1";
  } catch (const CollectiveError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("all-reduce of gradients failed on rank 0 of 2 (gloo, timeout 5 s)"), std::string::npos)
        << what;
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
}

TEST(DistributedGroup, ARankThatNeverComesEndsTheRendezvousAtTheTimeout) {
  if (!gloo_available()) GTEST_SKIP() << "built without Gloo";
  const auto t0 = std::chrono::steady_clock::now();
  try {
    DistributedGroup::join(loopback(0, testing::free_tcp_port(), 2), torch::kCPU);
    FAIL() << "joined a world of 2 alone";
  } catch (const CollectiveError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("rendezvous at 127.0.0.1:"), std::string::npos) << what;
    EXPECT_NE(what.find("failed on rank 0 of 2 (timeout 2 s)"), std::string::npos) << what;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(secs, 1.5);
  EXPECT_LT(secs, 30.0);
}

}  // namespace
}  // namespace songlines::train
