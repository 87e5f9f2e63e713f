"""Monitoring checks (scripts/check-deploy.sh steps 4 and 5): the
PrometheusRule is rules.yml, alerts and the dashboard query only the
contract's metrics, and the ServiceMonitors find the Services."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile

import pytest
import yaml

import deploylib as d

RULES = d.DEPLOY / "monitoring" / "rules.yml"
DASHBOARD = d.DEPLOY / "monitoring" / "grafana-dashboard.json"


def _rules() -> list[dict]:
    return yaml.safe_load(RULES.read_text())["groups"]


def test_prometheusrule_equals_rules_file():
    objs = d.rendered("monitoring-prometheus-operator")
    pr = d.one(objs, "PrometheusRule", "resume-agent")
    assert pr["spec"]["groups"] == _rules(), (
        "PrometheusRule resume-agent differs from deploy/monitoring/rules.yml: "
        "run python3 deploy/tests/gen_prometheusrule.py"
    )


def test_alerts_are_well_formed():
    problems = []
    names = set()
    for group in _rules():
        for rule in group["rules"]:
            name = rule.get("alert")
            if not name:
                continue
            if name in names:
                problems.append(f"duplicate alert {name}")
            names.add(name)
            if rule.get("labels", {}).get("severity") not in ("info", "warning", "critical"):
                problems.append(f"{name}: severity must be info, warning or critical")
            for key in ("summary", "description"):
                if not rule.get("annotations", {}).get(key):
                    problems.append(f"{name}: no {key} annotation")
    expected = {
        "ResumeAgentTasksStuckRunning", "ResumeAgentTaskFailureRatioHigh", "ResumeAgentQueueDepthGrowing",
        "ResumeAgentPoisonQueueNotEmpty", "ResumeAgentNoWorkerReady", "ResumeAgentWorkerNotReady",
        "ResumeAgentInProcessReplicaConflict",
    }
    if expected - names:
        problems.append(f"missing alerts: {sorted(expected - names)}")
    assert not problems, "\n".join(problems)


def _dashboard_queries(dash: dict) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and query variable."""
    out = []

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((f"panel {p['title']!r} {t.get('refId')}", t["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*", q or "")
        out.append((f"variable ${v['name']}", m.group(1) if m else q))
    return out


def _grafana_to_promql(expr: str) -> str:
    """Grafana's range macros replaced by a duration so that PromQL parsers
    accept the query. $variables may only appear inside label values, where
    they are plain text; anywhere else the parsers reject them."""
    return re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)


def _queries_under_test() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    queries = [(f"dashboard {w}", _grafana_to_promql(q)) for w, q in _dashboard_queries(dash)]
    for group in _rules():
        for rule in group["rules"]:
            queries.append((f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]))
    return queries


def test_every_query_parses_and_uses_only_contract_metrics():
    queries = _queries_under_test()
    answer = d.node_check(promql=[q for _, q in queries])
    problems = []
    used = set()
    for (where, _), result in zip(queries, answer["promql"]):
        for err in result["errors"]:
            problems.append(f"{where}: {err}")
        if not result["metrics"] and where.startswith("dashboard"):
            problems.append(f"{where}: queries no metric")
        for m in result["metrics"]:
            used.add(m)
            if not d.allowed_metric(m):
                problems.append(f"{where}: metric {m!r} is not in the contract")
    print(f"{len(queries)} queries, metrics used: {', '.join(sorted(used))}")
    assert not problems, "\n".join(problems)


def test_dashboard_queries_pass_promtool():
    """Prometheus' own parser (promtool) on every dashboard query."""
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.fail("promtool is not installed (Debian package prometheus)", pytrace=False)
    dash = json.loads(DASHBOARD.read_text())
    rules = [{"record": f"dashboard:query_{i}", "expr": _grafana_to_promql(q)}
             for i, (_, q) in enumerate(_dashboard_queries(dash))]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    out = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dashboard_is_importable():
    dash = json.loads(DASHBOARD.read_text())
    problems = []
    if not dash.get("uid") or not dash.get("title"):
        problems.append("uid and title are required")
    names = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    if "datasource" not in names:
        problems.append("no $datasource variable: the dashboard would be tied to one data source uid")
    cells: dict[tuple[int, int], str] = {}
    ids = set()
    for p in dash["panels"]:
        if p["id"] in ids:
            problems.append(f"duplicate panel id {p['id']}")
        ids.add(p["id"])
        g = p["gridPos"]
        if g["x"] + g["w"] > 24:
            problems.append(f"panel {p['title']!r} is wider than the grid")
        for y in range(g["y"], g["y"] + g["h"]):
            for x in range(g["x"], g["x"] + g["w"]):
                if (x, y) in cells:
                    problems.append(f"panel {p['title']!r} overlaps {cells[(x, y)]!r}")
                    break
                cells[(x, y)] = p["title"]
        if p["type"] != "row":
            ds = p.get("datasource", {})
            if ds.get("uid") != "${datasource}":
                problems.append(f"panel {p['title']!r} does not use $datasource")
    assert not problems, "\n".join(sorted(set(problems)))


def test_servicemonitors_match_services():
    op = d.rendered("monitoring-prometheus-operator")
    az = d.rendered("monitoring-azure-managed")
    problems = []
    op_sm = {o["metadata"]["name"]: o for o in d.find(op, "ServiceMonitor")}
    az_sm = {o["metadata"]["name"]: o for o in d.find(az, "ServiceMonitor")}
    if set(op_sm) != set(az_sm):
        problems.append(f"ServiceMonitor names differ: {sorted(op_sm)} vs {sorted(az_sm)}")
    for name in set(op_sm) & set(az_sm):
        if op_sm[name]["spec"] != az_sm[name]["spec"]:
            problems.append(f"ServiceMonitor {name}: specs differ between prometheus-operator and azure-managed")
        if az_sm[name]["apiVersion"] != "azmonitoring.coreos.com/v1":
            problems.append(f"azure-managed ServiceMonitor {name} must be azmonitoring.coreos.com/v1")
    for overlay in d.OVERLAYS:
        services = d.find(d.rendered(overlay), "Service")
        for name, sm in op_sm.items():
            selected = [s for s in services if d.labels_match(sm["spec"]["selector"], s["metadata"].get("labels", {}))]
            if len(selected) != 1:
                problems.append(f"{overlay}: ServiceMonitor {name} selects {[d.ident(s) for s in selected]}")
                continue
            ports = {p.get("name") for p in selected[0]["spec"]["ports"]}
            for ep in sm["spec"]["endpoints"]:
                if ep.get("port") not in ports or ep.get("path") != "/metrics":
                    problems.append(f"{overlay}: ServiceMonitor {name} scrapes {ep.get('port')}{ep.get('path')}, "
                                    f"Service ports are {sorted(ports)}")
        for svc in services:
            if not any(d.labels_match(sm["spec"]["selector"], svc["metadata"].get("labels", {})) for sm in op_sm.values()):
                problems.append(f"{overlay}: {d.ident(svc)} is not scraped")
    assert not problems, "\n".join(problems)
