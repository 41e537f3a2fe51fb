//===- Distributed.h - data-parallel dqt-train over Gloo --------*- C++ -*-===//
//
// `dqt-train --nproc N`: N processes on this machine, each a replica of the
// whole run, joined by c10d's ProcessGroupGloo (LibTorch) over loopback with
// a TCP store; or the processes torchrun started (RANK, WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT). Only Distributed.cpp includes the c10d and gloo
// headers: the rest of the trainer sees this interface (docs/design.md,
// "Data parallel").
//
//===----------------------------------------------------------------------===//

#ifndef DQT_TRAIN_DISTRIBUTED_H
#define DQT_TRAIN_DISTRIBUTED_H

#include <ATen/Tensor.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dqt::train {

/// Where this process stands in a data-parallel run.
struct DistEnv {
  int rank = 0, world = 1, localRank = 0;
  std::string masterAddr = "127.0.0.1";
  int masterPort = 0;
  /// torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE): rank 0
  /// connects to it as a client instead of serving one.
  bool agentStore = false;
};

/// The group of this process as torchrun (or `--nproc`'s launcher)
/// describes it in the environment, or nullopt when RANK and WORLD_SIZE are
/// not both set. Throws c10::Error on a malformed or missing variable.
std::optional<DistEnv> distEnvFromEnvironment();

/// A process group: the few collectives the trainer needs, over Gloo. Every
/// failure (a peer that died, a timeout) throws c10::Error whose message
/// names this rank and what it was doing.
class ProcessGroup {
public:
  /// Connects to the group (rank 0 serves the TCP store unless torchrun's
  /// agent does). `timeout` bounds the rendezvous and every collective.
  ProcessGroup(const DistEnv &env, std::chrono::milliseconds timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup &) = delete;
  ProcessGroup &operator=(const ProcessGroup &) = delete;

  int rank() const { return env_.rank; }
  int world() const { return env_.world; }

  /// Replaces each tensor (f32, contiguous) by the mean over the ranks of
  /// it. The tensors are flattened into buckets of at most `bucketElements`
  /// elements, one all-reduce each, all in flight together. `what` names the
  /// operation in errors.
  void allReduceMean(const std::vector<at::Tensor> &tensors,
                     const std::string &what,
                     int64_t bucketElements = int64_t(1) << 22);
  /// Every rank's `value`, by rank.
  std::vector<uint64_t> allGather(uint64_t value, const std::string &what);
  /// Waits for every rank, for at most `timeout` (longer than the
  /// collectives' when rank 0 prepares something the others then read).
  void barrier(const std::string &what, std::chrono::milliseconds timeout);

private:
  struct Impl;
  DistEnv env_;
  std::unique_ptr<Impl> impl_;
};

/// `--nproc N` without torchrun: runs N copies of this executable with
/// `argv` as ranks 0..N-1 (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR =
/// 127.0.0.1, MASTER_PORT = a free port), waits for them and returns the
/// exit code: 0 when all succeed; otherwise the first failure is reported,
/// the other ranks are stopped (SIGTERM, then SIGKILL) and 1 is returned.
int launchRanks(int nproc, int argc, char **argv);

} // namespace dqt::train

#endif // DQT_TRAIN_DISTRIBUTED_H
