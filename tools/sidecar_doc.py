"""Writes a module's sidecar documentation (modules/<m>/<m>.yml) as the
Python documentation file the collection ships beside the binary
(plugins/modules/<m>.py), with the module names made fully qualified.

ansible-doc reads both forms for one module, but lists (`ansible-doc -l`)
a module whose file is a binary only when its documentation is a .py file;
the sidecar stays the single source (the module crates' tests compare it
with their options). Standard library only: the text is moved, not parsed,
so that the YAML reaches ansible-doc as written.

    python3 tools/sidecar_doc.py <sidecar.yml> <collection fqcn> <module>... > <m>.py
"""

import re
import sys

SECTIONS = ("DOCUMENTATION", "EXAMPLES", "RETURN")


def sections(text):
    """The sidecar's three top-level sections, each dedented by the two
    spaces of the sidecar's nesting (EXAMPLES is a literal block)."""
    found, current = {}, None
    for line in text.splitlines():
        if line == "---":
            continue
        head = re.fullmatch(r"([A-Z]+):( \|)?", line)
        if head:
            if head.group(1) not in SECTIONS or head.group(1) in found:
                raise SystemExit(f"unexpected top-level key {line!r}")
            current = found.setdefault(head.group(1), [])
            continue
        if current is None or (line and not line.startswith("  ")):
            raise SystemExit(f"line outside a section or not indented: {line!r}")
        current.append(line[2:])
    missing = [s for s in SECTIONS if s not in found]
    if missing:
        raise SystemExit(f"sections missing: {', '.join(missing)}")
    return {name: "\n".join(lines).strip("\n") + "\n" for name, lines in found.items()}


def qualify(body, fqcn, modules):
    """References to the collection's modules (M(name), O(name#module:option) and the like)
    and task keys `name:`, fully qualified."""
    names = "|".join(map(re.escape, modules))
    body = re.sub(rf"M\(({names})\)", rf"M({fqcn}.\1)", body)
    body = re.sub(rf"\b([A-Z]+)\(({names})#module:", rf"\1({fqcn}.\2#module:", body)
    return re.sub(rf"^(\s+)({names}):", rf"\1{fqcn}.\2:", body, flags=re.M)


def main():
    path, fqcn, *modules = sys.argv[1:]
    with open(path, encoding="utf-8") as f:
        parts = sections(f.read())
    out = [f"# Documentation of the binary module beside this file, written from {path.split('/')[-1]}",
           "# by tools/sidecar_doc.py when the collection is built. The module has no Python code.",
           "", "from __future__ import annotations", ""]
    for name in SECTIONS:
        body = qualify(parts[name], fqcn, modules)
        if '"""' in body or "\\" in body.replace("\\\\", ""):
            raise SystemExit(f"{name} holds a triple quote or backslash, which the .py form cannot carry as written")
        out += [f'{name} = r"""', body.rstrip("\n"), '"""', ""]
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
