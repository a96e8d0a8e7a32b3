#!/usr/bin/env python3
"""Static checks of the Helm chart helm/consortia with the real tools
(tools/helm: helm v3.17.1, the Kubernetes API schemas; scripts/install-deps.sh
installs them). One check per ctest test (tests/CMakeLists.txt, label unit):

  lint          helm lint --strict
  defaults      helm template with default values; the manifests are valid
                Kubernetes objects with no unknown field; the chart's
                structural promises (Parallel, publishNotReadyAddresses,
                selectors without a version, PDB = f, probes, ...) hold for
                1, 4, 7 and 10 validators; NOTES.txt tells f, the api's
                address and how to watch the chain
  all-on        the same with tests/helm/values-all-on.yaml and the
                monitoring.coreos.com/v1 CRDs; the PrometheusRule is
                monitoring/alerts.yml and the dashboards monitoring/dashboards
  bad-values    each bad value of BAD_VALUES makes helm template fail with
                the schema's message
  schema-catch  the manifest validator refuses a rendered manifest with an
                unknown field (and a wrong type)
  invocations   every option, env var and port the chart passes to a binary
                is one it declares (tools/deploy-check/check_invocations.py,
                --dump_options), for defaults and all-on; a bad option given
                through extraArgs is caught
  k8s-secrets   consortia k8s-secrets: files mode 0600, never overwritten,
                manifests valid and named as the chart reads them

Usage: chart_test.py CHECK --bin-dir BUILD/bin
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART = os.path.join(ROOT, "helm", "consortia")
TOOLS = os.path.join(ROOT, "tools", "helm")
HELM = os.path.join(TOOLS, "bin", "helm")
ALL_ON = os.path.join(ROOT, "tests", "helm", "values-all-on.yaml")
CHECKER = os.path.join(ROOT, "tools", "deploy-check", "check_invocations.py")
CRDS = ["--api-versions", "monitoring.coreos.com/v1"]

# Each must make `helm template` fail, with this text in its message.
BAD_VALUES = [
    (["--set", "validators.count=3"], '"then"'),                 # bft needs 4
    (["--set", "validators.count=0"], "validators.count"),
    (["--set", "storage.backend=leveldb"], "storage.backend"),
    (["--set", "resources.api.limits.cpu=-1"], "resources.api.limits.cpu"),
    (["--set-string", "resources.storage.requests.memory=-1Gi"],
     "resources.storage.requests.memory"),
    (["--set", "image.tag=1.0:bad"], "image.tag"),
    (["--set", "image.tag=-leading-dash"], "image.tag"),
    (["--set", "no_such_value=1"], "no_such_value"),
    (["--set", "api.no_such_value=1"], "no_such_value"),
    (["--set", "api.invoiceReads=closed"], "invoiceReads"),
    (["--set", "api.invoiceReads=parties"], "readsNeedKey"),  # needs it
    (["--set", "ports.api=70000"], "ports.api"),
    (["--set", "validators.antiAffinity=maybe"], "antiAffinity"),
    (["--set", "storage.backend=redis"], "host"),                 # no host
    (["--set", "storage.extraArgs={not-a-flag}"], "extraArgs"),
]

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def helm_template(*extra, release="consortia"):
    return run([HELM, "template", release, CHART, *extra])


def to_docs(yaml_text):
    out = run(["node", os.path.join(TOOLS, "yaml-to-json.mjs")], input=yaml_text)
    if out.returncode != 0:
        raise RuntimeError("yaml-to-json: " + out.stderr)
    return json.loads(out.stdout)


def validate(yaml_text, label):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(yaml_text)
    try:
        out = run(["node", os.path.join(TOOLS, "validate-manifests.mjs"), f.name])
    finally:
        os.unlink(f.name)
    print(f"validate-manifests ({label}): {out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr}")
    return out


def render_ok(label, *extra):
    out = helm_template(*extra)
    if out.returncode != 0:
        fail(f"helm template ({label}) failed: {out.stderr}")
        return None, []
    v = validate(out.stdout, label)
    if v.returncode != 0:
        fail(f"manifests ({label}) are not valid Kubernetes objects:\n{v.stdout}")
    return out.stdout, to_docs(out.stdout)


def render_notes(*extra):
    with tempfile.TemporaryDirectory() as tmp:
        chart = os.path.join(tmp, "consortia")
        shutil.copytree(CHART, chart, symlinks=False)
        shutil.copy(os.path.join(chart, "templates", "NOTES.txt"), os.path.join(chart, "files", "notes.txt"))
        with open(os.path.join(chart, "templates", "notes-render.yaml"), "w") as f:
            f.write('notes: {{ tpl (.Files.Get "files/notes.txt") . | toJson }}\n')
        out = run([HELM, "template", "consortia", chart, "--show-only", "templates/notes-render.yaml", *extra])
        if out.returncode != 0:
            fail("NOTES.txt does not render: " + out.stderr)
            return ""
        return json.loads(out.stdout[out.stdout.index("notes: ") + len("notes: "):])


def find(docs, kind, name=None):
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def check_common(docs, n, label):
    """The chart's structural promises for n validators."""
    f = (n - 1) // 3
    sts = find(docs, "StatefulSet")
    if len(sts) != 1:
        fail(f"{label}: {len(sts)} StatefulSets")
        return
    s = sts[0]["spec"]
    expect = {
        "podManagementPolicy": "Parallel",
        "replicas": n,
    }
    for k, want in expect.items():
        if s.get(k) != want:
            fail(f"{label}: StatefulSet {k} = {s.get(k)!r}, want {want!r}")
    names = [c["name"] for c in s["template"]["spec"]["containers"]]
    if names != ["storage", "mempool", "consensus", "api"]:
        fail(f"{label}: containers {names}")
    for c in s["template"]["spec"]["containers"]:
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                            ("startupProbe", "/readyz")):
            if c.get(probe, {}).get("httpGet", {}).get("path") != path:
                fail(f"{label}: container {c['name']} {probe} is not GET {path}")
        for a in c["args"]:
            if re.match(r"--(mempool_endpoint|storage_endpoint|storage_events)=", a) and \
                    not a.split("=", 1)[1].startswith("ipc:///run/consortia/"):
                fail(f"{label}: {c['name']} bus endpoint {a} is not ipc:// in the shared emptyDir")
    vols = {v["name"]: v for v in s["template"]["spec"]["volumes"]}
    if "emptyDir" not in vols.get("bus", {}):
        fail(f"{label}: no emptyDir volume bus")
    if "terminationGracePeriodSeconds" not in s["template"]["spec"]:
        fail(f"{label}: no terminationGracePeriodSeconds")
    # Selectors never include a version.
    for d in docs:
        spec = d.get("spec", {})
        sel = spec.get("selector") if d["kind"] in ("Service",) else spec.get("selector", {}).get("matchLabels")
        if d["kind"] == "NetworkPolicy":
            sel = spec["podSelector"]["matchLabels"]
        if sel and any("version" in k for k in sel):
            fail(f"{label}: {d['kind']}/{d['metadata']['name']} selector has a version: {sel}")
        labels = d["metadata"].get("labels", {})
        if d["kind"] not in ("Secret",):
            for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                      "app.kubernetes.io/version", "app.kubernetes.io/managed-by"):
                if k not in labels:
                    fail(f"{label}: {d['kind']}/{d['metadata']['name']} has no label {k}")
    if any("version" in k for k in s["selector"]["matchLabels"]):
        fail(f"{label}: StatefulSet selector has a version")
    peers = [d for d in find(docs, "Service") if d["spec"].get("clusterIP") == "None"]
    if len(peers) != 1 or not peers[0]["spec"].get("publishNotReadyAddresses"):
        fail(f"{label}: no headless Service with publishNotReadyAddresses")
    pdb = find(docs, "PodDisruptionBudget")
    if len(pdb) != 1 or pdb[0]["spec"].get("maxUnavailable") != f:
        fail(f"{label}: PodDisruptionBudget maxUnavailable is not f = {f}: {pdb}")
    np = find(docs, "NetworkPolicy")
    if len(np) != 1:
        fail(f"{label}: {len(np)} NetworkPolicies")
    else:
        rules = np[0]["spec"]["ingress"]
        p2p = rules[0]
        if "podSelector" not in p2p["from"][0] or len(p2p["from"]) != 1:
            fail(f"{label}: p2p is open beyond the validators")
        if "namespaceSelector" not in rules[1]["from"][0]:
            fail(f"{label}: metrics are open beyond the monitoring namespace")
    tests = [d for d in find(docs, "Pod") if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    if len(tests) != 1:
        fail(f"{label}: no helm test pod")
    dash = [d for d in find(docs, "ConfigMap") if "grafana_dashboard" in d["metadata"].get("labels", {})]
    if len(dash) != 4:
        fail(f"{label}: {len(dash)} dashboard ConfigMaps labelled for Grafana's sidecar, want 4")


def check_lint(_):
    out = run([HELM, "lint", "--strict", CHART])
    print(out.stdout)
    if out.returncode != 0:
        fail("helm lint --strict: " + out.stdout + out.stderr)


def check_defaults(_):
    text, docs = render_ok("defaults")
    if not docs:
        return
    check_common(docs, 4, "defaults")
    if find(docs, "ServiceMonitor") or find(docs, "PrometheusRule"):
        fail("defaults: ServiceMonitor/PrometheusRule rendered without the CRDs")
    if find(docs, "Ingress"):
        fail("defaults: Ingress rendered though api.ingress.enabled is false")
    # NOTES.txt (helm install prints it; helm template does not render it):
    # rendered through tpl in a copy of the chart.
    for n, f in ((4, 1), (7, 2)):
        notes = render_notes("--set", f"validators.count={n}", "--namespace", "ledger")
        for want in (f"f = {f}", "http://consortia-api.ledger.svc:26657",
                     "helm test consortia", "kubectl -n ledger get pods", f"consortia-{n - 1}"):
            if want not in notes:
                fail(f"NOTES.txt for {n} validators lacks {want!r}:\n{notes}")
    # Counts other than 4: f follows.
    for n, f in ((1, 0), (7, 2), (10, 3)):
        extra = ["--set", f"validators.count={n}"]
        if n < 4:
            extra += ["--set", "consensus.bft=false"]
        _, d = render_ok(f"{n} validators", *extra)
        if d:
            check_common(d, n, f"{n} validators")


def check_all_on(_):
    text, docs = render_ok("all-on", "-f", ALL_ON, *CRDS)
    if not docs:
        return
    check_common(docs, 7, "all-on")
    for kind in ("ServiceMonitor", "PrometheusRule", "Ingress"):
        if len(find(docs, kind)) != 1:
            fail(f"all-on: no {kind}")
    for d in docs:
        if d["metadata"].get("labels", {}).get("team") != "ledger" and d["kind"] != "Secret":
            fail(f"all-on: {d['kind']}/{d['metadata']['name']} lacks commonLabels")
    sm = find(docs, "ServiceMonitor")
    if sm and sm[0]["metadata"]["labels"].get("release") != "prometheus":
        fail("all-on: ServiceMonitor lacks its extra labels")
    # The rule is monitoring/alerts.yml, runbook links prefixed.
    alerts = to_docs(open(os.path.join(ROOT, "monitoring", "alerts.yml")).read())[0]
    pr = find(docs, "PrometheusRule")
    if pr:
        got = pr[0]["spec"]["groups"]
        want_names = [r.get("alert") for g in alerts["groups"] for r in g["rules"]]
        got_names = [r.get("alert") for g in got for r in g["rules"]]
        if got_names != want_names:
            fail(f"all-on: PrometheusRule alerts {got_names} != monitoring/alerts.yml {want_names}")
        for g in got:
            for r in g["rules"]:
                url = r["annotations"]["runbook_url"]
                if not url.startswith("https://git.example.com/consortia/blob/main/docs/operations.md#"):
                    fail(f"all-on: runbook_url {url} not prefixed")
    for name in os.listdir(os.path.join(ROOT, "monitoring", "dashboards")):
        cm = find(docs, "ConfigMap", f"consortia-dashboard-{name[:-5]}")
        src = open(os.path.join(ROOT, "monitoring", "dashboards", name)).read()
        if not cm or json.loads(cm[0]["data"]["consortia-" + name]) != json.loads(src):
            fail(f"all-on: dashboard {name} differs from monitoring/dashboards/{name}")
    # Off switches.
    _, d = render_ok("monitoring off", "-f", ALL_ON, *CRDS,
                     "--set", "monitoring.serviceMonitor.enabled=false",
                     "--set", "monitoring.prometheusRule.enabled=false",
                     "--set", "monitoring.dashboards.enabled=false",
                     "--set", "networkPolicy.enabled=false",
                     "--set", "podDisruptionBudget.enabled=false",
                     "--set", "persistence.enabled=false")
    for kind in ("ServiceMonitor", "PrometheusRule", "NetworkPolicy", "PodDisruptionBudget"):
        if find(d, kind):
            fail(f"switched off: {kind} still rendered")


def check_bad_values(_):
    good = helm_template()
    if good.returncode != 0:
        fail("defaults do not render: " + good.stderr)
    for args, text in BAD_VALUES:
        out = helm_template(*args)
        if out.returncode == 0:
            fail(f"helm template {' '.join(args)} succeeded; the schema must refuse it")
        elif text not in out.stderr:
            fail(f"helm template {' '.join(args)} failed without naming {text!r}: {out.stderr}")
        else:
            print(f"refused as expected: {' '.join(args)}")


def check_schema_catch(_):
    out = helm_template("-f", ALL_ON, *CRDS)
    base = out.stdout
    cases = {
        "unknown container field": base.replace("          imagePullPolicy: IfNotPresent\n",
                                                "          imagePullPolicy: IfNotPresent\n          bogusField: 1\n", 1),
        "misspelt Service field": base.replace("  publishNotReadyAddresses: true\n",
                                               "  publishNotReadyAddress: true\n", 1),
        "wrong type": base.replace("  replicas: 7\n", "  replicas: seven\n", 1),
        "unknown ServiceMonitor field": base.replace("      path: /metrics\n",
                                                     "      path: /metrics\n      bogus: 1\n", 1),
        "unknown PrometheusRule field": base.replace("        severity: page\n",
                                                     "        severity: page\n      bogusRule: 1\n", 1),
        "unknown kind": base + "\n---\napiVersion: v1\nkind: NoSuchKind\nmetadata: {name: x}\n",
    }
    expect = {
        "unknown container field": ".containers[0].bogusField: unknown field",
        "misspelt Service field": ".spec.publishNotReadyAddress: unknown field",
        "wrong type": "/spec/replicas must be integer",
        "unknown ServiceMonitor field": ".spec.endpoints[0].bogus: unknown field",
        "unknown PrometheusRule field": "rules[0].bogusRule: unknown field",
        "unknown kind": "unknown kind v1 NoSuchKind",
    }
    for name, text in cases.items():
        if text == base:
            fail(f"schema-catch: could not inject {name}")
            continue
        v = validate(text, name)
        if v.returncode == 0:
            fail(f"schema-catch: the validator accepted a manifest with a {name}")
        elif expect[name] not in v.stdout:
            fail(f"schema-catch: {name} reported without {expect[name]!r}: {v.stdout}")


def statefulset_invocations(docs, label):
    """One invocation per container of the StatefulSet, as the checker reads
    them; $(VAR) references are left as they are (their env is given)."""
    inv = []
    for d in find(docs, "StatefulSet"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            env = {}
            for e in c.get("env", []):
                env[e["name"]] = e.get("value", "consortia-0")
            args = [re.sub(r"\$\(CONSORTIA_NODE_NAME\)", "consortia-0", a) for a in c["args"]]
            inv.append({"source": f"helm/consortia {label} StatefulSet, container {c['name']}",
                        "binary": c["command"][0], "args": args, "env": env,
                        "ports": [{"name": p["name"], "port": p["containerPort"]} for p in c.get("ports", [])]})
    # The helm test pod's script: each `consortia ...` command line in it.
    for d in find(docs, "Pod"):
        for c in d["spec"]["containers"]:
            script = "\n".join(c.get("args", []))
            for m in re.finditer(r"(?<![\w$/-])(consortia(?:-[a-z]+)?) ((?:(?!\s\d?>|\||\n).)*)", script):
                args = [a.strip('"') for a in m.group(2).split()]
                inv.append({"source": f"helm/consortia {label} test pod, {m.group(0).strip()}",
                            "binary": m.group(1), "args": args, "env": {}})
    return inv


def run_checker(inv, bin_dir):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(inv, f)
    try:
        return run([sys.executable, CHECKER, "--bin-dir", bin_dir, f.name])
    finally:
        os.unlink(f.name)


def check_invocations(bin_dir):
    if not os.path.exists(CHECKER):
        fail(f"{CHECKER} is missing (tools/deploy-check, issue 15)")
        return
    inv = []
    for label, extra in (("defaults", []), ("all-on", ["-f", ALL_ON, *CRDS]),
                         ("1 validator", ["--set", "validators.count=1", "--set", "consensus.bft=false"])):
        out = helm_template(*extra)
        if out.returncode != 0:
            fail(f"helm template {label}: {out.stderr}")
            continue
        inv += statefulset_invocations(to_docs(out.stdout), label)
    if len(inv) != 15:
        fail(f"{len(inv)} invocations, want 15 (4 containers and the test pod's command, 3 renderings)")
    out = run_checker(inv, bin_dir)
    print(out.stdout, out.stderr)
    if out.returncode != 0:
        fail("the chart passes options its binaries do not accept:\n" + out.stdout + out.stderr)
    # A bad option slipped in through extraArgs (the schema allows any
    # --flag) and a value out of range are caught.
    for bad in ("storage.extraArgs={--storage_no_such_option=1}",
                "storage.extraArgs={--storage_threads=0}"):
        out = helm_template("--set", bad)
        b = run_checker(statefulset_invocations(to_docs(out.stdout), bad), bin_dir)
        if b.returncode == 0:
            fail(f"the checker accepted --set {bad}")
        else:
            print("caught as expected:", b.stdout.strip())


def check_k8s_secrets(bin_dir):
    cli = os.path.join(bin_dir, "consortia")
    with tempfile.TemporaryDirectory() as tmp:
        keys = os.path.join(tmp, "api_keys.json")
        run([cli, "apikey", "set-quota", "--file", keys, "--org", "ops"], check=True)
        out_dir = os.path.join(tmp, "out")
        cmd = [cli, "k8s-secrets", "--validators", "4", "--chain-id", "chart-test",
               "--out", out_dir, "--api-keys", keys]
        first = run(cmd)
        if first.returncode != 0:
            fail("k8s-secrets failed: " + first.stderr)
            return
        files = []
        for dirpath, _, names in os.walk(out_dir):
            files += [os.path.join(dirpath, n) for n in names]
        want = {f"keys/consortia-{i}.{k}_key.json" for i in range(4) for k in ("node", "p2p")} | {
            "genesis.json", "peers.json", "client_key.json", "consortia-keys.secret.yaml",
            "consortia-genesis.configmap.yaml", "consortia-api-keys.secret.yaml"}
        got = {os.path.relpath(f, out_dir) for f in files}
        if got != want:
            fail(f"k8s-secrets wrote {sorted(got)}, want {sorted(want)}")
        for f in files:
            mode = os.stat(f).st_mode & 0o777
            if mode != 0o600:
                fail(f"{f} has mode {oct(mode)}, want 0600")
        before = {f: open(f).read() for f in files}
        again = run(cmd)
        if again.returncode == 0 or "already exists" not in again.stderr:
            fail("k8s-secrets ran again over its own files: " + again.stderr)
        if {f: open(f).read() for f in files} != before:
            fail("k8s-secrets changed files on its second run")
        # A clash on one file only: nothing else is written either.
        other = os.path.join(tmp, "other")
        os.makedirs(other)
        open(os.path.join(other, "genesis.json"), "w").write("{}")
        clash = run([cli, "k8s-secrets", "--chain-id", "x", "--out", other])
        if clash.returncode == 0 or os.path.exists(os.path.join(other, "keys", "consortia-0.node_key.json")):
            fail("k8s-secrets wrote keys though genesis.json existed")
        manifests = [os.path.join(out_dir, m) for m in sorted(want) if m.endswith(".yaml")]
        v = run(["node", os.path.join(TOOLS, "validate-manifests.mjs"), *manifests])
        print(v.stdout)
        if v.returncode != 0:
            fail("k8s-secrets manifests are not valid: " + v.stdout)
        docs = to_docs("\n---\n".join(open(m).read() for m in manifests))
        by_name = {d["metadata"]["name"]: d for d in docs}
        # The names and keys the chart reads (values.yaml defaults).
        chart = to_docs(helm_template("--set", "api.keys.existingSecret=consortia-api-keys").stdout)
        sts = find(chart, "StatefulSet")[0]["spec"]["template"]["spec"]
        vols = {v["name"]: v for v in sts["volumes"]}
        secret = by_name.get(vols["keys"]["secret"]["secretName"])
        cm = by_name.get(vols["genesis"]["configMap"]["name"])
        api = by_name.get(vols["api-keys"]["secret"]["secretName"])
        if not secret or not cm or not api:
            fail(f"the chart's volumes name {list(vols)}; k8s-secrets made {sorted(by_name)}")
            return
        for i in range(4):
            for k in ("node", "p2p"):
                if f"consortia-{i}.{k}_key.json" not in secret["stringData"]:
                    fail(f"Secret lacks consortia-{i}.{k}_key.json")
        for arg in sum((c["args"] for c in sts["containers"]), []):
            m = re.match(r"--\w+=/etc/consortia/(keys|genesis)/(.*)", arg)
            if m:
                name = m.group(2).replace("$(CONSORTIA_NODE_NAME)", "consortia-0")
                src = secret["stringData"] if m.group(1) == "keys" else cm["data"]
                if name not in src:
                    fail(f"the chart reads {arg} but k8s-secrets made no {name}")
        if json.loads(secret["stringData"]["consortia-0.node_key.json"]) != \
                json.loads(open(os.path.join(out_dir, "keys", "consortia-0.node_key.json")).read()):
            fail("the Secret's key is not the key file")
        peers = json.loads(cm["data"]["peers.json"])
        if peers[1]["endpoint"] != "tcp://consortia-1.consortia-peers:26604":
            fail(f"peer endpoint {peers[1]['endpoint']}")
        if "api_keys.json" not in api["stringData"]:
            fail("api keys Secret lacks api_keys.json")
        help_out = run([cli, "k8s-secrets", "--help"])
        if "k8s-secrets --chain-id ID --out DIR" not in help_out.stdout:
            fail("consortia k8s-secrets --help does not describe it")


CHECKS = {
    "lint": check_lint, "defaults": check_defaults, "all-on": check_all_on,
    "bad-values": check_bad_values, "schema-catch": check_schema_catch,
    "invocations": check_invocations, "k8s-secrets": check_k8s_secrets,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("check", choices=sorted(CHECKS))
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"))
    a = ap.parse_args()
    if not os.access(HELM, os.X_OK):
        print(f"{HELM} is missing: run scripts/install-deps.sh")
        return 1
    CHECKS[a.check](os.path.abspath(a.bin_dir))
    print(f"{a.check}: {len(failures)} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
