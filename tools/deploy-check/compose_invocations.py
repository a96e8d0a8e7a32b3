#!/usr/bin/env python3
"""Turns a compose file's services into the invocation list of
check_invocations.py, and with --check runs that check.

Usage:
  compose_invocations.py COMPOSE.yaml                      # JSON to stdout
  compose_invocations.py --check --bin-dir build/bin COMPOSE.yaml

Every service whose image is consortia/consortia gives one invocation:
binary = the file name of command[0] (the image has no entrypoint), args =
the rest of the command, env = environment (map or list form), ports = the
container side of `ports` and every `expose` entry, plus the port of a
health check URL. A health check `["CMD", "consortia", "probe", URL]` is one
more invocation (of the client). Other images are passed through with their
command's binary, so the checker names them as skipped.
YAML anchors and merge keys are resolved by the YAML loader (python3-yaml).
"""

import argparse
import json
import os
import re
import sys
import tempfile

import yaml

IMAGE = "consortia/consortia"


def env_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = {}
        for item in env:
            key, _, value = str(item).partition("=")
            pairs[key] = value
        return pairs
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def container_port(spec):
    """The container side of a compose port: "26657", "8080:26657",
    "127.0.0.1:8080:26657/tcp", or the long form {target: 26657}."""
    if isinstance(spec, dict):
        return spec.get("target")
    text = str(spec).split("/")[0]
    return int(text.rsplit(":", 1)[-1])


def invocations(compose, path):
    result = []
    for name, service in sorted((compose.get("services") or {}).items()):
        source = f"{os.path.basename(path)} service {name}"
        command = service.get("command")
        if isinstance(command, str):
            result.append({"source": source, "binary": "(shell string)",
                           "args": [], "problem": "command must be a list "
                           "(exec form), not a shell string"})
            continue
        if not command:
            continue
        image = str(service.get("image", ""))
        binary = os.path.basename(str(command[0]))
        if image.split(":")[0] != IMAGE:
            result.append({"source": source, "binary": binary,
                           "args": [str(a) for a in command[1:]]})
            continue
        ports = []
        for spec in service.get("ports") or []:
            ports.append({"name": "published", "port": container_port(spec)})
        for spec in service.get("expose") or []:
            ports.append({"name": "expose", "port": int(str(spec))})
        health = (service.get("healthcheck") or {}).get("test")
        if isinstance(health, list) and health and health[0] == "CMD":
            probe = [str(a) for a in health[1:]]
            result.append({"source": source + " healthcheck",
                           "binary": os.path.basename(probe[0]),
                           "args": probe[1:]})
            for arg in probe[1:]:
                m = re.match(r"https?://[^/:]+:(\d+)", arg)
                if m:
                    ports.append({"name": "healthcheck",
                                  "port": int(m.group(1))})
        elif health is not None and health != ["NONE"]:
            result.append({"source": source + " healthcheck",
                           "binary": "(shell string)", "args": [],
                           "problem": "healthcheck test must be "
                           "[\"CMD\", ...] (no shell in use)"})
        result.append({"source": source, "binary": binary,
                       "args": [str(a) for a in command[1:]],
                       "env": env_of(service), "ports": ports})
    return result


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--bin-dir")
    parser.add_argument("compose")
    opts = parser.parse_args(argv)
    with open(opts.compose, encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    invs = invocations(compose, opts.compose)
    if not opts.check:
        json.dump(invs, sys.stdout, indent=2)
        print()
        return 0
    if not opts.bin_dir:
        print("compose_invocations: --check needs --bin-dir", file=sys.stderr)
        return 2
    problems = [f"{i['source']}: {i['problem']}" for i in invs
                if "problem" in i]
    for p in problems:
        print(p)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import check_invocations  # pylint: disable=import-outside-toplevel
    with tempfile.NamedTemporaryFile("w", suffix=".json",
                                     delete=False) as tmp:
        json.dump([i for i in invs if "problem" not in i], tmp)
    try:
        code = check_invocations.main(["--bin-dir", opts.bin_dir, tmp.name])
    finally:
        os.unlink(tmp.name)
    return 1 if problems else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
