//===- Data.cpp - corpora, tokenizer and batches of dqt-train -------------===//

#include "Data.h"

#include <c10/util/Exception.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <unistd.h>

namespace fs = std::filesystem;

namespace dqt::train {

const std::vector<std::string> &trainFiles() {
  static const std::vector<std::string> files = {
      "gutenberg/big.txt", "tinyshakespeare/input.txt", "wikitext-2/valid.txt"};
  return files;
}

const std::string &evalFile() {
  static const std::string file = "wikitext-2/test.txt";
  return file;
}

void checkDataDir(const std::string &dataDir) {
  TORCH_CHECK(fs::is_directory(dataDir), "dqt-train: --data-dir '", dataDir,
              "' is not a directory");
  std::vector<std::string> all = trainFiles();
  all.push_back(evalFile());
  for (const std::string &f : all)
    TORCH_CHECK(fs::is_regular_file(fs::path(dataDir) / f),
                "dqt-train: --data-dir '", dataDir, "' has no ", f,
                " (expected the layout of shared/data: see its README)");
}

Tokenizer::Tokenizer(const std::string &modelPath, const std::string &dataDir,
                     int vocabSize, bool byteFallback)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  if (!fs::exists(modelPath)) {
    std::string inputs;
    for (const std::string &f : trainFiles())
      inputs += (inputs.empty() ? "" : ",") + (fs::path(dataDir) / f).string();
    // Train under a private prefix, then rename: concurrent runs sharing the
    // file never see a partial model.
    std::string prefix =
        modelPath + ".tmp" + std::to_string(::getpid());
    std::string args = "--input=" + inputs + " --model_prefix=" + prefix +
                       " --vocab_size=" + std::to_string(vocabSize) +
                       " --model_type=bpe --character_coverage=0.9995"
                       " --hard_vocab_limit=false --input_sentence_size=0"
                       " --num_threads=2 --minloglevel=1" +
                       std::string(byteFallback ? " --byte_fallback=true" : "");
    auto status = sentencepiece::SentencePieceTrainer::Train(args);
    TORCH_CHECK(status.ok(), "dqt-train: training the tokenizer failed: ",
                status.ToString());
    fs::rename(prefix + ".model", modelPath);
    fs::rename(prefix + ".vocab", fs::path(modelPath).replace_extension(".vocab"));
  }
  auto status = sp_->Load(modelPath);
  TORCH_CHECK(status.ok(), "dqt-train: cannot load tokenizer ", modelPath, ": ",
              status.ToString());
  TORCH_CHECK(!byteFallback || hasBytePieces(),
              "dqt-train: --byte-fallback: ", "the tokenizer ", modelPath,
              " was trained without byte pieces (name a new file, or "
              "train without --byte-fallback)");
}

bool Tokenizer::hasBytePieces() const {
  int n = 0;
  for (int i = 0; i < sp_->GetPieceSize(); ++i)
    n += sp_->IsByte(i) ? 1 : 0;
  return n == 256;
}

Tokenizer::~Tokenizer() = default;

int Tokenizer::size() const { return sp_->GetPieceSize(); }

std::vector<int32_t> Tokenizer::encodeFile(const std::string &path) const {
  std::ifstream in(path);
  TORCH_CHECK(in, "dqt-train: cannot read ", path);
  std::vector<int32_t> ids;
  std::string line, paragraph;
  auto flush = [&] {
    if (paragraph.empty())
      return;
    for (int id : sp_->EncodeAsIds(paragraph))
      ids.push_back(id);
    ids.push_back(sp_->eos_id());
    paragraph.clear();
  };
  while (std::getline(in, line)) {
    bool blank = line.find_first_not_of(" \t\r") == std::string::npos;
    if (blank) {
      flush();
      continue;
    }
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    paragraph += (paragraph.empty() ? "" : " ") + line;
  }
  flush();
  return ids;
}

Batches::Batches(std::vector<int32_t> tokens, int64_t seqLen, int64_t batch,
                 uint64_t seed)
    : tokens_(std::move(tokens)), seqLen_(seqLen), batch_(batch),
      seed_(seed) {
  windows_ = (int64_t(tokens_.size()) - 1) / seqLen_;
  TORCH_CHECK(windows_ >= batch_, "dqt-train: the train split has ",
              tokens_.size(), " tokens: fewer than one batch of ", batch_,
              " x ", seqLen_);
}

at::Tensor Batches::get(int64_t step) {
  at::Tensor out = at::empty({batch_, seqLen_ + 1}, at::kLong);
  auto acc = out.accessor<int64_t, 2>();
  for (int64_t i = 0; i < batch_; ++i) {
    int64_t k = step * batch_ + i;
    int64_t epoch = k / windows_;
    if (epoch != epoch_) {
      // std::mt19937_64 and std::shuffle over libstdc++: deterministic for a
      // given seed on every run of this build.
      order_.resize(windows_);
      for (int64_t w = 0; w < windows_; ++w)
        order_[w] = w;
      std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + uint64_t(epoch));
      std::shuffle(order_.begin(), order_.end(), rng);
      epoch_ = epoch;
    }
    int64_t start = order_[k % windows_] * seqLen_;
    for (int64_t t = 0; t <= seqLen_; ++t)
      acc[i][t] = tokens_[start + t];
  }
  return out;
}

at::Tensor evalWindows(const std::vector<int32_t> &tokens, int64_t seqLen,
                       int64_t maxTokens) {
  int64_t n = std::min<int64_t>((int64_t(tokens.size()) - 1) / seqLen,
                                std::max<int64_t>(maxTokens / seqLen, 1));
  TORCH_CHECK(n >= 1, "dqt-train: the evaluation split is too short");
  at::Tensor out = at::empty({n, seqLen + 1}, at::kLong);
  auto acc = out.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t <= seqLen; ++t)
      acc[i][t] = tokens[i * seqLen + t];
  return out;
}

} // namespace dqt::train
