// `clinrl tokenizer train --corpus FILE --vocab-size N --out DIR
// [--trajectories]` trains a byte-level BPE tokenizer.json (on plain text, or
// on the turns of a trajectories JSONL); `clinrl tokenize --tokenizer DIR`
// prints the ids of each stdin line as a JSON array.
#include <iostream>

#include "cli/command_registry.h"
#include "core/atomic_file.h"
#include "core/jsonl.h"
#include "core/trajectory.h"
#include "policy/bpe_trainer.h"
#include "policy/tokenizer.h"

namespace clinrl::cli {
namespace {

struct TrainArgs {
  std::string corpus;
  std::string out;
  int64_t vocab_size = 4096;
  int64_t min_frequency = 2;
  bool trajectories = false;
};

// The text a model trained on these episodes reads: every turn's content,
// one per line (the chat template's special tokens are added tokens).
std::string TrajectoryText(const std::string& path) {
  std::string text;
  ReadJsonl(path, [&](const nlohmann::json& line, int64_t) {
    for (const Turn& turn : TrajectoryFromJson(line).turns) {
      text += turn.role;
      text += '\n';
      text += turn.content;
      text += '\n';
    }
  });
  return text;
}

void AddTokenizerCommands(CLI::App& app) {
  auto* tok = app.add_subcommand("tokenizer", "train tokenizers");
  tok->require_subcommand(1);
  auto* train = tok->add_subcommand(
      "train", "train a byte-level BPE tokenizer.json on a text corpus");
  auto a = std::make_shared<TrainArgs>();
  train->add_option("--corpus", a->corpus, "UTF-8 text file")->required();
  train
      ->add_option("--vocab-size", a->vocab_size,
                   "bytes + merges + special tokens")
      ->required();
  train->add_option("--min-frequency", a->min_frequency,
                    "pairs seen fewer times are not merged");
  train->add_option("--out", a->out, "folder for tokenizer.json")->required();
  train->add_flag("--trajectories", a->trajectories,
                  "the corpus is a trajectories JSONL (e.g. `clinrl env "
                  "demos`): train on its turns' text");
  train->callback([a] {
    const int rc = RunCommand([&] {
      const std::string corpus =
          a->trajectories ? TrajectoryText(a->corpus) : ReadFile(a->corpus);
      policy::BpeTrainerOptions options;
      options.vocab_size = a->vocab_size;
      options.min_frequency = a->min_frequency;
      const auto tokenizer = policy::TrainBpeTokenizer(corpus, options);
      tokenizer->Save(a->out);
      const auto ids = tokenizer->Encode(corpus);
      std::cout << nlohmann::json{{"out", a->out},
                                  {"vocab_size", tokenizer->size()},
                                  {"merges", tokenizer->num_merges()},
                                  {"corpus_bytes", corpus.size()},
                                  {"corpus_tokens", ids.size()}}
                       .dump()
                << "\n";
    });
    if (rc != 0) std::exit(rc);
  });

  auto* encode = app.add_subcommand(
      "tokenize", "print the token ids of each stdin line as a JSON array");
  auto dir = std::make_shared<std::string>("byte");
  encode->add_option("--tokenizer", *dir,
                     "\"byte\" or a folder with tokenizer.json");
  encode->callback([dir] {
    const int rc = RunCommand([&] {
      const auto tokenizer = policy::LoadTokenizer(*dir);
      std::string line;
      while (std::getline(std::cin, line)) {
        std::cout << nlohmann::json(tokenizer->Encode(line)).dump() << "\n";
      }
    });
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(tokenizer, AddTokenizerCommands);

}  // namespace clinrl::cli
