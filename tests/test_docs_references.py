"""Every document the code and the docs point to exists, and so does every numbered section they cite.

Two checks over ``src/``, ``tests/``, ``configs/``, ``docs/`` and ``README.md`` (text files only), and a third over
``src/``, ``tests/`` and ``configs/``:

1. **Paths.** Every repository path of the form ``docs/<...>.md`` named anywhere exists; and every relative Markdown
   link to a ``.md`` file (``[text](specs/dmsr.md)``, ``[text](../protocols.md#anchor)``) resolves from the file that
   holds it.
2. **Sections.** Where such a path is followed on the same line, before the sentence ends or another path starts,
   by ``section N``, ``sections N, M``, ``§N``, ``§N.M``, ``item A18`` or a bare ``N.M`` / ``AN`` right after the
   path, each cited id is a numbered heading of that file (``## 3. Title``, ``### 3.5 Title``, ``### A18 Title``) or
   a table row labelled with a lettered item (``| **A18** | ...``). Ranges (``A6-A8``, ``3.2–3.3``) check both
   ends; a parenthesised list after the ids (``sections 2, 8 (A3, A6-A8)``) is part of the citation.
3. **No citation by number alone.** A citation such as ``spec 2.3``, ``(spec A18)``, ``spec section 9``, ``§9``,
   ``protocols 3.5`` or ``results.md section 10`` must name the document's repository path on the same line
   (``docs/specs/mrda.md §2.3``), so that check 2 can resolve it. Code that merely holds a variable called ``spec``
   (``sample_degradation(spec, n, g)``, ``module_from_spec(spec)``, ``DegradationSpec``) is not a citation. This
   file is not scanned: its tests hold bad citations on purpose.

The checkers are tested on synthetic trees and strings below, so a broken or bare reference is known to fail them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCAN_DIRS = ("src", "tests", "configs", "docs")
SCAN_FILES = ("README.md",)
BARE_SCAN_DIRS = ("src", "tests", "configs")
TEXT_SUFFIXES = frozenset({".py", ".md", ".yaml", ".yml", ".txt", ".toml", ".cfg"})
SKIP_PARTS = frozenset({"__pycache__", ".venv", ".git", "node_modules", ".mypy_cache", ".ruff_cache"})

# A repository path to a Markdown document under docs/ (no placeholders such as <name> or {name}).
DOC_PATH = re.compile(r"(?<![\w./-])docs/[\w./-]*?[\w-]\.md(?![\w])")
# A relative Markdown link to a .md file: [text](target.md) or [text](target.md#anchor).
MD_LINK = re.compile(r"\]\((?!https?://|mailto:)([^)\s#]+\.md)(#[^)\s]*)?\)")
ID = r"[A-Z]?\d+(?:\.\d+)*"
# How a citation continues right after the path: quotes, spaces, an opening parenthesis, a colon.
_LEAD = re.compile(r"[\s`'\"*(:,]*")
_KEYWORD = re.compile(r"(?:sections?|items?|§)\s*", re.IGNORECASE)
_ONE = re.compile(rf"({ID})(?:\s*[-–]\s*({ID}))?")
_SEP = re.compile(r"\s*(?:,|\band\b|\(|\)\s*,?|&)\s*")
_BARE = re.compile(r"([A-Z]\d+|\d+\.\d+(?:\.\d+)*)(?![\w.]*\w)")
# Where a citation's sentence ends: a full stop or semicolon followed by a space or the end of the line.
_SENTENCE_END = re.compile(r"[.;](?=\s|$)")
# Citations by number alone (check 3). "spec" needs a space before the number, so `spec(3)` or `spec, 3` is code.
_CITED = r"(?:(?:sections?|items?)\s+|§\s*)?(?:[A-Z]\d+|\d+(?:\.\d+)*)(?![\w])"
BARE_CITATIONS = (
    re.compile(rf"\b(?i:specs?)\s+\(?{_CITED}"),  # spec 2.3, (spec A18), spec section 9, spec §9, the spec (2.4)
    re.compile(rf"(?<![\w§])§\s*{_CITED}"),  # §9 with no document named
    re.compile(r"\bprotocols\s+§?\d+\.\d+"),  # protocols 3.5 (docs/specs/degradations_and_protocols.md)
    re.compile(rf"(?<![\w./-])(?!docs/)[\w-]+(?:/[\w-]+)*\.md`*\s+(?=sections?\s|§){_CITED}"),  # results.md section 10
)
# The same, broken over two lines: "... (Alg. 1, spec" / "# 4.1): ...".
_WRAPPED_HEAD = re.compile(r"\b(?:(?i:specs?)|protocols)\s*\(?\s*$")
_WRAPPED_TAIL = re.compile(rf"^[\s#*>\"']*{_CITED}")
HEADING = re.compile(rf"^#{{1,6}}\s+\**({ID})\.?\**(?=\s|$)")
TABLE_ITEM = re.compile(r"^\|\s*\**([A-Z]\d+)\**\s*\|")  # lettered items only: a row "| 2 |" is data


def text_files(root: Path) -> Iterator[Path]:
    """The files the checks read, in a stable order."""
    for name in SCAN_FILES:
        if (root / name).is_file():
            yield root / name
    for top in SCAN_DIRS:
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(root).parts
            egg_info = any(part.endswith(".egg-info") for part in rel)
            if path.is_file() and path.suffix in TEXT_SUFFIXES and not SKIP_PARTS & set(rel) and not egg_info:
                yield path


def section_ids(markdown: str) -> set[str]:
    """The ids of a document's numbered headings and labelled table rows (``3``, ``3.5``, ``A18``)."""
    ids: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        for pattern in (HEADING, TABLE_ITEM):
            m = pattern.match(line)
            if m:
                ids.add(m.group(1))
    return ids


def cited_ids(rest: str) -> list[str]:
    """The section ids a citation names at the start of `rest` (the text after the path); [] if it names none."""
    lead = _LEAD.match(rest)
    pos = lead.end() if lead else 0
    keyword = _KEYWORD.match(rest, pos)
    if keyword is None:
        bare = _BARE.match(rest, pos)
        return [bare.group(1)] if bare else []
    pos = keyword.end()
    ids: list[str] = []
    while True:
        one = _ONE.match(rest, pos)
        if one is None:
            break
        ids.extend(g for g in one.groups() if g)
        pos = one.end()
        sep = _SEP.match(rest, pos)
        if sep is None or sep.end() == pos:
            break
        pos = sep.end()
        again = _KEYWORD.match(rest, pos)  # "sections 2, 8 (items A3, A6)"
        if again:
            pos = again.end()
    return ids


def find_problems(root: Path) -> list[str]:
    """Every broken document reference under `root`, as ``file:line: message``."""
    problems: list[str] = []
    headings: dict[Path, set[str]] = {}

    def ids_of(doc: Path) -> set[str]:
        if doc not in headings:
            headings[doc] = section_ids(doc.read_text(encoding="utf-8"))
        return headings[doc]

    for path in text_files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        rel = path.relative_to(root)
        for lineno, line in enumerate(text.splitlines(), start=1):
            where = f"{rel}:{lineno}"
            matches = list(DOC_PATH.finditer(line))
            for i, m in enumerate(matches):
                doc = root / m.group(0)
                if not doc.is_file():
                    problems.append(f"{where}: {m.group(0)} does not exist")
                    continue
                stop = matches[i + 1].start() if i + 1 < len(matches) else len(line)
                rest = line[m.end() : stop]
                end = _SENTENCE_END.search(rest)
                rest = rest[: end.start()] if end else rest
                missing = [s for s in cited_ids(rest) if s not in ids_of(doc)]
                if missing:
                    problems.append(f"{where}: {m.group(0)} has no section {', '.join(missing)}")
            if path.suffix == ".md":
                for link in MD_LINK.finditer(line):
                    target = link.group(1)
                    if target.startswith("/"):
                        continue
                    if not (path.parent / target).resolve().is_file():
                        problems.append(f"{where}: the link target {target} does not exist")
    return problems


def bare_citations(lines: list[str]) -> list[tuple[int, str]]:
    """``(line number, citation)`` for each citation by number alone: one on a line that names no ``docs/….md``."""
    found: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        if DOC_PATH.search(line):
            continue
        spans = sorted(m.span() for pattern in BARE_CITATIONS for m in pattern.finditer(line))
        merged: list[list[int]] = []
        for start, end in spans:  # one hit per citation that several patterns see ("spec §9")
            if merged and start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        hits = [line[start:end] for start, end in merged]
        if not hits and _WRAPPED_HEAD.search(line) and i + 1 < len(lines):
            tail = _WRAPPED_TAIL.match(lines[i + 1])
            if tail and not DOC_PATH.search(lines[i + 1]):
                hits = [f"{line.split()[-1]} / {tail.group(0).strip()}"]
        found.extend((i + 1, hit.strip()) for hit in hits)
    return found


def find_bare_citations(root: Path) -> list[str]:
    """Every citation by number alone in ``src/``, ``tests/`` and ``configs/`` under `root`, as ``file:line: text``."""
    this = Path(__file__).resolve()
    problems: list[str] = []
    for path in text_files(root):
        rel = path.relative_to(root)
        if rel.parts[0] not in BARE_SCAN_DIRS or path.resolve() == this:
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            continue
        problems.extend(f"{rel}:{n}: {text!r} names no docs/<...>.md" for n, text in bare_citations(lines))
    return problems


# ------------------------------------------------------------------------------------------------- the repository


def test_every_cited_document_and_section_exists() -> None:
    problems = find_problems(REPO)
    assert not problems, "broken document references:\n" + "\n".join(problems)


def test_no_citation_by_number_alone() -> None:
    problems = find_bare_citations(REPO)
    assert not problems, "cite the document's path with the section (docs/specs/mrda.md §2.3):\n" + "\n".join(problems)


def test_the_checker_sees_the_repository() -> None:
    files = {p.relative_to(REPO).as_posix() for p in text_files(REPO)}
    assert "README.md" in files
    assert any(f.startswith("src/blindsr/") and f.endswith(".py") for f in files)
    assert any(f.startswith("docs/") and f.endswith(".md") for f in files)


# ------------------------------------------------------------------------------------------ the checker, on fakes

SPEC = """# Spec

## 1. Overview
### 1.2 Detail

```
## 9. Not a heading (inside a code fence)
```

| # | question |
|---|---|
| **A18** | input range |
| A3 | noise |
"""


def _tree(tmp_path: Path, source: str, *, readme: str = "") -> Path:
    (tmp_path / "docs" / "specs").mkdir(parents=True)
    (tmp_path / "docs" / "specs" / "x.md").write_text(SPEC, encoding="utf-8")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.py").write_text(source, encoding="utf-8")
    if readme:
        (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    return tmp_path


def _doc(name: str) -> str:
    return "docs" + "/" + name  # built at run time, so this file itself cites nothing


def test_section_ids_read_headings_and_labelled_rows_outside_code() -> None:
    assert section_ids(SPEC) == {"1", "1.2", "A18", "A3"}


@pytest.mark.parametrize(
    ("rest", "ids"),
    [
        (" section 3.", ["3"]),
        ("`` sections 2, 4 and 8 (A3, A6-A8), 9", ["2", "4", "8", "A3", "A6", "A8", "9"]),
        (" §9 (design notes)", ["9"]),
        (" §3.5: the filter", ["3.5"]),
        (" 4.5; paper Sec. IV-A", ["4.5"]),
        (" item A18", ["A18"]),
        (" (sections 3.2–3.3)", ["3.2", "3.3"]),
        (" in the shared docs", []),
        (" 12 models", []),
    ],
)
def test_cited_ids(rest: str, ids: list[str]) -> None:
    assert cited_ids(rest) == ids


def test_good_references_pass(tmp_path: Path) -> None:
    x = _doc("specs/x.md")
    root = _tree(
        tmp_path,
        f'"""See ``{x}`` sections 1, 1.2 (A18, A3); also {x} §1.2."""\n',
        readme=f"[spec]({x}#overview)\n",
    )
    assert find_problems(root) == []


def test_a_missing_document_fails(tmp_path: Path) -> None:
    root = _tree(tmp_path, f"# {_doc('nowhere.md')}\n")
    assert find_problems(root) == [f"src/mod.py:1: {_doc('nowhere.md')} does not exist"]


@pytest.mark.parametrize(
    ("citation", "missing"),
    [("section 9", "9"), ("§1.3", "1.3"), ("sections 1, 2", "2"), ("section 1 (A18, A19)", "A19")],
)
def test_a_missing_section_fails(tmp_path: Path, citation: str, missing: str) -> None:
    x = _doc("specs/x.md")
    root = _tree(tmp_path, f"# see {x} {citation}\n")
    assert find_problems(root) == [f"src/mod.py:1: {x} has no section {missing}"]


def test_a_heading_inside_a_code_fence_does_not_count(tmp_path: Path) -> None:
    x = _doc("specs/x.md")
    assert find_problems(_tree(tmp_path, f"# {x} section 9\n")) != []


def test_a_broken_relative_markdown_link_fails(tmp_path: Path) -> None:
    gone = _doc("gone.md")
    root = _tree(tmp_path, "", readme=f"[a]({_doc('specs/x.md')}) [b]({gone})\n")
    assert find_problems(root) == [
        f"README.md:1: {gone} does not exist",
        f"README.md:1: the link target {gone} does not exist",
    ]


def test_each_citation_on_a_line_is_read_up_to_the_next_path(tmp_path: Path) -> None:
    x = _doc("specs/x.md")
    root = _tree(tmp_path, f"# {x} §1, {x} §7\n")
    assert find_problems(root) == [f"src/mod.py:1: {x} has no section 7"]


# ---------------------------------------------------------------------------------- citations by number alone

_M = _doc("specs/mrda.md")


@pytest.mark.parametrize(
    ("line", "hit"),
    [
        ("# spec 2.3: RDAN's width", "spec 2.3"),
        ('"""Stage 1b (Alg. 1, spec 4.2): MAML of the MLN."""', "spec 4.2"),
        ("    img_range: the internal scale (spec A18)", "spec A18"),
        ("PCA of the kernels (spec section 9).", "spec section 9"),
        ("LPIPS (Spec §9): anchors", "Spec §9"),
        ("Used as DMSR's backbone (DMSR spec 3.2–3.3).", "spec 3.2"),
        ("The spec (2.4) and the reference code count 24 more", "spec (2.4"),
        ("ANCHORS = {  # §9: astronaut", "§9"),
        ("rounded to 1/255 (the reference's lr_bic; protocols 3.5)", "protocols 3.5"),
        ("# ships as dmsr-x2.lite (results.md section 11).", "results.md section 11"),
        ("see specs/mrda.md §2 for the counts", "specs/mrda.md §2"),
    ],
)
def test_a_citation_by_number_alone_is_found(line: str, hit: str) -> None:
    assert bare_citations([line]) == [(1, hit)]


@pytest.mark.parametrize(
    "line",
    [
        "    deg = sample_degradation(spec, hr.shape[0], generator)",
        "    module = importlib.util.module_from_spec(spec)",
        "    spec = DegradationSpec(kernel_size=15, sigma=(0.2, 3.0))",
        "def synthesize(spec: DegradationSpec, hr: Tensor, scale: int) -> Tensor:",
        "    for n, spec in TRAINING_PRESETS.items():",
        '    "spec": {"label": "tiny", "source": str(release)}, "shape": [1, 3, 20, 28]',
        "the spec's reference values, and Sec. 4.1 of the paper",
        "from blindsr.cli import protocols",
        f"(the reference code's drifting MLN, {_M} §6.1)",
        f"# {_M} §2.4: RDAN x4 = 4,561,745 (spec 2.4 of the same file, on the same line)",
        f"Conventions ({_doc('specs/x.md')} section 1): odd size k",
        "Tables are Markdown, pasteable into README.md as they are",
    ],
)
def test_code_and_cited_paths_are_not_bare_citations(line: str) -> None:
    assert bare_citations([line]) == []


def test_a_citation_broken_over_two_lines_is_found() -> None:
    lines = ["# MRDA x3, stage 1a (Alg. 1 l. 2, spec", "# 4.1): the MLN trained with L1", "return spec", "", "x = 4"]
    assert bare_citations(lines) == [(1, "spec / # 4.1")]
    assert bare_citations(["# stage 1a (Alg. 1 l. 2,", f"# {_M} §4.1): the MLN"]) == []


def test_bare_citations_are_reported_by_file_and_line(tmp_path: Path) -> None:
    root = _tree(tmp_path, f"# {_doc('specs/x.md')} §1.2\n# the MLN (spec 2.1)\n")
    (root / "configs").mkdir()
    (root / "configs" / "a.yaml").write_text("# lr halved (spec 4.5, an assumption)\nseed: 0\n", encoding="utf-8")
    (root / "docs" / "notes.md").write_text("spec 2.1 is fine in the docs themselves\n", encoding="utf-8")
    assert find_bare_citations(root) == [
        "src/mod.py:2: 'spec 2.1' names no docs/<...>.md",
        "configs/a.yaml:1: 'spec 4.5' names no docs/<...>.md",
    ]
