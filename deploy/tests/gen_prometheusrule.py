#!/usr/bin/env python3
"""Writes deploy/monitoring/prometheus-operator/prometheusrule.yaml from
deploy/monitoring/rules.yml (the source of truth), so that promtool checks
the very rules the PrometheusRule deploys.

    python3 deploy/tests/gen_prometheusrule.py          # rewrite the file
    python3 deploy/tests/gen_prometheusrule.py --check  # exit 1 if stale

scripts/check-deploy.sh runs the --check form (and test_monitoring.py
compares the parsed rules as well).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import yaml

DEPLOY = pathlib.Path(__file__).resolve().parent.parent
RULES = DEPLOY / "monitoring" / "rules.yml"
TARGET = DEPLOY / "monitoring" / "prometheus-operator" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/monitoring/rules.yml by deploy/tests/gen_prometheusrule.py.
# Do not edit: change rules.yml and run the generator again.
#
# kube-prometheus-stack only loads PrometheusRules matching its ruleSelector
# (by default the label release=<helm release name>): add that label in
# kustomization.yaml if your Prometheus needs it.
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    rules = yaml.safe_load(RULES.read_text())
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "resume-agent",
            "labels": {"app.kubernetes.io/component": "monitoring"},
        },
        "spec": {"groups": rules["groups"]},
    }
    return HEADER + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(
                f"{TARGET.relative_to(DEPLOY.parent)} is not generated from rules.yml: "
                "run python3 deploy/tests/gen_prometheusrule.py",
                file=sys.stderr,
            )
            return 1
        print(f"ok   {TARGET.relative_to(DEPLOY.parent)} is generated from rules.yml")
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(DEPLOY.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
