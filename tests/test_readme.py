"""The README's Python example runs as written, in a fresh folder."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(python_example(), str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "adversarial 4" in out and "'melodicity'" in out
    assert out.strip().splitlines()[-1].split()[0] == "4"  # adv_epoch after reopening
    assert len(list((tmp_path / "midi").glob("*.mid"))) == 8
    assert (tmp_path / "midi" / "piano_roll.png").is_file()
