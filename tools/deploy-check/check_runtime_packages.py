#!/usr/bin/env python3
"""Checks deploy/runtime-packages.txt against the libraries the image's
binaries load.

Usage:
  check_runtime_packages.py --bin-dir build/bin --dockerfile deploy/Dockerfile
                            --list deploy/runtime-packages.txt

The binaries are those the Dockerfile copies to /usr/local/bin from the build
stage (`COPY --from=build .../build/bin/NAME ... /usr/local/bin/`), looked up
in --bin-dir (test binaries and benches are not shipped, so not checked).
For each binary, `ldd` resolves every library to a file; the libraries the
binary names itself (its ELF NEEDED entries, `readelf -d`) are mapped to the
Debian package that owns the file (`dpkg -S`, trying the path as ldd gives it,
its real path, and both with /lib and /usr/lib swapped, since Debian 12 has a
merged /usr and dpkg knows only the path a package shipped). Libraries those
libraries load come with their packages' own dependencies, so they are not
listed. No package is exempt: libc6, libgcc-s1 and libstdc++6 are in the list
too although debian:12-slim has them.
Fails (exit 1) when a needed package is missing from the list, the list has a
package that no binary needs, a library is "not found", or a file has no
owning package. Lines of the list: one package name; `#` starts a comment.
"""

import argparse
import os
import re
import subprocess
import sys


def shipped_binaries(dockerfile):
    text = open(dockerfile, encoding="utf-8").read()
    text = re.sub(r"\\\n", " ", text)
    names = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or words[0].upper() != "COPY":
            continue
        if not any(w.startswith("--from=") for w in words):
            continue
        if not words[-1].rstrip("/") == "/usr/local/bin":
            continue
        names += [os.path.basename(w) for w in words[1:-1]
                  if not w.startswith("--")]
    return names


def read_list(path):
    packages = []
    for line in open(path, encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        if line:
            packages.append(line)
    return packages


def needed_sonames(binary):
    out = subprocess.run(["readelf", "-d", binary], capture_output=True,
                         text=True, check=True).stdout
    return re.findall(r"\(NEEDED\).*\[(.+)\]", out)


def ldd_map(binary):
    """soname -> resolved path (None when not found)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True,
                         check=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (not found|(\S+))", line)
        if m:
            found[m.group(1)] = m.group(3)
    return found


def candidates(path):
    paths = [path, os.path.realpath(path)]
    more = []
    for p in paths:
        if p.startswith("/usr/lib/"):
            more.append(p[len("/usr"):])
        elif p.startswith("/lib/"):
            more.append("/usr" + p)
    return list(dict.fromkeys(paths + more))


def owners(paths):
    """path -> owning package, for every path dpkg knows, in one dpkg -S."""
    if not paths:
        return {}
    out = subprocess.run(["dpkg", "-S"] + sorted(paths), capture_output=True,
                         text=True, check=False)
    found = {}
    # "libzmq5:amd64: /usr/lib/x86_64-linux-gnu/libzmq.so.5.2.4"; paths that
    # no package ships go to stderr.
    for line in out.stdout.splitlines():
        pkgs, sep, path = line.rpartition(": ")
        if sep:
            found[path] = pkgs.split(",")[0].strip().split(":", 1)[0]
    return found


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--dockerfile", required=True)
    parser.add_argument("--list", required=True)
    opts = parser.parse_args(argv)
    problems = []
    binaries = shipped_binaries(opts.dockerfile)
    if not binaries:
        problems.append(f"{opts.dockerfile}: no COPY --from=... to "
                        f"/usr/local/bin/ found")
    wanted = []  # (binary, soname, library file)
    for name in binaries:
        path = os.path.join(opts.bin_dir, name)
        if not os.access(path, os.X_OK):
            problems.append(f"{name}: not built in {opts.bin_dir}")
            continue
        resolved = ldd_map(path)
        for soname in needed_sonames(path):
            lib = resolved.get(soname)
            if lib is None:
                problems.append(f"{name}: ldd does not find {soname}")
                continue
            wanted.append((name, soname, lib))
    known = owners({c for _, _, lib in wanted for c in candidates(lib)})
    need = {}  # package -> [binary: soname]
    for name, soname, lib in wanted:
        pkg = next((known[c] for c in candidates(lib) if c in known), None)
        if pkg is None:
            problems.append(f"{name}: no Debian package owns {lib}")
            continue
        need.setdefault(pkg, []).append(f"{name}: {soname}")
    listed = read_list(opts.list)
    for pkg in sorted(set(need) - set(listed)):
        problems.append(f"{opts.list}: missing {pkg} (needed by "
                        f"{'; '.join(need[pkg][:3])})")
    for pkg in sorted(set(listed) - set(need)):
        problems.append(f"{opts.list}: {pkg} is needed by no shipped binary")
    for pkg in sorted({p for p in listed if listed.count(p) > 1}):
        problems.append(f"{opts.list}: {pkg} is listed twice")
    for p in problems:
        print(p)
    print(f"check_runtime_packages: {len(binaries)} binaries, "
          f"{len(need)} packages needed, {len(listed)} listed, "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
