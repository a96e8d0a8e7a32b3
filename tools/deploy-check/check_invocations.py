#!/usr/bin/env python3
"""Checks that deployment files start Consortia's binaries only with options,
environment variables and ports those binaries declare.

Usage:
  check_invocations.py --bin-dir build/bin INVOCATIONS.json

INVOCATIONS.json is a JSON list of objects (docs: tools/deploy-check/README.md):
  {"source": "deploy/compose.yaml service validator0-api",  # for messages
   "binary": "consortia-api",            # a file name in --bin-dir
   "args":   ["--api_port=26657", "--genesis", "/etc/consortia/genesis.json"],
   "env":    {"CONSORTIA_NODE_NAME": "node0"},
   "ports":  [{"name": "api", "port": 26657}]}          # optional

For a service binary the option list is its own `--dump_options` (JSON: name,
env, type, min, max, default). Problems (one line each, naming the source):
  - a `--flag` (forms `--flag=value`, `--flag value`, and `--noflag` for a
    bool) that the binary does not declare;
  - a CONSORTIA_* environment variable that is no option's `env`;
  - a value that does not parse as the option's type (integers, bools), or a
    number outside the option's [min, max];
  - a declared port that no option listens on. The rule: the port must be the
    value (given in args or env, else the default) of an option whose name
    ends in `_port`, or the port of a `tcp://HOST:PORT` value of an option
    whose name ends in `_endpoint` or `_addr`.
The client `consortia` has no --dump_options: its first argument must be a
command, and every `--flag` must appear in `consortia COMMAND --help`.
A binary named consortia* that is not in --bin-dir is a problem; any other
binary that is not there (redis-server, ...) is skipped with a note.
Exit 0 when there is no problem, 1 otherwise, 2 for bad usage.
"""

import argparse
import functools
import json
import os
import re
import subprocess
import sys

INT_TYPES = {"int", "int32_t", "int64_t", "uint32_t", "uint64_t", "uint16_t",
             "size_t"}
BOOL_WORDS = {"true", "false", "1", "0", "yes", "no", "t", "f", "y", "n"}
PORTISH_SUFFIXES = ("_endpoint", "_addr")


@functools.lru_cache(maxsize=None)
def dump_options(path):
    out = subprocess.run([path, "--dump_options"], capture_output=True,
                         text=True, timeout=60, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{path} --dump_options exited {out.returncode}: "
                           f"{out.stderr.strip()}")
    return {o["name"]: o for o in json.loads(out.stdout)}  # read-only use


@functools.lru_cache(maxsize=None)
def cli_help(path, command):
    out = subprocess.run([path, command, "--help"], capture_output=True,
                         text=True, timeout=60, check=False)
    return out.returncode, out.stdout + out.stderr


def check_value(source, opt, value, problems):
    """Type and range of one option value."""
    name, typ = opt["name"], opt.get("type", "")
    if typ == "bool":
        if value.lower() not in BOOL_WORDS:
            problems.append(f"{source}: --{name}={value} is not a bool")
        return
    if typ in INT_TYPES or typ in ("double", "float"):
        try:
            num = int(value, 10) if typ in INT_TYPES else float(value)
        except ValueError:
            problems.append(f"{source}: --{name}={value} is not a number "
                            f"({typ})")
            return
        lo, hi = opt.get("min"), opt.get("max")
        if (lo is not None and num < lo) or (hi is not None and num > hi):
            problems.append(f"{source}: --{name}={value} is outside "
                            f"[{lo}, {hi}]")
        if typ.startswith("uint") and num < 0:
            problems.append(f"{source}: --{name}={value} is negative")


def parse_args(source, args, options, problems):
    """Returns {option name: value} for the flags in args."""
    values = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            problems.append(f"{source}: unexpected argument '{arg}' (the "
                            f"services take only --flags)")
            continue
        body = arg.lstrip("-")
        name, eq, value = body.partition("=")
        opt = options.get(name)
        if opt is None and name.startswith("no") and not eq:
            neg = options.get(name[2:])
            if neg is not None and neg.get("type") == "bool":
                values[neg["name"]] = "false"
                continue
        if opt is None:
            problems.append(f"{source}: --{name} is not an option of this "
                            f"binary")
            if not eq and i < len(args) and not args[i].startswith("-"):
                i += 1  # skip its value
            continue
        if not eq:
            if opt.get("type") == "bool":
                value = "true"
            elif i < len(args):
                value = args[i]
                i += 1
            else:
                problems.append(f"{source}: --{name} has no value")
                continue
        check_value(source, opt, value, problems)
        values[name] = value
    return values


def ports_of(options, values):
    """Ports the process listens on or names, by the documented rule."""
    ports = set()
    for name, opt in options.items():
        value = values.get(name, opt.get("default"))
        if value is None:
            continue
        value = str(value)
        if name.endswith("_port"):
            if re.fullmatch(r"\d+", value):
                ports.add(int(value))
        elif name.endswith(PORTISH_SUFFIXES):
            m = re.fullmatch(r"tcp://[^/]*:(\d+)", value)
            if m:
                ports.add(int(m.group(1)))
    return ports


def check_service(inv, path, problems):
    source = inv.get("source", inv["binary"])
    try:
        options = dump_options(path)
    except (RuntimeError, ValueError, OSError,
            subprocess.TimeoutExpired) as e:
        problems.append(f"{source}: cannot read the options: {e}")
        return
    values = parse_args(source, list(inv.get("args", [])), options, problems)
    by_env = {o["env"]: o for o in options.values() if o.get("env")}
    for var, value in (inv.get("env") or {}).items():
        if not var.startswith("CONSORTIA_"):
            continue
        opt = by_env.get(var)
        if opt is None:
            problems.append(f"{source}: environment variable {var} is not "
                            f"the env of any option of this binary")
            continue
        check_value(source, opt, str(value), problems)
        # A flag given on the command line wins over the environment.
        values.setdefault(opt["name"], str(value))
    listening = ports_of(options, values)
    for port in inv.get("ports") or []:
        number = port.get("port") if isinstance(port, dict) else port
        label = port.get("name", "") if isinstance(port, dict) else ""
        try:
            number = int(number)
        except (TypeError, ValueError):
            problems.append(f"{source}: port {label} {number!r} is not a "
                            f"number")
            continue
        if number not in listening:
            problems.append(f"{source}: port {label + ' ' if label else ''}"
                            f"{number} is no *_port/*_endpoint/*_addr value "
                            f"of this process (it has {sorted(listening)})")


def check_cli(inv, path, problems):
    source = inv.get("source", inv["binary"])
    args = list(inv.get("args", []))
    if not args or args[0].startswith("-"):
        problems.append(f"{source}: consortia needs a command first")
        return
    code, text = cli_help(path, args[0])
    if "unknown command" in text or code != 0:
        problems.append(f"{source}: '{args[0]}' is not a consortia command")
        return
    known = set(re.findall(r"--([a-z][a-z0-9-]*)", text))
    for arg in args[1:]:
        if arg.startswith("--"):
            name = arg[2:].partition("=")[0]
            if name not in known:
                problems.append(f"{source}: consortia {args[0]} has no "
                                f"--{name} (see consortia {args[0]} --help)")
    for var in inv.get("env") or {}:
        if var.startswith("CONSORTIA_") and var not in text:
            problems.append(f"{source}: consortia {args[0]} does not read "
                            f"{var}")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("invocations")
    opts = parser.parse_args(argv)
    try:
        with open(opts.invocations, encoding="utf-8") as f:
            invocations = json.load(f)
    except (OSError, ValueError) as e:
        print(f"check_invocations: {opts.invocations}: {e}", file=sys.stderr)
        return 2
    if not isinstance(invocations, list):
        print("check_invocations: expected a JSON list", file=sys.stderr)
        return 2
    problems = []
    checked = 0
    for inv in invocations:
        binary = os.path.basename(inv.get("binary", ""))
        path = os.path.join(opts.bin_dir, binary)
        source = inv.get("source", binary)
        if binary.startswith("consortia") and not os.access(path, os.X_OK):
            problems.append(f"{source}: {binary} is no binary in "
                            f"{opts.bin_dir}")
            continue
        if not binary or not os.access(path, os.X_OK):
            print(f"note: {source}: {binary or '(no binary)'} is not a "
                  f"Consortia binary in {opts.bin_dir}; skipped")
            continue
        checked += 1
        if binary == "consortia":
            check_cli(inv, path, problems)
        else:
            check_service(inv, path, problems)
    for p in problems:
        print(p)
    print(f"check_invocations: {checked} invocation(s) checked, "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
