//===- Distributed.cpp - data-parallel dqt-train over Gloo ----------------===//
//
// The only file of the trainer that includes c10d's ProcessGroupGloo (and
// so Debian's gloo headers, which the PyPI wheel does not ship; the gloo
// code itself is in libtorch_cpu). Gloo's types stay opaque here: the
// trainer talks to ProcessGroup (Distributed.h).
//
//===----------------------------------------------------------------------===//

#include "Distributed.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace dqt::train {

namespace {

/// The message of `e` without LibTorch's C++ backtrace.
std::string message(const std::exception &e) {
  if (auto *c = dynamic_cast<const c10::Error *>(&e))
    return c->what_without_backtrace();
  return e.what();
}

int envInt(const char *name, std::optional<int> fallback) {
  const char *v = std::getenv(name);
  if (!v || !*v) {
    TORCH_CHECK(fallback, "dqt-train: ", name,
                " is not set (RANK and WORLD_SIZE are: a torchrun-style "
                "launch needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)");
    return *fallback;
  }
  char *end = nullptr;
  long x = std::strtol(v, &end, 10);
  TORCH_CHECK(*end == '\0' && x >= 0 && x < (1L << 20), "dqt-train: ", name,
              " must be a non-negative integer, got '", v, "'");
  return int(x);
}

} // namespace

std::optional<DistEnv> distEnvFromEnvironment() {
  if (!std::getenv("RANK") || !std::getenv("WORLD_SIZE"))
    return std::nullopt;
  DistEnv e;
  e.rank = envInt("RANK", std::nullopt);
  e.world = envInt("WORLD_SIZE", std::nullopt);
  e.localRank = envInt("LOCAL_RANK", e.rank);
  const char *addr = std::getenv("MASTER_ADDR");
  TORCH_CHECK(addr && *addr, "dqt-train: MASTER_ADDR is not set (RANK and "
                             "WORLD_SIZE are)");
  e.masterAddr = addr;
  e.masterPort = envInt("MASTER_PORT", std::nullopt);
  TORCH_CHECK(e.world >= 1 && e.rank < e.world && e.masterPort > 0 &&
                  e.masterPort < 65536,
              "dqt-train: RANK ", e.rank, ", WORLD_SIZE ", e.world,
              ", MASTER_PORT ", e.masterPort, " do not describe a group");
  // torchrun's agent already serves a store at MASTER_ADDR:MASTER_PORT and
  // says so; a second server there would fail to bind.
  const char *agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  e.agentStore = agent && std::string(agent) == "True";
  return e;
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

ProcessGroup::ProcessGroup(const DistEnv &env,
                           std::chrono::milliseconds timeout)
    : env_(env), impl_(std::make_unique<Impl>()) {
  // Gloo writes to sockets whose peer may have died: without this, a
  // surviving rank is killed by SIGPIPE (Python ignores it by default, a
  // C++ program must) instead of reporting the failure.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    c10d::TCPStoreOptions so;
    so.port = uint16_t(env.masterPort);
    so.isServer = env.rank == 0 && !env.agentStore;
    so.numWorkers = env.world;
    so.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(env.masterAddr, so);
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // Loopback when the store is local (the --nproc launcher, a one-node
    // torchrun); otherwise the interface that reaches the store's host.
    opts->devices.push_back(
        c10d::ProcessGroupGloo::createDeviceForHostname(env.masterAddr));
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank,
                                                            env.world, opts);
  } catch (const std::exception &e) {
    TORCH_CHECK(false, "dqt-train: rank ", env.rank, " of ", env.world,
                ": cannot join the process group at ", env.masterAddr, ":",
                env.masterPort, ": ", message(e));
  }
}

ProcessGroup::~ProcessGroup() = default;

namespace {

/// Waits for `work`, turning its failure into an error naming the rank and
/// the operation.
void waitFor(c10d::Work &work, int rank, int world, const std::string &what) {
  try {
    work.wait();
  } catch (const std::exception &e) {
    TORCH_CHECK(false, "dqt-train: rank ", rank, " of ", world, ": ", what,
                " failed (another rank died or stopped answering; see its "
                "output): ",
                message(e));
  }
}

} // namespace

void ProcessGroup::allReduceMean(const std::vector<at::Tensor> &tensors,
                                 const std::string &what,
                                 int64_t bucketElements) {
  // Buckets of consecutive tensors, flattened: a few large all-reduces
  // instead of one per parameter (each costs a round trip).
  std::vector<std::vector<at::Tensor>> buckets;
  int64_t filled = bucketElements;
  for (const at::Tensor &t : tensors) {
    TORCH_CHECK(t.scalar_type() == at::kFloat && t.is_contiguous(),
                "dqt-train: all-reduce of a ", t.scalar_type(),
                " tensor (f32 contiguous expected)");
    if (filled + t.numel() > bucketElements && filled > 0) {
      buckets.emplace_back();
      filled = 0;
    }
    buckets.back().push_back(t);
    filled += t.numel();
  }
  std::vector<at::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  try {
    for (auto &bucket : buckets) {
      std::vector<at::Tensor> parts;
      for (const at::Tensor &t : bucket)
        parts.push_back(t.reshape(-1));
      // On the CPU: Gloo reduces host memory (a CUDA run's gradients are
      // copied over and back).
      std::vector<at::Tensor> flat{at::cat(parts).cpu()};
      works.push_back(impl_->pg->allreduce(flat));
      flats.push_back(flat[0]);
    }
  } catch (const std::exception &e) {
    TORCH_CHECK(false, "dqt-train: rank ", rank(), " of ", world(), ": ", what,
                " failed: ", message(e));
  }
  for (size_t b = 0; b < buckets.size(); ++b) {
    waitFor(*works[b], rank(), world(), what);
    // Sum, then divide: Gloo has no AVG. Every rank divides the same sum, so
    // the replicas stay bit-identical.
    flats[b].div_(double(world()));
    int64_t offset = 0;
    for (const at::Tensor &t : buckets[b]) {
      t.copy_(flats[b].narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

std::vector<uint64_t> ProcessGroup::allGather(uint64_t value,
                                              const std::string &what) {
  std::vector<at::Tensor> in{at::empty({1}, at::kLong)};
  std::memcpy(in[0].data_ptr(), &value, sizeof(value));
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < world(); ++r)
    out[0].push_back(at::empty({1}, at::kLong));
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = impl_->pg->allgather(out, in);
  } catch (const std::exception &e) {
    TORCH_CHECK(false, "dqt-train: rank ", rank(), " of ", world(), ": ", what,
                " failed: ", message(e));
  }
  waitFor(*work, rank(), world(), what);
  std::vector<uint64_t> values(world());
  for (int r = 0; r < world(); ++r)
    std::memcpy(&values[r], out[0][r].data_ptr(), sizeof(uint64_t));
  return values;
}

void ProcessGroup::barrier(const std::string &what,
                           std::chrono::milliseconds timeout) {
  c10d::BarrierOptions opts;
  opts.timeout = timeout;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = impl_->pg->barrier(opts);
  } catch (const std::exception &e) {
    TORCH_CHECK(false, "dqt-train: rank ", rank(), " of ", world(), ": ", what,
                " failed: ", message(e));
  }
  waitFor(*work, rank(), world(), what);
}

namespace {

/// A port on 127.0.0.1 that was free a moment ago (the kernel's choice).
/// Rank 0's store binds it shortly after; another program taking it in
/// between makes the rendezvous fail with a clear error.
int freeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  TORCH_CHECK(fd >= 0, "dqt-train: socket: ", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0;
  int err = errno;
  ::close(fd);
  TORCH_CHECK(ok, "dqt-train: cannot find a free port on 127.0.0.1: ",
              std::strerror(err));
  return ntohs(a.sin_port);
}

std::string describeStatus(int status) {
  if (WIFEXITED(status))
    return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  return "stopped";
}

} // namespace

int launchRanks(int nproc, int argc, char **argv) {
  (void)argc;
  int port = freeLoopbackPort();
  pid_t parent = ::getpid();
  std::vector<pid_t> pids(nproc, -1);
  std::fflush(stdout);
  std::fflush(stderr);
  for (int r = 0; r < nproc; ++r) {
    pid_t pid = ::fork();
    TORCH_CHECK(pid >= 0, "dqt-train: fork: ", std::strerror(errno));
    if (pid == 0) {
      // A rank must not outlive the launcher (killed by a test's timeout, a
      // job scheduler): it would hold the port and keep computing.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent)
        ::_exit(1);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::unsetenv("TORCHELASTIC_USE_AGENT_STORE");
      ::execv("/proc/self/exe", argv);
      std::fprintf(stderr, "dqt-train: rank %d: exec: %s\n", r,
                   std::strerror(errno));
      ::_exit(127);
    }
    pids[r] = pid;
  }

  auto rankOf = [&](pid_t pid) {
    for (int r = 0; r < nproc; ++r)
      if (pids[r] == pid)
        return r;
    return -1;
  };
  int running = nproc;
  std::string failure;
  using Clock = std::chrono::steady_clock;
  Clock::time_point failedAt;
  bool termSent = false, killSent = false;
  while (running > 0) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, failure.empty() ? 0 : WNOHANG);
    if (pid < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (pid > 0) {
      int r = rankOf(pid);
      if (r < 0)
        continue;
      pids[r] = -1;
      --running;
      bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (!ok && failure.empty()) {
        failure = "rank " + std::to_string(r) + " " + describeStatus(status);
        failedAt = Clock::now();
        if (running > 0)
          std::fprintf(stderr, "dqt-train: %s; stopping the other ranks\n",
                       failure.c_str());
      }
      continue;
    }
    // A rank failed and others still run. They normally fail on their own
    // within milliseconds (their next collective finds the peer gone) and
    // say why; one that does not (busy, or waiting on a hung peer) is
    // terminated after a grace period, then killed.
    double waited =
        std::chrono::duration<double>(Clock::now() - failedAt).count();
    if (!termSent && waited > 3) {
      for (pid_t p : pids)
        if (p > 0)
          ::kill(p, SIGTERM);
      termSent = true;
    }
    if (!killSent && waited > 10) {
      for (pid_t p : pids)
        if (p > 0)
          ::kill(p, SIGKILL);
      killSent = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (failure.empty())
    return 0;
  std::fprintf(stderr, "error: dqt-train --nproc %d failed: %s\n", nproc,
               failure.c_str());
  return 1;
}

} // namespace dqt::train
