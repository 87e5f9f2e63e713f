"""Shared helpers of the deployment checks (scripts/check-deploy.sh)."""

from __future__ import annotations

import functools
import json
import os
import pathlib
import re
import shutil
import subprocess
from typing import Any, Iterator

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

# What scripts/check-deploy.sh renders: name -> kustomization directory.
TARGETS = {
    "phase5": "deploy/k8s/overlays/phase5",
    "phase6": "deploy/k8s/overlays/phase6",
    "postgres": "deploy/k8s/overlays/postgres",
    "monitoring-prometheus-operator": "deploy/monitoring/prometheus-operator",
    "monitoring-azure-managed": "deploy/monitoring/azure-managed",
}
OVERLAYS = ("phase5", "phase6", "postgres")

# The Kubernetes version the manifests are written for (the preStop sleep
# action needs 1.30).
K8S_VERSION = os.environ.get("K8S_VERSION", "1.30")

# Custom resources: apiVersion/kind -> hand-written strict schema under
# deploy/schemas/crds/ (the published models run as well, see js/check.mjs).
CRD_SCHEMAS = {
    "keda.sh/v1alpha1/ScaledObject": "keda.sh_v1alpha1_ScaledObject.json",
    "keda.sh/v1alpha1/TriggerAuthentication": "keda.sh_v1alpha1_TriggerAuthentication.json",
    "monitoring.coreos.com/v1/ServiceMonitor": "monitoring.coreos.com_v1_ServiceMonitor.json",
    "azmonitoring.coreos.com/v1/ServiceMonitor": "monitoring.coreos.com_v1_ServiceMonitor.json",
    "monitoring.coreos.com/v1/PrometheusRule": "monitoring.coreos.com_v1_PrometheusRule.json",
    "secrets-store.csi.x-k8s.io/v1/SecretProviderClass": "secrets-store.csi.x-k8s.io_v1_SecretProviderClass.json",
}
# Custom resources that also have a published model (npm @kubernetes-models).
PUBLISHED_MODELS = {
    "keda.sh/v1alpha1/ScaledObject",
    "keda.sh/v1alpha1/TriggerAuthentication",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "azmonitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
}

# Metric names of the HTTP contract (shared/API.md) plus the worker's
# documented extras. Dashboards and alerts may query nothing else.
CONTRACT_METRICS = {
    "tasks_submitted_total",
    "tasks_completed_total",
    "task_run_duration_seconds",
    "task_queue_wait_seconds",
    "tasks_in_flight",
    "task_backend_queue_depth",
    "http_requests_total",
    "http_request_duration_seconds",
    "db_pool_connections",
    "worker_ready",
    "worker_replica_conflict",
    "task_backend_poison_depth",
    "tasks_recovered_total",
}
HISTOGRAMS = {"task_run_duration_seconds", "task_queue_wait_seconds", "http_request_duration_seconds"}
# Series Prometheus itself creates for alerting rules.
BUILTIN_SERIES = {"ALERTS", "ALERTS_FOR_STATE"}

BUILD_COMMAND = "cargo build --release --locked --bin resume-agent"


def allowed_metric(name: str) -> bool:
    if name in CONTRACT_METRICS:
        return True
    for base in HISTOGRAMS:
        if name in (f"{base}_bucket", f"{base}_sum", f"{base}_count"):
            return True
    return False


def kubectl() -> str:
    path = shutil.which("kubectl")
    if not path:
        raise RuntimeError("kubectl is not installed (it brings kustomize)")
    return path


@functools.lru_cache(maxsize=None)
def rendered_text(name: str) -> str:
    """The rendered YAML of a target: from RA_RENDER_DIR when the script has
    rendered already, else rendered now with `kubectl kustomize`."""
    render_dir = os.environ.get("RA_RENDER_DIR")
    if render_dir:
        path = pathlib.Path(render_dir) / f"{name}.yaml"
        if path.exists():
            return path.read_text()
    out = subprocess.run(
        [kubectl(), "kustomize", str(REPO / TARGETS[name])],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


@functools.lru_cache(maxsize=None)
def _rendered(name: str) -> tuple[dict, ...]:
    return tuple(d for d in yaml.safe_load_all(rendered_text(name)) if d)


def rendered(name: str) -> list[dict]:
    return [json.loads(json.dumps(d)) for d in _rendered(name)]


def ident(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def gvk(obj: dict) -> str:
    return f"{obj['apiVersion']}/{obj['kind']}"


def find(objs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs: list[dict], kind: str, name: str) -> dict:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected exactly one {kind}/{name}, found {len(found)}"
    return found[0]


def workloads(objs: list[dict]) -> Iterator[tuple[dict, dict]]:
    """(object, pod spec) of every Deployment, StatefulSet, DaemonSet and Job."""
    for o in objs:
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield o, o["spec"]["template"]["spec"]


def configmap_data(objs: list[dict], name: str) -> dict[str, str]:
    return dict(one(objs, "ConfigMap", name).get("data", {}))


def container_env(objs: list[dict], container: dict) -> dict[str, Any]:
    """The environment a container sees: envFrom ConfigMaps, then env (which
    wins). Secret references come back as ('secret', name, key)."""
    env: dict[str, Any] = {}
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            prefix = src.get("prefix", "")
            for k, v in configmap_data(objs, src["configMapRef"]["name"]).items():
                env[prefix + k] = v
        elif "secretRef" in src:
            env[f"<all keys of Secret {src['secretRef']['name']}>"] = ("secret", src["secretRef"]["name"], None)
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "valueFrom" in e:
            vf = e["valueFrom"]
            if "secretKeyRef" in vf:
                env[e["name"]] = ("secret", vf["secretKeyRef"]["name"], vf["secretKeyRef"]["key"])
            elif "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                env[e["name"]] = configmap_data(objs, ref["name"]).get(ref["key"])
            else:
                env[e["name"]] = ("field", json.dumps(vf, sort_keys=True), None)
        else:
            env[e["name"]] = ""
    return env


def labels_match(selector: dict, labels: dict) -> bool:
    """matchLabels and matchExpressions against a label set."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def node_modules() -> str:
    path = os.environ.get("RA_NODE_MODULES")
    if not path or not pathlib.Path(path).is_dir():
        raise RuntimeError(
            "RA_NODE_MODULES does not name the npm tools' node_modules: run scripts/check-deploy.sh"
        )
    return path


def node_check(objects: list[dict] | None = None, promql: list[str] | None = None) -> dict:
    """Runs deploy/tests/js/check.mjs (published CRD models, PromQL parser)."""
    request = json.dumps({"objects": objects or [], "promql": promql or []})
    out = subprocess.run(
        ["node", str(DEPLOY / "tests" / "js" / "check.mjs")],
        input=request,
        capture_output=True,
        text=True,
        env={**os.environ, "RA_NODE_MODULES": node_modules()},
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"check.mjs failed ({out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout)


PLACEHOLDER = re.compile(r"^(REPLACE_ME|REPLACE-ME|CHANGE_ME|<[^>]+>|)$")
