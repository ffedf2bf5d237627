#!/usr/bin/env python3
"""codemetrics: the legibility figures of one folder of C (issue 17's before/after).

    bench/codemetrics.py [DIR] [--files GLOB]     (default: io, nfs*)

Prints, for DIR/*.c: the function-length median, p90 and max (lines from the opening
line of a definition to its closing brace, as Universal Ctags' end field gives them);
then, for the files matching GLOB: lines per file, the longest functions, and the
file-level call graph (file A -> file B when A calls a function B defines) with its
cycles (strongly connected components of more than one file). Needs ctags (Universal)."""
import argparse
import fnmatch
import os
import re
import subprocess
import sys


def functions(path):
    """[(name, start, end, static)] of the function definitions in path."""
    out = subprocess.run(
        ["ctags", "-x", "--_xformat=%N %n %{end} %{file}", "--kinds-C=f", "--fields=+ne",
         "-o", "-", path],
        capture_output=True, text=True, check=True).stdout
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
    res = []
    for row in out.splitlines():
        name, start, end = row.split()[:3]
        if end == "-":
            continue
        start, end = int(start), int(end)
        head = lines[start - 1]
        static = head.startswith("static") or (start > 1 and lines[start - 2].startswith("static"))
        res.append((name, start, end, static))
    return res


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    return re.sub(r'"(\\.|[^"\\])*"', '""', src)


def struct_fields(d, name):
    """(member names, defining file) of 'struct name {...};' in d, or (set(), None)."""
    for f in sorted(os.listdir(d)):
        if not f.endswith((".h", ".c")):
            continue
        src = strip_comments(open(os.path.join(d, f), encoding="utf-8").read())
        m = re.search(r"\bstruct\s+" + name + r"\s*\{(.*?)\n\};", src, flags=re.S)
        if m:
            body = re.sub(r"\{[^{}]*\}", "", m.group(1))
            return set(re.findall(r"(\w+)\s*(?:\[[^\]]*\])?\s*[;,]", body)), f
    return set(), None


def sccs(nodes, edges):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default="io")
    ap.add_argument("--files", default="nfs*")
    a = ap.parse_args()
    cfiles = sorted(f for f in os.listdir(a.dir) if f.endswith(".c"))
    lens, defs = [], {}
    per_file = {}
    for f in cfiles:
        fns = functions(os.path.join(a.dir, f))
        per_file[f] = fns
        for name, s, e, _ in fns:
            lens.append(e - s + 1)
            defs.setdefault(name, set()).add(f)
    lens.sort()
    print(f"{a.dir}/*.c: {len(cfiles)} files, {len(lens)} functions; length median "
          f"{pct(lens, 50)}, p90 {pct(lens, 90)}, max {lens[-1] if lens else 0}")
    sel = [f for f in sorted(os.listdir(a.dir)) if fnmatch.fnmatch(f, a.files)
           and f.endswith((".c", ".h"))]
    total = 0
    print(f"\nlines per file ({a.files}):")
    for f in sel:
        n = sum(1 for _ in open(os.path.join(a.dir, f), encoding="utf-8"))
        total += n
        print(f"  {n:5d}  {f}")
    print(f"  {total:5d}  total")
    sel_c = [f for f in sel if f.endswith(".c")]
    flens = sorted(((e - s + 1, f, n) for f in sel_c for n, s, e, _ in per_file[f]),
                   reverse=True)
    vals = sorted(x[0] for x in flens)
    print(f"\nfunctions in {a.files}.c: {len(vals)}; median {pct(vals, 50)}, p90 "
          f"{pct(vals, 90)}; longest:")
    for n, f, name in flens[:8]:
        print(f"  {n:4d}  {f}:{name}")
    # file-level calls: identifiers followed by '(' that another selected file defines
    edges = {}
    for f in sel_c:
        src = strip_comments(open(os.path.join(a.dir, f), encoding="utf-8").read())
        own = {n for n, _, _, _ in per_file[f]}
        for m in set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", src)):
            if m in own:
                continue
            for g in defs.get(m, ()):
                if g != f and g in sel_c:
                    edges.setdefault(f, set()).add(g)
    print("\nfile-level calls:")
    for f in sel_c:
        if edges.get(f):
            print(f"  {f} -> {', '.join(sorted(edges[f]))}")
    shared, where = struct_fields(a.dir, "nfssrc")
    if shared:
        print(f"\nfields of struct nfssrc ({len(shared)}, defined in {where}) used by each "
              "file through '->':")
        for f in sel_c:
            if where.endswith(".c") and f != where:
                continue  # defined in another .c: this file cannot see it
            src = strip_comments(open(os.path.join(a.dir, f), encoding="utf-8").read())
            used = sorted(set(re.findall(r"->\s*(\w+)", src)) & shared)
            print(f"  {len(used):3d}  {f}")
    cyc = [c for c in sccs(sel_c, edges) if len(c) > 1]
    print(f"\ncall cycles (files calling each other, directly or around): {len(cyc)}")
    for c in cyc:
        print("  " + " <-> ".join(c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
