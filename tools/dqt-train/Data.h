//===- Data.h - corpora, tokenizer and batches of dqt-train -----*- C++ -*-===//
//
// The standard split of ../shared/data (README there): train on
// gutenberg/big.txt + tinyshakespeare/input.txt + wikitext-2/valid.txt,
// evaluate on wikitext-2/test.txt. A SentencePiece BPE tokenizer is trained
// on the train split only.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_TRAIN_DATA_H
#define DQT_TRAIN_DATA_H

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
} // namespace sentencepiece

namespace dqt::train {

/// The train files of the standard split, relative to the data directory.
const std::vector<std::string> &trainFiles();
/// The evaluation file (WikiText-2 test).
const std::string &evalFile();
/// Throws c10::Error naming the directory or the first missing file.
void checkDataDir(const std::string &dataDir);

/// A SentencePiece BPE tokenizer.
class Tokenizer {
public:
  /// Loads `modelPath`, or, when it does not exist, trains one with
  /// `vocabSize` pieces on the train split and writes it there atomically
  /// (so runs can share one file). `byteFallback`: the trained model has
  /// SentencePiece's 256 byte pieces (<0x00>..<0xFF>) for characters
  /// outside the vocabulary, as llama.cpp's tokenizer needs; an existing
  /// model without them is then refused.
  Tokenizer(const std::string &modelPath, const std::string &dataDir,
            int vocabSize, bool byteFallback = false);
  ~Tokenizer();
  int size() const;
  /// Whether the model has the byte pieces (byte fallback).
  bool hasBytePieces() const;
  /// The token ids of a file: paragraphs (runs of non-empty lines joined by
  /// spaces), each followed by the end-of-sequence id.
  std::vector<int32_t> encodeFile(const std::string &path) const;

private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

/// Token stream cut into training windows of seqLen + 1 tokens (stride
/// seqLen), visited in an order shuffled per epoch from the seed: the batch
/// of a step depends only on (seed, step), so a resumed run sees the same
/// data as an uninterrupted one.
class Batches {
public:
  Batches(std::vector<int32_t> tokens, int64_t seqLen, int64_t batch,
          uint64_t seed);
  /// The batch of step `step` (0-based): int64 [batch, seqLen + 1].
  at::Tensor get(int64_t step);
  int64_t numWindows() const { return windows_; }
  int64_t numTokens() const { return int64_t(tokens_.size()); }

private:
  std::vector<int32_t> tokens_;
  int64_t seqLen_, batch_, windows_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;
};

/// The first `maxTokens` tokens (rounded down to whole windows) of `tokens`
/// as windows of seqLen + 1, int64 [n, seqLen + 1].
at::Tensor evalWindows(const std::vector<int32_t> &tokens, int64_t seqLen,
                       int64_t maxTokens);

} // namespace dqt::train

#endif // DQT_TRAIN_DATA_H
