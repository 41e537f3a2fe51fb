//===- checkpoint-resume.cpp - bit-exact resume, corruption refused -------===//

#include "TestUtil.h"

#include "dqt/Runtime/Checkpoint.h"
#include "dqt/Runtime/Optimizers.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

using namespace dqt;
namespace fs = std::filesystem;

namespace {

using test::readFile;
using test::sameBytes;
using test::writeFile;

/// A small model: two weights of different grids, AdamW.
struct Model {
  std::vector<QuantizedWeight> w;
  std::unique_ptr<optim::AdamW> opt;

  explicit Model(uint64_t initSeed) {
    at::Generator gen = at::detail::createCPUGenerator(initSeed);
    w.push_back(QuantizedWeight::fromFloat(at::randn({64, 48}, gen),
                                           Grid::fromBits(4)));
    w.push_back(QuantizedWeight::fromFloat(at::randn({777}, gen),
                                           Grid::fromBits(1.58)));
    optim::AdamWOptions o;
    o.lr = 0.02;
    opt = std::make_unique<optim::AdamW>(
        std::vector<QuantizedWeight *>{&w[0], &w[1]}, o);
  }
  /// The gradient of step t depends only on t (as data would).
  void step(int64_t t) {
    for (size_t p = 0; p < w.size(); ++p) {
      at::Generator gen = at::detail::createCPUGenerator(1000 * t + p);
      w[p].grad().copy_(at::randn(w[p].q().sizes(), gen));
    }
    opt->step();
  }
};

class Checkpoints : public ::testing::Test {
protected:
  void SetUp() override {
    dir = test::freshTestDirectory("dqt-ckpt");
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
};

TEST_F(Checkpoints, ResumeIsBitExact) {
  const int n = 3;
  Model straight(1);
  for (int t = 1; t <= 2 * n; ++t)
    straight.step(t);

  Model first(1);
  for (int t = 1; t <= n; ++t)
    first.step(t);
  first.opt->save(dir / "half.safetensors");
  // A fresh process: other initial weights, then the checkpoint.
  Model resumed(99);
  resumed.opt->load(dir / "half.safetensors");
  EXPECT_EQ(resumed.opt->stepCount(), n);
  for (int t = n + 1; t <= 2 * n; ++t)
    resumed.step(t);

  for (size_t p = 0; p < 2; ++p) {
    EXPECT_TRUE(sameBytes(straight.w[p].q(), resumed.w[p].q())) << p;
    EXPECT_EQ(straight.w[p].delta(), resumed.w[p].delta()) << p;
    EXPECT_EQ(straight.w[p].maxQ(), resumed.w[p].maxQ()) << p;
    for (int k = 0; k < 2; ++k)
      EXPECT_TRUE(
          sameBytes(straight.opt->state(p, k), resumed.opt->state(p, k)));
  }
  // And the files they write are byte for byte the same.
  straight.opt->save(dir / "a.safetensors");
  resumed.opt->save(dir / "b.safetensors");
  EXPECT_EQ(readFile(dir / "a.safetensors"), readFile(dir / "b.safetensors"));
  // No temporary is left behind.
  for (auto &e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

TEST_F(Checkpoints, CorruptFilesAreRefusedAndChangeNothing) {
  Model m(2);
  m.step(1);
  fs::path good = dir / "good.safetensors";
  m.opt->save(good);
  std::string bytes = readFile(good);
  m.step(2);
  at::Tensor q0 = m.w[0].q().clone(), s0 = m.opt->state(0, 1).clone();

  struct Case {
    std::string name, bytes, expect;
  };
  std::string flippedData = bytes;
  flippedData[bytes.size() - 10] ^= 0x40;
  std::string flippedHeader = bytes;
  flippedHeader[20] ^= 0x22;
  std::string hugeHeader = bytes;
  hugeHeader[6] = 0x7f;
  std::vector<Case> cases = {
      {"truncated", bytes.substr(0, bytes.size() / 2), "outside the file"},
      {"truncated-header", bytes.substr(0, 40), "exceeds the file"},
      {"tiny", bytes.substr(0, 5), "truncated: 5 bytes"},
      {"flipped-data", flippedData, "checksum mismatch"},
      {"flipped-header", flippedHeader, "dqt.checkpoint.load"},
      {"huge-header", hugeHeader, "header length"},
      {"trailing", bytes + "xyz", "3 trailing bytes"},
  };
  for (const Case &c : cases) {
    fs::path p = dir / (c.name + ".safetensors");
    writeFile(p, c.bytes);
    std::string msg = test::errorMessage([&] { m.opt->load(p); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
    EXPECT_EQ(readFile(p), c.bytes) << c.name << ": the file changed";
    EXPECT_TRUE(sameBytes(m.w[0].q(), q0)) << c.name;
    EXPECT_TRUE(sameBytes(m.opt->state(0, 1), s0)) << c.name;
    EXPECT_EQ(m.opt->stepCount(), 2) << c.name;
  }
  EXPECT_EQ(readFile(good), bytes);
}

TEST_F(Checkpoints, WrongModelIsRefused) {
  Model m(3);
  m.step(1);
  // Same names, other shape.
  at::Generator gen = at::detail::createCPUGenerator(4);
  QuantizedWeight a =
      QuantizedWeight::fromFloat(at::randn({48, 64}, gen), Grid::fromBits(4));
  QuantizedWeight b =
      QuantizedWeight::fromFloat(at::randn({777}, gen), Grid::fromBits(1.58));
  optim::AdamW other({&a, &b});
  other.save(dir / "other.safetensors");
  std::string msg =
      test::errorMessage([&] { m.opt->load(dir / "other.safetensors"); });
  EXPECT_NE(msg.find("'param.0.q' is Char[48, 64], expected Char[64, 48]"),
            std::string::npos)
      << msg;
  // Other grid.
  QuantizedWeight c =
      QuantizedWeight::fromFloat(at::randn({64, 48}, gen), Grid::fromBits(8));
  optim::AdamW third({&c, &b});
  third.save(dir / "third.safetensors");
  msg = test::errorMessage([&] { m.opt->load(dir / "third.safetensors"); });
  EXPECT_NE(msg.find("parameter 0 is 4-bit here and 8-bit in"),
            std::string::npos)
      << msg;
  // Other optimizer.
  optim::SGD sgd({&a, &b});
  sgd.save(dir / "sgd.safetensors");
  msg = test::errorMessage([&] { m.opt->load(dir / "sgd.safetensors"); });
  EXPECT_NE(msg.find("was written by dqt.optim.SGD"), std::string::npos) << msg;
  EXPECT_EQ(m.opt->stepCount(), 1);
}

TEST_F(Checkpoints, OtherNumericsContractsAreRefusedAndChangeNothing) {
  Model m(6);
  m.step(1);
  fs::path good = dir / "good.safetensors";
  m.opt->save(good);
  checkpoint::Contents c = checkpoint::load(good);
  ASSERT_EQ(c.metadata.at("dqt.numerics"), "2");
  m.step(2);
  at::Tensor q0 = m.w[0].q().clone(), s0 = m.opt->state(0, 0).clone();
  float delta0 = m.w[0].delta();

  // A file of numerics v1 (what builds before v2 wrote: no entry) and one of
  // an unknown contract: both refused, nothing changed.
  checkpoint::Contents v1 = c;
  v1.metadata.erase("dqt.numerics");
  checkpoint::save(dir / "v1.safetensors", v1);
  checkpoint::Contents v3 = c;
  v3.metadata["dqt.numerics"] = "3";
  checkpoint::save(dir / "v3.safetensors", v3);
  struct Case {
    const char *file, *expect;
  };
  for (Case k :
       {Case{"v1.safetensors",
             "was written under numerics contract v1 (4 uniforms per Philox "
             "block, 24-bit)"},
        Case{"v1.safetensors", "cannot continue bit-exactly across contracts"},
        Case{"v3.safetensors", "was written under numerics contract v3"},
        Case{"v3.safetensors", "cannot continue bit-exactly across contracts"}}) {
    std::string msg = test::errorMessage([&] { m.opt->load(dir / k.file); });
    EXPECT_NE(msg.find(k.expect), std::string::npos) << k.file << ": " << msg;
    EXPECT_TRUE(sameBytes(m.w[0].q(), q0)) << k.file;
    EXPECT_EQ(m.w[0].delta(), delta0) << k.file;
    EXPECT_TRUE(sameBytes(m.opt->state(0, 0), s0)) << k.file;
    EXPECT_EQ(m.opt->stepCount(), 2) << k.file;
  }
  // The file as written loads.
  m.opt->load(good);
  EXPECT_EQ(m.opt->stepCount(), 1);
}

TEST_F(Checkpoints, FailedSaveKeepsTheOldFile) {
  Model m(5);
  m.step(1);
  fs::path p = dir / "ckpt.safetensors";
  m.opt->save(p);
  std::string old = readFile(p);
  // The temporary cannot be created: the save fails, the old file stays.
  fs::path blocked = dir / "blocked";
  fs::create_directories(blocked /
                         ("x.safetensors.tmp." + std::to_string(::getpid())));
  EXPECT_THROW(m.opt->save(blocked / "x.safetensors"), c10::Error);
  EXPECT_EQ(readFile(p), old);
  EXPECT_FALSE(fs::exists(blocked / "x.safetensors"));
}

TEST_F(Checkpoints, FormatIsSafetensors) {
  checkpoint::Contents c;
  c.tensors.emplace_back("w", at::arange(6, at::kFloat).view({2, 3}));
  c.tensors.emplace_back("q", at::tensor({-1, 0, 1}, at::kChar));
  c.metadata["note"] = "hello";
  checkpoint::save(dir / "x.safetensors", c);
  std::string bytes = readFile(dir / "x.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | uint8_t(bytes[i]);
  std::string header = bytes.substr(8, n);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_NE(header.find("\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                        "\"data_offsets\":[0,24]}"),
            std::string::npos)
      << header;
  EXPECT_NE(header.find("\"q\":{\"dtype\":\"I8\",\"shape\":[3],"
                        "\"data_offsets\":[24,27]}"),
            std::string::npos)
      << header;
  EXPECT_EQ(bytes.size(), 8 + n + 27);
  checkpoint::Contents back = checkpoint::load(dir / "x.safetensors");
  EXPECT_TRUE(sameBytes(back.get("w"), c.tensors[0].second));
  EXPECT_TRUE(sameBytes(back.get("q"), c.tensors[1].second));
  EXPECT_EQ(back.metadata.at("note"), "hello");
}

} // namespace
