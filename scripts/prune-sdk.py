#!/usr/bin/env python3
"""Writes a copy of a generated AWS SDK crate that keeps only the operations named.

The AWS SDK for Rust generates one crate per service with every operation in it and no
feature to leave operations out (awslabs/aws-sdk-rust#113). aws-sdk-ec2 has over 800
operations; this project calls three. Compiling the whole crate was the longest step of a
fresh release build (README "Set-up times"), so `vendor/` holds copies pruned by this
script and the workspace's `[patch.crates-io]` builds them instead.

Nothing is written by hand: every file kept is the published crate's file, byte for byte,
except the files that list modules or implement something per operation, from which whole
items that name a pruned module are left out. What is kept is found by following the
`crate::...` paths from the kept operations' modules to their types, serialisers and
helpers until nothing new is found. A crate that still compiles (`cargo check`) therefore
has every piece its operations use.

Usage:
    scripts/prune-sdk.py CRATE VERSION OPERATION... [--out DIR]

    CRATE and VERSION name the crate in cargo's registry cache (~/.cargo/registry/src),
    which `cargo fetch` fills; OPERATION is the operation's module name, as in
    `aws_sdk_ec2::operation::describe_regions`. The copy goes to vendor/CRATE unless --out
    says otherwise; an earlier copy there is replaced.

To upgrade: raise the version in Cargo.toml's [patch.crates-io] entry's comment and the
dependency, run `cargo fetch` with the patch line commented out, then this script with the
same operations (the command is in vendor/CRATE/PRUNED.md).
"""

import argparse
import glob
import os
import re
import shutil
import sys

# Files whose items are filtered one by one; every other kept file is copied whole.
LIST_FILES = {
    "lib.rs",
    "client.rs",
    "operation.rs",
    "types.rs",
    "types/builders.rs",
    "protocol_serde.rs",
    "error_meta.rs",
    "lens.rs",
    "serde_util.rs",
    "waiters.rs",
}

# Directories with one file (or module directory) per operation, type, shape or waiter.
PER_ITEM_DIRS = ("client", "operation", "types", "protocol_serde", "waiters")


def find_source(crate, version):
    pattern = os.path.expanduser(f"~/.cargo/registry/src/*/{crate}-{version}")
    found = sorted(glob.glob(pattern))
    if not found:
        sys.exit(
            f"prune-sdk: {crate} {version} is not in cargo's registry cache ({pattern}). "
            "Comment out its [patch.crates-io] line and run `cargo fetch` first."
        )
    return found[-1]


def items(text):
    """Splits rustfmt-formatted Rust source into top-level items, each with the comments
    and attributes above it. Brackets inside strings and comments are ignored."""
    out, current, depth, in_str = [], [], 0, False
    for line in text.splitlines(keepends=True):
        current.append(line)
        balance, in_str = bracket_balance(line, in_str)
        depth += balance
        stripped = line.strip()
        if depth == 0 and not in_str and stripped and not stripped.startswith(("//", "#[", "#![")):
            if stripped.endswith((";", "}", ")", "]")):
                out.append("".join(current))
                current = []
    if current:
        out.append("".join(current))
    return out


def bracket_balance(line, in_str):
    """The change in bracket depth over a line, and whether a string is still open at its
    end (generated doc attributes continue strings over lines)."""
    balance, i, n = 0, 0, len(line)
    while i < n:
        c = line[i]
        if in_str:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_str = False
        elif c == "/" and line.startswith("//", i):
            break
        elif c == '"':
            in_str = True
        elif c in "{([":
            balance += 1
        elif c in "})]":
            balance -= 1
        i += 1
    return balance, in_str


class Crate:
    def __init__(self, src, operations):
        self.src = os.path.join(src, "src")
        self.ops = set(operations)
        missing = [o for o in self.ops if not os.path.exists(self.path(f"operation/{o}.rs"))]
        if missing:
            sys.exit(f"prune-sdk: no such operation module: {', '.join(sorted(missing))}")
        self.type_module = {}  # type or builder name -> types/_module
        for f in glob.glob(self.path("types/_*.rs")):
            module = os.path.basename(f)[:-3]
            for name in re.findall(r"^pub (?:struct|enum) (\w+)", read(f), re.M):
                self.type_module[name] = module
        self.types = set()  # kept types/_modules
        self.shapes = set()  # kept protocol_serde modules
        self.helpers = {"serde_util.rs": set(), "lens.rs": set()}  # kept functions
        self.helper_items = {
            name: {fn_name(item): item for item in items(read(self.path(name)))}
            for name in self.helpers
            if os.path.exists(self.path(name))
        }

    def path(self, rel):
        return os.path.join(self.src, rel)

    def core_files(self):
        """Files that are not one per operation, type, shape or waiter."""
        out = []
        for root, _, files in os.walk(self.src):
            for f in files:
                rel = os.path.relpath(os.path.join(root, f), self.src)
                top = rel.split(os.sep)[0]
                if top not in PER_ITEM_DIRS and rel not in LIST_FILES:
                    out.append(rel)
        out += ["client/customize.rs"]
        out += [
            os.path.relpath(f, self.src) for f in glob.glob(self.path("client/customize/**/*.rs"), recursive=True)
        ]
        return out

    def operation_files(self):
        out = []
        for op in self.ops:
            out += [f"operation/{op}.rs", f"client/{op}.rs"]
            out += [
                os.path.relpath(f, self.src)
                for f in glob.glob(self.path(f"operation/{op}/**/*.rs"), recursive=True)
            ]
        return out

    def close(self):
        """Follows crate:: paths from the kept files until nothing new is found."""
        pending = [read(self.path(f)) for f in self.core_files() + self.operation_files()]
        while pending:
            text = pending.pop()
            for ref in re.findall(r"crate::types::builders::(\w+)", text) + re.findall(
                r"crate::types::([A-Z]\w*)", text
            ):
                module = self.type_module.get(ref)
                if module is None:
                    sys.exit(f"prune-sdk: no module defines type {ref}")
                if module not in self.types:
                    self.types.add(module)
                    pending.append(read(self.path(f"types/{module}.rs")))
            for module in re.findall(r"crate::types::(_\w+)::", text):
                if module not in self.types:
                    self.types.add(module)
                    pending.append(read(self.path(f"types/{module}.rs")))
            for shape in re.findall(r"crate::protocol_serde::(shape_\w+)", text):
                if shape not in self.shapes:
                    self.shapes.add(shape)
                    pending.append(read(self.path(f"protocol_serde/{shape}.rs")))
            for file, module in (("serde_util.rs", "serde_util"), ("lens.rs", "lens")):
                for fn in re.findall(rf"crate::{module}::(\w+)", text):
                    if fn not in self.helpers[file]:
                        self.helpers[file].add(fn)
                        pending.append(self.helper_items[file][fn])
            for op in re.findall(r"crate::operation::([a-z]\w*)::", text):
                if op not in self.ops:
                    sys.exit(f"prune-sdk: a kept file uses the pruned operation {op}")

    def keeps_item(self, rel, item):
        """Whether a top-level item of a list file names only kept modules."""
        code = "\n".join(l for l in item.splitlines() if not l.strip().startswith("///"))
        if rel in self.helpers:
            name = fn_name(item)
            return name is None or name in self.helpers[rel]
        for op in re.findall(r"crate::operation::([a-z]\w*)", code):
            if op not in self.ops:
                return False
        if re.search(r"crate::waiters::\w+", code):
            return False
        for ref in re.findall(r"crate::types::builders::(\w+)", code) + re.findall(
            r"crate::types::([A-Z]\w*)", code
        ):
            if self.type_module.get(ref) not in self.types:
                return False
        for module in re.findall(r"crate::types::(_\w+)", code):
            if module not in self.types:
                return False
        for shape in re.findall(r"crate::protocol_serde::(shape_\w+)", code):
            if shape not in self.shapes:
                return False
        m = re.match(r"\s*(?:pub(?:\([\w:]+\))?\s+)?mod (\w+);", last_code_line(code))
        kept_modules = {
            "client.rs": self.ops | {"customize"},
            "operation.rs": self.ops,
            "types.rs": self.types | {"builders"},
            "protocol_serde.rs": self.shapes,
            "waiters.rs": set(),
        }.get(rel)
        if m and kept_modules is not None:
            return m.group(1) in kept_modules
        return True

    def write(self, out_root):
        out = os.path.join(out_root, "src")
        for rel in self.core_files() + self.operation_files():
            copy(self.path(rel), os.path.join(out, rel))
        for module in self.types:
            copy(self.path(f"types/{module}.rs"), os.path.join(out, f"types/{module}.rs"))
        for shape in self.shapes:
            copy(self.path(f"protocol_serde/{shape}.rs"), os.path.join(out, f"protocol_serde/{shape}.rs"))
        for rel in LIST_FILES:
            if not os.path.exists(self.path(rel)):
                continue
            text = read(self.path(rel))
            parts = items(text)
            # The copy is made of whole items of the original and nothing else.
            assert "".join(parts) == text, f"{rel}: items do not add up to the file"
            kept = [i for i in parts if self.keeps_item(rel, i)]
            write(os.path.join(out, rel), "".join(kept))


def last_code_line(code):
    lines = [l for l in code.splitlines() if l.strip() and not l.strip().startswith(("//", "#["))]
    return lines[-1] if lines else ""


def fn_name(item):
    m = re.search(r"^pub\(crate\) fn (\w+)", item, re.M)
    return m.group(1) if m else None


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def copy(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)


def manifest(src):
    """The published Cargo.toml without the crate's own tests and their dev-dependencies
    (their files are not copied), and without `[hints]` (`mostly-unused`, which only a
    nightly cargo reads and a stable one warns about on every build of a path crate)."""
    text = read(os.path.join(src, "Cargo.toml"))
    sections = re.split(r"(?m)^(?=\[)", text)
    kept = [
        s
        for s in sections
        if not s.startswith("[[test]]")
        and not s.startswith("[[bench]]")
        and not s.startswith("[[example]]")
        and not s.startswith("[dev-dependencies")
        and not s.startswith("[hints]")
    ]
    # Pruning leaves helpers only other operations used (unknown enum variants, idempotency
    # tokens); cargo shows a path crate's warnings, so say they are expected.
    kept.append('[lints.rust]\ndead_code = "allow"\n')
    return "".join(kept)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("crate")
    parser.add_argument("version")
    parser.add_argument("operations", nargs="+")
    parser.add_argument("--out")
    args = parser.parse_args()
    src = find_source(args.crate, args.version)
    out = args.out or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vendor", args.crate)
    crate = Crate(src, args.operations)
    crate.close()
    if os.path.exists(out):
        shutil.rmtree(out)
    crate.write(out)
    write(os.path.join(out, "Cargo.toml"), manifest(src))
    copy(os.path.join(src, "LICENSE"), os.path.join(out, "LICENSE"))
    command = " ".join(["scripts/prune-sdk.py", args.crate, args.version] + sorted(args.operations))
    write(
        os.path.join(out, "PRUNED.md"),
        f"# {args.crate} {args.version}, pruned\n\n"
        f"The published crate `{args.crate}` {args.version} (crates.io, Apache-2.0, see\n"
        f"LICENSE), with only the operations {', '.join(sorted(args.operations))} and what\n"
        "they use. Written by the project's `scripts/prune-sdk.py`; do not edit by hand.\n"
        "Regenerate with:\n\n"
        f"    {command}\n\n"
        f"Kept: {len(crate.types)} type modules, {len(crate.shapes)} serialisation modules.\n",
    )
    print(f"{out}: {len(crate.ops)} operations, {len(crate.types)} types, {len(crate.shapes)} shapes")


if __name__ == "__main__":
    main()
