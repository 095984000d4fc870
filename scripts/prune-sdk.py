#!/usr/bin/env python3
"""Writes a copy of a generated AWS SDK crate that keeps only the operations named.

The AWS SDK for Rust generates one crate per service with every operation in it and no
feature to leave operations out (awslabs/aws-sdk-rust#113). aws-sdk-ec2 has over 800
operations; this project calls three. Compiling the whole crate was the longest step of a
fresh release build (README "Set-up times"), so `vendor/` holds copies pruned by this
script and the workspace's `[patch.crates-io]` builds them instead.

Nothing in the copy is written by hand. The source is the published `.crate` archive (from
cargo's cache, or downloaded from crates.io), checked against its SHA-256. Every source file
kept is the published file, byte for byte, except the files that list modules or implement
something per operation, from which whole items naming a pruned module are left out. What is
kept is found by following the `crate::...` paths from the kept operations' modules to their
types, serialisers and helpers until nothing new is found; a path missed would leave the
copy unable to compile. Waiters (`client::Waiters`, `Client::wait_until_...`) are left out,
even those of kept operations. The crate's README, tests and Cargo.toml.orig are not
copied. The manifest is the published one without the crate's own tests and
their dev-dependencies, without `[hints]`, and with `dead_code` allowed (see `manifest`).

Usage:
    scripts/prune-sdk.py CRATE VERSION SHA256 OPERATION... [--out DIR]
    scripts/prune-sdk.py --check DIR

    CRATE, VERSION and SHA256 name the published archive (SHA256 is its `cksum` in the
    crates.io index, the checksum Cargo.lock records for a registry crate); OPERATION is an operation's module name, as in
    `aws_sdk_ec2::operation::describe_regions`. The copy goes to vendor/CRATE unless --out
    says otherwise; an earlier copy there is replaced, and DIR/PRUNED.md records the command.
    --check writes that command's copy again into a temporary directory and fails, naming
    the files, if it differs from DIR (scripts/test.sh runs it for each copy in vendor/).

To upgrade: take the new version's checksum from the crates.io index (the `cksum` of its
line in https://index.crates.io/aw/s-/aws-sdk-ec2), raise the dependency's version in
Cargo.toml, run this script with the new version and checksum and the same operations, and
build (`cargo update -p aws-sdk-ec2` records the copy's version in Cargo.lock).
"""

import argparse
import filecmp
import glob
import hashlib
import http.client
import os
import re
import shlex
import shutil
import sys
import tarfile
import tempfile
import urllib.request

# Files whose items are filtered one by one; every other kept file (lib.rs too) is copied
# whole.
LIST_FILES = {
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


def unpack_source(crate, version, sha256, into):
    """The published crate's source tree, unpacked under `into` from cargo's download cache,
    this project's cache or crates.io (then kept in this project's cache: with the copy
    patched in, cargo no longer downloads the original); a checksum other than `sha256` is
    refused."""
    cargo_home = os.environ.get("CARGO_HOME") or os.path.expanduser("~/.cargo")
    own_cache = os.path.expanduser(f"~/.cache/aws-flightsql/crates/{crate}-{version}.crate")
    cached = sorted(glob.glob(os.path.join(cargo_home, f"registry/cache/*/{crate}-{version}.crate")))
    cached += [own_cache] if os.path.exists(own_cache) else []
    data = None
    for path in cached:
        with open(path, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() == sha256:
            break
    else:
        url = f"https://static.crates.io/crates/{crate}/{crate}-{version}.crate"
        try:
            with urllib.request.urlopen(url, timeout=120) as answer:
                data = answer.read()
        except (OSError, http.client.HTTPException) as e:
            sys.exit(f"prune-sdk: cannot download {url} ({e}); it is needed once, then kept in {own_cache}")
        if hashlib.sha256(data).hexdigest() == sha256:
            os.makedirs(os.path.dirname(own_cache), exist_ok=True)
            with open(own_cache, "wb") as f:
                f.write(data)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        sys.exit(f"prune-sdk: {crate} {version} has SHA-256 {digest}, not {sha256}: check the version and checksum")
    archive = os.path.join(into, "crate.tar.gz")
    with open(archive, "wb") as f:
        f.write(data)
    with tarfile.open(archive) as tar:
        # The archive's checksum is checked above; the "data" filter (Python 3.11.4 and later)
        # also refuses links and paths out of the directory.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    return os.path.join(into, f"{crate}-{version}")


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
                        if fn not in self.helper_items.get(file, {}):
                            sys.exit(f"prune-sdk: {file} has no function {fn}")
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
            parts = items(read(self.path(rel)))
            # Each part must be one whole item with its comments and attributes: two items
            # in one part, or an attribute cut from its item, would be kept or left out
            # together by mistake (a splitter confused by a literal or comment it does not
            # know would show here first).
            for part in parts:
                starts = ITEM_START.findall(part)
                if len(starts) != 1:
                    sys.exit(f"prune-sdk: cannot split {rel} into items ({len(starts)} item starts in:\n{part[:400]})")
            kept = [i for i in parts if self.keeps_item(rel, i)]
            write(os.path.join(out, rel), "".join(kept))


ITEM_START = re.compile(
    r"^(?:pub(?:\([\w:]+\))?\s+)?(?:impl|mod|fn|use|struct|enum|trait|type|const|static)\b", re.M
)


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


def prune(crate_name, version, sha256, operations, out):
    if os.path.exists(out) and os.listdir(out) and not os.path.exists(os.path.join(out, "PRUNED.md")):
        sys.exit(f"prune-sdk: {out} exists and is not a copy this script wrote (no PRUNED.md); not replacing it")
    with tempfile.TemporaryDirectory() as scratch:
        src = unpack_source(crate_name, version, sha256, scratch)
        crate = Crate(src, operations)
        crate.close()
        # Written next to `out`, then put in its place: a failure leaves the old copy.
        staging = tempfile.mkdtemp(prefix=".prune-", dir=os.path.dirname(os.path.abspath(out)))
        try:
            crate.write(staging)
            write(os.path.join(staging, "Cargo.toml"), manifest(src))
            copy(os.path.join(src, "LICENSE"), os.path.join(staging, "LICENSE"))
        except BaseException:
            shutil.rmtree(staging)
            raise
    command = " ".join(["scripts/prune-sdk.py", crate_name, version, sha256] + sorted(operations))
    write(
        os.path.join(staging, "PRUNED.md"),
        f"# {crate_name} {version}, pruned\n\n"
        f"The published crate `{crate_name}` {version} (crates.io, Apache-2.0, see LICENSE),\n"
        f"with only the operations {', '.join(sorted(operations))}\n"
        "and what they use. Written by the project's `scripts/prune-sdk.py`; do not edit by\n"
        "hand (`scripts/test.sh` checks it). Written by:\n\n"
        f"{COMMAND_INDENT}{command}\n\n"
        f"Kept: {len(crate.types)} type modules, {len(crate.shapes)} serialisation modules.\n"
        "Left out: the other operations, every waiter (`client::Waiters`), the crate's README,\n"
        "tests and Cargo.toml.orig; in Cargo.toml, its tests, dev-dependencies and `[hints]`,\n"
        "and `dead_code` is allowed (helpers only other operations used).\n",
    )
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(staging, out)
    return crate


COMMAND_INDENT = "    "


def check(directory):
    """Fails unless `directory` is exactly what the command in its PRUNED.md writes."""
    record = os.path.join(directory, "PRUNED.md")
    if not os.path.exists(record):
        sys.exit(f"prune-sdk: {record} is missing: {directory} is not a copy this script wrote")
    lines = [l for l in read(record).splitlines() if l.startswith(COMMAND_INDENT + "scripts/prune-sdk.py ")]
    if len(lines) != 1:
        sys.exit(f"prune-sdk: {record} does not record the command that wrote it")
    _, crate_name, version, sha256, *operations = shlex.split(lines[0])
    with tempfile.TemporaryDirectory() as scratch:
        fresh = os.path.join(scratch, crate_name)
        prune(crate_name, version, sha256, operations, fresh)
        differ = compare(filecmp.dircmp(directory, fresh))
    if differ:
        sys.exit(
            f"prune-sdk: {directory} is not what its PRUNED.md command writes; differing: "
            + ", ".join(differ)
            + f". Run `{lines[0].strip()} --out {directory}` and review the change."
        )
    print(f"{directory}: as {crate_name} {version} pruned to {len(operations)} operations")


def compare(cmp, prefix=""):
    out = [
        prefix + f
        for f in cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files + cmp.common_funny
    ]
    # dircmp compares by size and time first; compare contents where sizes agree.
    for f in cmp.same_files:
        if not filecmp.cmp(os.path.join(cmp.left, f), os.path.join(cmp.right, f), shallow=False):
            out.append(prefix + f)
    for name, sub in cmp.subdirs.items():
        out += compare(sub, prefix + name + "/")
    return out


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("crate")
    parser.add_argument("version")
    parser.add_argument("sha256")
    parser.add_argument("operations", nargs="+")
    parser.add_argument("--out")
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = args.out or os.path.join(root, "vendor", args.crate)
    crate = prune(args.crate, args.version, args.sha256, args.operations, out)
    print(f"{out}: {len(crate.ops)} operations, {len(crate.types)} types, {len(crate.shapes)} shapes")


if __name__ == "__main__":
    main()
