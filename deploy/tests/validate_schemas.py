#!/usr/bin/env python3
"""Validates every rendered object against a schema (scripts/check-deploy.sh
step 2) and prints one line per object and validator.

- Kubernetes built-in kinds: kubernetes-validate, strict mode (unknown fields
  are errors), for Kubernetes K8S_VERSION (default 1.30). Its schemas are the
  published OpenAPI definitions of Kubernetes, converted to JSON Schema.
- Custom resources (KEDA, prometheus-operator, Azure Managed Prometheus,
  Secrets Store CSI driver): the hand-written strict schemas of
  deploy/schemas/crds/ (unknown fields, types, required fields), and, where
  one is published, the npm @kubernetes-models model generated from the
  project's Go API types (types, enums, required fields, patterns).

An object no validator knows is an error, not a skip.
"""

from __future__ import annotations

import json
import sys

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

import deploylib as d


def _crd_validator(filename: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((d.DEPLOY / "schemas" / "crds" / filename).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def main() -> int:
    failures = 0
    checked = 0
    published: list[tuple[str, dict]] = []
    validators: dict[str, jsonschema.Draft202012Validator] = {}
    for target in d.TARGETS:
        for obj in d.rendered(target):
            checked += 1
            key = d.gvk(obj)
            where = f"{target:<31} {d.ident(obj):<52}"
            if key in d.CRD_SCHEMAS:
                filename = d.CRD_SCHEMAS[key]
                validator = validators.setdefault(filename, _crd_validator(filename))
                errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
                if errors:
                    failures += 1
                    for e in errors:
                        path = ".".join(str(p) for p in e.absolute_path) or "(root)"
                        print(f"FAIL {where} schemas/crds/{filename}: {path}: {e.message}")
                else:
                    print(f"ok   {where} schemas/crds/{filename} (hand-written, strict)")
                if key in d.PUBLISHED_MODELS:
                    published.append((where, obj))
                continue
            try:
                version = kubernetes_validate.validate(obj, d.K8S_VERSION, strict=True)
                print(f"ok   {where} kubernetes {version} schema (kubernetes-validate, strict)")
            except ValidationError as e:
                failures += 1
                path = ".".join(str(p) for p in e.path) or "(root)"
                print(f"FAIL {where} kubernetes {e.version} schema: {path}: {e.message}")
            except SchemaNotFoundError:
                failures += 1
                print(f"FAIL {where} no schema knows {key} (not built into Kubernetes {d.K8S_VERSION}, "
                      "and no CRD schema in deploy/schemas/crds)")
    if published:
        answer = d.node_check(objects=[o for _, o in published])
        for (where, _), result in zip(published, answer["objects"]):
            if result["ok"]:
                print(f"ok   {where} {result['validator']} (published model)")
            else:
                failures += 1
                for err in result["errors"]:
                    print(f"FAIL {where} {result['validator']}: {err}")
    print(f"schema validation: {checked} objects in {len(d.TARGETS)} renderings, "
          f"{len(published)} also against published CRD models, {failures} failing")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
