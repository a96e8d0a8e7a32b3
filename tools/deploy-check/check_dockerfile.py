#!/usr/bin/env python3
"""Checks the shape of deploy/Dockerfile without a container engine.

Usage: check_dockerfile.py deploy/Dockerfile [--list deploy/runtime-packages.txt]

Rules (each broken one is a line of output, exit 1):
  - two stages: the first FROM debian:12 (the build stage), the last FROM
    debian:12-slim (the runtime stage);
  - the build stage RUNs scripts/install-deps.sh and scripts/build.sh release;
  - the runtime stage COPYs the package list file (deploy/runtime-packages.txt)
    and installs exactly it: one RUN reads that file into
    `xargs apt-get install ... --no-install-recommends`, and no other
    `apt-get install` or `apt install` names packages of its own;
  - the runtime stage copies the binaries of the image contract (consortia,
    consortia-node and the four services) to /usr/local/bin;
  - its last USER is numeric and non-root (10001:10001), after every RUN;
  - it declares VOLUME /var/lib/consortia, a STOPSIGNAL and an EXPOSE.
"""

import argparse
import re
import sys

BINARIES = {"consortia", "consortia-node", "consortia-storage",
            "consortia-mempool", "consortia-consensus", "consortia-api"}


def instructions(text):
    """(keyword, argument text) of each instruction, continuations joined."""
    text = re.sub(r"\\\n", " ", text)
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def stages(instrs):
    result = []
    for word, rest in instrs:
        if word == "FROM":
            result.append({"from": rest.split()[0], "instrs": []})
        elif result:
            result[-1]["instrs"].append((word, rest))
    return result


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dockerfile")
    parser.add_argument("--list", default="deploy/runtime-packages.txt")
    opts = parser.parse_args(argv)
    text = open(opts.dockerfile, encoding="utf-8").read()
    st = stages(instructions(text))
    problems = []
    if len(st) != 2:
        problems.append(f"expected 2 stages (build, runtime), found {len(st)}")
    if not st:
        print("\n".join(problems))
        return 1
    build, runtime = st[0], st[-1]
    if build["from"] != "debian:12":
        problems.append(f"build stage FROM {build['from']}, not debian:12")
    if runtime["from"] != "debian:12-slim":
        problems.append(f"runtime stage FROM {runtime['from']}, "
                        f"not debian:12-slim")
    build_runs = " ; ".join(r for w, r in build["instrs"] if w == "RUN")
    if not re.search(r"(^|[\s;&/])scripts/install-deps\.sh\b", build_runs):
        problems.append("build stage does not RUN scripts/install-deps.sh")
    if not re.search(r"(^|[\s;&/])scripts/build\.sh release\b", build_runs):
        problems.append("build stage does not RUN scripts/build.sh release")

    list_name = opts.list.rsplit("/", 1)[-1]
    copies = [r for w, r in runtime["instrs"] if w == "COPY"]
    list_copy = [c for c in copies if list_name in c and "--from" not in c]
    if not list_copy:
        problems.append(f"runtime stage does not COPY {opts.list}")
    installs = []
    for word, rest in runtime["instrs"]:
        if word != "RUN":
            continue
        for cmd in re.split(r"&&|;|\|\|", rest):
            if re.search(r"\bapt(-get)? +install\b", cmd):
                installs.append((cmd, rest))
    if len(installs) != 1:
        problems.append(f"runtime stage has {len(installs)} apt-get install "
                        f"commands; expected exactly one, from {list_name}")
    for cmd, run in installs:
        if "xargs" not in cmd or list_name not in run:
            problems.append(f"runtime stage installs packages not read from "
                            f"{list_name}: {cmd.strip()}")
        if "--no-install-recommends" not in cmd:
            problems.append("runtime apt-get install lacks "
                            "--no-install-recommends")
        after = cmd.split("install", 1)[1]
        own = [w for w in after.split() if not w.startswith("-")]
        if own:
            problems.append(f"runtime apt-get install names packages of its "
                            f"own: {' '.join(own)}")

    shipped = set()
    for c in copies:
        words = c.split()
        if words and words[-1].rstrip("/") == "/usr/local/bin":
            shipped |= {w.rsplit("/", 1)[-1] for w in words[:-1]
                        if not w.startswith("--")}
    if shipped != BINARIES:
        problems.append(f"runtime stage ships {sorted(shipped)} to "
                        f"/usr/local/bin, expected {sorted(BINARIES)}")

    words = [w for w, _ in runtime["instrs"]]
    users = [(i, r) for i, (w, r) in enumerate(runtime["instrs"])
             if w == "USER"]
    if not users:
        problems.append("runtime stage sets no USER (it would run as root)")
    else:
        idx, user = users[-1]
        uid, _, gid = user.partition(":")
        if not uid.isdigit() or int(uid) == 0 or (gid and not gid.isdigit()):
            problems.append(f"USER {user}: expected a numeric non-root "
                            f"uid:gid (10001:10001)")
        elif (uid, gid) != ("10001", "10001"):
            problems.append(f"USER {user}: the image contract says 10001:10001")
        if "RUN" in words[idx:]:
            problems.append("a RUN comes after the last USER (runs as the "
                            "user, or the USER is not the final one)")
    volumes = " ".join(r for w, r in runtime["instrs"] if w == "VOLUME")
    if "/var/lib/consortia" not in volumes:
        problems.append("runtime stage declares no VOLUME /var/lib/consortia")
    for need in ("STOPSIGNAL", "EXPOSE"):
        if need not in words:
            problems.append(f"runtime stage has no {need}")
    for p in problems:
        print(f"{opts.dockerfile}: {p}")
    print(f"check_dockerfile: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
