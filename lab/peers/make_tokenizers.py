#!/usr/bin/env python3
"""Write the small Hugging Face tokenizers that strata's tokenizer tests read (tests/data/tokenizers/).

    python3 lab/peers/make_tokenizers.py [--out DIR]
    python3 lab/peers/make_tokenizers.py --unicode-tables  # model/tokenizer.cc's tables, to stdout
    python3 lab/peers/make_tokenizers.py --fuzz-seeds tests/fuzz/corpus/hf_tokenizer

Trains, with the Hugging Face `tokenizers` library and nothing downloaded, four
small BPE tokenizers (vocabulary 2000 to 2500) on the fortunes of the Debian
package `fortunes` (/usr/share/games/fortunes), each with the normalizer,
pre-tokenizer, model options, decoder, post-processor and special tokens that
its family's published tokenizer.json has:

  llama3    Split(Llama 3's regex, Isolated) + ByteLevel(use_regex false), BPE with
            ignore_merges, <|begin_of_text|> <|end_of_text|> and reserved special
            tokens after the vocabulary, TemplateProcessing "<|begin_of_text|> $A"
  qwen2     NFC, Split(Qwen2's regex, Isolated) + ByteLevel(use_regex false),
            <|endoftext|> <|im_start|> <|im_end|>, ByteLevel post-processor, and a
            tokenizer_config.json (bos_token null, eos_token <|endoftext|>)
  llama2    SentencePiece-style BPE: byte_fallback, fuse_unk, unk <unk>; <unk> <s>
            </s> at ids 0-2 and <0x00>..<0xFF> at 3-258 in model.vocab; normalizer
            Sequence[Prepend("▁"), Replace(" ", "▁")], no pre-tokenizer, decoder
            Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0)],
            "<s> $A"; merges written as "a b" strings, as the older files do
  mistral   the newer form of the same (Mistral 7B v0.3): no normalizer,
            Metaspace(prepend_scheme "first", split false), [INST] [/INST]
            [TOOL_CALLS] ... [control_N] special tokens in the vocabulary after
            </s>; merges as ["a", "b"] pairs

For each KIND, tests/data/tokenizers/KIND/ gets tokenizer.json (compact JSON,
the library's own serialization but for the merge form), tokenizer_config.json
(bos_token, eos_token, and add_bos_token / add_eos_token where the family has
them) and golden.json:

  vocab_size, bos, eos
                   get_vocab_size(with_added_tokens=True); the ids of the
                   config's bos_token and eos_token (null: none)
  plain            ids of encode(text, add_special_tokens=False) with
                   encode_special_tokens=True (special tokens are plain text)
  special          ids of encode(text, add_special_tokens=False): added tokens
                   recognised
  document_prefix, document_suffix
                   encode(text) (add_special_tokens=True) == prefix + special +
                   suffix (checked here)
  decoded_plain, decoded_special
                   decode(ids, skip_special_tokens=False) of the two
  ignore_merges_pieces (llama3)
                   how many of the test text's pieces ignore_merges changes
  cases            short awkward strings and 100 random ones (a fixed seed),
                   each with its plain, special and document ids and decoded
                   text

and llama3-added, qwen2-added, llama2-added: the same tokenizers with added
tokens of the rarer kinds (lstrip / rstrip, normalized: true, non-special), with
a golden.json of the cases only.

The test text, tests/data/tokenizers/test_text.txt, is real text (fortunes not
used for training) with paragraphs of special cases put between: special tokens
of every family, accents, CJK, emoji, combining marks and text that NFC changes,
runs of tabs, newlines and spaces, long digit runs and contractions. A file whose
bytes would not change is left untouched.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_env  # noqa: E402

TOKENIZERS_SPEC = os.environ.get("STRATA_PEERS_TOKENIZERS", "tokenizers==0.23.3")
REQUIREMENTS = [("tokenizers", TOKENIZERS_SPEC)]

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FORTUNES = "/usr/share/games/fortunes"

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Fortune files held out of training: the real text of the test text.
TEST_FILES = ["literature", "science"]

SPECIAL_PARAGRAPHS = [
    "<|begin_of_text|>The first line. <|end_of_text|><|reserved_special_token_3|> and "
    "<|reserved_special_token_0|>x<|begin_of_text|><|begin_of_text|>",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat's 2+2?<|im_end|>\n"
    "<|im_start|>assistant\n4<|im_end|><|endoftext|>",
    "<s>[INST] Hello, how are you? [/INST] Fine, and you?</s>[INST] I'm doing great![/INST]Glad to hear!</s>",
    "[TOOL_CALLS] [AVAILABLE_TOOLS][/AVAILABLE_TOOLS][TOOL_RESULTS] {}[/TOOL_RESULTS][control_9]<unk> <s> </s>",
    "Not special: <0x41> <|im_start <s > [INST [/INST  <|endoftext| |> <<s>> <</s>>",
    "Accents: café naïve résumé façade Ærøskøbing Ångström Dvořák Łódź São Paulo Ελληνικά Кириллица",
    "CJK: 日本語のテキストです。中文字符测试，标点符号！한국어 텍스트입니다. 漢字かなカナ",
    "Emoji: 🤖🎉👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️ ☕ 🙂🙃",
    # Decomposed forms that NFC composes (e + acute, a + diaeresis, Hangul jamo, the Angstrom
    # and Ohm signs, a double combining sequence in non-canonical order).
    "Combining: e\u0301 a\u0308 o\u0302\u0323 o\u0323\u0302 n\u0303 \u1100\u1161\u11a8 \u212b \u2126 "
    "A\u030a q\u0307\u0323 \u0915\u093c \u00e9\u0301 e\u0301\u0301\u0301 \u0301start",
    "Whitespace:\t\ttabs\tand\t \tmixed   multiple    spaces     \n\n\n\nnewlines \r\nCRLF\r\n\r\n  \n \u00a0nbsp"
    "\u00a0\u00a0 \u3000ideographic\u2028line sep\u2029para sep x\u180ey \u2003em\u2009thin\u200bzero",
    "Numbers: 3.14159265358979323846264338327950288 1234567890123 2026-12-03 1,000,000.00 0x1F 007 "
    "١٢٣٤ ½ ² 1st 22nd",
    "Contractions: it's IT'S we'll WE'LL I'm I'M you're YOU'RE they've THEY'VE he'd HE'D don't DON'T 'ſ 'ſt "
    "'S 'LL 'Ll ''s 's's",
    "Symbols: ▁leading meta ▁▁two ▁ alone __init__ a--b ... !!! ??? $$$ <<< >>> ### @user #tag http://x.y/z?a=1",
    "   leading spaces and trailing spaces   ",
    "",
]

CASES = [
    "", " ", "  ", "\n", "\t", "a", " a", "a ", "  a  b  ", "Hello world", " Hello", "hello\n\nworld\n",
    "\r\n\r\n", "\t \t", "x\u180ey", "x\u00a0y", "\u3000", "'s", "'S", "'ſ", "'LL", "I'M", "don't",
    "1234567", "12 345", "١٢٣", "é", "e\u0301", "\u1100\u1161\u11a8", "\u212b", "o\u0323\u0302", "\u0301",
    "日本語", "한국어", "🤖", "👨‍👩‍👧", "▁", "▁▁a", "a▁", " ▁", "<0x41>", "<0xFF>",
    "<|begin_of_text|>", "<|begin_of_text|>hi", "hi<|end_of_text|>", "<|im_start|>user\nhi<|im_end|>",
    "<|endoftext|><|endoftext|>", "<s>", " <s> ", "a<s>b", "<s>a", "</s>", "<unk>", "[INST]", " [INST] hi [/INST]",
    "[INST]hi[/INST] there", "<|reserved_special_token_3|>", "a <|im_end|> b",
    # for the *-added kinds: lstrip / rstrip, normalized added tokens
    "a <mask> b", "a<mask>b", "  <mask>  ", "\t<mask>\n", "<mask>", "hello world", " hello", "x hello", "[DAY]",
    "a [DAY] b", "yes", " yes", "a yes", "  yes", "café", "cafe\u0301", "a cafe\u0301!",
]

# Code points for the random cases: scripts, combining marks, Hangul jamo, every kind of space, digits
# of several scripts, letters newer than Unicode 14, emoji, NFC's singletons and exclusions.
RANDOM_POOLS = [
    list(range(0x20, 0x7F)), list(range(0xA0, 0x250)), list(range(0x300, 0x370)), list(range(0x1AB0, 0x1B00)),
    list(range(0x1100, 0x1200)), list(range(0xAC00, 0xAC40)), list(range(0x4E00, 0x4E40)),
    [9, 10, 11, 12, 13, 0x20, 0x85, 0xA0, 0x1680, 0x180E, 0x2000, 0x2005, 0x200A, 0x200B, 0x2028, 0x2029, 0x202F,
     0x205F, 0x3000, 0xFEFF, 0x1C, 0x1D],
    list(range(0x660, 0x66A)) + list(range(0x966, 0x970)) + list(range(0xFF10, 0xFF1A)) + [0xB2, 0xBD, 0x2160, 0x2460],
    [0x1C89, 0x1C8A, 0xA7CB, 0x105C0, 0x10D40, 0x2EBF0, 0x31350, 0x11938, 0x11935, 0x11930, 0x898, 0x7FD],
    list(range(0x1F600, 0x1F650)) + [0x200D, 0xFE0F, 0x1F3FD], list(range(0x900, 0x980)), list(range(0x590, 0x600)),
    [0x212B, 0x2126, 0x212A, 0x17F, 0xDF, 0x130, 0x131, 0x1E9E, 0xFB00, 0xFB05, 0xFB06, 0x345, 0x344, 0x340, 0x341,
     0x343, 0xF900, 0x2F800, 0x1E0A, 0x323, 0x307],
]
RANDOM_PIECES = ["<s>", "</s>", "<unk>", "<|begin_of_text|>", "<|im_start|>", "<|endoftext|>", "[INST]", "<mask>",
                 "[DAY]", " hello", "<0x41>", "▁", "'s", "'LL", "'ſ", "  ", "\n\n", "\r\n", " ", "1234567"]


def random_cases(n):
    import random

    rng = random.Random(2026)
    out = []
    for _ in range(n):
        s = ""
        for _ in range(rng.randint(1, 20)):
            s += rng.choice(RANDOM_PIECES) if rng.random() < 0.12 else chr(rng.choice(rng.choice(RANDOM_POOLS)))
        out.append(s)
    return out


# The *-added kinds: (content, special, normalized, lstrip and rstrip).
ADDED = {
    "llama3": [("<mask>", True, False, True), (" hello", False, True, False), ("[DAY]", False, False, False)],
    "qwen2": [("cafe\u0301", False, True, False), ("<mask>", True, False, True)],
    "llama2": [("[DAY]", False, True, False), (" yes", False, True, False), ("<mask>", True, False, True)],
}


def fortune_files():
    names = []
    for name in sorted(os.listdir(FORTUNES)):
        path = os.path.join(FORTUNES, name)
        if name.endswith((".dat", ".u8")) or os.path.islink(path) or not os.path.isfile(path):
            continue
        names.append(name)
    return names


def read_fortunes(name):
    with open(os.path.join(FORTUNES, name), "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    # Fortunes are separated by lines holding "%".
    return [p.strip("\n") for p in text.split("\n%\n") if p.strip()]


def training_texts():
    out = []
    for name in fortune_files():
        if name not in TEST_FILES:
            out.extend(read_fortunes(name))
    # A little of every special-case paragraph, so that the vocabularies hold some of their letters.
    out.extend(SPECIAL_PARAGRAPHS[5:9])
    return out


def test_text():
    real = []
    for name in TEST_FILES:
        real.extend(read_fortunes(name))
    parts, used = [], 0
    k = 0
    for i, p in enumerate(real):
        parts.append(p)
        used += len(p)
        if i % 11 == 10 and k < len(SPECIAL_PARAGRAPHS):
            parts.append(SPECIAL_PARAGRAPHS[k])
            k += 1
        if used > 20000 and k >= len(SPECIAL_PARAGRAPHS):
            break
    parts.extend(SPECIAL_PARAGRAPHS[k:])
    return "\n\n".join(parts) + "\n"


def byte_level_kind(kind, texts):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, \
        trainers

    pattern = LLAMA3_PATTERN if kind == "llama3" else QWEN2_PATTERN
    tok = Tokenizer(models.BPE())
    if kind == "qwen2":
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=kind == "llama3", use_regex=False),
    ])
    if kind == "llama3":
        tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    else:
        tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=2000, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(texts, trainer)
    if kind == "llama3":
        specials = ["<|begin_of_text|>", "<|end_of_text|>"] + \
                   ["<|reserved_special_token_%d|>" % i for i in range(4)] + ["<|eot_id|>"]
    else:
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    if kind == "llama3":
        bos = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
            processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                          pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                          special_tokens=[("<|begin_of_text|>", bos)]),
        ])
    else:
        tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    j = json.loads(tok.to_str())
    j["model"]["ignore_merges"] = kind == "llama3"
    if kind == "llama3":
        j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
    config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "clean_up_tokenization_spaces": True,
              "model_input_names": ["input_ids", "attention_mask"], "model_max_length": 131072,
              "tokenizer_class": "PreTrainedTokenizerFast"}
    if kind == "qwen2":
        config = {"add_prefix_space": False, "bos_token": None, "eos_token": "<|endoftext|>",
                  "pad_token": "<|endoftext|>", "errors": "replace", "model_max_length": 32768,
                  "tokenizer_class": "Qwen2Tokenizer", "unk_token": None, "clean_up_tokenization_spaces": False}
    return j, config


def sentencepiece_kind(kind, texts):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    # Train on words ("▁" + word, as SentencePiece sees them), then give the model the family's own
    # normalizer / pre-tokenizer.
    tok = Tokenizer(models.BPE(byte_fallback=True, fuse_unk=True, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    # The 150 most frequent characters (ties by code point) are the alphabet; the others fall back to
    # bytes. Chosen here: the trainer's own limit_alphabet breaks ties in no fixed order.
    counts = {}
    for t in texts:
        for ch in t.replace(" ", "▁"):
            counts[ch] = counts.get(ch, 0) + 1
    counts["▁"] = counts.get("▁", 0) + len(texts)
    alphabet = [ch for ch, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:150]]
    trainer = trainers.BpeTrainer(vocab_size=2200, min_frequency=2, show_progress=False, limit_alphabet=150,
                                  initial_alphabet=alphabet, special_tokens=["<unk>"])
    tok.train_from_iterator(texts, trainer)
    trained = json.loads(tok.to_str())["model"]

    specials = ["<unk>", "<s>", "</s>"]
    if kind == "mistral":
        specials += ["[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                     "[TOOL_RESULTS]", "[/TOOL_RESULTS]"] + ["[control_%d]" % i for i in range(8, 12)]
    vocab = {}
    for s in specials:
        vocab[s] = len(vocab)
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for t, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = trained["merges"]
    model = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
             "vocab": vocab, "merges": merges}
    added = [{"id": vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for s in specials]
    decoder = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    post = {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    j = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added}
    if kind == "llama2":
        j["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
        j["pre_tokenizer"] = None
    else:
        j["normalizer"] = None
        j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    j["post_processor"] = post
    j["decoder"] = decoder
    j["model"] = model
    # Let the library read it and write it back in its own form.
    j = json.loads(Tokenizer.from_str(json.dumps(j)).to_str())
    if kind == "llama2":
        j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
    token = {"__type": "AddedToken", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
    if kind == "llama2":
        config = {"add_bos_token": True, "add_eos_token": False, "bos_token": dict(token, content="<s>"),
                  "eos_token": dict(token, content="</s>"), "unk_token": dict(token, content="<unk>"),
                  "pad_token": None, "clean_up_tokenization_spaces": False, "legacy": False,
                  "model_max_length": 1000000000000000019884624838656, "tokenizer_class": "LlamaTokenizer"}
    else:
        config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                  "unk_token": "<unk>", "pad_token": None, "clean_up_tokenization_spaces": False, "legacy": False,
                  "model_max_length": 1000000000000000019884624838656, "tokenizer_class": "LlamaTokenizer"}
    return j, config


def encodings(tok, text):
    tok.encode_special_tokens = True
    plain = tok.encode(text, add_special_tokens=False).ids
    tok.encode_special_tokens = False
    special = tok.encode(text, add_special_tokens=False).ids
    document = tok.encode(text).ids
    return plain, special, document


def split_document(document, special):
    for k in range(len(document) - len(special) + 1):
        if document[k:k + len(special)] == special:
            return document[:k], document[k + len(special):]
    raise SystemExit("encode(text) is not prefix + encode(text, add_special_tokens=False) + suffix")


def golden(kind, tok_json, config, text):
    import tokenizers
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tok_json)
    g = {"generator": "lab/peers/make_tokenizers.py", "tokenizers": tokenizers.__version__, "kind": kind,
         "vocab_size": tok.get_vocab_size(with_added_tokens=True),
         "bos": tok.token_to_id(_content(config.get("bos_token"))) if config.get("bos_token") else None,
         "eos": tok.token_to_id(_content(config.get("eos_token"))) if config.get("eos_token") else None}
    cases = []
    for c in CASES + random_cases(100):
        p, s, d = encodings(tok, c)
        cases.append({"text": c, "plain": p, "special": s, "document": d,
                      "decoded": tok.decode(s, skip_special_tokens=False)})
    g["cases"] = cases
    if text is None:
        print("  %-13s vocab %d, %d cases" % (kind, tok.get_vocab_size(), len(cases)))
        return g
    plain, special, document = encodings(tok, text)
    prefix, suffix = split_document(document, special)
    g.update({"text": "tests/data/tokenizers/test_text.txt",
              "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
              "plain": plain, "special": special, "document_prefix": prefix, "document_suffix": suffix,
              "decoded_plain": tok.decode(plain, skip_special_tokens=False),
              "decoded_special": tok.decode(special, skip_special_tokens=False)})
    if kind == "llama3":
        # How often ignore_merges matters here: pieces that the vocabulary holds whole but merging
        # would not give as one token.
        j = json.loads(tok_json)
        j["model"]["ignore_merges"] = False
        merged = Tokenizer.from_str(json.dumps(j))
        pieces = [p for p, _ in tok.pre_tokenizer.pre_tokenize_str(text)]
        g["ignore_merges_pieces"] = sum(1 for p in set(pieces)
                                        if tok.model.tokenize(p) != [] and
                                        [t.id for t in tok.model.tokenize(p)] !=
                                        [t.id for t in merged.model.tokenize(p)])
    print("  %-13s vocab %d, test text: %d plain ids, %d with special tokens, document +%d/+%d%s" % (
        kind, tok.get_vocab_size(), len(plain), len(special), len(prefix), len(suffix),
        ", ignore_merges changes %d distinct pieces" % g["ignore_merges_pieces"] if kind == "llama3" else ""))
    if len(special) < 10000:
        raise SystemExit("%s: the test text gives only %d tokens (want >= 10000)" % (kind, len(special)))
    return g


def _content(token):
    return token["content"] if isinstance(token, dict) else token


def write_if_changed(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == data:
                print("unchanged %s (%d bytes)" % (os.path.relpath(path, REPO), len(data)))
                return
    with open(path, "wb") as f:
        f.write(data)
    print("wrote     %s (%d bytes)" % (os.path.relpath(path, REPO), len(data)))


def dump(obj):
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _ranges(cps):
    out = []
    for cp in sorted(cps):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def _print_table(name, rows, per_line):
    print("constexpr uint32_t %s[][%d] = {" % (name, len(rows[0])))
    for i in range(0, len(rows), per_line):
        print("    " + "".join("{" + ",".join(("0x%X" % v) if v > 9 else str(v) for v in r) + "},"
                              for r in rows[i:i + per_line]))
    print("};")


def unicode_tables():
    """Prints the Unicode tables of model/tokenizer.cc, taken from the tokenizers library itself.

    NFC: the library normalizes with the crate unicode-normalization-alignments, whose Unicode data
    is older than Python's: the structure (one-step decompositions, combining classes) comes from
    Python's unicodedata, and every entry is checked against, and cut to, what the library does
    (a code point the library leaves alone has no decomposition here; a combining mark it does not
    know has class 0). Regex: the library's \\s, \\p{L} and \\p{N} (Oniguruma, newer Unicode than
    PCRE2 on Debian 12) minus Python's (PCRE2 10.42 and Python 3.11 both have Unicode 14.0).
    """
    import unicodedata
    from tokenizers import Regex, normalizers, pre_tokenizers

    lib_nfc, lib_nfd = normalizers.NFC(), normalizers.NFD()
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    decomp, ccc = [], []
    seconds = set()
    for cp in cps:
        ch = chr(cp)
        c = unicodedata.combining(ch)
        if c:
            reorders = False
            for mark in ("\u0334", "\u0345"):  # classes 1 and 240
                for s in ("a" + mark + ch, "a" + ch + mark):
                    reorders |= lib_nfd.normalize_str(s) != s
            if reorders:
                ccc.append(cp)
            else:  # the library does not know this mark: check it is class 0 there
                for mark in ("\u0334", "\u0316", "\u0301", "\u0345"):
                    assert lib_nfd.normalize_str("a" + mark + ch) == "a" + mark + ch, hex(cp)
        if 0xAC00 <= cp <= 0xD7A3:
            continue  # Hangul syllables: composed by arithmetic
        d = unicodedata.decomposition(ch)
        if not d or d.startswith("<"):
            assert lib_nfd.normalize_str(ch) == ch or lib_nfd.normalize_str(ch) == unicodedata.normalize("NFD", ch)
            continue
        if lib_nfd.normalize_str(ch) == ch:
            continue  # newer than the library's data
        assert lib_nfd.normalize_str(ch) == unicodedata.normalize("NFD", ch), hex(cp)
        parts = [int(x, 16) for x in d.split()]
        assert 1 <= len(parts) <= 2, (hex(cp), d)
        composes = len(parts) == 2 and lib_nfc.normalize_str(ch) == ch
        if composes:
            seconds.add(parts[1])
        decomp.append((cp | (1 << 31 if composes else 0), parts[0], parts[1] if len(parts) == 2 else 0))
    ccc_rows = []
    for cp in ccc:
        c = unicodedata.combining(chr(cp))
        if ccc_rows and ccc_rows[-1][1] == cp - 1 and ccc_rows[-1][2] == c:
            ccc_rows[-1][1] = cp
        else:
            ccc_rows.append([cp, cp, c])
    # The fast path of model/tokenizer.cc: text below U+0300 is already NFC.
    for cp in range(0x300):
        assert lib_nfc.normalize_str(chr(cp)) == chr(cp) and not unicodedata.combining(chr(cp))
        assert cp not in seconds

    everything = "".join(chr(c) for c in cps)

    def library_matches(pattern):
        kept = set()
        for piece, _ in pre_tokenizers.Split(Regex(pattern), behavior="removed").pre_tokenize_str(everything):
            kept.update(ord(ch) for ch in piece)
        return {c for c in cps if c not in kept}

    space = library_matches(r"\s")
    assert space == {c for c in cps if unicodedata.category(chr(c)) in ("Zs", "Zl", "Zp")} | \
        set(range(9, 14)) | {0x85}, sorted(space)
    extra = {}
    for prop in ("L", "N"):
        lib = library_matches(r"\p{%s}" % prop)
        py = {c for c in cps if unicodedata.category(chr(c)).startswith(prop)}
        assert py <= lib, prop
        extra[prop] = _ranges(lib - py)

    print("// Generated by lab/peers/make_tokenizers.py --unicode-tables from tokenizers %s and Python %s's" %
          (__import__("tokenizers").__version__, sys.version.split()[0]))
    print("// unicodedata (Unicode %s)." % unicodedata.unidata_version)
    print("// {code point | 1 << 31 when it is a primary composite, first, second (0: a singleton)}")
    _print_table("kNfcDecompositions", decomp, 4)
    print("// {first, last, canonical combining class} of every code point whose class is not 0")
    _print_table("kNfcCombiningClasses", ccc_rows, 5)
    print("// {first, last}: letters (\\p{L}) and numbers (\\p{N}) to the library that are not in Unicode %s" %
          unicodedata.unidata_version)
    _print_table("kRegexExtraLetters", extra["L"], 6)
    _print_table("kRegexExtraNumbers", extra["N"], 6)


def fuzz_seeds(out):
    """Writes seeds for tests/fuzz/hf_tokenizer_fuzz.cc: one small file of each form (ok-*, each
    loaded by the library first) and near-valid ones with one field wrong (bad-*)."""
    from tokenizers import Tokenizer

    def spell(b):
        printable = lambda c: 33 <= c <= 126 or 0xA1 <= c <= 0xAC or c >= 0xAE
        return chr(b) if printable(b) else chr(256 + sum(1 for c in range(b) if not printable(c)))

    def token(tid, content, special=True):
        return {"id": tid, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": not special, "special": special}

    byte_vocab = {spell(b): b for b in range(256)}
    for t in ("Ġt", "he", "Ġthe", "in", "Ġa"):
        byte_vocab[t] = len(byte_vocab)
    byte_merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["i", "n"], ["Ġ", "a"]]
    eot = len(byte_vocab)
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    template = lambda name, tid: {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": name, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": name, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": name, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {name: {"id": name, "ids": [tid], "tokens": [name]}}}
    llama3 = {"version": "1.0", "truncation": None, "padding": None,
              "added_tokens": [token(eot, "<|begin_of_text|>"), token(eot + 1, "<|end_of_text|>")],
              "normalizer": None,
              "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                  {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
                  byte_level]},
              "post_processor": {"type": "Sequence", "processors": [
                  {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
                  template("<|begin_of_text|>", eot)]},
              "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
              "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                        "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                        "vocab": byte_vocab, "merges": [" ".join(m) for m in byte_merges]}}
    qwen2 = json.loads(json.dumps(llama3))
    qwen2["normalizer"] = {"type": "NFC"}
    qwen2["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = QWEN2_PATTERN
    qwen2["added_tokens"] = [token(eot, "<|endoftext|>"), token(eot + 1, "<|im_start|>"), token(eot + 2, "<|im_end|>")]
    qwen2["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    qwen2["model"]["ignore_merges"] = False
    qwen2["model"]["merges"] = byte_merges

    sp_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        sp_vocab["<0x%02X>" % b] = len(sp_vocab)
    for t in ["▁", "a", "b", "h", "e", "t", "▁t", "he", "▁the", "▁a"]:
        sp_vocab[t] = len(sp_vocab)
    sp_merges = [["▁", "t"], ["h", "e"], ["▁t", "he"], ["▁", "a"]]
    sp_decoder = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    llama2 = {"version": "1.0", "truncation": None, "padding": None,
              "added_tokens": [token(0, "<unk>"), token(1, "<s>"), token(2, "</s>")],
              "normalizer": {"type": "Sequence", "normalizers": [
                  {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
              "pre_tokenizer": None, "post_processor": template("<s>", 1), "decoder": sp_decoder,
              "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                        "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                        "vocab": sp_vocab, "merges": [" ".join(m) for m in sp_merges]}}
    mistral = json.loads(json.dumps(llama2))
    mistral["normalizer"] = None
    mistral["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    mistral["model"]["merges"] = sp_merges
    metaspace_split = json.loads(json.dumps(mistral))
    metaspace_split["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
                                        "split": True}
    metaspace_split["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}

    seeds = {"ok-split-llama3": llama3, "ok-split-nfc-qwen2": qwen2, "ok-sentencepiece-llama2": llama2,
             "ok-metaspace-mistral": mistral, "ok-metaspace-split": metaspace_split}
    for name, j in seeds.items():
        Tokenizer.from_str(json.dumps(j))  # the library accepts it

    def bad(base, edit):
        j = json.loads(json.dumps(base))
        edit(j)
        return j

    seeds["bad-split-behavior"] = bad(llama3, lambda j: j["pre_tokenizer"]["pretokenizers"][0].update(
        behavior="Removed"))
    seeds["bad-split-regex-escape"] = bad(llama3, lambda j: j["pre_tokenizer"]["pretokenizers"][0].update(
        pattern={"Regex": r"\w+|\s+"}))
    seeds["bad-normalizer-nfkc"] = bad(qwen2, lambda j: j.update(normalizer={"type": "NFKC"}))
    seeds["bad-unk-not-in-vocab"] = bad(llama2, lambda j: j["model"].update(unk_token="<nope>"))
    seeds["bad-template-no-sequence"] = bad(llama2, lambda j: j["post_processor"]["single"].pop())
    seeds["bad-metaspace-replacement"] = bad(mistral, lambda j: j["pre_tokenizer"].update(replacement="▁▁"))
    seeds["bad-decoder-ctc"] = bad(llama2, lambda j: j["decoder"]["decoders"].append({"type": "CTC"}))
    for name, j in seeds.items():
        write_if_changed(os.path.join(out, name), dump(j))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See the module docstring (head -50 lab/peers/make_tokenizers.py).")
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "tokenizers"),
                    help="output folder (default: tests/data/tokenizers)")
    ap.add_argument("--fuzz-seeds", metavar="DIR",
                    help="write seeds for tests/fuzz/hf_tokenizer_fuzz.cc to DIR (tests/fuzz/corpus/hf_tokenizer) "
                         "and exit")
    ap.add_argument("--unicode-tables", action="store_true",
                    help="print the Unicode tables of model/tokenizer.cc and exit")
    args = ap.parse_args()
    os.environ.setdefault("RAYON_NUM_THREADS", "1")  # the trainer's counts merge in a fixed order
    peers_env.ensure_venv(REQUIREMENTS)
    if args.unicode_tables:
        unicode_tables()
        return
    if args.fuzz_seeds:
        fuzz_seeds(args.fuzz_seeds)
        return
    if not os.path.isdir(FORTUNES):
        raise SystemExit("%s is missing: install the Debian package `fortunes` (scripts/setup.sh)" % FORTUNES)

    texts = training_texts()
    text = test_text()
    write_if_changed(os.path.join(args.out, "test_text.txt"), text.encode("utf-8"))
    for kind in ("llama3", "qwen2", "llama2", "mistral"):
        if kind in ("llama3", "qwen2"):
            j, config = byte_level_kind(kind, texts)
        else:
            j, config = sentencepiece_kind(kind, texts)
        tok_json = json.dumps(j, ensure_ascii=False, separators=(",", ":"))
        g = golden(kind, tok_json, config, text)
        d = os.path.join(args.out, kind)
        write_if_changed(os.path.join(d, "tokenizer.json"), (tok_json + "\n").encode("utf-8"))
        write_if_changed(os.path.join(d, "tokenizer_config.json"), dump(config))
        write_if_changed(os.path.join(d, "golden.json"), dump(g))
        if kind in ADDED:
            # The same tokenizer with added tokens of the rarer kinds: lstrip / rstrip, normalized.
            from tokenizers import AddedToken, Tokenizer

            tok = Tokenizer.from_str(tok_json)
            for content, special, normalized, strip in ADDED[kind]:
                t = AddedToken(content, special=special, normalized=normalized, lstrip=strip, rstrip=strip)
                (tok.add_special_tokens if special else tok.add_tokens)([t])
            j = json.loads(tok.to_str())
            j["model"]["merges"] = json.loads(tok_json)["model"]["merges"]
            added_json = json.dumps(j, ensure_ascii=False, separators=(",", ":"))
            d = os.path.join(args.out, kind + "-added")
            write_if_changed(os.path.join(d, "tokenizer.json"), (added_json + "\n").encode("utf-8"))
            write_if_changed(os.path.join(d, "tokenizer_config.json"), dump(config))
            write_if_changed(os.path.join(d, "golden.json"), dump(golden(kind + "-added", added_json, config, None)))


if __name__ == "__main__":
    main()
