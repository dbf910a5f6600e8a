"""Tokenizer stage: a byte-level BPE tokenizer (Hugging Face `tokenizers`) trained on the corpus's train split.

Train (after data_corpus.py; ~2 minutes on 2 cores, most of it counting the train split's tokens) and write data/tokenizer/{tokenizer.json, tokenizer_config.json,
fixture.json, stats.json}:
    python -m scripts.data_tokenizer
Smoke build for CI (reads data/corpus-smoke, writes data/tokenizer-smoke, vocabulary 2048):
    python -m scripts.data_tokenizer --smoke
Check an existing tokenizer again (special ids, lossless round trip on the valid split) and rewrite its fixture:
    python -m scripts.data_tokenizer --check

The special tokens sit at fixed ids that the model, the ONNX metadata and the TypeScript runtime rely on (they also
read them back from tokenizer.json by string and check them):
    0 <|pad|>  1 <|mask|>  2 <|eos|> (end of span)  3 <|file|>  4 <|fim_prefix|>  5 <|fim_middle|>  6 <|fim_suffix|>
    7 <|lang:python|>  8 <|lang:typescript|>  9 <|lang:javascript|>  10 <|lang:other|>
then the 256 byte symbols, then the merges. No normalizer (code is kept byte for byte: tabs, CRLF, trailing spaces),
no post-processor (nothing is added around the ids), a ByteLevel decoder.

Pre-tokenizer: Split on a code-minded regex, then ByteLevel without its own regex (the layout Llama 3 uses, which
@huggingface/tokenizers 0.2.0 in Node loads with identical ids; fixture.json holds the proof cases). The regex is
GPT-4's without the English contractions ('s 't 're ...: in code they cut string literals such as 'sum' apart):
a word takes at most one leading non-letter (" foo", ".append", "(bar", "\tif"); digits come in groups of up to 3;
runs of punctuation keep their line break (":\n", ");\r\n"); runs of spaces stay together except the last one, which
joins the next word, so BPE learns indentation as few tokens.

The JavaScript side must also set `clean_up_tokenization_spaces: false` (tokenizer_config.json does), or its decode
would rewrite " ." to "." in code.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from unmask.paths import DATA_DIR as DEFAULT_DATA

# The special tokens in id order: their position in this list is their id.
SPECIAL_TOKENS = [
    "<|pad|>", "<|mask|>", "<|eos|>", "<|file|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
    "<|lang:python|>", "<|lang:typescript|>", "<|lang:javascript|>", "<|lang:other|>",
]
PRETOKENIZE_PATTERN = r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

# Hand-written cases for the fixture: the places where a regex engine or a byte mapping could disagree.
EDGE_CASES = {
    "crlf": "def f(x):\r\n    return x  \r\n\r\nclass A:\r\n\tpass\r\n",
    "tabs_and_trailing_spaces": "if (a) {\n\t\tb();\t// tab\n    \t  mixed   \n}\n\n\n",
    "unicode_identifiers_and_strings": "café = 'naïve' + \"日本語\" + '😀👍🏽' + 'Ω≈ç√' + 'e\u0301'\nconst ñ = `привет ${мир}`;\n",
    "unicode_whitespace": "a\u00a0=\u00a0b\u2028c\u3000d\u0085e\ufeff\u2009f\u000bg\u000ch",
    "numbers": "x = 1234567 + 0x1F_FF + 3.14e-10 + 1_000_000n; y = ١٢٣ + ½\n",
    "special_tokens_in_text": "<|file|>print('hi')<|eos|><|pad|><|mask|><|lang:python|>\n",
    "contractions_in_code": "s = 'sum' + \"'t'\" + 'don't' + \"I'll\" + 'RE'\n",
    "long_indentation": "                                                                x = 1\n        \n",
    "empty_lines_only": "\n\n\n\r\n\r\n",
    "control_and_lone_bytes": "a\x00b\x1bc\x7fd",
}


def log(msg: str) -> None:
    print(f"[tokenizer] {msg}", file=sys.stderr, flush=True)


def read_records(path: Path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def training_texts(corpus: Path, max_bytes_per_language: int):
    """The train split's texts, at most `max_bytes_per_language` per language so that Python (most of the corpus)
    does not crowd TypeScript and JavaScript out of the vocabulary. The split is already shuffled, so the first
    files are a fair sample. Returns (texts, bytes per language)."""
    taken: dict[str, int] = {}
    texts = []
    for rec in read_records(corpus / "train.jsonl.gz"):
        n = len(rec["text"].encode("utf-8"))
        if max_bytes_per_language and taken.get(rec["language"], 0) + n > max_bytes_per_language:
            continue
        taken[rec["language"]] = taken.get(rec["language"], 0) + n
        texts.append(rec["text"])
    return texts, taken


def build_tokenizer():
    """An untrained tokenizer with the pipeline described in the module docstring."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    return tok


def train(texts: list[str], vocab_size: int, min_frequency: int):
    from tokenizers import AddedToken, pre_tokenizers, trainers

    tok = build_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS],
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tok


def check_special_ids(tok) -> None:
    for i, t in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(t) != i:
            raise AssertionError(f"special token {t} has id {tok.token_to_id(t)}, expected {i}")


def check_round_trip(tok, texts: list[str]) -> None:
    """Byte-level BPE must be lossless: decode(encode(text)) == text for every file."""
    encs = tok.encode_batch(texts, add_special_tokens=False)
    for text, enc in zip(texts, encs):
        back = tok.decode(enc.ids, skip_special_tokens=False)
        if back != text:
            at = next((i for i, (a, b) in enumerate(zip(back, text)) if a != b), min(len(back), len(text)))
            raise AssertionError(f"round trip changed the text at char {at}: {text[at - 20:at + 20]!r} -> "
                                 f"{back[at - 20:at + 20]!r}")


def fixture_cases(valid: list[dict]) -> list[dict]:
    """Samples for the Node parity test: the first 2 valid files of each language (cut to ~1500 chars at a line end)
    and the hand-written edge cases."""
    cases = []
    per_lang: dict[str, int] = {}
    for rec in valid:
        if per_lang.get(rec["language"], 0) >= 2:
            continue
        per_lang[rec["language"]] = per_lang.get(rec["language"], 0) + 1
        text = rec["text"]
        if len(text) > 1500:
            cut = text.find("\n", 1500)
            text = text[: cut + 1] if cut >= 0 else text
        cases.append({"name": f"{rec['language']}:{rec['package']}/{rec['path']}", "text": text})
    cases += [{"name": name, "text": text} for name, text in EDGE_CASES.items()]
    return cases


def write_fixture(tok, tokenizer_path: Path, valid: list[dict], out: Path) -> None:
    cases = fixture_cases(valid)
    for case in cases:
        enc = tok.encode(case["text"], add_special_tokens=False)
        case["ids"] = enc.ids
        case["decoded"] = tok.decode(enc.ids, skip_special_tokens=False)
    fixture = {
        "about": "Token ids the Python `tokenizers` library gives for each text; the Node runtime must give the same "
                 "ids (encode with add_special_tokens false) and decode them back to `decoded` (== text).",
        "tokenizer_sha256": hashlib.sha256(tokenizer_path.read_bytes()).hexdigest(),
        "special_tokens": {t: i for i, t in enumerate(SPECIAL_TOKENS)},
        "cases": cases,
    }
    out.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")


def tokens_per_byte(tok, records: list[dict]) -> dict:
    """Tokens per UTF-8 byte of text, per language and overall (lower is better compression)."""
    by_lang: dict[str, list[int]] = {}
    encs = tok.encode_batch([r["text"] for r in records], add_special_tokens=False)
    for rec, enc in zip(records, encs):
        entry = by_lang.setdefault(rec["language"], [0, 0])
        entry[0] += len(enc.ids)
        entry[1] += len(rec["text"].encode("utf-8"))
    out = {lang: {"tokens": t, "bytes": b, "tokens_per_byte": round(t / b, 4)} for lang, (t, b) in sorted(by_lang.items())}
    t, b = sum(v[0] for v in by_lang.values()), sum(v[1] for v in by_lang.values())
    out["all"] = {"tokens": t, "bytes": b, "tokens_per_byte": round(t / b, 4) if b else None}
    return out


def count_split_tokens(tok, path: Path, batch: int = 512) -> dict:
    """Token counts of a whole split, read in batches to bound memory."""
    totals: dict[str, list[int]] = {}
    pending: list[dict] = []

    def flush():
        for lang, v in tokens_per_byte(tok, pending).items():
            if lang != "all":
                e = totals.setdefault(lang, [0, 0])
                e[0] += v["tokens"]
                e[1] += v["bytes"]
        pending.clear()

    for rec in read_records(path):
        pending.append(rec)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    out = {lang: {"tokens": t, "bytes": b, "tokens_per_byte": round(t / b, 4)} for lang, (t, b) in sorted(totals.items())}
    t, b = sum(v[0] for v in totals.values()), sum(v[1] for v in totals.values())
    out["all"] = {"tokens": t, "bytes": b, "tokens_per_byte": round(t / b, 4) if b else None}
    return out


def write_config(out: Path) -> None:
    """tokenizer_config.json: what the Node library needs besides tokenizer.json (no clean-up of spaces)."""
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": False,
        "pad_token": "<|pad|>",
        "mask_token": "<|mask|>",
        "eos_token": "<|eos|>",
        "additional_special_tokens": SPECIAL_TOKENS[3:],
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true",
                   help="read data/corpus-smoke and write data/tokenizer-smoke (vocabulary 2048 unless --vocab-size)")
    p.add_argument("--corpus", default=None,
                   help="corpus folder with train/valid .jsonl.gz (default data/corpus, data/corpus-smoke with --smoke)")
    p.add_argument("--out", default=None,
                   help="output folder (default data/tokenizer, data/tokenizer-smoke with --smoke)")
    p.add_argument("--vocab-size", type=int, default=None,
                   help="vocabulary size including the 11 special tokens and 256 bytes (default 8192, 2048 with --smoke)")
    p.add_argument("--min-frequency", type=int, default=2, help="a merge must be seen this many times (default 2)")
    p.add_argument("--max-bytes-per-language", type=int, default=30_000_000,
                   help="train the merges on at most this many bytes of each language, 0 for all (default 30000000)")
    p.add_argument("--threads", type=int, default=2, help="worker threads of the tokenizers library (default 2)")
    p.add_argument("--check", action="store_true",
                   help="do not train: check the tokenizer in --out (special ids, lossless round trip on the valid "
                        "split) and rewrite its fixture.json")
    p.add_argument("--no-count", action="store_true", help="skip counting the tokens of the whole train split")
    args = p.parse_args(argv)

    # The Rust library reads its thread count from the environment when first used.
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    from tokenizers import Tokenizer

    suffix = "-smoke" if args.smoke else ""
    corpus = Path(args.corpus or DEFAULT_DATA / f"corpus{suffix}")
    out = Path(args.out or DEFAULT_DATA / f"tokenizer{suffix}")
    vocab_size = args.vocab_size or (2048 if args.smoke else 8192)
    tokenizer_path = out / "tokenizer.json"
    for split in ("train", "valid"):
        if not (corpus / f"{split}.jsonl.gz").exists():
            raise SystemExit(f"{corpus / f'{split}.jsonl.gz'} not found: run data_corpus.py{' --smoke' if args.smoke else ''} first")
    valid = list(read_records(corpus / "valid.jsonl.gz"))
    t0 = time.time()

    if args.check:
        if not tokenizer_path.exists():
            raise SystemExit(f"{tokenizer_path} not found: train it first (data_tokenizer.py without --check)")
        tok = Tokenizer.from_file(str(tokenizer_path))
    else:
        texts, taken = training_texts(corpus, args.max_bytes_per_language)
        log(f"training a {vocab_size}-token BPE on {len(texts)} files ("
            + ", ".join(f"{lang} {b / 1e6:.1f} MB" for lang, b in sorted(taken.items())) + ")")
        tok = train(texts, vocab_size, args.min_frequency)
        del texts
        out.mkdir(parents=True, exist_ok=True)
        tok.save(str(tokenizer_path))
        write_config(out)
        log(f"trained in {time.time() - t0:.0f} s: vocabulary {tok.get_vocab_size()}")

    check_special_ids(tok)
    check_round_trip(tok, [r["text"] for r in valid])
    write_fixture(tok, tokenizer_path, valid, out / "fixture.json")
    stats = {"vocab_size": tok.get_vocab_size(), "special_tokens": SPECIAL_TOKENS,
             "pretokenize_pattern": PRETOKENIZE_PATTERN, "valid": tokens_per_byte(tok, valid)}
    if (corpus / "test.jsonl.gz").exists():
        # The held-out packages: how well the vocabulary fits code from projects it never saw.
        stats["test"] = count_split_tokens(tok, corpus / "test.jsonl.gz")
    if not args.check and not args.no_count:
        stats["train"] = count_split_tokens(tok, corpus / "train.jsonl.gz")
        stats["trained_on_bytes"] = taken
    if not args.check:
        stats["seconds"] = round(time.time() - t0, 1)
        (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    for split in ("valid", "test", "train"):
        if split in stats:
            log(f"{split}: " + ", ".join(f"{lang} {v['tokens']:,} tokens ({v['tokens_per_byte']} tokens/byte)"
                                         for lang, v in stats[split].items()))
    log(f"special ids and round trip on {len(valid)} valid files ok; wrote {out / 'fixture.json'} "
        f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
