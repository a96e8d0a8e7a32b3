#!/usr/bin/env python3
"""Runs deploy/compose.yaml's containers as plain processes on 127.0.0.1
(no container engine here) and checks that the network commits blocks.

Usage: run_compose_locally.py --bin-dir build/bin [--keep DIR] COMPOSE.yaml

The commands, environment, health checks and start order are the compose
file's; only host names, ports and paths are rewritten, by this rule:
  - paths: a volume `NAME:TARGET` of a service becomes the directory
    TMP/NAME, and TARGET in that service's args and env is replaced by it
    (so volumes shared in compose are shared here);
  - binaries: command[0] is looked up in --bin-dir;
  - working directory: the image's WORKDIR /var/lib/consortia, i.e. the
    directory of the volume mounted there, else a directory of mode 0555
    (read-only root); afterwards nothing may exist outside the volumes;
  - hosts: `0.0.0.0` becomes `127.0.0.1`, and the init command's
    `--consensus-host=`/`--mempool-host=` values become `127.0.0.1` (all
    processes share one loopback);
  - ports: the init command gets `--base-port=B` (B free, picked here), and
    every port of the localnet layout's peers and bus (26600 + 100 i +
    1..5, i < 14) in any service is shifted by B - 26600; every other port
    number (metrics, api) is replaced, per service, by a free port.
Everything else is passed as written. Then: init runs to completion, each
service starts once what it depends_on is healthy (its health check command,
rewritten the same way, exits 0), every api's /v1/blocks/latest must reach
height 3, and every process must exit 0 on SIGTERM.
Exit 0 on success, 1 on failure (with the logs of the processes).
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

LAYOUT = (26600, 27999)  # localnet ports: base + 100 i + offsets
P2P = (1, 2, 3, 4, 5)
WORKDIR = "/var/lib/consortia"  # deploy/Dockerfile  # the offsets of the peers file's and bus ports


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_base():
    for _ in range(200):
        base = 20000 + (int.from_bytes(os.urandom(2), "big") % 20000)
        base -= base % 100
        try:
            socks = []
            for i in range(4):
                for off in (4, 5):
                    s = socket.socket()
                    socks.append(s)
                    s.bind(("127.0.0.1", base + 100 * i + off))
            for s in socks:
                s.close()
            return base
        except OSError:
            for s in socks:
                s.close()
    raise RuntimeError("no free base port")


class Rewriter:
    def __init__(self, tmp, base):
        self.tmp = tmp
        self.shift = base - LAYOUT[0]
        self.ports = {}  # (service, port) -> new port

    def port(self, service, number):
        n = int(number)
        if LAYOUT[0] <= n <= LAYOUT[1] and (n - LAYOUT[0]) % 100 in P2P:
            return n + self.shift
        key = (service, n)
        if key not in self.ports:
            self.ports[key] = free_port()
        return self.ports[key]

    def text(self, service, volumes, value):
        value = str(value)
        for name, target in volumes:
            value = value.replace(target, os.path.join(self.tmp, name))
        value = value.replace("0.0.0.0", "127.0.0.1")
        # Ports: `--*_port=N`, `host:N` in URLs and endpoints.
        value = re.sub(r"(_port=)(\d+)$",
                       lambda m: m.group(1) + str(self.port(service,
                                                            m.group(2))),
                       value)
        value = re.sub(r"(://[^/:]+:)(\d+)",
                       lambda m: m.group(1) + str(self.port(service,
                                                            m.group(2))),
                       value)
        return value


def volumes_of(service):
    result = []
    for v in service.get("volumes") or []:
        name, _, target = str(v).partition(":")
        target = target.split(":")[0]
        result.append((name, target))
    return result


def env_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(str(e).partition("=")[::2] for e in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def order(services):
    done, result = set(), []

    def visit(name, stack=()):
        if name in done:
            return
        if name in stack:
            raise RuntimeError(f"depends_on cycle at {name}")
        for dep in (services[name].get("depends_on") or {}):
            visit(dep, stack + (name,))
        done.add(name)
        result.append(name)

    for name in sorted(services):
        visit(name)
    return result


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--keep", help="work in this directory, keep it")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("compose")
    opts = parser.parse_args(argv)
    bin_dir = os.path.abspath(opts.bin_dir)
    with open(opts.compose, encoding="utf-8") as f:
        services = yaml.safe_load(f)["services"]
    tmp = opts.keep or tempfile.mkdtemp(prefix="compose-local-")
    os.makedirs(tmp, exist_ok=True)
    rw = Rewriter(tmp, free_base())
    readonly = os.path.join(tmp, "readonly-root")
    os.makedirs(readonly, exist_ok=True)
    os.chmod(readonly, 0o555)
    procs = {}  # name -> (Popen, log path)
    ok = False
    try:
        for name in order(services):
            svc = services[name]
            vols = volumes_of(svc)
            for vol, _ in vols:
                os.makedirs(os.path.join(tmp, vol), mode=0o700, exist_ok=True)
            cmd = [rw.text(name, vols, a) for a in svc["command"]]
            cmd[0] = os.path.join(bin_dir, os.path.basename(cmd[0]))
            if name == "init" or "--init-only" in cmd:
                cmd = [re.sub(r"^(--(consensus|mempool)-host=).*", r"\g<1>127.0.0.1", a)
                       for a in cmd]
                cmd.append(f"--base-port={LAYOUT[0] + rw.shift}")
            env = dict(os.environ)
            env.update({k: rw.text(name, vols, v)
                        for k, v in env_of(svc).items()})
            health = (svc.get("healthcheck") or {}).get("test")
            probe = None
            if health and health[0] == "CMD":
                probe = [rw.text(name, vols, a) for a in health[1:]]
                probe[0] = os.path.join(bin_dir, os.path.basename(probe[0]))
            # Wait for what it depends on.
            for dep, cond in (svc.get("depends_on") or {}).items():
                cond = (cond or {}).get("condition", "service_started")
                if cond == "service_healthy":
                    wait_healthy(dep, procs, opts.timeout)
            log = os.path.join(tmp, f"{name}.log")
            print(f"start {name}: {' '.join(cmd)}", flush=True)
            # The image's WORKDIR, /var/lib/consortia: the volume mounted
            # there, else a directory nobody may write to (read-only root).
            cwd = next((os.path.join(tmp, v) for v, t in vols
                        if t.rstrip("/") == WORKDIR), readonly)
            p = subprocess.Popen(cmd, env=env, stdout=open(log, "w"),
                                 stderr=subprocess.STDOUT, cwd=cwd)
            procs[name] = (p, log, probe)
            if svc.get("restart") == "no":
                code = p.wait(timeout=opts.timeout)
                if code != 0:
                    raise RuntimeError(f"{name} exited {code}")
        apis = [rw.port(n, 26657) for n in sorted(services)
                if n.endswith("-api")]
        deadline = time.time() + opts.timeout
        heights = {}
        while time.time() < deadline:
            for port in apis:
                heights[port] = latest_height(port)
            if heights and min(heights.values()) >= 3:
                break
            for name, (p, _, _) in procs.items():
                if services[name].get("restart") != "no" and p.poll() is not None:
                    raise RuntimeError(f"{name} exited {p.returncode}")
            time.sleep(0.5)
        print(f"heights by api port: {heights}")
        if not heights or min(heights.values()) < 3:
            raise RuntimeError("the network did not reach height 3")
        # Nothing but the volumes (and our logs) was written.
        allowed = {v for n in services for v, _ in volumes_of(services[n])}
        stray = [e for e in os.listdir(tmp) if e not in allowed and
                 e != "readonly-root" and not e.endswith(".log")]
        stray += os.listdir(readonly)
        if stray:
            raise RuntimeError(f"written outside the volumes: {stray}")
        ok = True
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        print(f"run_compose_locally: {e}")
    finally:
        for name in reversed(list(procs)):
            p = procs[name][0]
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, (p, log, _) in procs.items():
            try:
                code = p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                code = "killed"
            if code != 0:
                ok = False
                print(f"{name} exited {code} after SIGTERM")
            if not ok:
                print(f"--- {name} ({log})")
                with open(log, encoding="utf-8", errors="replace") as f:
                    print("".join(f.readlines()[-15:]))
        if not opts.keep:
            os.chmod(readonly, 0o755)
            shutil.rmtree(tmp, ignore_errors=True)
    print("run_compose_locally: " + ("the compose network committed blocks"
                                     if ok else "FAILED"))
    return 0 if ok else 1


def wait_healthy(name, procs, timeout):
    p, _, probe = procs[name]
    if probe is None:
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{name} exited {p.returncode}")
        if subprocess.run(probe, capture_output=True,
                          check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not become healthy")


def latest_height(port):
    try:
        with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/v1/blocks/latest", timeout=2) as r:
            body = json.load(r)
    except (OSError, ValueError):
        return 0
    header = body.get("header", body)
    return int(header.get("height", body.get("height", 0)) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
