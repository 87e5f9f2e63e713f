"""No secret value in deploy/ or in scripts/check-deploy.sh (step 3 of that
script): Secrets carry placeholders only, and nothing looks like a key,
password or connection string."""

from __future__ import annotations

import base64
import re

import yaml

import deploylib as d

THIS = __file__

# Patterns are assembled from pieces so that this file does not match itself.
SUSPICIOUS = [
    ("storage account key", re.compile("Account" + r"Key\s*=\s*[A-Za-z0-9+/=]{20,}")),
    ("SAS signature", re.compile(r"[?&]sig=[A-Za-z0-9%+/=]{20,}")),
    ("shared access key", re.compile("SharedAccess" + r"Key\s*=\s*[A-Za-z0-9+/=]{20,}")),
    ("private key", re.compile("-----BEGIN " + r"[A-Z ]*PRIVATE KEY-----")),
    ("password in a URL", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:(?!\$|REPLACE|PASSWORD|<)[^@\s/]{3,}@")),
    ("Azurite's well-known key", re.compile("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1" + "OUzFT50uSRZ6IFsuFq2UVErCz4I6tq")),
    ("JWT", re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
    ("GitHub token", re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}")),
    ("client secret", re.compile(r"(?i)client[_-]?secret\s*[:=]\s*['\"]?[A-Za-z0-9~._-]{20,}")),
    ("password assignment", re.compile(r"(?i)\b(password|passwd|pwd)\s*[:=]\s*['\"]?(?!REPLACE_ME|\$|<|['\"]?$)[^\s'\"]{6,}")),
]
TEXT_SUFFIXES = {".yaml", ".yml", ".json", ".md", ".env", ".py", ".mjs", ".sh", ".txt", ".ini", ""}
SKIP_DIRS = {"node_modules", "__pycache__"}


def _files():
    for path in sorted(d.DEPLOY.rglob("*")):
        if not path.is_file() or SKIP_DIRS & set(path.parts) or path.name == "package-lock.json":
            continue
        if path.suffix in TEXT_SUFFIXES or path.name.endswith(".dockerignore") or path.name == "Dockerfile":
            yield path
    yield d.REPO / "scripts" / "check-deploy.sh"


def test_nothing_looks_like_a_secret():
    problems = []
    count = 0
    for path in _files():
        if str(path) == THIS:
            continue
        count += 1
        text = path.read_text(errors="replace")
        for what, pattern in SUSPICIOUS:
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"{path.relative_to(d.REPO)}:{line}: looks like a {what}")
    print(f"scanned {count} files: deploy/ and scripts/check-deploy.sh")
    assert not problems, "\n".join(problems)


def test_secret_manifests_hold_placeholders_only():
    problems = []
    for path in _files():
        if path.suffix not in (".yaml", ".yml"):
            continue
        try:
            docs = [x for x in yaml.safe_load_all(path.read_text()) if isinstance(x, dict)]
        except yaml.YAMLError:
            continue
        for doc in docs:
            if doc.get("kind") != "Secret":
                continue
            for field in ("stringData", "data"):
                for k, v in (doc.get(field) or {}).items():
                    value = str(v)
                    if field == "data":
                        try:
                            value = base64.b64decode(value).decode()
                        except Exception:
                            problems.append(f"{path.relative_to(d.REPO)}: {k} is not base64")
                            continue
                    if not d.PLACEHOLDER.match(value):
                        problems.append(f"{path.relative_to(d.REPO)}: Secret key {k} holds a value, not REPLACE_ME")
    assert not problems, "\n".join(problems)


def test_example_secret_is_not_deployed():
    for overlay in d.OVERLAYS:
        assert not d.find(d.rendered(overlay), "Secret"), f"{overlay} renders a Secret"
    for kust in d.DEPLOY.rglob("kustomization.yaml"):
        assert "secret.example.yaml" not in "\n".join(
            line for line in kust.read_text().splitlines() if not line.strip().startswith("#")
        ), f"{kust.relative_to(d.REPO)} lists secret.example.yaml"
