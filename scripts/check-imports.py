#!/usr/bin/env python3
"""Checks the module graph three ways and fails on any difference:

1. every `import` of a package module or a dependency's product in Sources/<T> and Tests/<T> is a
   dependency that Package.swift declares for T (an undeclared import builds only by accident of
   build order, and hides a layering violation);
2. every dependency a library or executable target declares is imported somewhere in it (the
   graph says nothing that is not so);
3. the "depends on" column of the module table in docs/ARCHITECTURE.md lists exactly the declared
   dependencies of each target (short names: `Model` for TLoRAModel).

Usage: scripts/check-imports.py   (from anywhere; runs `swift package dump-package`)
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMPORT = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|private|fileprivate)\s+)?"
                    r"import\s+(?:(?:struct|class|enum|protocol|typealias|func|var|let)\s+)?([A-Za-z_][A-Za-z0-9_]*)")


def declared_graph():
    dump = subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    package = json.loads(dump)
    targets = {}
    for t in package["targets"]:
        deps = set()
        for d in t["dependencies"]:
            kind, value = next(iter(d.items()))
            deps.add(value[0])  # byName/target: the target; product: the product (= its module here)
        default = ("Tests/" if t["type"] == "test" else "Sources/") + t["name"]
        targets[t["name"]] = {"type": t["type"], "path": t.get("path") or default, "deps": deps}
    products = {d[0] for t in package["targets"] for dep in t["dependencies"]
                for k, d in dep.items() if k == "product"}
    return targets, products


def imports_of(directory):
    found = {}
    for base, _, files in os.walk(os.path.join(ROOT, directory)):
        for name in sorted(files):
            if not name.endswith(".swift"):
                continue
            path = os.path.join(base, name)
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    m = IMPORT.match(line)
                    if m:
                        found.setdefault(m.group(1), []).append(f"{os.path.relpath(path, ROOT)}:{number}")
    return found


def short(name, targets):
    return name[len("TLoRA"):] if name.startswith("TLoRA") and name != "TLoRA" and name in targets else name


def documented_graph(targets):
    """Module table rows of docs/ARCHITECTURE.md: | `Name` | holds | depends on |."""
    rows = {}
    longs = {short(n, targets): n for n in targets}
    with open(os.path.join(ROOT, "docs/ARCHITECTURE.md"), encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            if len(cells) != 3 or not re.fullmatch(r"`[A-Za-z_][\w-]*`", cells[0]):
                continue
            name = cells[0].strip("`")
            deps = set() if cells[2] in ("—", "-", "") else {longs.get(d.strip(), d.strip()) for d in cells[2].split(",")}
            rows[name] = deps
    return rows


def main():
    targets, products = declared_graph()
    known = set(targets) | products
    problems = []
    for name, t in sorted(targets.items()):
        if t["type"] in ("system", "binary", "plugin"):
            continue
        imported = imports_of(t["path"])
        for module, where in sorted(imported.items()):
            if module in known and module != name and module not in t["deps"]:
                problems.append(f"{where[0]}: {name} imports {module}, which Package.swift does not declare for it")
        if t["type"] != "test":
            for dep in sorted(t["deps"]):
                # C targets are used through their headers from Swift imports only.
                if dep not in imported and os.path.isdir(os.path.join(ROOT, t["path"])) and any(
                        f.endswith(".swift") for _, _, fs in os.walk(os.path.join(ROOT, t["path"])) for f in fs):
                    problems.append(f"Package.swift: {name} declares {dep} but no file in {t['path']} imports it")
    documented = documented_graph(targets)
    for name, t in sorted(targets.items()):
        if t["type"] == "test":
            continue
        if name not in documented:
            problems.append(f"docs/ARCHITECTURE.md: no row for {name} in the module table")
        elif documented[name] != t["deps"]:
            extra = sorted(short(d, targets) for d in documented[name] - t["deps"])
            missing = sorted(short(d, targets) for d in t["deps"] - documented[name])
            problems.append(f"docs/ARCHITECTURE.md: {name} depends on {', '.join(sorted(short(d, targets) for d in t['deps'])) or '—'}"
                            + (f" (the table adds {', '.join(extra)})" if extra else "")
                            + (f" (the table omits {', '.join(missing)})" if missing else ""))
    for name in sorted(set(documented) - set(targets)):
        problems.append(f"docs/ARCHITECTURE.md: {name} is in the module table but is not a target")
    for p in problems:
        print("check-imports: " + p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check-imports: {sum(t['type'] != 'test' for t in targets.values())} modules and "
          f"{sum(t['type'] == 'test' for t in targets.values())} test targets import exactly what Package.swift and docs/ARCHITECTURE.md say")


if __name__ == "__main__":
    main()
