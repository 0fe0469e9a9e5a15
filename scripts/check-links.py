#!/usr/bin/env python3
"""Checks that every relative link (and #anchor) in README.md and docs/*.md
resolves: the file exists, and the anchor is a heading of it (GitHub's
slugs). Exits 1 naming each broken link; .ci/run calls it."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
link = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slugs(path):
    found, fence = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            text = re.sub(r"[^\w\- ]", "", text)
            found.add(text.replace(" ", "-"))
    return found


def links(path):
    fence = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            fence = not fence
        elif not fence:
            for target in link.findall(line):
                yield number, target


broken = []
for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
    for number, target in links(page):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        where = (page.parent / file).resolve() if file else page
        if not where.exists():
            broken.append(f"{page.relative_to(root)}:{number}: {target}: no such file")
        elif anchor and where.suffix == ".md" and anchor not in slugs(where):
            broken.append(f"{page.relative_to(root)}:{number}: {target}: no such heading")
for line in broken:
    print(line)
sys.exit(1 if broken else 0)
