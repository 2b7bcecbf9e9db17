"""Opening a run from someone else never runs their code.

Nothing is unpickled or evaluated anywhere in the package; the only code a run imports by
name is a ``module:function`` objective, and only when the user types it on the command
line — never because a run directory's config.json says so.
"""
from __future__ import annotations

import ast
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import seqgan
from helpers import error_line, invoke
from seqgan.errors import UserError
import torch
from click.testing import CliRunner

from seqgan.cli import main

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([ROOT / "cli.py", *(ROOT / "seqgan").rglob("*.py"), *(ROOT / "objectives").rglob("*.py"),
                  *(ROOT / "datasets").rglob("*.py")])
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}
# the only places that import a module by a name known at run time
DYNAMIC_IMPORTS = {"objectives/__init__.py", "datasets/__init__.py"}


def unsafe_calls(source: str) -> list[str]:
    """Lines of ``source`` that deserialize unsafely or run code from data."""
    found = []
    for node in ast.walk(ast.parse(source)):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"{where}: from {node.module} import")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in UNSAFE_MODULES:
            found.append(f"{where}: {node.value.id}.{node.attr}")
        if not isinstance(node, ast.Call):
            continue
        func, kw = node.func, {k.arg: k.value for k in node.keywords}
        name = func.id if isinstance(func, ast.Name) else None
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
        attr = func.attr if isinstance(func, ast.Attribute) else None
        if name in ("eval", "exec", "compile", "__import__"):
            found.append(f"{where}: {name}()")
        if owner == "torch" and attr == "load":
            w = kw.get("weights_only")
            if not (isinstance(w, ast.Constant) and w.value is True):
                found.append(f"{where}: torch.load without weights_only=True")
        if owner == "yaml" and attr in ("load", "load_all", "unsafe_load", "full_load"):
            found.append(f"{where}: yaml.{attr}")
        for key in ("allow_pickle", "shell"):
            v = kw.get(key)
            if isinstance(v, ast.Constant) and v.value is True:
                found.append(f"{where}: {key}=True")
    return found


def test_the_checker_finds_what_it_looks_for():
    bad = ("import pickle\nfrom dill import loads\nimport torch, yaml, numpy as np\n"
           "torch.load('x.pt')\ntorch.load('x.pt', weights_only=False)\nyaml.load(s)\n"
           "np.load('a.npz', allow_pickle=True)\neval('1')\nexec('x=1')\nsubprocess.run(c, shell=True)\n"
           "pickle.loads(b)\n")
    found = unsafe_calls(bad)
    assert len(found) == 10, found
    good = "import torch\ntorch.load('x.pt', weights_only=True)\nmodel.eval()\nyaml.safe_load(s)\n"
    assert unsafe_calls(good) == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pickle_eval_or_unsafe_load_in_the_package(path):
    assert unsafe_calls(path.read_text(encoding="utf-8")) == []


def test_modules_are_imported_by_name_only_where_allowed():
    assert len(SOURCES) > 20
    users = set()
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("import_module", "load") and isinstance(node.func.value, ast.Name) \
                    and node.func.value.id in ("importlib", "ep", "plugins"):
                users.add(str(path.relative_to(ROOT)))
    assert users <= DYNAMIC_IMPORTS and "objectives/__init__.py" in users
    # datasets imports only its own fixed registry of modules, chosen by validated names
    from seqgan.datasets import FORMATTERS, SOURCES as DATA_SOURCES
    from seqgan.datasets.vocab import KINDS

    assert all(t.startswith("seqgan.datasets") for t in [*FORMATTERS.values(), *DATA_SOURCES.values()])
    assert set(FORMATTERS) == set(KINDS)


# -- a run handed over by someone else -----------------------------------------------------
@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory, quick_run_factory) -> Path:
    return quick_run_factory(tmp_path_factory.mktemp("sec") / "run")


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """A module that leaves a marker file when it is imported."""
    name = f"evilmod_{abs(hash(str(tmp_path))) % 10**8}"
    marker = tmp_path / "IMPORTED"
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / f"{name}.py").write_text(
        f"import pathlib, torch\npathlib.Path({str(marker)!r}).write_text('pwned')\n\n"
        f"def fn(tokens, vocab):\n    return torch.full((tokens.shape[0],), 0.5)\n")
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    yield name, marker
    sys.modules.pop(name, None)


def test_objective_named_in_a_run_is_never_imported(tmp_path, oracle_run, evil):
    name, marker = evil
    run = tmp_path / "handed-over"
    shutil.copytree(oracle_run, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["config"]["train"].update(objective=f"{name}:fn", lambda_=0.5, adv_epochs=2)
    (run / "config.json").write_text(json.dumps(cfg))
    line = error_line(invoke("train", run, "--device", "cpu"))
    # says which code the run would import, and how to allow it
    assert f"{name}:fn" in line and f"module {name!r}" in line and f"--objective {name}:fn" in line
    # nor by any other command, nor the pipeline resuming it
    assert invoke("sample", run, "-n", "2").exit_code == 0
    assert invoke("evaluate", run, "-n", "4", "--metrics", "nll-oracle").exit_code == 0
    error_line(invoke("run", "--out", run, "--device", "cpu"))
    with pytest.raises(UserError, match=f"module {name!r}"):  # the API, the same rule
        seqgan.open_run(run).train(device="cpu")
    assert not marker.exists() and name not in sys.modules
    # typed on the command line by the user, it is imported and used
    r = invoke("train", run, "--objective", f"{name}:fn", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert marker.read_text() == "pwned" and name in sys.modules
    assert json.loads((run / "checkpoint" / "state.json").read_text())["adv_epoch"] == 2


class _Payload:
    """Unpickling this creates a marker file: what a malicious pickle would do."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payload_in_a_weights_file_is_never_unpickled(tmp_path, oracle_run):
    run = tmp_path / "run"
    shutil.copytree(oracle_run, run)
    _Payload.marker = str(tmp_path / "UNPICKLED")
    for folder in ("checkpoint", "checkpoint.prev"):
        g = run / folder / "generator.safetensors"
        torch.save({"weights": _Payload()}, g)  # a torch pickle in place of the safetensors file
        state = json.loads((run / folder / "state.json").read_text())
        state["files"]["generator.safetensors"] = hashlib.sha256(g.read_bytes()).hexdigest()
        (run / folder / "state.json").write_text(json.dumps(state))  # ... with a matching digest
    line = error_line(CliRunner().invoke(main, ["sample", str(run), "-n", "2"]))
    assert "generator.safetensors" in line and "safetensors" in line
    error_line(CliRunner().invoke(main, ["train", str(run), "--device", "cpu"]))
    assert not (tmp_path / "UNPICKLED").exists()
    # the payload is live: an unsafe loader would have run it
    shutil.copy(run / "checkpoint" / "generator.safetensors", tmp_path / "payload.pt")
    torch.load(tmp_path / "payload.pt", weights_only=False)
    assert (tmp_path / "UNPICKLED").exists()


def test_pickle_payload_in_oracle_npz_is_never_unpickled(tmp_path):
    _Payload.marker = str(tmp_path / "UNPICKLED")
    f = tmp_path / "params.npz"
    np.savez(f, embedding=np.array([_Payload()], dtype=object))
    r = CliRunner().invoke(main, ["pretrain", "--data", f"oracle:{f}", "--out", str(tmp_path / "run"),
                                  "--preset", "quick"])
    line = error_line(r)
    assert str(f) in line and "unsafe" not in line
    assert not (tmp_path / "UNPICKLED").exists() and not (tmp_path / "run").exists()


def test_vocabulary_kind_cannot_name_code(tmp_path, oracle_run):
    run = tmp_path / "run"
    shutil.copytree(oracle_run, run)
    voc = json.loads((run / "vocab.json").read_text())
    voc["kind"] = "os:system"  # the formatter is chosen by kind from a fixed table
    (run / "vocab.json").write_text(json.dumps(voc))
    line = error_line(CliRunner().invoke(main, ["sample", str(run)]))
    assert "os:system" in line and "vocab.json" in line


def test_musicxml_parsing_never_uses_music21s_pickle_cache(tmp_path, monkeypatch):
    """music21 caches parsed files as pickles in a shared scratch folder and reads them back
    on the next parse of the same path; our parser must neither write nor read them."""
    from music21 import converter, meter, note, stream

    from seqgan.datasets.music_readers import _xml_notes

    part = stream.Part()
    part.append(meter.TimeSignature("4/4"))
    for p in ("C5", "D5", "E5", "C5"):
        part.append(note.Note(p, quarterLength=1))
    path = tmp_path / "tune.musicxml"
    part.write("musicxml", fp=str(path))
    thawed = []
    monkeypatch.setattr(converter, "thaw", lambda *a, **k: thawed.append(a) or pytest.fail("unpickled"))
    frozen = []
    from music21 import freezeThaw

    monkeypatch.setattr(freezeThaw.StreamFreezer, "write", lambda self, *a, **k: frozen.append(a))
    for _ in range(2):  # the second parse is where a cache would be read
        notes, _meta = _xml_notes(path, None)
        assert [n[2] for n in notes] == [72, 74, 76, 72]
    assert thawed == [] and frozen == []
