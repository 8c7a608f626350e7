"""README's "Deploy with Docker" steps, run as literally as a machine without a Docker engine
allows: its own commands make the files, which are then checked the way Compose mounts them."""

from __future__ import annotations

import ctypes
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from runbot import ROOT, clean_env

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCKER = README.split("## Deploy with Docker", 1)[1].split("\n## ", 1)[0]
BLOCKS = re.findall(r"```sh\n(.*?)\n```", DOCKER, re.S)
FIRST_START, WITHOUT_COMPOSE = BLOCKS[0], BLOCKS[1]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SERVICE = COMPOSE["services"]["alertbot"]
IMAGE_UID = IMAGE_GID = 10001  # the Dockerfile's USER
SECRET = "secrets/telegram_bot_token"


def run_first_start(clone: Path, umask: int) -> None:
    """README's first-start commands up to the first `docker` one, in a fresh clone."""
    shutil.copy2(ROOT / "alertbot.example.yaml", clone)
    steps = []
    for line in FIRST_START.splitlines():
        if line.startswith("docker"):
            break
        steps.append(line)
    script = f"set -euo pipefail\numask {umask:03o}\n" + "\n".join(steps)
    subprocess.run(["bash", "-c", script], cwd=clone, check=True, timeout=30)


def readable_as_compose_mounts_it(path: Path, uid: int, gid: int) -> bool:
    """Compose bind-mounts a file secret with the host file's owner, group and mode (its uid,
    gid and mode options apply to Swarm only): this is the kernel's check for that inode."""
    st = path.stat()
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IRUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IROTH)


def read_as(uid: int, gid: int, path: Path) -> str:
    """Really read `path` as uid:gid through a copy with the same owner and mode (what the mount
    shows the container), in a folder anyone can open. Needs root, as Docker has."""
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        folder.chmod(0o755)
        mounted = folder / path.name
        shutil.copy2(path, mounted)
        st = path.stat()
        os.chown(mounted, st.st_uid, st.st_gid)
        result = subprocess.run(
            ["cat", str(mounted)],
            user=uid, group=gid, extra_groups=[], capture_output=True, text=True, check=False,
        )  # fmt: skip
        return result.stdout if result.returncode == 0 else f"ERROR {result.stderr}"
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("umask", [0o022, 0o077])  # a usual host, and a hardened one
def test_readme_secret_is_readable_by_the_image_user_and_private_on_the_host(
    tmp_path: Path, umask: int
) -> None:
    run_first_start(tmp_path, umask)
    assert COMPOSE["secrets"]["telegram_bot_token"]["file"] == f"./{SECRET}"
    secret = tmp_path / SECRET
    assert secret.read_text() == "TOKEN-FROM-BOTFATHER\n"
    assert (tmp_path / "alertbot.yaml").is_file()
    assert readable_as_compose_mounts_it(secret, IMAGE_UID, IMAGE_GID)
    # the folder keeps the token from the host's other users
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    if os.geteuid() == 0:
        assert read_as(IMAGE_UID, IMAGE_GID, secret) == "TOKEN-FROM-BOTFATHER\n"


def test_the_old_private_secret_file_is_what_the_check_refuses(tmp_path: Path) -> None:
    """The steps README gave before (a 0600 file) fail the same checks: they can fail."""
    secret = tmp_path / "telegram_bot_token"
    subprocess.run(["bash", "-c", f"(umask 077; printf '%s\\n' 'T' > {secret})"], check=True)
    assert not readable_as_compose_mounts_it(secret, IMAGE_UID, IMAGE_GID)
    if os.geteuid() == 0:
        assert read_as(IMAGE_UID, IMAGE_GID, secret).startswith("ERROR")


def _without_dac_override() -> None:
    """In the child: root keeps uid 0 but loses the right to read others' files (the bounding
    set drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH), like uid 10001 in the container."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_an_unreadable_token_file_stops_alertbot_with_the_fix(tmp_path: Path) -> None:
    secret = tmp_path / "telegram_bot_token"
    secret.write_text("123456:SECRET-TOKEN-VALUE\n")
    secret.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(secret, 4242, 4242)  # another user's private file, as the host's is in there
        owner, preexec = 4242, _without_dac_override
    else:
        secret.chmod(0o000)
        owner, preexec = os.geteuid(), None
    env = clean_env(TELEGRAM_BOT_TOKEN_FILE=str(secret))
    result = subprocess.run(
        [sys.executable, "-m", "bot", "health"],
        cwd=tmp_path, env=env, preexec_fn=preexec, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    message = result.stderr
    assert "SECRET-TOKEN-VALUE" not in message + result.stdout
    assert f"TELEGRAM_BOT_TOKEN_FILE: cannot read the token file {secret}: " in message
    assert f"permission denied: alertbot runs as uid {os.geteuid()} and it belongs to uid " \
        f"{owner} with mode 0{'600' if preexec else '000'}" in message  # fmt: skip
    assert "chmod 700 secrets && chmod 644 secrets/telegram_bot_token" in message


def test_missing_config_under_compose_stops_instead_of_running_the_example(
    tmp_path: Path,
) -> None:
    """No ./alertbot.yaml on the host: Docker mounts an empty folder at /app/alertbot.yaml."""
    app = _image_app(tmp_path)
    host, target = SERVICE["volumes"][0].split(":")[:2]
    assert host == "./alertbot.yaml" and target == SERVICE["environment"]["ALERTBOT_CONFIG"]
    (app / "alertbot.yaml").mkdir()  # what the bind mount of a missing file shows
    env = {"ALERTBOT_CONFIG": str(app / "alertbot.yaml")}
    for argv in (["run", "--once"], ["health"]):
        result = _alertbot(app, *argv, **env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout == ""  # no example alert printed
        (line,) = result.stderr.splitlines()  # one line, after the command's name
        assert line.endswith(
            f"{app / 'alertbot.yaml'}: is a folder, not a configuration file (named by "
            "ALERTBOT_CONFIG); Docker mounts an empty folder when the file to mount is missing "
            "on the host: remove the folder (rmdir) and copy alertbot.example.yaml to that name"
        )
    assert not (app / "state" / "alertbot.db").exists()


def test_missing_config_without_compose_stops_too(tmp_path: Path) -> None:
    """README's `docker run -v "$PWD/alertbot.yaml:/app/alertbot.yaml:ro"` with no file: the
    folder at ./alertbot.yaml in the working folder is refused even with ALERTBOT_CONFIG unset."""
    app = _image_app(tmp_path)
    (app / "alertbot.yaml").mkdir()
    result = _alertbot(app, "run", "--once")
    assert result.returncode == 1 and result.stdout == ""
    assert "is a folder, not a configuration file (named by ./alertbot.yaml)" in result.stderr


def test_without_compose_uses_only_files_the_first_start_made(tmp_path: Path) -> None:
    run_first_start(tmp_path, 0o022)
    words = shlex.split(WITHOUT_COMPOSE.replace("\\\n", " "), comments=True)
    assert "--env-file" not in words
    mounts = [words[n + 1] for n, w in enumerate(words) if w in ("-v", "--volume")]
    for host in [m.split(":")[0] for m in mounts if m.startswith("$PWD/")]:
        relative = host.removeprefix("$PWD/")
        assert (tmp_path / relative).exists() or (ROOT / relative).exists(), host
    # the same secret, config and hardening as compose.yaml
    env = dict(words[n + 1].split("=", 1) for n, w in enumerate(words) if w in ("-e", "--env"))
    assert env == SERVICE["environment"]
    assert f"$PWD/{SECRET}:{env['TELEGRAM_BOT_TOKEN_FILE']}:ro" in mounts
    for flag in ("--read-only", "--cap-drop", "--security-opt", "--tmpfs", "--log-opt"):
        assert flag in words


def _image_app(tmp_path: Path) -> Path:
    """/app as the image holds it: the shipped rules and example configuration, an empty state."""
    app = tmp_path / "app"
    shutil.copytree(ROOT / "rules", app / "rules")
    shutil.copy2(ROOT / "alertbot.example.yaml", app)
    (app / "state").mkdir()
    return app


def _alertbot(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
