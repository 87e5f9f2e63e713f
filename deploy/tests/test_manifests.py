"""Rules every rendered overlay must follow (scripts/check-deploy.sh step 3).

Each test collects every violation before failing, so one run names them all.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import pytest

import deploylib as d

RECOMMENDED = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
)
COMPONENTS = {"shared", "migrate", "web", "worker", "monitoring"}
# The deployment guide's budget per container.
RESOURCES = {
    "web": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1000m", "memory": "512Mi"}},
    "worker": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2000m", "memory": "1Gi"}},
}
PROBES = {
    "web": {"startupProbe": "/api/health", "livenessProbe": "/api/health", "readinessProbe": "/api/ready"},
    "worker": {"startupProbe": "/health", "livenessProbe": "/health", "readinessProbe": "/ready"},
}
# Ceiling on connections all pools can open (README "Connection budget":
# the server needs max_connections >= this + 25 reserved).
APP_CONNECTION_BUDGET = 225

overlays = pytest.mark.parametrize("overlay", d.OVERLAYS)


def _fail(problems: list[str]) -> None:
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def _containers(pod: dict) -> list[dict]:
    return pod.get("initContainers", []) + pod.get("containers", [])


# --- the backends ---------------------------------------------------------------


def test_phase5_exactly_one_worker_recreated():
    objs = d.rendered("phase5")
    worker = d.one(objs, "Deployment", "worker")
    problems = []
    if worker["spec"].get("replicas") != 1:
        problems.append(f"worker replicas is {worker['spec'].get('replicas')!r}, must be exactly 1")
    strategy = worker["spec"].get("strategy", {})
    if strategy.get("type") != "Recreate" or "rollingUpdate" in strategy:
        problems.append(f"worker strategy is {strategy!r}, must be Recreate (two in-process workers never overlap)")
    for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        for o in d.find(objs, kind):
            if o["spec"]["scaleTargetRef"]["name"] == "worker":
                problems.append(f"{d.ident(o)} would scale the single in-process worker")
    env = d.container_env(objs, worker["spec"]["template"]["spec"]["containers"][0])
    if env.get("TASK_BACKEND") != "in-process":
        problems.append(f"worker TASK_BACKEND is {env.get('TASK_BACKEND')!r}, expected in-process")
    _fail(problems)


def test_phase6_autoscaling_on_the_apps_own_queue():
    objs = d.rendered("phase6")
    problems = []
    web = d.one(objs, "Deployment", "web")
    worker = d.one(objs, "Deployment", "worker")
    for dep in (web, worker):
        if "replicas" in dep["spec"]:
            problems.append(f"{d.ident(dep)} sets replicas: every apply would fight the autoscaler")
        env = d.container_env(objs, dep["spec"]["template"]["spec"]["containers"][0])
        if env.get("TASK_BACKEND") != "azure-queue":
            problems.append(f"{d.ident(dep)} TASK_BACKEND is {env.get('TASK_BACKEND')!r}, expected azure-queue")
    worker_env = d.container_env(objs, worker["spec"]["template"]["spec"]["containers"][0])
    web_env = d.container_env(objs, web["spec"]["template"]["spec"]["containers"][0])
    queue = worker_env.get("AZURE_STORAGE_QUEUE_NAME")
    if not queue or web_env.get("AZURE_STORAGE_QUEUE_NAME") != queue:
        problems.append(f"web and worker disagree on AZURE_STORAGE_QUEUE_NAME ({web_env.get('AZURE_STORAGE_QUEUE_NAME')!r} / {queue!r})")

    scaled = d.one(objs, "ScaledObject", "worker")
    spec = scaled["spec"]
    if spec["scaleTargetRef"].get("name") != "worker":
        problems.append(f"ScaledObject scales {spec['scaleTargetRef']!r}, not the worker Deployment")
    if not isinstance(spec.get("minReplicaCount"), int) or spec["minReplicaCount"] < 1:
        problems.append("ScaledObject minReplicaCount < 1: with no worker, no sweeper recovers leases")
    triggers = [t for t in spec["triggers"] if t["type"] == "azure-queue"]
    if len(triggers) != 1:
        problems.append(f"expected one azure-queue trigger, found {len(triggers)}")
    for t in triggers:
        meta = t["metadata"]
        if meta.get("queueName") != queue:
            problems.append(f"KEDA watches queue {meta.get('queueName')!r} but the app uses AZURE_STORAGE_QUEUE_NAME={queue!r}")
        if meta.get("accountName") != worker_env.get("AZURE_STORAGE_ACCOUNT_NAME"):
            problems.append(f"KEDA watches account {meta.get('accountName')!r} but the app uses "
                            f"{worker_env.get('AZURE_STORAGE_ACCOUNT_NAME')!r}")
        if "connection" in meta or "connectionFromEnv" in meta:
            problems.append("KEDA trigger uses a connection string; use workload identity")
        auth = t.get("authenticationRef", {}).get("name")
        tas = d.find(objs, "TriggerAuthentication", auth)
        if not tas:
            problems.append(f"trigger authenticationRef {auth!r} names no TriggerAuthentication")
        for ta in tas:
            if ta["spec"].get("podIdentity", {}).get("provider") != "azure-workload":
                problems.append(f"{d.ident(ta)} does not use podIdentity.provider azure-workload")

    hpa = d.one(objs, "HorizontalPodAutoscaler", "web")
    hs = hpa["spec"]
    if hs["scaleTargetRef"].get("name") != "web" or hs.get("minReplicas") != 2 or hs.get("maxReplicas") != 10:
        problems.append(f"web HPA must scale Deployment web between 2 and 10, got {hs['scaleTargetRef']}, "
                        f"{hs.get('minReplicas')}..{hs.get('maxReplicas')}")
    cpu = [m for m in hs.get("metrics", []) if m.get("resource", {}).get("name") == "cpu"]
    if not cpu or cpu[0]["resource"]["target"].get("averageUtilization") != 70:
        problems.append("web HPA must target 70% average CPU utilization")
    _fail(problems)


def test_postgres_autoscaling_on_the_tasks_table():
    """TASK_BACKEND=postgres: workers claim from the store; KEDA counts due
    tasks with the worker's own connection string; no web -> worker hop."""
    objs = d.rendered("postgres")
    problems = []
    web = d.one(objs, "Deployment", "web")
    worker = d.one(objs, "Deployment", "worker")
    for dep in (web, worker):
        if "replicas" in dep["spec"]:
            problems.append(f"{d.ident(dep)} sets replicas: every apply would fight the autoscaler")
        env = d.container_env(objs, dep["spec"]["template"]["spec"]["containers"][0])
        if env.get("TASK_BACKEND") != "postgres":
            problems.append(f"{d.ident(dep)} TASK_BACKEND is {env.get('TASK_BACKEND')!r}, expected postgres")
        if "WORKER_BASE_URL" in env:
            problems.append(f"{d.ident(dep)} sets WORKER_BASE_URL: the postgres backend has no web -> worker hop")
    strategy = worker["spec"].get("strategy", {})
    if strategy.get("type") == "Recreate":
        problems.append("worker strategy is Recreate: postgres workers may overlap (and must, for a flip with nothing lost)")
    worker_c = worker["spec"]["template"]["spec"]["containers"][0]
    worker_env = d.container_env(objs, worker_c)
    dsn = worker_env.get("POSTGRES_DSN")

    scaled = d.one(objs, "ScaledObject", "worker")
    spec = scaled["spec"]
    if spec["scaleTargetRef"].get("name") != "worker":
        problems.append(f"ScaledObject scales {spec['scaleTargetRef']!r}, not the worker Deployment")
    if not isinstance(spec.get("minReplicaCount"), int) or spec["minReplicaCount"] < 1:
        problems.append("ScaledObject minReplicaCount < 1: with no worker, no sweeper recovers leases")
    if not isinstance(spec.get("maxReplicaCount"), int) or spec["maxReplicaCount"] <= spec.get("minReplicaCount", 1):
        problems.append(f"ScaledObject maxReplicaCount {spec.get('maxReplicaCount')!r}: a postgres worker must be able to scale out")
    others = [t["type"] for t in spec["triggers"] if t["type"] != "postgresql"]
    if others:
        problems.append(f"unexpected triggers {others}: the postgres backend has no queue to watch")
    triggers = [t for t in spec["triggers"] if t["type"] == "postgresql"]
    if len(triggers) != 1:
        problems.append(f"expected one postgresql trigger, found {len(triggers)}")
    concurrency = int(worker_env.get("WORKER_CONCURRENCY", 32))
    for t in triggers:
        meta = t["metadata"]
        query = " ".join(meta.get("query", "").split())
        if not re.search(r"(?i)^select count\(\*\) from tasks where\b", query) or "'queued'" not in query:
            problems.append(f"KEDA query {query!r} does not count the queued tasks of table tasks")
        if "run_after <= now()" not in query:
            problems.append(f"KEDA query {query!r} counts tasks that are not due yet (run_after)")
        if meta.get("targetQueryValue") != str(2 * concurrency):
            problems.append(f"targetQueryValue {meta.get('targetQueryValue')!r}, expected 2 x WORKER_CONCURRENCY = {2 * concurrency}")
        if meta.get("activationTargetQueryValue") != "0":
            problems.append(f"activationTargetQueryValue {meta.get('activationTargetQueryValue')!r}, expected \"0\"")
        for k in ("connection", "connectionFromEnv", "password", "passwordFromEnv", "host", "userName"):
            if k in meta:
                problems.append(f"KEDA trigger metadata sets {k}: the connection comes from the TriggerAuthentication only")
        auth = t.get("authenticationRef", {}).get("name")
        tas = d.find(objs, "TriggerAuthentication", auth)
        if not tas:
            problems.append(f"trigger authenticationRef {auth!r} names no TriggerAuthentication")
        for ta in tas:
            refs = {r["parameter"]: (r["name"], r["key"]) for r in ta["spec"].get("secretTargetRef", [])}
            if "connection" not in refs:
                problems.append(f"{d.ident(ta)} provides no 'connection' parameter")
            elif not (isinstance(dsn, tuple) and refs["connection"] == (dsn[1], dsn[2])):
                problems.append(f"{d.ident(ta)} reads {refs['connection']}, but the worker's POSTGRES_DSN is {dsn!r}: "
                                "KEDA must count the database the workers use")

    hpa = d.one(objs, "HorizontalPodAutoscaler", "web")
    hs = hpa["spec"]
    if hs["scaleTargetRef"].get("name") != "web" or hs.get("minReplicas") != 2 or hs.get("maxReplicas") != 10:
        problems.append(f"web HPA must scale Deployment web between 2 and 10, got {hs['scaleTargetRef']}, "
                        f"{hs.get('minReplicas')}..{hs.get('maxReplicas')}")
    cpu = [m for m in hs.get("metrics", []) if m.get("resource", {}).get("name") == "cpu"]
    if not cpu or cpu[0]["resource"]["target"].get("averageUtilization") != 70:
        problems.append("web HPA must target 70% average CPU utilization")
    _fail(problems)


def test_selectors_are_the_same_in_every_overlay():
    """A Deployment's selector is immutable: a backend flip must not touch it."""
    rendered = {o: d.rendered(o) for o in d.OVERLAYS}
    first, objs0 = d.OVERLAYS[0], rendered[d.OVERLAYS[0]]
    problems = []
    for overlay in d.OVERLAYS[1:]:
        objs = rendered[overlay]
        for name in ("web", "worker"):
            s0 = d.one(objs0, "Deployment", name)["spec"]["selector"]
            s1 = d.one(objs, "Deployment", name)["spec"]["selector"]
            if s0 != s1:
                problems.append(f"Deployment/{name} selector differs between {first} and {overlay}: {s0} vs {s1}")
        for name in ("resume-agent-migrate",):
            t0 = d.one(objs0, "Job", name)["spec"]["template"]["metadata"]["labels"]
            t1 = d.one(objs, "Job", name)["spec"]["template"]["metadata"]["labels"]
            if t0 != t1:
                problems.append(f"Job/{name} pod labels differ between {first} and {overlay}")
    for overlay, objs in rendered.items():
        names = {d.ident(o) for o in d.find(objs, "ScaledObject")}
        if names - {"ScaledObject/worker"}:
            problems.append(f"{overlay}: ScaledObjects {sorted(names)}; the flip between overlays relies on one named worker")
    _fail(problems)


# --- pods ---------------------------------------------------------------------


@overlays
def test_no_container_runs_as_root(overlay):
    objs = d.rendered(overlay)
    problems = []
    for obj, pod in d.workloads(objs):
        psc = pod.get("securityContext", {})
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(flag):
                problems.append(f"{d.ident(obj)}: {flag}")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{d.ident(obj)}: automountServiceAccountToken must be false")
        for c in _containers(pod):
            sc = {**psc, **c.get("securityContext", {})}
            where = f"{d.ident(obj)} container {c['name']}"
            if sc.get("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if sc.get("runAsUser") in (None, 0):
                problems.append(f"{where}: runAsUser must be a numeric non-root uid (65532)")
            elif sc.get("runAsUser") != 65532:
                problems.append(f"{where}: runAsUser {sc.get('runAsUser')}, the image's user is 65532")
            if sc.get("runAsGroup") == 0:
                problems.append(f"{where}: runAsGroup 0")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation must be false")
            if sc.get("privileged"):
                problems.append(f"{where}: privileged")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem must be true")
            caps = sc.get("capabilities", {})
            if "ALL" not in caps.get("drop", []) or caps.get("add"):
                problems.append(f"{where}: capabilities must drop ALL and add none")
            if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile must be RuntimeDefault")
    _fail(problems)


@overlays
def test_every_container_has_limits_and_probes(overlay):
    objs = d.rendered(overlay)
    problems = []
    for obj, pod in d.workloads(objs):
        for c in _containers(pod):
            where = f"{d.ident(obj)} container {c['name']}"
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        problems.append(f"{where}: no {part}.{r}")
            if obj["kind"] == "Deployment":
                expected_res = RESOURCES.get(c["name"])
                if expected_res and res != expected_res:
                    problems.append(f"{where}: resources {res} differ from the guide's {expected_res}")
                ports = {p.get("name") for p in c.get("ports", [])} | {p.get("containerPort") for p in c.get("ports", [])}
                for probe, path in PROBES.get(c["name"], {}).items():
                    spec = c.get(probe)
                    if not spec:
                        problems.append(f"{where}: no {probe}")
                        continue
                    got = spec.get("httpGet", {})
                    if got.get("path") != path:
                        problems.append(f"{where}: {probe} asks {got.get('path')!r}, expected {path!r}")
                    if got.get("port") not in ports:
                        problems.append(f"{where}: {probe} port {got.get('port')!r} is not a container port")
                if c["name"] not in PROBES:
                    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                        if probe not in c:
                            problems.append(f"{where}: no {probe}")
    _fail(problems)


@overlays
def test_termination_grace_covers_prestop_and_drain(overlay):
    objs = d.rendered(overlay)
    problems = []
    for name, drain_var, default in (("worker", "SHUTDOWN_GRACE_SECS", 25), ("web", "REQUEST_TIMEOUT_SECS", 30)):
        dep = d.one(objs, "Deployment", name)
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = d.container_env(objs, container)
        drain = int(env.get(drain_var, default))
        pre = container.get("lifecycle", {}).get("preStop", {})
        pre_secs = pre.get("sleep", {}).get("seconds", 0)
        if "exec" in pre:
            problems.append(f"{d.ident(dep)}: preStop exec cannot run in the shell-less image; use sleep")
        grace = pod.get("terminationGracePeriodSeconds", 30)
        needed = pre_secs + drain + 5
        if grace < needed:
            problems.append(f"{d.ident(dep)}: terminationGracePeriodSeconds {grace} < preStop {pre_secs} + "
                            f"{drain_var} {drain} + 5 s margin = {needed}")
    _fail(problems)


@overlays
def test_every_deployment_has_a_pdb_that_allows_draining(overlay):
    objs = d.rendered(overlay)
    pdbs = d.find(objs, "PodDisruptionBudget")
    problems = []
    for dep in d.find(objs, "Deployment"):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        matching = [p for p in pdbs if d.labels_match(p["spec"]["selector"], labels)]
        if len(matching) != 1:
            problems.append(f"{d.ident(dep)}: {len(matching)} PodDisruptionBudgets select it, expected 1")
            continue
        spec = matching[0]["spec"]
        replicas = dep["spec"].get("replicas")
        if spec.get("maxUnavailable") in (0, "0", "0%"):
            problems.append(f"{d.ident(dep)}: PDB maxUnavailable 0 blocks every node drain")
        if replicas is not None and isinstance(spec.get("minAvailable"), int) and spec["minAvailable"] >= replicas:
            problems.append(f"{d.ident(dep)}: PDB minAvailable {spec['minAvailable']} >= replicas {replicas} blocks drains")
    _fail(problems)


@overlays
def test_workloads_select_their_own_pods(overlay):
    objs = d.rendered(overlay)
    problems = []
    pods = {d.ident(o): o["spec"]["template"]["metadata"]["labels"] for o, _ in d.workloads(objs)}
    for dep in d.find(objs, "Deployment"):
        if not d.labels_match(dep["spec"]["selector"], dep["spec"]["template"]["metadata"]["labels"]):
            problems.append(f"{d.ident(dep)}: selector does not match its pod template")
    for svc in d.find(objs, "Service"):
        sel = {"matchLabels": svc["spec"].get("selector", {})}
        targets = [w for w, labels in pods.items() if w.startswith("Deployment/") and d.labels_match(sel, labels)]
        if len(targets) != 1:
            problems.append(f"{d.ident(svc)} selects {targets}, expected exactly one Deployment")
            continue
        dep = d.one(objs, "Deployment", targets[0].split("/", 1)[1])
        names = {p.get("name") for c in dep["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            if port.get("targetPort") not in names:
                problems.append(f"{d.ident(svc)} port {port.get('name')}: targetPort {port.get('targetPort')!r} not a named container port")
    _fail(problems)


# --- configuration ------------------------------------------------------------

LOOPBACK = re.compile(r"(?i)\b(localhost|127\.\d+\.\d+\.\d+|\[?::1\]?)\b")


@overlays
def test_no_loopback_service_urls_and_worker_url_resolves(overlay):
    objs = d.rendered(overlay)
    services = {s["metadata"]["name"]: s for s in d.find(objs, "Service")}
    problems = []
    for obj, pod in d.workloads(objs):
        for c in _containers(pod):
            env = d.container_env(objs, c)
            for k, v in env.items():
                if isinstance(v, str) and LOOPBACK.search(v):
                    problems.append(f"{d.ident(obj)} {c['name']}: {k}={v!r} points at loopback")
                if isinstance(v, str) and "0.0.0.0" in v and not k.endswith("_ADDR"):
                    problems.append(f"{d.ident(obj)} {c['name']}: {k}={v!r} is not a listen address")
            if c["name"] == "web":
                url = env.get("WORKER_BASE_URL")
                if url is None and env.get("TASK_BACKEND") != "in-process":
                    continue  # only the in-process web calls the worker
                if not isinstance(url, str):
                    problems.append(f"{d.ident(obj)}: WORKER_BASE_URL unset (the binary would default to 127.0.0.1)")
                    continue
                parts = urlsplit(url)
                host = (parts.hostname or "").split(".")[0]
                svc = services.get(host)
                if not svc:
                    problems.append(f"WORKER_BASE_URL {url!r} names no Service of this overlay")
                elif parts.port not in {p["port"] for p in svc["spec"]["ports"]}:
                    problems.append(f"WORKER_BASE_URL {url!r}: Service {host} has no port {parts.port}")
                elif svc["spec"]["selector"].get("app.kubernetes.io/component") != "worker":
                    problems.append(f"WORKER_BASE_URL {url!r} does not lead to the worker")
    _fail(problems)


@overlays
def test_production_settings(overlay):
    objs = d.rendered(overlay)
    problems = []
    for dep in d.find(objs, "Deployment"):
        c = dep["spec"]["template"]["spec"]["containers"][0]
        env = d.container_env(objs, c)
        where = d.ident(dep)
        if "AZURE_STORAGE_CONNECTION_STRING" in env:
            problems.append(f"{where}: AZURE_STORAGE_CONNECTION_STRING is for the emulator only; production uses workload identity")
        if env.get("LOG_FORMAT") != "json":
            problems.append(f"{where}: LOG_FORMAT must be json")
        if c["name"] == "web":
            if env.get("AUTH_MODE") != "jwt":
                problems.append(f"{where}: AUTH_MODE must be jwt in production")
            for k in ("JWT_ISSUER", "JWT_AUDIENCE", "JWT_JWKS_URL"):
                if not env.get(k):
                    problems.append(f"{where}: {k} unset")
            db = env.get("DATABASE_URL")
        else:
            db = env.get("POSTGRES_DSN") or env.get("DATABASE_URL")
        if not (isinstance(db, tuple) and db[0] == "secret"):
            problems.append(f"{where}: the database URL must come from a Secret, got {db!r}")
        if not (isinstance(env.get("WORKER_API_TOKEN"), tuple) and env["WORKER_API_TOKEN"][0] == "secret"):
            problems.append(f"{where}: WORKER_API_TOKEN must come from a Secret")
        if env.get("DB_POOL_MAX_CONNECTIONS") != "10":
            problems.append(f"{where}: DB_POOL_MAX_CONNECTIONS is {env.get('DB_POOL_MAX_CONNECTIONS')!r}, the budget assumes 10")
        for k in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_CONTAINER_NAME", "AZURE_STORAGE_QUEUE_NAME"):
            if not env.get(k):
                problems.append(f"{where}: {k} unset")
    job = d.one(objs, "Job", "resume-agent-migrate")
    jc = job["spec"]["template"]["spec"]["containers"][0]
    if jc.get("args") != ["migrate"]:
        problems.append(f"migration Job runs {jc.get('args')!r}, expected ['migrate']")
    if job["spec"]["template"]["spec"].get("restartPolicy") != "Never":
        problems.append("migration Job restartPolicy should be Never (each retry a fresh pod with its own logs)")
    jenv = d.container_env(objs, jc)
    if not (isinstance(jenv.get("DATABASE_URL"), tuple) and jenv["DATABASE_URL"][0] == "secret"):
        problems.append("migration Job must read DATABASE_URL from the Secret")
    _fail(problems)


@overlays
def test_secret_references_are_synced_by_the_secret_provider(overlay):
    objs = d.rendered(overlay)
    problems = []
    synced: dict[str, set[str]] = {}
    for spc in d.find(objs, "SecretProviderClass"):
        for so in spc["spec"].get("secretObjects", []):
            synced.setdefault(so["secretName"], set()).update(x["key"] for x in so.get("data", []))
    for s in d.find(objs, "Secret"):
        problems.append(f"{d.ident(s)} is rendered: secrets must come from Key Vault, not from the repository")
    for obj, pod in d.workloads(objs):
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        for c in _containers(pod):
            for k, v in d.container_env(objs, c).items():
                if isinstance(v, tuple) and v[0] == "secret":
                    name, key = v[1], v[2]
                    if key not in synced.get(name, set()):
                        problems.append(f"{d.ident(obj)}: {k} reads {name}/{key}, which no SecretProviderClass syncs")
            mounted = {m["name"] for m in c.get("volumeMounts", [])}
            csi = [n for n, v in vols.items() if "csi" in v and n in mounted]
            if not csi:
                problems.append(f"{d.ident(obj)} {c['name']}: does not mount the Key Vault CSI volume (the Secret is only synced while a pod mounts it)")
    for ta in d.find(objs, "TriggerAuthentication"):
        for ref in ta["spec"].get("secretTargetRef", []):
            if ref["key"] not in synced.get(ref["name"], set()):
                problems.append(f"{d.ident(ta)}: {ref['parameter']} reads {ref['name']}/{ref['key']}, which no SecretProviderClass syncs")
    _fail(problems)


# Settings the binary no longer reads: a manifest that still sets one
# believes in behaviour that is gone.
REMOVED_SETTINGS = {
    "WORKER_QUEUE_CAPACITY": "there is no in-memory queue any more; workers claim from the store",
}


@overlays
def test_no_removed_settings(overlay):
    objs = d.rendered(overlay)
    problems = []
    for obj, pod in d.workloads(objs):
        for c in _containers(pod):
            for k in d.container_env(objs, c):
                if k in REMOVED_SETTINGS:
                    problems.append(f"{d.ident(obj)} {c['name']}: {k} is gone ({REMOVED_SETTINGS[k]})")
    _fail(problems)


@overlays
def test_workload_identity(overlay):
    objs = d.rendered(overlay)
    problems = []
    sa = d.one(objs, "ServiceAccount", "resume-agent")
    client_id = sa["metadata"].get("annotations", {}).get("azure.workload.identity/client-id", "")
    if not re.fullmatch(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", client_id):
        problems.append(f"ServiceAccount client-id annotation {client_id!r} is not a GUID")
    if sa.get("automountServiceAccountToken") is not False:
        problems.append("ServiceAccount should not automount its token")
    for obj, pod in d.workloads(objs):
        if pod.get("serviceAccountName") != "resume-agent":
            problems.append(f"{d.ident(obj)} runs as {pod.get('serviceAccountName')!r}")
    for dep in d.find(objs, "Deployment"):
        if dep["spec"]["template"]["metadata"]["labels"].get("azure.workload.identity/use") != "true":
            problems.append(f"{d.ident(dep)}: pod label azure.workload.identity/use must be \"true\" (Blob/Queue access)")
    for spc in d.find(objs, "SecretProviderClass"):
        params = spc["spec"]["parameters"]
        if params.get("clientID") != client_id or params.get("usePodIdentity") != "false":
            problems.append(f"{d.ident(spc)}: must use workload identity with the ServiceAccount's client id")
    _fail(problems)


@overlays
def test_no_value_left_for_replacement(overlay):
    text = d.rendered_text(overlay)
    left = sorted(set(re.findall(r"set-by-replacement|from-environment\.yaml", text)))
    assert not left, f"kustomize replacements did not fill: {left}"


# --- labels and apply order -----------------------------------------------------


@pytest.mark.parametrize("target", list(d.TARGETS))
def test_recommended_labels(target):
    objs = d.rendered(target)
    problems = []
    tags = set()
    for obj, pod in d.workloads(objs):
        for c in _containers(pod):
            image = c["image"]
            if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
                problems.append(f"{d.ident(obj)}: image {image!r} needs an explicit version tag")
            else:
                tags.add(image.rsplit(":", 1)[1])
            if image == "resume-agent":
                problems.append(f"{d.ident(obj)}: image not set by the overlay")
    if len(tags) > 1:
        problems.append(f"several image tags: {sorted(tags)}")
    for obj in objs:
        labels = obj["metadata"].get("labels", {})
        missing = [k for k in RECOMMENDED if k not in labels]
        if missing:
            problems.append(f"{d.ident(obj)}: missing {missing}")
            continue
        if labels["app.kubernetes.io/name"] != "resume-agent" or labels["app.kubernetes.io/part-of"] != "resume-agent":
            problems.append(f"{d.ident(obj)}: name/part-of must be resume-agent")
        if labels["app.kubernetes.io/component"] not in COMPONENTS:
            problems.append(f"{d.ident(obj)}: component {labels['app.kubernetes.io/component']!r} not in {sorted(COMPONENTS)}")
        if tags and labels["app.kubernetes.io/version"] not in tags:
            problems.append(f"{d.ident(obj)}: version label {labels['app.kubernetes.io/version']} != image tag {sorted(tags)}")
    for obj, pod in d.workloads(objs):
        labels = obj["spec"]["template"]["metadata"].get("labels", {})
        missing = [k for k in RECOMMENDED if k not in labels]
        if missing:
            problems.append(f"{d.ident(obj)} pod template: missing {missing}")
    _fail(problems)


@overlays
def test_stage_one_holds_everything_the_migration_needs(overlay):
    """README step 1 applies `-l 'app.kubernetes.io/component!=web,app.kubernetes.io/component!=worker'`
    and waits for the Job: everything the Job needs must be in that set."""
    objs = d.rendered(overlay)
    stage1 = [o for o in objs if o["metadata"]["labels"]["app.kubernetes.io/component"] not in ("web", "worker")]
    names = {d.ident(o) for o in stage1}
    job = d.one(objs, "Job", "resume-agent-migrate")
    pod = job["spec"]["template"]["spec"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    problems = []
    if "Job/resume-agent-migrate" not in names:
        problems.append("the migration Job is not in stage 1")
    if f"ServiceAccount/{pod['serviceAccountName']}" not in names:
        problems.append("its ServiceAccount is not in stage 1")
    for c in pod["containers"]:
        for src in c.get("envFrom", []):
            if "configMapRef" in src and f"ConfigMap/{src['configMapRef']['name']}" not in names:
                problems.append(f"ConfigMap {src['configMapRef']['name']} is not in stage 1")
    for v in pod.get("volumes", []):
        spc = v.get("csi", {}).get("volumeAttributes", {}).get("secretProviderClass")
        if spc and f"SecretProviderClass/{spc}" not in names:
            problems.append(f"SecretProviderClass {spc} is not in stage 1")
    egress_ports = set()
    for np in d.find(stage1, "NetworkPolicy"):
        if d.labels_match(np["spec"]["podSelector"], labels):
            for rule in np["spec"].get("egress", []):
                egress_ports |= {p.get("port") for p in rule.get("ports", [])}
    for port in (53, 5432):
        if port not in egress_ports:
            problems.append(f"no stage-1 NetworkPolicy lets the Job reach port {port}")
    _fail(problems)


# --- network ------------------------------------------------------------------


@overlays
def test_network_policies(overlay):
    objs = d.rendered(overlay)
    nps = d.find(objs, "NetworkPolicy")
    problems = []
    deny = [n for n in nps if n["spec"]["podSelector"] == {} and set(n["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not n["spec"].get("ingress") and not n["spec"].get("egress")]
    if not deny:
        problems.append("no default-deny (ingress and egress) policy for the namespace")
    pods = {d.ident(o): o["spec"]["template"]["metadata"]["labels"] for o, _ in d.workloads(objs)}
    worker_labels = pods["Deployment/worker"]
    web_labels = pods["Deployment/web"]
    for np in nps:
        if not d.labels_match(np["spec"]["podSelector"], worker_labels):
            continue
        for rule in np["spec"].get("ingress", []):
            peers = rule.get("from")
            if not peers:
                problems.append(f"{d.ident(np)} lets anything reach the worker")
                continue
            for peer in peers:
                if "ipBlock" in peer:
                    problems.append(f"{d.ident(np)}: ipBlock peer to the worker")
                elif "podSelector" in peer and "namespaceSelector" not in peer:
                    if not d.labels_match(peer["podSelector"], web_labels) or d.labels_match(peer["podSelector"], worker_labels):
                        problems.append(f"{d.ident(np)}: pods other than the web reach the worker")
                elif "namespaceSelector" in peer:
                    ns = peer["namespaceSelector"].get("matchLabels", {}).get("kubernetes.io/metadata.name")
                    if ns not in ("monitoring", "kube-system"):
                        problems.append(f"{d.ident(np)}: namespace peer {peer['namespaceSelector']} is not Prometheus'")
            if {p.get("port") for p in rule.get("ports", [])} != {8000}:
                problems.append(f"{d.ident(np)}: worker ingress opens ports other than 8000")
    for np in nps:
        for rule in np["spec"].get("egress", []):
            for peer in rule.get("to", []):
                if "ipBlock" in peer:
                    try:
                        ipaddress.ip_network(peer["ipBlock"]["cidr"])
                    except ValueError:
                        problems.append(f"{d.ident(np)}: bad CIDR {peer['ipBlock']['cidr']!r}")
    for name, labels in pods.items():
        ports = set()
        for np in nps:
            if d.labels_match(np["spec"]["podSelector"], labels):
                for rule in np["spec"].get("egress", []):
                    ports |= {p.get("port") for p in rule.get("ports", [])}
        needed = {53, 5432} | ({443} if not name.startswith("Job/") else set())
        if not needed <= ports:
            problems.append(f"{name}: egress lacks ports {sorted(needed - ports)}")
    _fail(problems)


# --- capacity -------------------------------------------------------------------


# TASK_BACKEND=postgres: each web and worker process also opens a small pool
# of its own for NOTIFY/LISTEN (crates/queue/src/postgres.rs, pool_for).
POSTGRES_WAKE_POOL = 2
# KEDA's PostgreSQL scaler: one database/sql pool per trigger, queried once
# per pollingInterval (one connection in use, up to 2 kept idle).
KEDA_POSTGRESQL_CONNECTIONS = 2


def test_connection_budget():
    """Every pool at its max, every replica at its max, plus migration Jobs
    and whatever else connects (LISTEN/NOTIFY pools, KEDA's scaler)."""
    problems = []
    worst = 0
    lines = []
    for overlay in d.OVERLAYS:
        objs = d.rendered(overlay)
        total = 0
        for dep in d.find(objs, "Deployment"):
            name = dep["metadata"]["name"]
            env = d.container_env(objs, dep["spec"]["template"]["spec"]["containers"][0])
            pool = int(env.get("DB_POOL_MAX_CONNECTIONS", 10))
            if env.get("TASK_BACKEND") == "postgres":
                pool += POSTGRES_WAKE_POOL
            maxrep = dep["spec"].get("replicas")
            for hpa in d.find(objs, "HorizontalPodAutoscaler"):
                if hpa["spec"]["scaleTargetRef"]["name"] == name:
                    maxrep = hpa["spec"]["maxReplicas"]
            for so in d.find(objs, "ScaledObject"):
                if so["spec"]["scaleTargetRef"]["name"] == name:
                    maxrep = so["spec"].get("maxReplicaCount", 100)
            if maxrep is None:
                problems.append(f"{overlay} {name}: no replica count and no autoscaler")
                continue
            # A rolling update briefly runs maxSurge extra pods.
            strategy = dep["spec"].get("strategy", {})
            surge_spec = strategy.get("rollingUpdate", {}).get("maxSurge", "25%")
            if strategy.get("type") == "Recreate":
                surge = 0
            elif isinstance(surge_spec, str) and surge_spec.endswith("%"):
                surge = -(-maxrep * int(surge_spec[:-1]) // 100)
            else:
                surge = int(surge_spec)
            total += (maxrep + surge) * pool
            lines.append(f"{overlay}: {name} ({maxrep}+{surge} surge) x {pool}")
        job = d.one(objs, "Job", "resume-agent-migrate")
        jenv = d.container_env(objs, job["spec"]["template"]["spec"]["containers"][0])
        total += 2 * int(jenv.get("DB_POOL_MAX_CONNECTIONS", 10))  # two Jobs at once
        keda = sum(KEDA_POSTGRESQL_CONNECTIONS for so in d.find(objs, "ScaledObject")
                   for t in so["spec"]["triggers"] if t["type"] == "postgresql")
        if keda:
            total += keda
            lines.append(f"{overlay}: KEDA postgresql scaler {keda}")
        worst = max(worst, total)
        lines.append(f"{overlay}: total {total}")
    print("\n".join(lines))
    if worst > APP_CONNECTION_BUDGET:
        problems.append(f"pools can open {worst} connections, more than the documented budget {APP_CONNECTION_BUDGET}")
    _fail(problems)
