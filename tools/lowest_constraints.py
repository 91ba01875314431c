"""Write constraints/lowest.txt from pyproject.toml's lower bounds: every `name>=X` among the
dependencies and extras becomes `name==X`, so `pip install -c constraints/lowest.txt -e .[...]`
installs the oldest versions the suite claims to support. A dependency without a lower bound gets
no line (pip picks what the other pins allow) and is listed in a comment.

    python tools/lowest_constraints.py           # (re)write constraints/lowest.txt
    python tools/lowest_constraints.py --check   # exit 1 if the file is not what pyproject says
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
OUT = ROOT / "constraints" / "lowest.txt"
REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*(;.*)?$")


def lower_bounds(pyproject: Path = PYPROJECT) -> tuple[dict[str, str], list[str]]:
    """({name: lowest version}, [names without a lower bound]) over dependencies and extras."""
    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    floors: dict[str, str] = {}
    unbounded: list[str] = []
    for req in reqs:
        m = REQ.match(req)
        if not m:
            raise ValueError(f"cannot read the requirement {req!r} in {pyproject}")
        name, spec = m.group(1).lower(), m.group(3)
        low = [v for op, v in re.findall(r"(>=|==|~=)\s*([^,\s]+)", spec)]
        if low:
            floors[name] = low[0]
        elif name not in floors and name not in unbounded:
            unbounded.append(name)
    return floors, [n for n in unbounded if n not in floors]


def render(pyproject: Path = PYPROJECT) -> str:
    floors, unbounded = lower_bounds(pyproject)
    lines = ["# The lowest versions pyproject.toml allows: each `>=X` as `==X`.",
             "# Written by `python tools/lowest_constraints.py`; tests/test_packaging.py checks it.",
             "# Use: pip install -c constraints/lowest.txt -e .[notebooks,test]  (.ci/run does)"]
    if unbounded:
        lines.append("# No lower bound, so no pin: " + ", ".join(sorted(unbounded)))
    lines += [f"{name}=={version}" for name, version in sorted(floors.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that constraints/lowest.txt matches pyproject.toml")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is out of date with pyproject.toml; "
                  "run `python tools/lowest_constraints.py` and commit the result.")
            return 1
        print(f"{OUT.relative_to(ROOT)} matches pyproject.toml")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
