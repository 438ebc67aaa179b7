"""Write requirements.lock: the versions installed in this venv of every package the project needs
(its dependencies and the dev extra, followed through their own requirements), one `name==version`
a line. The venv is the set the suite passed on, so the lock pins a tested set; `make install`
installs with it as a constraints file. Regenerate with `make lock` after changing dependencies.

    .venv/bin/python make/lock.py [--extras dev] [--out requirements.lock]
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
HEADER = """\
# A tested set: the versions the test suite passed on, for activate-nba and its dev extra (make/lock.py).
# `make install` installs with it as constraints: pip install -c requirements.lock -e '.[dev]'.
# Regenerate with `make lock` after changing the dependencies in pyproject.toml.
"""


def _wanted(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": extra}) for extra in extras or {""})


def closure(roots: list[Requirement]) -> dict[str, str]:
    """canonical name -> installed version for the roots and everything they require."""
    pinned: dict[str, str] = {}
    todo = [(req, set()) for req in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req, _ = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            sys.exit(f"{req.name} is required but not installed in {sys.prefix}: run `make install` first")
        pinned[name] = dist.version
        for sub in (Requirement(r) for r in dist.requires or []):
            if _wanted(sub, set(req.extras)):
                todo.append((sub, set()))
    return pinned


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extras", default="dev", help="comma-separated extras of the project to include")
    ap.add_argument("--out", type=Path, default=ROOT / "requirements.lock")
    args = ap.parse_args()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    roots = [Requirement(r) for r in project["dependencies"]]
    for extra in filter(None, args.extras.split(",")):
        roots += [Requirement(r) for r in project["optional-dependencies"][extra]]
    pinned = closure(roots)
    body = "".join(f"{name}=={version}\n" for name, version in sorted(pinned.items()))
    args.out.write_text(HEADER + body, encoding="utf-8")
    print(f"{args.out}: {len(pinned)} packages pinned", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
