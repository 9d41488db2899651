"""The README's Python example runs as written."""

import pathlib
import re


def test_readme_python_example_runs(capsys, tmp_path, monkeypatch):
    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the example saves frontier.png
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has no Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.strip(), "the example prints its results"
    assert (tmp_path / "frontier.png").read_bytes()[:4] == b"\x89PNG"


def test_readme_images_exist():
    root = pathlib.Path(__file__).parents[1]
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (root / "README.md").read_text(encoding="utf-8"))
    assert images
    for image in images:
        assert (root / image).read_bytes()[:4] == b"\x89PNG", image


def test_readme_python_example_is_15_lines():
    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Python API in 15 lines\n\n```python\n(.*?)```", text, flags=re.S).group(1)
    assert len(block.strip().splitlines()) <= 15
