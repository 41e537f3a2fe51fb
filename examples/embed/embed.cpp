//===- embed.cpp - a trainer with kernels embedded ahead of time ----------===//
//
// A standalone trainer that needs no compiler at run time: the step kernels
// come from a kernel bundle linked into the program (dqt-aot's static form,
// lib<name>.a with its header <name>.h, which declares dqt_bundle_<name>),
// handed to the runtime with dqt::useBundle. The model
// is two quantized layers (8-bit, then ternary with per-row delta) and a
// float bias, trained with dqt's AdamW on a fixed random regression task.
//
//   embed [steps]   prints the loss every 25 steps; exits 1 unless the loss
//                   fell to less than half its start and every kernel came
//                   from the bundle.
//
//===----------------------------------------------------------------------===//

#include DQT_BUNDLE_HEADER

#include "dqt/Runtime/KernelCache.h"
#include "dqt/Runtime/Optimizers.h"
#include "dqt/Runtime/QuantLinear.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char **argv) {
  int steps = argc > 1 ? std::atoi(argv[1]) : 200;
  dqt::useBundle(&DQT_BUNDLE_SYMBOL);

  at::manual_seed(0);
  at::Generator gen = at::detail::createCPUGenerator(7);
  // The task: y = tanh(x A) B for fixed random A, B.
  at::Tensor x = at::randn({256, 32}, gen);
  at::Tensor y = at::tanh(x.matmul(at::randn({32, 32}, gen) / 4))
                     .matmul(at::randn({32, 8}, gen) / 4);

  dqt::nn::QuantLinear hidden(32, 64, dqt::Grid::fromBits(8), gen);
  dqt::nn::QuantLinear head(64, 8, dqt::Grid::fromBits(1.58), gen,
                            dqt::Storage::Int8, dqt::ScaleMode::Row);
  at::Tensor bias = at::zeros({8}).requires_grad_(true);

  dqt::optim::AdamWOptions options;
  options.lr = 3e-3;
  options.weightDecay = 0;
  dqt::optim::AdamW opt({&hidden.weight(), &head.weight()}, options);
  opt.addFloatParameters({bias});

  double first = 0, last = 0;
  for (int t = 0; t < steps; ++t) {
    at::Tensor loss =
        (head.forward(at::relu(hidden.forward(x))) + bias - y).pow(2).mean();
    torch::autograd::backward({loss});
    opt.step();
    bias.mutable_grad().zero_();
    last = loss.item<double>();
    if (t == 0)
      first = last;
    if (t % 25 == 0 || t == steps - 1)
      std::printf("step %4d  loss %.5f\n", t, last);
  }
  dqt::KernelCache &cache = dqt::KernelCache::global();
  dqt::StepConfig adamw; // the hidden layer's configuration
  const std::string &origin = cache.cpu(adamw).origin;
  std::printf("kernels: %lld from bundles, %lld compiled; adamw-b8: %s; "
              "loss %.5f -> %.5f\n",
              (long long)cache.stats().bundled,
              (long long)cache.stats().compiled, origin.c_str(), first, last);
  bool ok = last < 0.5 * first && cache.stats().compiled == 0 &&
            origin.rfind("linked bundle", 0) == 0;
  return ok ? 0 : 1;
}
