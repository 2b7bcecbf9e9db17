"""Every file the toolkit reads, fed bad bytes; every command, fed bad arguments.

Each case must either fail with exit status 2 and one line ``error: ...`` on stderr (no
traceback) or, where the input is merely odd, go on and report what it skipped or cut. A
failed ``pretrain`` never leaves a run directory (nor a ``.*.creating`` temp folder).
"""
from __future__ import annotations

import json
import random
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from bad_input_contract import _isolated  # noqa: F401 (autouse: a private music cache, memory capped)
from bad_input_contract import abc_tune, midi_bytes, musicxml, npz, pretrain, sentences, xml_notes
from helpers import fails_cleanly, invoke, no_run_left, succeeds
import torch

from seqgan.runs.rundir import RunDir


# -- valid files of each kind ------------------------------------------------------------
def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00")) + chunk(b"IEND", b""))


def npz_bytes() -> bytes:
    from seqgan.models.oracle import Oracle

    return npz({k: v.numpy() for k, v in Oracle.random(50, 8, 8, 8, seed=1).params().items()})


MUSICXML = musicxml(xml_notes("CDEFGABC"), xml_notes("GFEDCDEF"))
ABC = "".join(abc_tune(x=i, title=f"Chanson française {i}") for i in range(1, 9))
TEXT = sentences(40)
TEXTUAL = {"txt": TEXT, "abc": ABC, "musicxml": MUSICXML}
RANDOM = bytes(random.Random(0).randrange(256) for _ in range(3000))
HUGE_LINE = b"la " * 350_000 + b"\n"  # one line of ~1 MB


@pytest.fixture(scope="module")
def valid() -> dict[str, bytes]:
    return {"txt": TEXT.encode(), "abc": ABC.encode(), "mid": midi_bytes(repeats=4),
            "musicxml": MUSICXML.encode(), "npz": npz_bytes()}


def bad_contents(kind: str, valid: dict[str, bytes]) -> dict[str, bytes]:
    out = {"empty": b"", "random": RANDOM, "truncated": valid[kind][: len(valid[kind]) * 2 // 5],
           "hugeline": HUGE_LINE, "png": png_bytes(), "nul": b"\x00" * 64}
    if kind in TEXTUAL:
        out["latin1"] = TEXTUAL[kind].encode("latin-1", errors="replace")
        out["utf16"] = TEXTUAL[kind].encode("utf-16")
    out.update({f"{other}-file": data for other, data in valid.items() if other != kind})
    return out


KINDS = ("txt", "abc", "mid", "musicxml", "npz")
# inputs that are odd but usable: (kind, content) -> what the data summary must say
ACCEPTED = {
    ("txt", "truncated"): "sentences 17",     # cut at a line end: 17 whole sentences
    ("txt", "hugeline"): "cut 1",             # the 1 MB sentence is cut to T-1 words, and counted
    ("txt", "abc-file"): "empty 8",           # ABC is text too; its blank lines are counted
    ("txt", "musicxml-file"): "sentences ",   # so is XML
    ("abc", "truncated"): "skipped 1",        # the tune cut in half is skipped and counted
    ("abc", "latin1"): "tunes 8, skipped 0",  # ABC files are often latin-1
    ("abc", "utf16"): "tunes 8, skipped 0",   # ... or UTF-16 with a byte-order mark
    ("musicxml", "latin1"): "tunes 1, skipped 0",  # the XML is plain ASCII
}
CASES = [(k, c) for k in KINDS for c in ("empty", "random", "truncated", "hugeline", "png", "nul",
                                         "latin1", "utf16", *(f"{o}-file" for o in KINDS))
         if c.removesuffix("-file") != k and not (c in ("latin1", "utf16") and k not in TEXTUAL)]


@pytest.mark.parametrize("kind,content", CASES)
def test_data_file(tmp_path, valid, kind, content):
    f = tmp_path / f"data.{kind}"
    f.write_bytes(bad_contents(kind, valid)[content])
    out = tmp_path / "run"
    r = pretrain(f"oracle:{f}" if kind == "npz" else f, out)
    if (kind, content) in ACCEPTED:
        assert ACCEPTED[kind, content] in succeeds(r)
        assert (out / "checkpoint" / "state.json").is_file()
    else:
        line = fails_cleanly(r, str(f))
        assert "unsafe" not in line  # (numpy's advice to load a foreign file with pickle)
        no_run_left(out)


def test_valid_files_of_each_kind_are_accepted(tmp_path, valid):
    """The reference point of the table above: the unspoilt files all load."""
    for kind, data in valid.items():
        f = tmp_path / f"ok.{kind}"
        f.write_bytes(data)
        r = pretrain(f"oracle:{f}" if kind == "npz" else f, tmp_path / f"run-{kind}")
        assert "training sequences" in succeeds(r)


@pytest.mark.parametrize("files,expect", [
    ({"a.mid": "png", "b.mid": "truncated", "c.musicxml": "random"}, "all 3 tunes/files failed"),
    ({}, "is empty"),
    ({"notes.txt": "text", "x.png": "png"}, "no MIDI"),
    ({"a.mid": "midi", "b.mid": "png", "c.musicxml": "random", "d.mid": "midi"}, None),
])
def test_music_folder(tmp_path, valid, files, expect):
    folder = tmp_path / "songs"
    folder.mkdir()
    data = {"png": png_bytes(), "truncated": valid["mid"][:100], "random": RANDOM,
            "text": b"hello\n", "midi": valid["mid"]}
    for name, what in files.items():
        (folder / name).write_bytes(data[what])
    out = tmp_path / "run"
    r = pretrain(folder, out, "--data-option", "cache=false")
    if expect is None:  # the unreadable files are skipped and counted
        assert "skipped 2" in succeeds(r) and "tunes 2" in r.stderr
    else:
        fails_cleanly(r, str(folder), expect)
        no_run_left(out)


# -- files read next to a run: --test, --references, samples for export-midi ----------------
@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "oracle"
    succeeds(invoke("pretrain", "--data", "oracle", "--preset", "quick", "--out", run, "--epochs", "1",
                    "--device", "cpu"))
    succeeds(invoke("train", run, "--epochs", "1", "--d-pretrain-steps", "1", "--device", "cpu"))
    return run


@pytest.fixture(scope="module")
def music_run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("music")
    (d / "tunes.abc").write_text(ABC)
    run = d / "run"
    succeeds(invoke("pretrain", "--data", d / "tunes.abc", "--preset", "quick", "--out", run,
                    "--epochs", "0", "--device", "cpu", "--data-option", "cache=false"))
    return run


SIDE_CONTENTS = ("empty", "random", "latin1", "utf16", "png", "nul", "mid-file", "npz-file")


@pytest.mark.parametrize("content", SIDE_CONTENTS)
def test_bad_test_file(tmp_path, valid, content):
    data = tmp_path / "train.txt"
    data.write_text(TEXT)
    test = tmp_path / "test.txt"
    test.write_bytes(bad_contents("txt", valid)[content])
    out = tmp_path / "run"
    r = invoke("pretrain", "--data", data, "--test", test, "--out", out, "--preset", "quick",
               "--device", "cpu")
    fails_cleanly(r, str(test))
    no_run_left(out)


def test_test_file_for_data_that_makes_its_own_test_set(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    r = invoke("pretrain", "--data", "oracle", "--test", tmp_path / "t.txt", "--out", tmp_path / "run",
               "--preset", "quick")
    fails_cleanly(r, "--test", "text")
    no_run_left(tmp_path / "run")


@pytest.mark.parametrize("content", SIDE_CONTENTS)
def test_bad_references_file(tmp_path, valid, oracle_run, content):
    refs = tmp_path / "refs.txt"
    refs.write_bytes(bad_contents("txt", valid)[content])
    r = invoke("evaluate", oracle_run, "--metrics", "bleu", "-n", "8", "--references", refs)
    fails_cleanly(r, str(refs))


@pytest.mark.parametrize("content", [*SIDE_CONTENTS, "hugeline", "txt-file"])
def test_bad_samples_file_for_export_midi(tmp_path, valid, music_run, content):
    samples = tmp_path / "samples.txt"
    samples.write_bytes(bad_contents("mid", valid)[content] if content == "txt-file"
                        else bad_contents("txt", valid)[content])
    out = tmp_path / "midi"
    r = invoke("export-midi", samples, "--run", music_run, "--out", out)
    line = fails_cleanly(r, str(samples))
    assert len(line) < 400  # a 1 MB token is not echoed back
    assert not out.exists() or not any(out.iterdir())


def test_good_samples_file_exports(tmp_path, music_run):
    samples = tmp_path / "samples.txt"
    r = invoke("sample", music_run, "-n", "3", "--out", samples)
    succeeds(r)
    r = invoke("export-midi", samples, "--run", music_run, "--out", tmp_path / "midi")
    succeeds(r)
    assert len(list((tmp_path / "midi").glob("*.mid"))) == 3


# -- files of a run ------------------------------------------------------------------------
def corrupt(data: bytes, how: str) -> bytes:
    if how == "empty":
        return b""
    if how == "truncated":
        return data[: len(data) // 2]
    if how == "random":
        return bytes(random.Random(len(data)).randrange(256) for _ in range(max(len(data), 16)))
    if how == "bitflip":  # one bit in the last quarter: inside the tensor data / the JSON body
        b = bytearray(data)
        b[len(b) * 3 // 4] ^= 0x08
        return bytes(b)
    if how == "utf16":
        return data.decode("latin-1").encode("utf-16")
    raise ValueError(how)


CORRUPTIONS = ("empty", "truncated", "random", "bitflip", "utf16")
# run file -> command that must read it
RUN_FILES = {
    "config.json": ["sample", "-n", "2"],
    "vocab.json": ["sample", "-n", "2"],
    "data.safetensors": ["train", "--device", "cpu"],
    "oracle.safetensors": ["evaluate", "-n", "8", "--metrics", "nll-oracle"],
    "generator-mle.safetensors": ["sample", "-n", "2", "--mle"],
}


def copy_run(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("how", CORRUPTIONS)
@pytest.mark.parametrize("name", RUN_FILES)
def test_corrupt_run_file_is_named_in_one_line(tmp_path, oracle_run, name, how):
    run = copy_run(oracle_run, tmp_path)
    f = run / name
    f.write_bytes(corrupt(f.read_bytes(), how))
    cmd, *opts = RUN_FILES[name]
    fails_cleanly(invoke(cmd, run, *opts), str(f))


CHECKPOINT_FILES = ("state.json", "generator.safetensors", "discriminator.safetensors",
                    "rollout.safetensors", "optim-g-adv.safetensors", "rng.safetensors")


@pytest.mark.parametrize("how", CORRUPTIONS)
@pytest.mark.parametrize("name", CHECKPOINT_FILES)
def test_corrupt_checkpoint_falls_back_with_a_warning(tmp_path, oracle_run, name, how):
    run = copy_run(oracle_run, tmp_path)
    f = run / "checkpoint" / name
    f.write_bytes(corrupt(f.read_bytes(), how))
    r = invoke("sample", run, "-n", "2", "--seed", "1")
    warnings = [line for line in succeeds(r).splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "previous checkpoint" in warnings[0]
    # names the file (a flipped digest in state.json: the file it no longer matches, and state.json)
    assert str(run / "checkpoint") in warnings[0] and name in warnings[0]
    # what was sampled is the previous checkpoint's generator
    from seqgan.files import load_tensors
    from seqgan.runs.rundir import RunDir
    from seqgan.models.generator import Generator

    g = Generator(RunDir(run).config.generator)
    g.load_state_dict(load_tensors(run / "checkpoint.prev" / "generator.safetensors"))
    want = g.sample(2, generator=torch.Generator().manual_seed(1))
    assert r.stdout.split() == [str(int(t)) for t in want.flatten()]
    # training resumes from it (warning again: reading never repairs a run) and writes a good
    # checkpoint, after which the warning is gone
    r = invoke("train", run, "--device", "cpu")
    assert "previous checkpoint" in succeeds(r)
    assert json.loads((run / "checkpoint" / "state.json").read_text())["phase"] == "done"
    assert "warning" not in succeeds(invoke("sample", run, "-n", "2"))


def test_both_checkpoints_corrupt_is_an_error(tmp_path, oracle_run):
    run = copy_run(oracle_run, tmp_path)
    for folder in ("checkpoint", "checkpoint.prev"):
        g = run / folder / "generator.safetensors"
        g.write_bytes(g.read_bytes()[:40])
    fails_cleanly(invoke("sample", run), str(run / "checkpoint" / "generator.safetensors"), "corrupt")
    fails_cleanly(invoke("train", run, "--device", "cpu"), "generator.safetensors")


def test_damaged_metrics_log_is_reported_and_training_goes_on(tmp_path, oracle_run):
    run = copy_run(oracle_run, tmp_path)
    m = run / "metrics.jsonl"
    m.write_bytes(corrupt(m.read_bytes(), "random"))
    r = invoke("train", run, "--epochs", "2", "--device", "cpu")
    assert "metrics.jsonl" in succeeds(r) and "warning:" in r.stderr
    recs = [json.loads(line) for line in m.read_text().splitlines()]
    assert [(x["phase"], x["epoch"]) for x in recs] == [("adversarial", 2)]


def _edit(d: dict, path: str, value):
    d = json.loads(json.dumps(d))
    *keys, last = path.split(".")
    x = d
    for k in keys:
        x = x[k]
    if value is KeyError:
        del x[last]
    else:
        x[last] = value
    return d


@pytest.mark.parametrize("path,value,words", [
    ("config.train.batch_size", "x", "train.batch_size"),
    ("config.train.batch_size", -5, "train.batch_size"),
    ("config.train.seed", "abc", "train.seed"),
    ("config.train.mle_lr", float("nan"), "train.mle_lr"),
    ("config.train.lambda_", 2.0, "train.lambda_"),
    ("config.train.bogus", 1, "bogus"),
    ("config.generator.vocab_size", 7, "vocab_size"),
    ("config.generator.seq_len", 5, "data.safetensors"),
    ("config.generator.seq_len", 1, "seq_len"),
    ("config.discriminator.filter_sizes", "abc", "filter_sizes"),
    ("config.discriminator.filter_sizes", [1, 2], "filter_sizes"),
    ("config.discriminator.impl", "winograd", "grouped"),
    ("config.train", [1, 2], "config.train"),
    ("config", None, "config"),
    ("versions", [1], "versions"),
])
def test_config_json_with_wrong_values(tmp_path, oracle_run, path, value, words):
    run = copy_run(oracle_run, tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(_edit(cfg, path, value)))
    for cmd in (["train", run, "--device", "cpu"], ["evaluate", run, "-n", "4", "--metrics", "nll-oracle"]):
        fails_cleanly(invoke(*cmd), words)


@pytest.mark.parametrize("path,value,words", [
    ("tokens", [], "empty"),
    ("tokens", [str(i) for i in range(10)], "10 tokens"),
    ("tokens", list(range(50)), "string"),
    ("tokens", ["a"] * 50, "duplicate"),
    ("kind", "zzz", "zzz"),
    ("pad", "x", "pad"),
    ("meta", [1, 2], "meta"),
    ("extra", 1, "extra"),
])
def test_vocab_json_with_wrong_values(tmp_path, oracle_run, path, value, words):
    run = copy_run(oracle_run, tmp_path)
    voc = json.loads((run / "vocab.json").read_text())
    (run / "vocab.json").write_text(json.dumps(_edit(voc, path, value)))
    fails_cleanly(invoke("sample", run, "-n", "2"), str(run / "vocab.json"), words)


def test_data_with_token_ids_outside_the_vocabulary(tmp_path, oracle_run):
    from safetensors.torch import save_file

    run = copy_run(oracle_run, tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(_edit(cfg, "checksums", {})))  # a hand-made file
    save_file({"train": torch.full((4, 8), 99, dtype=torch.int32)}, run / "data.safetensors")
    fails_cleanly(invoke("train", run, "--device", "cpu"), "data.safetensors", "outside 0..49")


# -- command-line arguments ---------------------------------------------------------------
@pytest.fixture
def run_copy(tmp_path, oracle_run) -> Path:
    return copy_run(oracle_run, tmp_path)


TRAIN_ARGS = [
    (["--lambda", "1.5"], "--lambda"), (["--lambda", "-0.1"], "--lambda"), (["--lambda", "nan"], "--lambda"),
    (["--epochs", "-3"], "--epochs"), (["--rollout-num", "0"], "--rollout-num"),
    (["--rollout-num", "-2"], "--rollout-num"), (["--g-steps", "0"], "--g-steps"),
    (["--d-steps", "-1"], "--d-steps"), (["--k-epochs", "0"], "--k-epochs"),
    (["--d-batch-size", "0"], "--d-batch-size"), (["--update-rate", "2"], "--update-rate"),
    (["--update-rate", "nan"], "--update-rate"), (["--eval-every", "0"], "--eval-every"),
    (["--checkpoint-every", "0"], "--checkpoint-every"), (["--d-pretrain-steps", "-1"], "--d-pretrain-steps"),
    (["--objective", "tonality", "--lambda", "0"], "need a music run"),  # oracle tokens are no notes
    (["--epochs", "0"], "already trained 1 adversarial epochs"),  # --epochs is the total
    (["--objective", "nope", "--lambda", "0.5"], "unknown objective 'nope'"),
    (["--objective", "nope"], "unknown objective 'nope'"),  # even where λ = 1 would not use it
    (["--objective", "no_such_module_xyz:f"], "cannot import"),
    (["--lambda", "0.5"], "needs an objective"),
    (["--baseline", "nope"], "--baseline"), (["--device", "tpu"], "unknown device"),
]


@pytest.mark.parametrize("args,words", TRAIN_ARGS)
def test_train_arguments(run_copy, args, words):
    before = (run_copy / "config.json").read_bytes()
    fails_cleanly(invoke("train", run_copy, *args), words)
    assert (run_copy / "config.json").read_bytes() == before  # a refused option is not saved


@pytest.mark.parametrize("cmd,args,words", [
    ("sample", ["-n", "-1"], "-n"), ("sample", ["-n", "0"], "-n"),
    ("sample", ["--temperature", "0"], "--temperature"), ("sample", ["--temperature", "-1"], "--temperature"),
    ("sample", ["--temperature", "nan"], "--temperature"), ("sample", ["--temperature", "inf"], "--temperature"),
    ("sample", ["--device", "tpu"], "unknown device"),
    ("evaluate", ["--metrics", "nope"], "unknown metric 'nope'"), ("evaluate", ["-n", "-1"], "-n"),
    ("evaluate", ["--sample-size", "0"], "--sample-size"), ("evaluate", ["--device", "tpu"], "unknown device"),
    ("evaluate", ["--references", "/no/such/refs.txt", "--metrics", "bleu"], "/no/such/refs.txt"),
    ("export-midi", ["--out", "x", "--tempo", "0"], "--tempo"),
    ("export-midi", ["--out", "x", "--tempo", "inf"], "--tempo must be between"),
    ("export-midi", ["--out", "x", "--tempo", "3"], "--tempo must be between"),
    ("export-midi", ["--out", "x", "--program", "200"], "--program"),
    ("export-midi", ["--out", "x"], "needs a music run"),
    ("export-midi", ["--out", "x"], "token ids (oracle data)"),
    ("sample", ["--seed", str(2**64)], "--seed"), ("evaluate", ["--seed", "-1"], "--seed"),
    ("evaluate", ["--metrics", "music"], "need a music run"),
    ("evaluate", ["--metrics", "tonality"], "need a music run"),
])
def test_other_command_arguments(run_copy, cmd, args, words):
    fails_cleanly(invoke(cmd, run_copy, *args), words)


def test_output_into_a_missing_folder(tmp_path, oracle_run):
    target = tmp_path / "no" / "such" / "dir" / "s.txt"
    fails_cleanly(invoke("sample", oracle_run, "--out", target), str(target))
    fails_cleanly(invoke("evaluate", oracle_run, "-n", "4", "--metrics", "nll-oracle", "--json",
                         tmp_path / "nope" / "e.json"), "e.json")


PRETRAIN_ARGS = [
    (["--preset", "nope"], "unknown preset 'nope'"), (["--epochs", "-3"], "--epochs"),
    (["--seq-len", "0"], "--seq-len"), (["--seq-len", "1"], "--seq-len"),
    (["--batch-size", "-1"], "--batch-size"), (["--lr", "0"], "--lr"), (["--lr", "nan"], "--lr"),
    (["--eval-every", "0"], "--eval-every"), (["--device", "tpu"], "unknown device"),
    (["--lr", "inf"], "--lr"), (["--lr", "1e38"], "--lr"), (["--seed", str(2**64)], "--seed"),
    (["--seed", "-1"], "--seed"),
    (["--data-option", "vocab_size=-5"], "vocab_size"), (["--data-option", "oracle_dim=0"], "oracle_dim"),
    (["--data-option", "bogus=1"], "bogus"), (["--data-option", "novalue"], "KEY=VALUE"),
]


@pytest.mark.parametrize("args,words", PRETRAIN_ARGS)
def test_pretrain_arguments_leave_no_run(tmp_path, args, words):
    out = tmp_path / "new"
    fails_cleanly(invoke("pretrain", "--data", "oracle", "--preset", "quick", "--out", out, *args), words)
    no_run_left(out)


@pytest.mark.parametrize("spec,words", [
    ("oracle:/no/such.npz", "no such file"), ("music21:nope", "nope"), ("", "empty data spec"),
    ("/no/such/file.txt", "no such file or folder"),
])
def test_unusable_data_specs(tmp_path, spec, words):
    out = tmp_path / "new"
    fails_cleanly(invoke("pretrain", "--data", spec, "--preset", "quick", "--out", out), words)
    no_run_left(out)


@pytest.mark.parametrize("args,words", [
    (["--preset", "nope"], "unknown preset"), (["--lambda", "3"], "--lambda"),
    (["--objective", "nope", "--lambda", "0.5"], "unknown objective"), (["--lambda", "0.5"], "needs an objective"),
    (["--device", "tpu"], "unknown device"),
])
def test_run_command_arguments_leave_no_run(tmp_path, args, words):
    out = tmp_path / "new"
    fails_cleanly(invoke("run", "--data", "oracle", "--preset", "quick", "--out", out, *args), words)
    no_run_left(out)


def test_run_directory_mixups(tmp_path, oracle_run):
    (tmp_path / "s.txt").write_text(TEXT)
    # a run of other data
    fails_cleanly(invoke("pretrain", "--data", tmp_path / "s.txt", "--out", oracle_run),
                  str(oracle_run), "'oracle'")
    # a missing run, a file, a folder that is not a run
    for cmd in ("train", "sample", "evaluate", "export-midi"):
        extra = ["--out", tmp_path / "m"] if cmd == "export-midi" else []
        fails_cleanly(invoke(cmd, tmp_path / "missing", *extra), "missing")
    fails_cleanly(invoke("sample", tmp_path / "s.txt"), "not a run directory")
    (tmp_path / "empty").mkdir()
    fails_cleanly(invoke("train", tmp_path / "empty"), "not a seqgan run")
    fails_cleanly(invoke("pretrain", "--out", tmp_path / "new"), "--data is required")
    no_run_left(tmp_path / "new")


# -- options given to an existing run --------------------------------------------------------
@pytest.mark.parametrize("args,words", [
    (["--lr", "0.5"], "--lr 0.5"), (["--seed", "7"], "--seed 7"), (["--batch-size", "3"], "--batch-size 3"),
    (["--preset", "text"], "--preset 'text'"), (["--data-option", "vocab_size=7"], "--data-option vocab_size"),
    (["--epochs", "0"], "already trained 1 MLE epochs"),
    (["--epochs", "5"], "moved on to"),  # D pretraining and adversarial training have run
])
def test_pretrain_options_on_an_existing_run_are_not_silently_ignored(run_copy, args, words):
    before = (run_copy / "config.json").read_bytes()
    fails_cleanly(invoke("pretrain", "--out", run_copy, "--device", "cpu", *args), words)
    assert (run_copy / "config.json").read_bytes() == before


def test_pretrain_resume_with_the_same_options_and_more_mle_epochs(tmp_path):
    run = tmp_path / "r"
    args = ["pretrain", "--data", "oracle", "--preset", "quick", "--out", run, "--seed", "3", "--device", "cpu"]
    succeeds(invoke(*args, "--epochs", "1"))
    state = lambda: json.loads((run / "checkpoint" / "state.json").read_text())  # noqa: E731
    assert (state()["mle_epoch"], state()["phase"]) == (1, "d-pretrain")
    succeeds(invoke(*args, "--epochs", "1"))  # the same command again: nothing to do, nothing changed
    assert state()["mle_epoch"] == 1
    # ./r is the same data spec; MLE goes on while the discriminator has not been trained
    succeeds(invoke("pretrain", "--data", "oracle", "--out", run, "--epochs", "2", "--seed", "3"))
    assert (state()["mle_epoch"], state()["phase"]) == (2, "d-pretrain")
    assert json.loads((run / "config.json").read_text())["config"]["train"]["mle_epochs"] == 2
    assert [m["epoch"] for m in RunDir(run).metrics.read()] == [0, 1, 2]


def test_run_command_refuses_other_data_for_an_existing_run(tmp_path, oracle_run):
    (tmp_path / "s.txt").write_text(TEXT)
    run = copy_run(oracle_run, tmp_path)
    fails_cleanly(invoke("run", "--data", tmp_path / "s.txt", "--out", run), "holds a run on data 'oracle'")
    fails_cleanly(invoke("run", "--preset", "folk", "--out", run), "--preset 'folk'")


def test_bad_config_values_leave_no_run(tmp_path):
    out = tmp_path / "new"
    fails_cleanly(invoke("pretrain", "--data", "oracle", "--preset", "quick", "--out", out, "--lr", "1e999"),
                  "--lr")
    no_run_left(out)


def test_evaluate_json_into_a_folder_fails_before_any_work(tmp_path, oracle_run):
    fails_cleanly(invoke("evaluate", oracle_run, "--json", tmp_path), "is a folder")


def test_objective_is_tried_on_real_data_before_discriminator_pretraining(tmp_path, oracle_run, monkeypatch):
    run = copy_run(oracle_run, tmp_path)
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "nanobj_probe.py").write_text(
        "import torch\n\ndef fn(tokens, vocab):\n    return torch.full((tokens.shape[0],), float('nan'))\n")
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    before = (run / "config.json").read_bytes()
    fails_cleanly(invoke("train", run, "--objective", "nanobj_probe:fn", "--lambda", "0.5",
                         "--d-pretrain-steps", "50", "--epochs", "3"), "NaN")
    assert (run / "config.json").read_bytes() == before


def test_length_options_win_over_the_preset_but_not_over_seq_len(tmp_path):
    (tmp_path / "t.abc").write_text(ABC)
    common = ["--preset", "quick", "--epochs", "0", "--device", "cpu"]
    fails_cleanly(invoke("pretrain", "--data", tmp_path / "t.abc", "--out", tmp_path / "a", *common,
                         "--seq-len", "6", "--data-option", "window=12"), "both set the sequence length")
    no_run_left(tmp_path / "a")
    succeeds(invoke("pretrain", "--data", tmp_path / "t.abc", "--out", tmp_path / "m", *common,
                    "--data-option", "window=12", "--data-option", "cache=false"))
    assert RunDir(tmp_path / "m").config.generator.seq_len == 12  # quick alone would give 8
    # text: T comes from the data (longest 12 words + EOS) under max_len, not the quick preset's 8
    (tmp_path / "s.txt").write_text("".join(f"a b c d e f g h i j k {i}\n" for i in range(30)))
    succeeds(invoke("pretrain", "--data", tmp_path / "s.txt", "--out", tmp_path / "t", *common,
                    "--data-option", "max_len=20"))
    assert RunDir(tmp_path / "t").config.generator.seq_len == 13


def test_text_that_leaves_no_vocabulary_and_a_folder_of_text(tmp_path):
    (tmp_path / "s.txt").write_text(TEXT)
    fails_cleanly(invoke("pretrain", "--data", tmp_path / "s.txt", "--out", tmp_path / "a", "--preset", "quick",
                         "--data-option", "min_freq=1000"), "no word occurs at least min_freq=1000")
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text(TEXT)
    fails_cleanly(invoke("pretrain", "--data", tmp_path / "texts", "--out", tmp_path / "b", "--preset", "quick"),
                  "text data must be one file")
    no_run_left(tmp_path / "a")
    no_run_left(tmp_path / "b")


def test_resume_compares_data_options_with_the_values_in_effect(tmp_path, music_run):
    run = copy_run(music_run, tmp_path)
    # the values the run was made with, given or implied, are accepted ...
    for opt in ("window=8", "cache=false", "transpose=\"c\"", "max_tunes=null"):
        succeeds(invoke("pretrain", "--out", run, "--data-option", opt, "--device", "cpu"))
    # ... and null is a value like any other
    fails_cleanly(invoke("pretrain", "--out", run, "--data-option", "cache=null"),
                  "--data-option cache=null (the run has false)")


def test_a_run_resumes_from_another_working_directory(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "s.txt").write_text(TEXT)
    monkeypatch.chdir(tmp_path / "a")
    succeeds(invoke("pretrain", "--data", "s.txt", "--test", "s.txt", "--preset", "quick", "--out", "../run",
                    "--epochs", "0", "--device", "cpu"))
    monkeypatch.chdir(tmp_path / "b")
    succeeds(invoke("pretrain", "--data", tmp_path / "a" / "s.txt", "--test", "../a/s.txt",
                    "--out", "../run", "--epochs", "0", "--device", "cpu"))
    assert RunDir(tmp_path / "run").config.data.spec == str(tmp_path / "a" / "s.txt")
