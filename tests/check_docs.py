#!/usr/bin/python3
"""The documentation's shape: README.md at most 300 lines; every docs/*.md with three or more
sections (## and ### headings outside code blocks) opens with a contents list of exactly those
sections, linked by GitHub's anchors, between the markers below; every file under docs/ that README,
docs/, launch/, src/, include/ or tests/ names exists; and nothing cites a document that is not in
the repository (the design contract's section numbers, "DESIGN §3").

usage: check_docs.py SOURCE_DIR [--fix]   (--fix rewrites the contents lists in place)"""
import os
import re
import sys

BEGIN = "<!-- contents: kept by tests/check_docs.py (--fix rewrites it) -->"
END = "<!-- /contents -->"
README_MAX = 300


def headings(lines):
    """(level, text) of the ## and ### headings outside ``` blocks"""
    out, fenced = [], False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
            continue
        m = re.match(r"^(##|###) (.+?)\s*$", line)
        if m and not fenced:
            out.append((len(m.group(1)), m.group(2)))
    return out


def anchor(text, seen):
    """GitHub's anchor: lower case, markup and punctuation dropped, spaces to hyphens, a
    repeated anchor numbered"""
    a = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text
    a = a.lower().replace("`", "")
    a = "".join(c for c in a if c.isalnum() or c in " -_")
    a = a.replace(" ", "-")
    n = seen.get(a, 0)
    seen[a] = n + 1
    return a if n == 0 else f"{a}-{n}"


def contents(hs):
    seen, out = {}, [BEGIN]
    for level, text in hs:
        label = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
        out.append(f"{'  ' * (level - 2)}- [{label}](#{anchor(text, seen)})")
    out.append(END)
    return out


def check_contents(path, fix):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    body, have = lines, []
    if BEGIN in lines:  # the list, and the blank line before it, which --fix writes
        b, e = lines.index(BEGIN), lines.index(END) if END in lines else -1
        if e < b:
            return [f"{path}: contents list without its end marker"]
        have = lines[b : e + 1]
        start = b - 1 if b > 0 and lines[b - 1] == "" else b
        body = lines[:start] + lines[e + 1:]
    hs = headings(body)
    want = contents(hs) if len(hs) >= 3 else []
    if have == want:
        return []
    if fix:
        title = next(i for i, line in enumerate(body) if line.startswith("# "))
        new = body[: title + 1] + ([""] + want if want else []) + body[title + 1:]
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write("\n".join(new))
        os.replace(path + ".tmp", path)
        return []
    if not want:
        return [f"{path}: a contents list but fewer than 3 sections (check_docs.py --fix removes it)"]
    return [f"{path}: its contents list does not match its {len(hs)} sections (run tests/check_docs.py . --fix)"]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root, fix = sys.argv[1], "--fix" in sys.argv[2:]
    errors = []
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        n = len(f.read().splitlines())
    if n > README_MAX:
        errors.append(f"README.md: {n} lines, more than {README_MAX} (move the reference into docs/)")
    docs = sorted(os.path.join(root, "docs", d) for d in os.listdir(os.path.join(root, "docs")) if d.endswith(".md"))
    for d in docs:
        errors += check_contents(d, fix)
    files = [os.path.join(root, "README.md")] + docs
    for top in ("launch", "src", "include", "tests"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            if "fuzz" in dirpath.split(os.sep) and "crashes" in dirpath:
                continue
            files += [os.path.join(dirpath, x) for x in names if not x.endswith((".h5", ".png", ".jpg", ".gz", ".bin"))]
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        rel = os.path.relpath(path, root)
        for no, line in enumerate(text.split("\n"), 1):
            for ref in re.findall(r"\bdocs/([A-Za-z0-9_-]+\.md)", line):
                if not os.path.isfile(os.path.join(root, "docs", ref)):
                    errors.append(f"{rel}:{no}: names docs/{ref}, which does not exist")
            if re.search(r"DESIGN (§|section)", line) and rel != os.path.join("tests", "check_docs.py"):
                errors.append(f"{rel}:{no}: cites DESIGN, which is not in the repository")
    for e in errors:
        print(e)
    if not errors:
        print(f"check_docs: README {n} lines; {len(docs)} docs; references and contents lists in order")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
