// `clinrl tokenizer train --corpus FILE --vocab-size N --out DIR` trains a
// byte-level BPE tokenizer.json; `clinrl tokenize --tokenizer DIR` prints the
// ids of each stdin line as a JSON array.
#include <iostream>

#include "cli/command_registry.h"
#include "core/atomic_file.h"
#include "policy/bpe_trainer.h"
#include "policy/tokenizer.h"

namespace clinrl::cli {
namespace {

struct TrainArgs {
  std::string corpus;
  std::string out;
  int64_t vocab_size = 4096;
  int64_t min_frequency = 2;
};

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
  train->callback([a] {
    const int rc = RunCommand([&] {
      const std::string corpus = ReadFile(a->corpus);
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
