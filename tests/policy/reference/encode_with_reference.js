// Encodes each line of INPUT (a JSON array of strings) with the tokenizer in
// DIR (tokenizer.json + tokenizer_config.json) using @lenml/tokenizers, an
// independent port of transformers.js, and prints a JSON array of id arrays
// and the rendered chat template. Used by tokenizer_test.cc to check that a
// tokenizer.json clinrl writes is read the same way by another loader.
//   node encode_with_reference.js DIR INPUT
const path = require("path");
const fs = require("fs");
const root = path.resolve(__dirname, "../../..");
const { TokenizerLoader } = require(
    path.join(root, "third_party/npm/node_modules/@lenml/tokenizers"));
const [dir, input] = process.argv.slice(2);
const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"))),
  tokenizerConfig:
      JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"))),
});
const texts = JSON.parse(fs.readFileSync(input, "utf8"));
const ids = texts.map((t) => tokenizer.encode(t, { add_special_tokens: false }));
const chat = tokenizer.apply_chat_template(
    [{ role: "system", content: "Be brief." }, { role: "user", content: "Dose?" }],
    { tokenize: false, add_generation_prompt: true });
process.stdout.write(JSON.stringify({ ids, chat }) + "\n");
