"""The image builds the binary CI tests (scripts/check-deploy.sh step 6).

No Docker engine runs here, so the Dockerfile is parsed with the official
BuildKit parser (PyPI `dockerfile`) and held to what matters: the one build
command is CI's, the runtime is a non-root distroless image holding the
binary alone, and the build context keeps everything cargo reads.
"""

from __future__ import annotations

import fnmatch
import re
import shlex

import dockerfile
import pytest

import deploylib as d

DOCKERFILE = d.DEPLOY / "docker" / "Dockerfile"
IGNORE = d.DEPLOY / "docker" / "Dockerfile.dockerignore"


def _stages() -> list[list]:
    stages: list[list] = []
    for cmd in dockerfile.parse_file(str(DOCKERFILE)):
        if cmd.cmd.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(cmd)
    return stages


def _run_commands() -> list[str]:
    out = []
    for stage in _stages():
        for cmd in stage:
            if cmd.cmd.upper() == "RUN":
                text = " ".join(cmd.value)
                out.extend(part.strip() for part in re.split(r"&&|;", text))
    return [" ".join(shlex.split(c)) for c in out if c]


def test_build_command_is_the_ci_command():
    builds = [c for c in _run_commands() if c.startswith("cargo build")]
    assert builds == [d.BUILD_COMMAND], (
        f"the Dockerfile must build with exactly `{d.BUILD_COMMAND}` (once); found {builds}"
    )
    print(f"image build command: {builds[0]}")


def test_dependency_layer_uses_the_same_profile_and_binary():
    cooks = [c for c in _run_commands() if c.startswith("cargo chef cook")]
    assert len(cooks) == 1, f"expected one `cargo chef cook`, found {cooks}"
    flags = set(shlex.split(cooks[0]))
    for flag in ("--release", "--locked", "--bin", "resume-agent"):
        assert flag in flags, f"`{cooks[0]}` lacks {flag}: the cached dependencies would not match the build"


def test_runtime_stage_is_minimal_and_non_root():
    stages = _stages()
    final = stages[-1]
    base = final[0].value[0]
    problems = []
    if not re.fullmatch(r"gcr\.io/distroless/cc-debian1[2-9]:nonroot(@sha256:[0-9a-f]{64})?", base):
        problems.append(f"runtime base {base!r} is not distroless cc :nonroot")
    users = [c.value[0] for c in final if c.cmd.upper() == "USER"]
    if not users or not re.fullmatch(r"65532(:65532)?", users[-1]):
        problems.append(f"runtime USER {users!r} must be the numeric 65532")
    if any(c.cmd.upper() == "RUN" for c in final):
        problems.append("the runtime stage RUNs a command: it has no shell")
    entry = [c for c in final if c.cmd.upper() == "ENTRYPOINT"]
    if not entry or not entry[-1].json or list(entry[-1].value) != ["/usr/local/bin/resume-agent"]:
        problems.append("ENTRYPOINT must be the exec form [\"/usr/local/bin/resume-agent\"]")
    copies = [c for c in final if c.cmd.upper() in ("COPY", "ADD")]
    for c in copies:
        if c.cmd.upper() == "ADD":
            problems.append("ADD in the runtime stage")
        if not any(f.startswith("--from=") for f in c.flags):
            problems.append(f"runtime stage copies from the build context: {c.original}")
        if any("migrations" in v for v in c.value):
            problems.append("migrations are embedded in the binary; nothing to copy")
    if len(copies) != 1 or not copies[0].value[0].endswith("/target/release/resume-agent"):
        problems.append(f"the runtime stage should copy the release binary only, copies {[c.original for c in copies]}")
    assert not problems, "\n".join(problems)


def test_binary_is_declared_and_locked():
    cargo = (d.REPO / "Cargo.toml").read_text()
    assert re.search(r'\[\[bin\]\]\s*\nname\s*=\s*"resume-agent"', cargo), "root Cargo.toml declares no [[bin]] resume-agent"
    assert (d.REPO / "Cargo.lock").exists(), "--locked needs the committed Cargo.lock"


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        pat = pat.lstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pat) or (pat.startswith("**/") and fnmatch.fnmatchcase(p.split("/")[-1], pat[3:]))
               for p in prefixes):
            ignored = not neg
    return ignored


def test_build_context_keeps_what_cargo_reads():
    patterns = [line.strip() for line in IGNORE.read_text().splitlines()
                if line.strip() and not line.strip().startswith("#")]
    needed = ["Cargo.toml", "Cargo.lock", "src/main.rs", "crates/core/Cargo.toml", "crates/core/src/lib.rs",
              "migrations/postgres/0001_tasks.sql", "benches/Cargo.toml", "README.md", "crates/web/README.md",
              "tests/api.rs"]
    dropped = [p for p in needed if _ignored(p, patterns)]
    assert not dropped, f"Dockerfile.dockerignore excludes what the build reads: {dropped}"
    for junk in ("target/release/resume-agent", ".git/HEAD", "crates/core/target/x", "deploy/README.md"):
        assert _ignored(junk, patterns), f"{junk} should not be sent to the builder"


def test_ci_uses_the_same_command():
    """If CI (.ci/run or the scripts it calls) builds the release binary, it
    must be with the image's command."""
    sources = [p for p in [d.REPO / ".ci" / "run", *sorted((d.REPO / "scripts").glob("*.sh"))]
               if p.exists() and p.name != "check-deploy.sh"]
    builds = []
    for path in sources:
        for line in path.read_text().splitlines():
            if re.search(r"^\s*[^#]*cargo\s+build\b.*--bin\s+resume-agent", line):
                builds.append((path.relative_to(d.REPO), " ".join(line.split())))
    if not builds:
        pytest.skip(f"no release build of resume-agent in {[str(p.relative_to(d.REPO)) for p in sources]}: "
                    f"nothing to compare; CI's command should be `{d.BUILD_COMMAND}`")
    for path, line in builds:
        assert d.BUILD_COMMAND in line, f"{path} builds with `{line}`, the image with `{d.BUILD_COMMAND}`"
