// A model folder whose greedy reply is known in advance, for tests that put
// `clinrl serve` where a run asks a model (a judge, a patient, a tool-calling
// client) and check what the other side made of the reply.
//
// The model needs no training: one layer whose weights are zero but its
// norms, so it adds nothing to the residual stream; one-hot embeddings, one
// hidden dimension per token, so the stream at the last position is that
// token; and an lm_head that maps each token to the next one of the reply.
// Greedy decoding then follows the reply whatever the prompt.
#pragma once

#include <string>
#include <vector>

namespace clinrl::serve::testing {

// Writes to `dir` a model folder (ChatML byte-level BPE tokenizer, config,
// weights) whose greedy reply to any prompt is `pieces`, one token each, then
// <|im_end|>; returns `dir`. Each piece gets one token of its own (its
// prefixes are merges), so the pieces must be distinct: "the token after
// this one" is then a function of the token alone. Any token outside the
// reply, <|im_end|> included, leads to the first piece.
std::string WriteScriptedReplyModel(const std::vector<std::string>& pieces,
                                    const std::string& dir);

}  // namespace clinrl::serve::testing
