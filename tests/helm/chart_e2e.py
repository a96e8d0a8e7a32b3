#!/usr/bin/env python3
"""End-to-end test of helm/consortia without a cluster: the StatefulSet that
`helm template` renders runs here, its four containers per validator as 16
plain processes on 127.0.0.1, with the keys and genesis that
`consortia k8s-secrets` made, and must form a working network.

Steps: k8s-secrets for 4 validators (with an API key file); helm template
(defaults, the api keys Secret named); for each ordinal i, the pod
consortia-i: its volumes are laid out from the manifests (the Secret's and
the ConfigMap's files, the emptyDir, the data volume), its containers'
command lines taken from the StatefulSet and rewritten by the rule below,
started in container order; then every container's readiness probe answers
200, every validator commits COMMIT_MORE more heights, a tx submitted
through one api (with the API key) commits and is read back from another,
and the helm test pod's own script passes against the running network.
Processes are stopped by their pids (SIGTERM, then SIGKILL at the deadline).

The rewrite rule: ONLY host names, ports and paths change, and nothing else
(each rewritten argument is checked to map back to the original):
  - $(VAR) is expanded from the container's env, as the kubelet does, and
    the env's fieldRef metadata.name is the pod name consortia-i;
  - paths: a path under a volume's mountPath M becomes POD_ROOT + M, where
    POD_ROOT is TMP/consortia-i (so ipc:///run/consortia/x.sock becomes
    ipc://TMP/consortia-i/run/consortia/x.sock); the image's binaries
    (/usr/local/bin, the container's command) are those of --bin-dir;
  - hosts: 0.0.0.0 (every interface of the pod) and the pod DNS names
    consortia-j.consortia-peers become 127.0.0.1;
  - ports: the pod's declared container ports, sorted, P_0 < P_1 < ...,
    become BASE + 10 * i + k for P_k of pod i (BASE: a free range found at
    start). The peers file and the helm test's api URLs are rewritten by the
    same host and port rule.
No timing assertions: progress (heights, the tx) is awaited up to generous
deadlines.

Usage: chart_e2e.py --bin-dir BUILD/bin [--set KEY=VALUE ...] [--keep]
(--set is passed to helm template: a bad value must make the test fail).
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART = os.path.join(ROOT, "helm", "consortia")
TOOLS = os.path.join(ROOT, "tools", "helm")
HELM = os.path.join(TOOLS, "bin", "helm")
N = 4
NAME = "consortia"
COMMIT_MORE = 5
DEADLINE_S = 240


def log(*a):
    print(*a, flush=True)


def to_docs(text):
    out = subprocess.run(["node", os.path.join(TOOLS, "yaml-to-json.mjs")], input=text,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def free_base(ports_per_pod):
    """A BASE such that BASE .. BASE + 10 * N are free on 127.0.0.1."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 10)
        ok = True
        for p in range(base, base + 10 * N):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return base
    raise RuntimeError("no free port range")


class Pod:
    def __init__(self, i, tmp, spec, base):
        self.i = i
        self.name = f"{NAME}-{i}"
        self.root = os.path.join(tmp, self.name)
        ports = sorted({p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])})
        assert len(ports) <= 10, ports
        self.port_map = {p: base + 10 * i + k for k, p in enumerate(ports)}
        self.named = {p["name"]: p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])}


def rewrite_host_port(host, port, pods, pod):
    """Host and port of an endpoint as pod `pod` sees it."""
    m = re.fullmatch(rf"{NAME}-(\d+)\.{NAME}-peers", host)
    if m:
        return "127.0.0.1", pods[int(m.group(1))].port_map[port]
    if host in ("0.0.0.0", "127.0.0.1"):
        return "127.0.0.1", pod.port_map.get(port, port)
    raise ValueError(f"unexpected host {host}")


def rewrite_value(v, pod, pods, mounts, option):
    if v.startswith("ipc://"):
        return "ipc://" + rewrite_path(v[len("ipc://"):], pod, mounts)
    m = re.fullmatch(r"tcp://([^:/]+):(\d+)", v)
    if m:
        h, p = rewrite_host_port(m.group(1), int(m.group(2)), pods, pod)
        return f"tcp://{h}:{p}"
    if v.startswith("/"):
        return rewrite_path(v, pod, mounts)
    if option.endswith("_port") and v.isdigit():
        return str(pod.port_map[int(v)])
    if option.endswith("_host") and v == "0.0.0.0":
        return "127.0.0.1"
    return v


def rewrite_path(path, pod, mounts):
    for mp in sorted(mounts, key=len, reverse=True):
        if path == mp or path.startswith(mp.rstrip("/") + "/"):
            return pod.root + path
    raise ValueError(f"path {path} is on no volume of the pod")


def unrewrite(v, pod, pods):
    """The inverse rule, to check that nothing but hosts, ports and paths
    changed."""
    v = v.replace("ipc://" + pod.root, "ipc://").replace(pod.root, "")
    inverse = {}
    for j, q in enumerate(pods):
        for orig, new in q.port_map.items():
            inverse[new] = (j, orig)
    m = re.fullmatch(r"tcp://127\.0\.0\.1:(\d+)", v)
    if m:
        j, orig = inverse[int(m.group(1))]
        return f"tcp://0.0.0.0:{orig}" if j == pod.i else f"tcp://{NAME}-{j}.{NAME}-peers:{orig}"
    if v.isdigit() and int(v) in inverse:
        return str(inverse[int(v)][1])
    if v == "127.0.0.1":
        return "0.0.0.0"
    return v


def expand(s, env):
    return re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), s)


def http_get(port, path, timeout=2):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError:
        return None, ""


def height(port):
    status, body = http_get(port, "/v1/blocks/latest")
    if status != 200:
        return None
    j = json.loads(body)
    for obj in (j, j.get("header", {}), j.get("block", {}), j.get("block", {}).get("header", {})):
        if isinstance(obj, dict) and isinstance(obj.get("height"), int):
            return obj["height"]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    bin_dir = os.path.abspath(a.bin_dir)
    cli = os.path.join(bin_dir, "consortia")
    tmp = tempfile.mkdtemp(prefix="chart-e2e-")
    procs = []
    ok = False
    try:
        # 1. Keys, genesis and manifests, with an API key.
        keys_file = os.path.join(tmp, "api_keys.json")
        subprocess.run([cli, "apikey", "set-quota", "--file", keys_file, "--org", "ops"],
                       check=True, capture_output=True)
        created = subprocess.run([cli, "apikey", "create", "--file", keys_file, "--org", "ops",
                                  "--scopes", "read,submit"], check=True, capture_output=True, text=True)
        api_key = created.stdout.strip().splitlines()[-1]
        secrets = os.path.join(tmp, "secrets")
        subprocess.run([cli, "k8s-secrets", "--validators", str(N), "--chain-id", "chart-e2e",
                        "--out", secrets, "--api-keys", keys_file], check=True)
        objects = {}
        for f in os.listdir(secrets):
            if f.endswith(".yaml"):
                for d in to_docs(open(os.path.join(secrets, f)).read()):
                    objects[(d["kind"], d["metadata"]["name"])] = d
        # 2. The chart.
        sets = ["--set", f"validators.count={N}", "--set", "api.keys.existingSecret=consortia-api-keys"]
        for s in a.set:
            sets += ["--set", s]
        out = subprocess.run([HELM, "template", NAME, CHART, *sets], capture_output=True, text=True)
        if out.returncode != 0:
            log("FAIL: helm template:", out.stderr)
            return 1
        docs = to_docs(out.stdout)
        sts = [d for d in docs if d["kind"] == "StatefulSet"][0]
        spec = sts["spec"]["template"]["spec"]
        if sts["spec"]["replicas"] != N:
            log("FAIL: replicas", sts["spec"]["replicas"])
            return 1
        test_pod = [d for d in docs if d["kind"] == "Pod"
                    and d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"][0]
        base = free_base(10)
        pods = [Pod(i, tmp, spec, base) for i in range(N)]
        volumes = {v["name"]: v for v in spec["volumes"]}
        pvc_names = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
        # 3. Each pod's volumes.
        for pod in pods:
            os.makedirs(pod.root)
            for c in spec["containers"]:
                for m in c.get("volumeMounts", []):
                    d = pod.root + m["mountPath"]
                    if os.path.isdir(d):
                        continue
                    os.makedirs(d, mode=0o700)
                    v = volumes.get(m["name"])
                    if v is None and m["name"] in pvc_names:
                        continue  # the validator's PersistentVolumeClaim
                    if "emptyDir" in v:
                        continue
                    if "secret" in v:
                        obj = objects.get(("Secret", v["secret"]["secretName"]))
                        files = (obj or {}).get("stringData")
                    else:
                        obj = objects.get(("ConfigMap", v["configMap"]["name"]))
                        files = (obj or {}).get("data")
                    if files is None:
                        log(f"FAIL: volume {m['name']} names an object k8s-secrets did not make")
                        return 1
                    for k, text in files.items():
                        if k == "peers.json":
                            peers = json.loads(text)
                            for e in peers:
                                for field in ("endpoint", "mempool_endpoint"):
                                    if field in e:
                                        e[field] = rewrite_value(e[field], pod, pods, [], field)
                            text = json.dumps(peers, indent=2)
                        path = os.path.join(d, k)
                        with open(path, "w") as fh:
                            fh.write(text)
                        os.chmod(path, 0o400 if "secret" in v else 0o444)
        # 4. The 16 command lines, rewritten.
        for pod in pods:
            for c in spec["containers"]:
                env = {}
                for e in c.get("env", []):
                    if "value" in e:
                        env[e["name"]] = expand(e["value"], env)
                    elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                        env[e["name"]] = pod.name
                    else:
                        log(f"FAIL: env {e['name']} of {c['name']} has a source this test cannot give")
                        return 1
                mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
                cmd = [os.path.join(bin_dir, os.path.basename(c["command"][0]))]
                for arg in c["args"]:
                    arg = expand(arg, env)
                    m = re.fullmatch(r"(--\w+)=(.*)", arg, re.S)
                    if not m:
                        cmd.append(arg)
                        continue
                    new = rewrite_value(m.group(2), pod, pods, mounts, m.group(1)[2:])
                    back = unrewrite(new, pod, pods)
                    if back != m.group(2):
                        log(f"FAIL: rewrite changed more than hosts/ports/paths: {arg} -> {new} -> {back}")
                        return 1
                    cmd.append(f"{m.group(1)}={new}")
                logf = open(os.path.join(pod.root, f"{c['name']}.log"), "w")
                p = subprocess.Popen(cmd, env={"PATH": "/usr/bin:/bin", **env}, stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                procs.append((pod, c["name"], p, logf))
                log(f"started {pod.name}/{c['name']} pid {p.pid}: {' '.join(cmd)}")
        deadline = time.monotonic() + DEADLINE_S

        def alive():
            for pod, name, p, _ in procs:
                if p.poll() is not None:
                    log(f"FAIL: {pod.name}/{name} exited with {p.returncode}; log:")
                    log(open(os.path.join(pod.root, f"{name}.log")).read()[-3000:])
                    return False
            return True

        # 5. Every container's readiness probe, as the kubelet would ask it.
        waiting = [(pod, c) for pod in pods for c in spec["containers"]]
        while waiting:
            if not alive() or time.monotonic() > deadline:
                log("FAIL: not ready:", [f"{p.name}/{c['name']}" for p, c in waiting])
                return 1
            pod, c = waiting[0]
            probe = c["readinessProbe"]["httpGet"]
            port = probe["port"]
            port = pod.named[port] if isinstance(port, str) else port
            status, _ = http_get(pod.port_map[port], probe["path"])
            if status == 200:
                log(f"ready: {pod.name}/{c['name']}")
                waiting.pop(0)
            else:
                time.sleep(0.2)
        api_port = pods[0].named["api"]
        apis = [pod.port_map[api_port] for pod in pods]
        # 6. COMMIT_MORE more heights on every validator.
        start = [None] * N
        while True:
            if not alive() or time.monotonic() > deadline:
                log("FAIL: heights did not grow:", start)
                return 1
            hs = [height(p) for p in apis]
            for k, h in enumerate(hs):
                if start[k] is None and h is not None:
                    start[k] = h
            if all(s is not None for s in start) and all(
                    h is not None and h >= s + COMMIT_MORE for h, s in zip(hs, start)):
                log(f"heights {start} -> {hs}")
                break
            time.sleep(0.3)
        # 7. A tx through consortia-2's api commits; consortia-0 reads it.
        env = dict(os.environ, CONSORTIA_API_KEY=api_key)
        sub = subprocess.run([cli, "submit", "--api", f"http://127.0.0.1:{apis[2]}",
                              "--genesis", os.path.join(secrets, "genesis.json"),
                              "--key", os.path.join(secrets, "client_key.json"),
                              "--app", "kv", "--method", "set", "--wait", "--timeout", "120",
                              "chart", "e2e-value"], env=env, capture_output=True, text=True)
        log("submit:", sub.stdout[-400:], sub.stderr)
        if sub.returncode != 0:
            log("FAIL: the tx did not commit")
            return 1
        while True:
            status, body = http_get(apis[0], "/v1/state/kv/chart")
            if status == 200 and json.loads(body).get("value") == "e2e-value":
                log("read back from consortia-0:", body[:200])
                break
            if not alive() or time.monotonic() > deadline:
                log("FAIL: consortia-0 does not have the tx's state:", status, body[:300])
                return 1
            time.sleep(0.3)
        # 8. The helm test pod's own script, against this network.
        tc = test_pod["spec"]["containers"][0]
        tenv = {e["name"]: e["value"] for e in tc["env"]}
        tenv["APIS"] = re.sub(
            rf"{NAME}-(\d+)\.{NAME}-peers:(\d+)",
            lambda m: "127.0.0.1:%d" % pods[int(m.group(1))].port_map[int(m.group(2))], tenv["APIS"])
        t = subprocess.run(tc["command"] + tc["args"], env={"PATH": f"{bin_dir}:/usr/bin:/bin", **tenv},
                           capture_output=True, text=True, timeout=DEADLINE_S)
        log("helm test pod:", t.stdout, t.stderr)
        if t.returncode != 0:
            log("FAIL: the helm test pod's script failed")
            return 1
        ok = alive()
        return 0 if ok else 1
    finally:
        # Stop by pid, api first (reverse start order).
        for _, _, p, _ in reversed(procs):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        stop_deadline = time.monotonic() + 60
        for pod, name, p, logf in reversed(procs):
            try:
                p.wait(timeout=max(0.1, stop_deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{pod.name}/{name} did not stop on SIGTERM; SIGKILL")
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
            logf.close()
        log(f"stopped {len(procs)} processes")
        if a.keep or not ok:
            log("files and logs kept in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        log("helm_chart_e2e:", "1 passed, 0 failed" if ok else "0 passed, 1 failed")


if __name__ == "__main__":
    sys.exit(main())
