// Embeddings as llama.cpp makes them: the output-normed final hidden states of a text's tokens,
// pooled into one vector (mean, first token, last token) and optionally L2-normalised. Many
// texts go through the model together, packed into batches of independent sequences.
#pragma once

#include <string>
#include <vector>

#include "src/context.h"

namespace rill {

enum class Pooling { Mean, Cls, Last };

// By name ("mean", "cls", "last"); "" takes the file's {arch}.pooling_type (1 mean, 2 CLS,
// 3 last; none (0), rank (4) or absent: mean). Throws rill::Error on any other name.
Pooling pooling_for(const Model& model, const std::string& name);

// One vector of n_embd floats per text, from an empty context that is emptied again after
// (whatever it held is dropped). Attention-only models evaluate up to max_batch tokens of
// texts per batch (packed sequences, never split: a text longer than max_batch goes alone);
// models with recurrent state one text at a time. Throws rill::Error, before evaluating
// anything, if a text is empty or longer than the context.
std::vector<std::vector<float>> embed(Context& ctx, const std::vector<std::vector<TokenId>>& texts, Pooling pooling,
                                      bool normalize, int max_batch = 512);

}  // namespace rill
