"""README and docs/: every relative link resolves, and the README stays a first read."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_resolves():
    broken = []
    for page in _pages():
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_readme_is_short_and_links_every_doc():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{doc.name}" in readme, doc.name


def test_the_probe_table_in_docs_probes_md_is_generated_from_the_table():
    from bench.probes.doc import BEGIN, with_table

    page = ROOT / "docs" / "probes.md"
    text = page.read_text()
    assert text.count(BEGIN) == 1
    assert text == with_table(text), (
        "docs/probes.md's probe table is out of date: run "
        "`python -m bench.probes.doc --write docs/probes.md`")


def test_the_probe_table_generator_refuses_a_page_without_markers(tmp_path, capsys):
    from bench.probes.doc import BEGIN, END, main, markdown_table

    page = tmp_path / "probes.md"
    page.write_text("# Probes\n")
    assert main(["--write", str(page)]) == 2
    assert "no probe table markers" in capsys.readouterr().err
    page.write_text(f"# Probes\n\n{BEGIN}\n| stale |\n{END}\n\nprose after\n")
    assert main(["--write", str(page)]) == 0
    assert page.read_text() == f"# Probes\n\n{BEGIN}\n{markdown_table()}{END}\n\nprose after\n"
