"""Text corpora: reading, vocabulary, encoding, decoding and their errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqgan.datasets.config import DataConfig
from seqgan.datasets import Vocabulary, format_samples, load_corpus, resolve_spec
from seqgan.datasets import text
from seqgan.errors import UserError

DATA = Path(__file__).parents[1].parent / "shared" / "data"
COCO = DATA / "image_coco"


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    p = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    p.write_bytes(content)
    return str(p)


def load(path, **options):
    seq_len = options.pop("seq_len", None)
    test_spec = options.pop("test_spec", None)
    cfg = DataConfig(spec=path, test_spec=test_spec, seq_len=seq_len, options=options)
    return load_corpus(path, cfg)


def test_vocab_order_specials_and_limits(tmp_path):
    path = write(tmp_path, "c.txt", "b a c\nb a d\nb e\n")
    c = load(path)
    v = c.vocab
    assert v.tokens[:4] == list(text.SPECIALS) and (v.pad, v.bos, v.eos, v.unk) == (0, 1, 2, 3)
    assert v.tokens[4:] == ["b", "a", "c", "d", "e"]  # frequency, then first appearance
    assert c.start_token == v.bos and v.kind == "text"

    c = load(path, min_freq=2)
    assert c.vocab.tokens[4:] == ["b", "a"]
    assert c.train[2].tolist()[:3] == [4, 3, 2]  # "b e" -> b, UNK, EOS
    assert c.info["unk_rate"] == pytest.approx(3 / 8)

    c = load(path, max_vocab=1)
    assert c.vocab.tokens[4:] == ["b"]


def test_special_spelled_word_maps_to_special(tmp_path):
    c = load(write(tmp_path, "ptb.txt", "the <unk> cat\n"))
    assert "<unk>" not in c.vocab.tokens[4:]
    assert c.train[0].tolist()[:4] == [c.vocab.index("the"), 3, c.vocab.index("cat"), 2]


SENTENCES = ["The dog's ball, is red.", "Isn't it (really) great?", "a b c d e f"]


@pytest.mark.parametrize("tokenizer", sorted(text.TOKENIZERS))
def test_round_trip_each_tokenizer(tmp_path, tokenizer):
    path = write(tmp_path, "s.txt", "\n".join(SENTENCES) + "\n")
    c = load(path, tokenizer=tokenizer, lowercase=True)
    meta = c.vocab.meta
    assert meta["tokenizer"] == tokenizer and meta["lowercase"] is True
    toks = [text.tokenize(s, meta) for s in SENTENCES]
    assert all(t == t_.lower() for s in toks for t, t_ in zip(s, s))  # lower-cased
    assert [c.vocab.decode(row) for row in c.train.tolist()] == toks
    lines = format_samples(c.vocab, c.train)
    assert text.format_lines(c.vocab, c.train) == lines
    if tokenizer in ("whitespace", "treebank"):  # exact detokenizers
        assert lines == [s.lower() for s in SENTENCES]
    assert [text.tokenize(s, meta) for s in lines[2:]] == toks[2:]
    # the same encoding through the helpers the evaluate command uses
    again = text.encode_sentences(c.vocab, text.read_sentences(path), c.seq_len)
    assert torch.equal(again, c.train)


def test_sequence_length_and_cut(tmp_path):
    path = write(tmp_path, "l.txt", "a b c d e\na b\na\n")
    c = load(path)
    assert c.seq_len == 6 and c.info["cut"] == 0  # longest 5 words + EOS
    row = c.train[0].tolist()
    assert row[-1] == c.vocab.eos and c.train[2].tolist() == [4, 2, 0, 0, 0, 0]

    c = load(path, seq_len=3)
    assert c.train.shape == (3, 3) and c.info["cut"] == 1  # "a b c d e" -> a b EOS
    assert c.train[0].tolist() == [4, 5, 2] and c.train[1].tolist() == [4, 5, 2]

    c = load(path, max_len=4)
    assert c.seq_len == 4 and c.info["cut"] == 1
    c = load(path, len_percentile=50)  # median length 2 -> T = 3
    assert c.seq_len == 3
    assert text.choose_seq_len([1, 2, 3, 4, 100], 80, 48) == 5


def test_undecodable_lines_skipped_and_counted(tmp_path):
    path = write(tmp_path, "u.txt", b"good line\n\xff\xfe bad\n\n  \ncaf\xc3\xa9 ok\r\nlast\n")
    c = load(path)
    assert c.info["skipped_undecodable"] == 1 and c.info["empty"] == 2
    assert c.info["lines"] == 6 and c.info["sentences"] == 3
    assert text.format_lines(c.vocab, c.train) == ["good line", "café ok", "last"]


def test_bom_is_dropped(tmp_path):
    c = load(write(tmp_path, "bom.txt", b"\xef\xbb\xbfhello world\n"))
    assert c.vocab.tokens[4:] == ["hello", "world"]


@pytest.mark.parametrize("content, words", [
    (b"", "empty"),
    (b"\n \n\t\n", "no sentence"),
    (b"ab\x00cd\x00\x01\x02" * 10, "binary"),
    ("caf\xe9 one\nna\xefve two\n".encode("latin-1"), "not UTF-8"),
])
def test_unusable_files_give_user_error(tmp_path, content, words):
    path = write(tmp_path, "bad.txt", content)
    with pytest.raises(UserError) as e:
        load(path)
    msg = str(e.value)
    assert words in msg and path in msg and "\n" not in msg


def test_bad_options(tmp_path):
    path = write(tmp_path, "o.txt", "a b\n")
    with pytest.raises(UserError, match="tokenizer"):
        load(path, tokenizer="punkt")
    with pytest.raises(UserError, match="unknown option"):
        load(path, vocab_size=10)
    with pytest.raises(UserError, match="min_freq"):
        load(path, min_freq=0)
    with pytest.raises(UserError, match="no such text file"):
        load(path, test_spec=str(tmp_path / "missing.txt"))


def test_test_set_uses_train_vocab(tmp_path):
    train = write(tmp_path, "train.txt", "a b c\nb c\n")
    test = write(tmp_path, "test.txt", "a z c b a q w e r t y\n")
    c = load(train, test_spec=test)
    assert c.test.shape == (1, c.seq_len) == (1, 4)
    assert c.test[0].tolist() == [c.vocab.index("a"), c.vocab.unk, c.vocab.index("c"), c.vocab.eos]
    assert c.info["test_cut"] == 1 and c.info["test_unk_rate"] == pytest.approx(1 / 3)


def test_load_corpus_end_to_end_and_vocab_json(tmp_path):
    path = write(tmp_path, "sentences.dat", "hello there world\nhello again\n")
    assert resolve_spec(path) == ("text", path)
    c = load_corpus(path)
    assert c.train.dtype == torch.int64 and c.train.shape == (2, 4) and c.test is None
    v = Vocabulary.from_dict(c.vocab.to_dict())
    assert v.tokens == c.vocab.tokens and v.meta == c.vocab.meta
    assert format_samples(v, c.train) == ["hello there world", "hello again"]


@pytest.mark.skipif(not COCO.is_dir(), reason=f"{COCO} not present (shared data folder absent)")
def test_coco_loads_with_sensible_length_and_vocab():
    c = load(str(COCO / "train.txt"), test_spec=str(COCO / "test.txt"))
    assert c.train.shape == (10_000, 36)  # 35 words at most + EOS (whitespace tokens)
    assert c.test.shape == (10_000, 36)
    assert 6_000 < len(c.vocab) < 6_200 and c.info["cut"] == 0
    assert c.info["test_unk_rate"] < 0.1
    assert format_samples(c.vocab, c.train[:1]) == ["a bicycle replica with a clock as the front wheel."]
