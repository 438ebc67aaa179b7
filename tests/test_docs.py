"""The docs point at things that exist: every relative link in README.md and docs/*.md names a file
or folder of the repository, and every `make <target>` they show is a target the Makefile defines.
The checker is tested both ways: it passes the real docs and catches a fabricated broken link and a
fabricated target."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_LINES = 250

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_TARGET_LINE = re.compile(r"^([A-Za-z0-9_.%/-][^:=#\s]*(?:[ \t]+[^:=#\s]+)*)[ \t]*::?(?!=)")
# `make` as a command inside code: first on its line (after an optional `$ ` prompt) or after a shell
# separator; not inside a word (cmake) nor in a sentence a command prints ("...: make plan again")
_MAKE = re.compile(r"(?:^[ \t]*(?:\$[ \t]+)?|(?:&&|\|\||[;|(])[ \t]*)make((?:[ \t]+[^\s;&|#)]+)*)", re.M)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*[?:+]?=")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def makefile_targets(makefile: Path) -> set[str]:
    """Every explicit target a Makefile defines (`a b: deps`, `a:: deps`), not its variables
    (`X := ...`), special targets (`.PHONY`) or computed ones (`$(STAMP)`)."""
    targets: set[str] = set()
    for line in makefile.read_text().splitlines():
        if line.startswith(("\t", "#", " ")):
            continue
        m = _TARGET_LINE.match(line)
        if m:
            targets.update(t for t in m.group(1).split() if not t.startswith((".", "$")))
    return targets


def code_spans(text: str) -> list[str]:
    """The code in a Markdown text: fenced blocks and inline code spans."""
    blocks = [m.group(0) for m in _FENCE.finditer(text)]
    prose = _FENCE.sub("", text)
    return blocks + _INLINE_CODE.findall(prose)


def make_targets_named(text: str) -> list[str]:
    """The targets of every `make ...` command shown in the text's code: the words after `make` that
    are neither flags (`-s`) nor variables (`MODE=llm`), up to the first that is not a name."""
    named: list[str] = []
    for code in code_spans(text):
        for m in _MAKE.finditer(code):
            for word in m.group(1).split():
                if word.startswith("-") or _ASSIGNMENT.match(word):
                    continue
                if not _NAME.match(word):
                    break
                named.append(word)
    return named


def broken_links(doc: Path) -> list[str]:
    """Relative links (outside code) whose file or folder does not exist, as `doc: target`."""
    text = _FENCE.sub("", doc.read_text())
    text = _INLINE_CODE.sub("", text)
    out = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor in the same page
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not (doc.parent / path).exists():
            out.append(f"{doc.name}: {target}")
    return out


def unknown_targets(doc: Path, targets: set[str]) -> list[str]:
    return [f"{doc.name}: make {t}" for t in make_targets_named(doc.read_text()) if t not in targets]


# --- the real docs ----------------------------------------------------------------------------------


def test_the_makefile_parser_reads_the_real_targets() -> None:
    targets = makefile_targets(ROOT / "Makefile")
    assert {"help", "plan", "apply", "activate", "eval", "test", "lint", "simulate-days"} <= targets
    assert not {"PY", "VENV", ".PHONY", "$(STAMP)", "SHELL"} & targets


def test_every_relative_link_in_the_docs_exists() -> None:
    docs = doc_files()
    assert len(docs) > 2, "README.md and the pages under docs/"
    problems = [p for doc in docs for p in broken_links(doc)]
    assert problems == [], "links to files that do not exist:\n" + "\n".join(problems)


def test_every_make_target_the_docs_name_is_defined() -> None:
    targets = makefile_targets(ROOT / "Makefile")
    named = [t for doc in doc_files() for t in make_targets_named(doc.read_text())]
    assert {"plan", "test", "apply", "eval"} <= set(named), "the docs show the main targets"
    problems = [p for doc in doc_files() for p in unknown_targets(doc, targets)]
    assert problems == [], "make targets the Makefile does not define:\n" + "\n".join(problems)


def test_the_readme_is_short_and_links_every_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    linked = {(ROOT / t.split("#", 1)[0]).resolve() for t in _LINK.findall(_FENCE.sub("", text))}
    pages = {p.resolve() for p in (ROOT / "docs").glob("*.md")}
    assert pages - linked == set(), "docs pages the README does not link"


# --- the checker, on fabricated docs ----------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "README.md").write_text("# figures\n")
    (tmp_path / "Makefile").write_text(
        "PY := .venv/bin/python\n"
        ".PHONY: plan\n"
        "plan: $(STAMP) ## Decide\n\t@$(PY) -m activation.cli plan\n"
        "test lint: ## two targets on one line\n\t@true\n"
        "$(STAMP): pyproject.toml\n\ttouch $@\n"
    )
    return tmp_path


def test_the_checker_catches_a_link_to_a_missing_file(repo: Path) -> None:
    page = repo / "docs" / "page.md"
    page.write_text(
        "Figures: [bench](../bench/README.md), [a section](../bench/README.md#figures), "
        "[here](#top), [web](https://example.com/x.md).\n"
        "```\n[not a link](nowhere.md)\n```\n"
        "See [the missing page](missing.md) and ![a picture](../img/flow.png).\n"
    )
    assert broken_links(page) == ["page.md: missing.md", "page.md: ../img/flow.png"]


def test_the_checker_passes_links_that_exist(repo: Path) -> None:
    page = repo / "README.md"
    page.write_text("[docs](docs/) and [bench](bench/README.md#figures) and [self](README.md)\n")
    assert broken_links(page) == []


def test_the_checker_catches_a_target_the_makefile_does_not_define(repo: Path) -> None:
    targets = makefile_targets(repo / "Makefile")
    assert targets == {"plan", "test", "lint"}
    page = repo / "docs" / "ops.md"
    page.write_text(
        "Run `make plan MODE=llm SEGMENT=all`, then `make -s plan OUTPUT=json | jq .`; "
        "make passes parameters as variables (prose, not a command); `make` alone runs help.\n"
        "```bash\nmake test lint && make deploy DRY_RUN=0   # the target that does not exist\n"
        "cmake --build build   # then, in one go: make everything\n"
        "error: plan 2026 was built on another warehouse state: make plan again\n```\n"
        "And inline: `make publish`, `make apply PLAN=<run_id>`.\n"
    )
    assert make_targets_named(page.read_text()) == [
        "test",
        "lint",
        "deploy",
        "plan",
        "plan",
        "publish",
        "apply",
    ]
    assert unknown_targets(page, targets) == [
        "ops.md: make deploy",
        "ops.md: make publish",
        "ops.md: make apply",
    ]


def test_the_checker_passes_targets_with_variables(repo: Path) -> None:
    targets = makefile_targets(repo / "Makefile")
    page = repo / "README.md"
    page.write_text("```\nmake plan MODE=llm DISCOUNT_CAP=5\nmake test\n```\n`make lint`\n")
    assert unknown_targets(page, targets) == []
