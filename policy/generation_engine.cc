#include "policy/generation_engine.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <tuple>

#include "core/error.h"

namespace clinrl::policy {
namespace {

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}

// Whether a stop string now appears in `text`, looking only at the tail the
// last `added` bytes could have completed.
bool EndsInStop(const std::string& text, size_t added,
                const std::vector<std::string>& stops) {
  for (const auto& s : stops) {
    const size_t reach = added + s.size() - 1;
    const size_t from = text.size() > reach ? text.size() - reach : 0;
    if (text.find(s, from) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

GenerationEngine::GenerationEngine(Transformer model, EngineOptions options,
                                   const Tokenizer* tokenizer)
    : model_(std::move(model)),
      options_(options),
      tokenizer_(tokenizer),
      cache_(
          model_->MakePagedCache(options.block_size, options.initial_blocks)) {}

int64_t GenerationEngine::Open(uint64_t seed, uint64_t stream) {
  const int64_t id = cache_.CreateSequence();
  sequences_.emplace(id, Sequence(seed, stream));
  return id;
}

void GenerationEngine::Close(int64_t sequence) {
  if (sequences_.erase(sequence) > 0) cache_.ReleaseSequence(sequence);
}

const GenerationOutput& GenerationEngine::running_output(
    int64_t sequence) const {
  const auto it = sequences_.find(sequence);
  CLINRL_CHECK(it != sequences_.end(), "GenerationEngine: no sequence {}",
               sequence);
  return it->second.out;
}

const std::vector<TokenLogprobs>& GenerationEngine::running_token_logprobs(
    int64_t sequence) const {
  const auto it = sequences_.find(sequence);
  CLINRL_CHECK(it != sequences_.end(), "GenerationEngine: no sequence {}",
               sequence);
  return it->second.token_logprobs;
}

bool GenerationEngine::busy() const {
  for (const auto& [id, s] : sequences_) {
    if (s.state != State::kIdle) return true;
  }
  return false;
}

void GenerationEngine::StartTurn(int64_t sequence,
                                 const std::vector<int64_t>& tokens,
                                 const SamplingParams& params,
                                 const std::string& field) {
  params.Validate();
  if (!params.stop_strings.empty() && tokenizer_ == nullptr) {
    throw BadRequest("stop_strings: matching them needs a tokenizer");
  }
  auto it = sequences_.find(sequence);
  CLINRL_CHECK(it != sequences_.end(), "GenerationEngine: no sequence {}",
               sequence);
  Sequence& s = it->second;
  CLINRL_CHECK(s.state == State::kIdle,
               "GenerationEngine: sequence {} is still generating", sequence);
  const ModelConfig& config = model_->config();
  const int64_t length = static_cast<int64_t>(tokens.size());
  if (length == 0) {
    throw BadRequest(fmt::format("{}: a turn needs at least one token", field));
  }
  for (int64_t id : tokens) {
    if (id < 0 || id >= config.vocab_size) {
      throw BadRequest(
          fmt::format("{}: token id {} is outside the model's vocab_size {}",
                      field, id, config.vocab_size));
    }
  }
  if (length >= config.max_position_embeddings) {
    throw BadRequest(fmt::format(
        "{}: {} tokens leave no room under max_position_embeddings {}", field,
        length, config.max_position_embeddings));
  }
  // Keep the cached keys of the longest prefix the new history shares with
  // the old one; the last token is always computed, for its logits.
  const int64_t held = cache_.Length(sequence);
  int64_t keep = 0;
  const int64_t limit = std::min(held, length - 1);
  while (keep < limit && s.tokens[keep] == tokens[keep]) ++keep;
  if (keep < held) cache_.Truncate(sequence, keep);
  stats_.prompt_tokens += length;
  stats_.cached_prompt_tokens += keep;

  s.tokens = tokens;
  s.params = params;
  s.max_new =
      std::min(params.max_new_tokens, config.max_position_embeddings - length);
  s.out = GenerationOutput();
  s.token_logprobs.clear();
  s.text.clear();
  s.state = State::kPrefill;
}

std::vector<GenerationEngine::Row> GenerationEngine::Schedule() {
  std::vector<Row> single, multi;
  // Keys of the first block each scheduled prefill computes: a sequence
  // that would compute the same block waits a step and then adopts it.
  std::set<std::pair<int64_t, std::vector<int64_t>>> computing;
  for (auto& [id, s] : sequences_) {
    const int64_t length = static_cast<int64_t>(s.tokens.size());
    if (s.state == State::kDecode) {
      single.push_back({id, length - 1, 1});
      continue;
    }
    if (s.state != State::kPrefill) continue;
    int64_t held = cache_.Length(id);
    if (options_.prefix_sharing) {
      if (held == 0) {
        // A prompt held whole still computes its last token, for the
        // logits; that token's block is shared, so writing it copies it.
        held = cache_.AdoptRegisteredPrefix(id, s.tokens, length);
        if (held == length) cache_.Truncate(id, --held);
        stats_.shared_prompt_tokens += held;
      }
      if (held % options_.block_size == 0) {
        auto key = cache_.NextBlockKey(id, s.tokens);
        if (!key.second.empty() && !computing.insert(std::move(key)).second) {
          continue;
        }
      }
    }
    const int64_t count = length - held;
    (count == 1 ? single : multi).push_back({id, held, count});
  }
  single.insert(single.end(), multi.begin(), multi.end());
  return single;
}

void GenerationEngine::RecordTokenLogprobs(
    const at::Tensor& logits, const std::vector<int64_t>& sequences,
    const std::vector<int64_t>& sampled_ids) {
  // Off unless a turn asks: one comparison per row, no tensor work.
  std::vector<int64_t> rows, ids, top_k;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const int64_t k = sequences_.at(sequences[i]).params.top_logprobs;
    if (k < 0) continue;
    rows.push_back(static_cast<int64_t>(i));
    ids.push_back(sampled_ids[i]);
    top_k.push_back(k);
  }
  if (rows.empty()) return;
  const bool all = rows.size() == sequences.size();
  const std::vector<TokenLogprobs> reported = RawTokenLogprobs(
      all ? logits
          : logits.index_select(
                0, torch::tensor(rows, torch::kLong).to(logits.device())),
      ids, top_k);
  for (size_t j = 0; j < rows.size(); ++j) {
    sequences_.at(sequences[rows[j]]).token_logprobs.push_back(reported[j]);
  }
}

bool GenerationEngine::Accept(Sequence& s, int64_t token, float logprob) {
  s.tokens.push_back(token);
  s.out.token_ids.push_back(token);
  s.out.logprobs.push_back(logprob);
  stats_.generated_tokens += 1;
  const auto& stops = s.params.stop_token_ids;
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) {
    s.out.finish_reason = FinishReason::kStopToken;
    return true;
  }
  if (!s.params.stop_strings.empty()) {
    const std::string bytes =
        token < tokenizer_->size() ? tokenizer_->TokenBytes(token) : "";
    s.text += bytes;
    if (EndsInStop(s.text, bytes.size(), s.params.stop_strings)) {
      s.out.finish_reason = FinishReason::kStopString;
      return true;
    }
  }
  if (static_cast<int64_t>(s.out.token_ids.size()) >= s.max_new) {
    s.out.finish_reason = FinishReason::kLength;
    return true;
  }
  return false;
}

std::vector<FinishedTurn> GenerationEngine::Step() {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<Row> rows = Schedule();
  if (rows.empty()) return {};
  torch::NoGradGuard no_grad;
  const auto device = model_->device();
  const AutocastGuard autocast(device, model_->precision());

  // The packed row: ids, positions and slots of every new token.
  std::vector<int64_t> ids, positions, write_slots;
  std::vector<PagedRow> plan(rows.size());
  std::vector<int64_t> last(rows.size());  // each row's last packed token
  bool prefill = false;
  int64_t prompt_computed = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const Row& row = rows[r];
    const Sequence& s = sequences_.at(row.sequence);
    for (int64_t t = row.first; t < row.first + row.count; ++t) {
      ids.push_back(s.tokens[t]);
      positions.push_back(t);
    }
    cache_.Extend(row.sequence, row.count, &write_slots);
    plan[r].query_count = row.count;
    cache_.AppendSlots(row.sequence, row.first + row.count, &plan[r].slots);
    last[r] = static_cast<int64_t>(ids.size()) - 1;
    if (s.state == State::kPrefill) {
      prefill = true;
      prompt_computed += row.count;
    }
  }
  const auto long_opts = torch::dtype(torch::kLong);
  attention_.Plan(plan, device, cache_.keys(0).scalar_type());
  const torch::Tensor hidden = model_->HiddenPaged(
      torch::tensor(ids, long_opts).to(device),
      torch::tensor(positions, long_opts).to(device),
      torch::tensor(write_slots, long_opts).to(device), cache_, attention_);
  const bool every_token_is_last = ids.size() == rows.size();
  const torch::Tensor logits = model_->Logits(
      every_token_is_last
          ? hidden
          : hidden.index_select(0, torch::tensor(last, long_opts).to(device)));
  if (options_.prefix_sharing) {
    for (const Row& row : rows) {
      cache_.RegisterFullBlocks(row.sequence,
                                sequences_.at(row.sequence).tokens);
    }
  }

  // One sampling call per distinct (temperature, top-k, top-p), usually one.
  std::vector<FinishedTurn> finished;
  std::map<std::tuple<double, int64_t, double>, std::vector<int64_t>> groups;
  for (size_t r = 0; r < rows.size(); ++r) {
    const SamplingParams& p = sequences_.at(rows[r].sequence).params;
    groups[{p.temperature, p.top_k, p.top_p}].push_back(
        static_cast<int64_t>(r));
  }
  for (const auto& [key, members] : groups) {
    std::vector<SequenceRng*> rngs;
    for (int64_t r : members)
      rngs.push_back(&sequences_.at(rows[r].sequence).rng);
    const bool all = members.size() == rows.size();
    const torch::Tensor group_logits =
        all ? logits
            : logits.index_select(0,
                                  torch::tensor(members, long_opts).to(device));
    const SampledTokens sampled = SampleTokens(
        group_logits, sequences_.at(rows[members[0]].sequence).params, rngs);
    std::vector<int64_t> member_sequences;
    for (int64_t r : members) member_sequences.push_back(rows[r].sequence);
    RecordTokenLogprobs(group_logits, member_sequences, sampled.ids);
    for (size_t i = 0; i < members.size(); ++i) {
      const int64_t id = rows[members[i]].sequence;
      Sequence& s = sequences_.at(id);
      if (Accept(s, sampled.ids[i], sampled.logprobs[i])) {
        s.state = State::kIdle;
        finished.push_back({id, std::move(s.out), std::move(s.token_logprobs)});
        s.out = GenerationOutput();
        s.token_logprobs.clear();
      } else {
        s.state = State::kDecode;
      }
    }
  }
  // Finished turns in sequence order, whatever their sampling group.
  std::sort(finished.begin(), finished.end(),
            [](const FinishedTurn& a, const FinishedTurn& b) {
              return a.sequence < b.sequence;
            });
  const double seconds = Since(t0);
  stats_.steps += 1;
  if (prefill) {
    stats_.prefill_seconds += seconds;
    stats_.computed_prompt_tokens += prompt_computed;
  } else {
    stats_.decode_seconds += seconds;
    stats_.decode_steps += 1;
    stats_.decode_row_steps += static_cast<int64_t>(rows.size());
    stats_.decode_attended_keys += attention_.attended_keys();
  }
  return finished;
}

}  // namespace clinrl::policy
