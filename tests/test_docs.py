"""The documentation stays true to the tree: the README stays short, every relative link (and its
#anchor) points to something that exists, every docs page is reachable from the README, and the
module map in docs/contributing.md names exactly the package's modules."""

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CONTRIBUTING = ROOT / "docs" / "contributing.md"
PAGES = [README, ROOT / "data" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _prose(text: str) -> str:
    """The page without its fenced code blocks and inline code, where brackets are not links."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def _links(page: Path) -> list[str]:
    return LINK.findall(_prose(page.read_text()))


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)  # http:, https:, mailto:, ...


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to -."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen, out = {}, set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        match = re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line)
        if match:
            slug = _slug(match[1])
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_readme_is_at_most_150_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail to docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file(page):
    broken = []
    for target in filter(_relative, _links(page)):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_the_link_checker_sees_links_and_anchors(tmp_path):
    """The checks above can fail: a missing file and a missing heading are both found."""
    page = tmp_path / "page.md"
    page.write_text("# A title: `with code`\n\n## Same\n\n## Same\n\nSee [x](missing.md), "
                    "[y](#a-title-with-code), [z](#same-1), [w](https://example.org) and "
                    "`[not](a-link.md)`.\n\n```\n[nor](this.md)\n```\n")
    assert _links(page) == ["missing.md", "#a-title-with-code", "#same-1",
                            "https://example.org"]
    assert _anchors(page) == {"a-title-with-code", "same", "same-1"}
    assert _slug("Real weights offline: SmolLM2-135M-Instruct") == \
        "real-weights-offline-smollm2-135m-instruct"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in _links(README) if _relative(t)}
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"


def _map_modules() -> list[str]:
    """The first cell of each row of the module-map table: a module's path, in backticks."""
    text = CONTRIBUTING.read_text()
    section = text.split("## The module map", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [re.match(r"\| `([^`]+)`", row)[1] for row in rows]


def _package_modules() -> set[str]:
    package = ROOT / "llmup_lib"
    return {p.relative_to(ROOT).as_posix() for p in package.rglob("*.py")
            if p.name != "__init__.py" and "data" not in p.relative_to(package).parts[:1]
            and "__pycache__" not in p.parts}


def test_the_module_map_names_every_module_and_only_modules():
    listed = _map_modules()
    assert len(listed) == len(set(listed)), "a module is listed twice in the module map"
    modules = _package_modules()
    missing, gone = sorted(modules - set(listed)), sorted(set(listed) - modules)
    assert not missing, f"modules missing from the map in docs/contributing.md: {missing}"
    assert not gone, f"the map in docs/contributing.md lists modules that do not exist: {gone}"


def test_the_workshop_plan_is_generated_and_fits_85_minutes():
    """docs/workshop.md's 90-minute path is the block tools/workshop_plan.py writes from the
    notebooks' words and the README's measured run times, and it adds up to 85 minutes or less."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "tools" / "workshop_plan.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import workshop_plan
    finally:
        sys.path.remove(str(ROOT / "tools"))
    rows = workshop_plan.plan()
    assert workshop_plan.total(rows) <= 85 and rows[0]["stem"] == "00_start_here"
