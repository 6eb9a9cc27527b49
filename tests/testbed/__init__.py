# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The crpbot sandbox: real hosts and the services they talk to, on this one machine.

``python -m tests.testbed up [--qc N] [--builders M]`` brings up, all on 127.0.0.1 (one of each by
default; extra hosts are named sandbox-qc-2, ..., sandbox-builder-2, ...):

* a QC host: a podman container running sshd on its own loopback port, user ``numan``
  (non-root, no sudo), home ``/home/numan``;
* a builder host: the same image, reached as ``root`` on another port, home ``/root``;
* a PostgreSQL 15 server (the RDS stand-in) with the ``crpbot`` database and the
  ``crpbot_admin`` role;
* an S3/STS/IAM/CloudWatch Logs API server (moto) with the bucket ``crpbot-market-data-dev``;
* a git daemon serving a small crpbot-like fixture repository (``tests/fixtures/crpbot``).

Every port, key and temp dir it picks is written to one state file (``state.json`` in the
state dir, default ``<repo>/.testbed``), and the inventory for the sandbox is written beside
it as ``inventory/sandbox.crpbot.yml`` (a config of the project's own inventory plugin).
``down`` removes everything ``up`` started, also after a failed ``up``.

The base image is built from Debian packages with debootstrap and cached under a tag that
is a hash of its recipe, so a second ``up`` reuses it and takes seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FIXTURE_REPO = REPO / "tests" / "fixtures" / "crpbot"
CONTAINERS_CONF = HERE / "containers.conf"
SANDBOX_VARS = REPO / "tests" / "sandbox"
VAULT_PASSWORD_FILE = SANDBOX_VARS / "vault-password"

BUCKET = "crpbot-market-data-dev"
REGION = "us-east-1"
DB_NAME = "crpbot"
DB_USER = "crpbot_admin"
QC_USER = "numan"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# The image recipe. Anything that changes the image must change this text, so the
# cache tag (its hash) changes with it.
# cron: the crontab command, where crpbot_logs installs the shipper for the host user (no cron daemon runs
# in the sandbox: the tests run the shipper themselves).
IMAGE_PACKAGES = "python3,openssh-server,sudo,git,ca-certificates,cron"
IMAGE_SETUP = f"""
set -eu
useradd --create-home --shell /bin/bash {QC_USER}
usermod -p '*' {QC_USER}
usermod -p '*' root
mkdir -p /run/sshd
cat > /etc/ssh/sshd_config.d/testbed.conf <<'CONF'
AuthorizedKeysFile /etc/ssh/testbed_authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
CONF
rm -f /etc/ssh/ssh_host_*
apt-get clean
rm -rf /var/lib/apt/lists/*
"""
IMAGE_NAME = "localhost/crpbot-testbed"
# The Debian packages the test bed needs: the one list, which `make deps` installs.
DEBIAN_PACKAGES = Path(__file__).with_name("debian-packages.txt")
# The tools the test bed runs, and the package of the list each comes from.
REQUIRED_TOOLS = {
    "podman": "podman",
    "runc": "runc",
    "debootstrap": "debootstrap",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "git": "git",
}


class TestbedError(RuntimeError):
    """Something the test bed needs is missing or failed; the message says what to do."""


# --------------------------------------------------------------------------- helpers


def state_dir() -> Path:
    return Path(os.environ.get("CRPBOT_TESTBED_DIR", REPO / ".testbed")).resolve()


def state_file() -> Path:
    return state_dir() / "state.json"


def inventory_file() -> Path:
    return state_dir() / "inventory" / "sandbox.crpbot.yml"


def image_tag() -> str:
    digest = hashlib.sha256(f"bookworm\n{IMAGE_PACKAGES}\n{IMAGE_SETUP}".encode()).hexdigest()
    return f"{IMAGE_NAME}:{digest[:12]}"


def _podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("check", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("capture_output", True)
    try:
        return subprocess.run(cmd, **kwargs)  # noqa: S603 - fixed argv, no shell
    except subprocess.CalledProcessError as exc:
        raise TestbedError(
            f"command failed ({exc.returncode}): {' '.join(cmd)}\n{exc.stdout or ''}{exc.stderr or ''}"
        ) from exc


def _podman(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return _run(["podman", *args], env=_podman_env(), **kwargs)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe, timeout: float = 60.0, interval: float = 0.2) -> None:
    """Poll ``probe()`` until it returns true, or fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except Exception as exc:  # noqa: BLE001 - a probe may fail any way until ready
            last = exc
        time.sleep(interval)
    raise TestbedError(f"timed out after {timeout:.0f}s waiting for {what}" + (f": {last}" if last else ""))


def debian_packages(path: Path | None = None) -> list[str]:
    """The packages of ``tests/testbed/debian-packages.txt`` (one a line, ``#`` comments)."""
    lines = (path or DEBIAN_PACKAGES).read_text().splitlines()
    return [name for line in lines if (name := line.split("#", 1)[0].strip())]


def missing_debian_packages(packages: list[str]) -> list[str]:
    """Those of ``packages`` dpkg does not have installed (all of them without dpkg-query)."""
    if shutil.which("dpkg-query") is None:
        return list(packages)
    done = subprocess.run(  # noqa: S603 - a fixed command
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages],  # noqa: S607
        capture_output=True, text=True, check=False,
    )
    installed = {line.split()[0] for line in done.stdout.splitlines() if line.endswith(" installed")}
    return [pkg for pkg in packages if pkg not in installed]


def check_prerequisites() -> None:
    packages = debian_packages()
    missing = set(missing_debian_packages(packages))
    missing |= {pkg for tool, pkg in REQUIRED_TOOLS.items() if shutil.which(tool) is None}
    if not (PG_BIN / "initdb").exists():
        missing.add("postgresql-15")
    if missing:
        names = " ".join(pkg for pkg in packages if pkg in missing)
        raise TestbedError(
            f"the test bed needs these Debian packages: {names}"
            "\nfix: make deps  (installs tests/testbed/debian-packages.txt as root, through sudo when not root;"
            f" or as root: apt-get install -y {names})"
        )
    if os.geteuid() != 0:
        raise TestbedError("the test bed runs rootful podman and debootstrap: run it as root")


def load_state() -> dict[str, Any]:
    try:
        return json.loads(state_file().read_text())
    except FileNotFoundError:
        return {}


def save_state(state: dict[str, Any]) -> None:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise TestbedError(f"{name} not found: run the project's setup first (make setup)")
    return found


def read_vault(path: Path) -> str:
    """The decrypted text of a vault file encrypted with the sandbox's vault password."""
    from ansible.parsing.vault import VaultLib, VaultSecret  # the project's own dependency

    secret = VaultSecret(VAULT_PASSWORD_FILE.read_bytes().strip())
    return VaultLib([("default", secret)]).decrypt(path.read_bytes()).decode()


def sandbox_secrets() -> dict[str, Any]:
    """The sandbox vault's variables, decrypted (tests grep the output for every one of them)."""
    import yaml

    return yaml.safe_load(read_vault(SANDBOX_VARS / "group_vars" / "all" / "vault.yml"))


def db_login(state: dict[str, Any], password: str) -> bool:
    """Whether the test bed's database role logs in with this password (SELECT 1)."""
    import psycopg  # a dev dependency: only the tests call this

    try:
        with psycopg.connect(host="127.0.0.1", port=state["pg"]["port"], dbname=DB_NAME, user=DB_USER,
                             password=password, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def secret_values(data: Any) -> list[str]:
    """Every string leaf of the vault, and each line of the multi-line ones."""
    found: list[str] = []
    if isinstance(data, dict):
        for value in data.values():
            found += secret_values(value)
    elif isinstance(data, list):
        for value in data:
            found += secret_values(value)
    elif isinstance(data, str) and data:
        found.append(data)
        found += [line for line in data.splitlines() if len(line) >= 8 and "-----" not in line]
    return found


# --------------------------------------------------------------------------- image


def ensure_image(log=print) -> str:
    """Return the cached base image's tag, building it from Debian packages when missing."""
    tag = image_tag()
    if _podman("image", "exists", tag, check=False).returncode == 0:
        return tag
    log(f"building base image {tag} with debootstrap (about a minute) ...")
    root = Path(tempfile.mkdtemp(prefix="crpbot-testbed-rootfs-"))
    try:
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={IMAGE_PACKAGES}",
                "bookworm",
                str(root),
            ]
        )
        _run(["chroot", str(root), "/bin/sh", "-c", IMAGE_SETUP])
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)  # noqa: S603,S607
        try:
            _podman("import", "-", tag, stdin=tar.stdout)
        finally:
            tar.stdout.close()  # type: ignore[union-attr]
            tar.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return tag


# --------------------------------------------------------------------------- services


def _spawn(name: str, cmd: list[str], log_path: Path) -> int:
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=REPO,  # for `python -m tests.testbed...`
        )
    return proc.pid


def _pid_alive(pid: int, needle: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return needle in cmdline


def _kill(pid: int, needle: str) -> None:
    if not _pid_alive(pid, needle):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _pid_alive(pid, needle):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        if _pid_alive(pid, needle):
            os.killpg(pid, signal.SIGKILL)


def _tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def start_postgres(state: dict[str, Any], password: str) -> None:
    pgdir = Path(tempfile.mkdtemp(prefix="crpbot-testbed-pg-"))
    state["pg"] = {"dir": str(pgdir), "port": free_port()}
    save_state(state)
    shutil.chown(pgdir, "postgres", "postgres")
    data = pgdir / "data"

    def as_postgres(*cmd: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return _run(["runuser", "-u", "postgres", "--", *cmd], cwd=pgdir, **kwargs)

    as_postgres(
        str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
        "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8",
    )
    port = state["pg"]["port"]
    as_postgres(
        str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(pgdir / "server.log"), "-w", "-t", "60",
        "-o", f"-p {port} -k {pgdir} -c listen_addresses=127.0.0.1 -c fsync=off", "start",
    )
    state["pg"]["running"] = True
    save_state(state)
    psql(state, f"CREATE ROLE {DB_USER} LOGIN;\nCREATE DATABASE {DB_NAME} OWNER {DB_USER};\n")
    set_db_password(state, password)


def psql(state: dict[str, Any], sql: str) -> None:
    """Run SQL as the superuser of the test bed's PostgreSQL (on stdin: never on a command line)."""
    pgdir = state["pg"]["dir"]
    _run(["runuser", "-u", "postgres", "--", str(PG_BIN / "psql"), "-h", pgdir, "-p", str(state["pg"]["port"]),
          "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-f", "-"], cwd=pgdir, input=sql)


def set_db_password(state: dict[str, Any], password: str) -> None:
    """Give the app's database role a password (the RDS stand-in's ALTER ROLE)."""
    quoted = password.replace("'", "''")
    psql(state, f"ALTER ROLE {DB_USER} PASSWORD '{quoted}';\n")


def stop_postgres(pg: dict[str, Any]) -> None:
    pgdir = Path(pg["dir"])
    if pg.get("running") and (pgdir / "data").exists():
        _run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(pgdir / "data"),
             "-m", "immediate", "-w", "stop"],
            cwd=pgdir, check=False,
        )
    shutil.rmtree(pgdir, ignore_errors=True)


def iam_users(secrets: dict[str, Any]) -> list[dict[str, str]]:
    """One IAM user per AWS key of the vault: the shared key's and each per-role key's."""
    users = [{"name": "crpbot-builder", "access_key_id": secrets["vault_crpbot_aws_access_key_id"],
              "secret_access_key": secrets["vault_crpbot_aws_secret_access_key"]}]
    for role, key in sorted((secrets.get("vault_crpbot_aws_keys_by_role") or {}).items()):
        users.append({"name": f"crpbot-{role}", "access_key_id": key["access_key_id"],
                      "secret_access_key": key["secret_access_key"]})
    return users


def spawn_moto(log: Path, server: str = "waitress", seed: Path | None = None) -> tuple[int, str]:
    """Start the S3/STS/IAM server (tests/testbed/moto_server.py) detached on a free loopback port.

    Returns ``(pid, endpoint)`` once it answers; stops it again if it never does. The test bed and
    the S3 benchmark both start it this way.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "tests.testbed.moto_server", "--port", str(port), "--server", server]
    if seed is not None:
        cmd += ["--seed", str(seed)]  # the server deletes the seed file once read; argv holds no secret
    pid = _spawn("moto", cmd, log)
    endpoint = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2) as resp:  # noqa: S310 - loopback
            return resp.status == 200

    try:
        wait_for(f"the S3 API server on 127.0.0.1:{port} (log: {log})", ready)
    except TestbedError:
        stop_moto(pid)
        raise
    return pid, endpoint


def stop_moto(pid: int) -> None:
    _kill(pid, "moto_server")


def start_moto(state: dict[str, Any], secrets: dict[str, Any]) -> None:
    seed = state_dir() / "moto-seed.json"
    fd = os.open(seed, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"users": iam_users(secrets)}, handle)
    pid, endpoint = spawn_moto(state_dir() / "moto.log", seed=seed)
    state["moto"] = {"pid": pid, "endpoint": endpoint}
    save_state(state)
    import boto3  # the project's own dependency; imported late so `down` works without it

    s3 = boto3.client(
        "s3", endpoint_url=state["moto"]["endpoint"], region_name=REGION,
        aws_access_key_id="testbed", aws_secret_access_key="testbed",  # noqa: S106 - moto accepts any
    )
    s3.create_bucket(Bucket=BUCKET)


def build_fixture_repo(state: dict[str, Any]) -> None:
    gitroot = Path(tempfile.mkdtemp(prefix="crpbot-testbed-git-"))
    state["git"] = {"root": str(gitroot)}
    save_state(state)
    work = gitroot / "work"
    shutil.copytree(FIXTURE_REPO, work)
    ident = ["-c", "user.name=crpbot test bed", "-c", "user.email=testbed@crpbot.invalid"]
    _run(["git", "init", "-q", "-b", "main", str(work)])
    _run(["git", "-C", str(work), "add", "-A"])
    _run(["git", "-C", str(work), *ident, "commit", "-q", "-m", "crpbot fixture"])
    _run(["git", "clone", "-q", "--bare", str(work), str(gitroot / "crpbot.git")])
    port = free_port()
    pid = _spawn(
        "git-daemon",
        ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={gitroot}",
         "--listen=127.0.0.1", f"--port={port}", str(gitroot)],
        state_dir() / "git-daemon.log",
    )
    state["git"].update({"pid": pid, "port": port, "url": f"git://127.0.0.1:{port}/crpbot.git"})
    save_state(state)
    wait_for(f"git daemon on 127.0.0.1:{port}", lambda: _tcp_open(port))


# --------------------------------------------------------------------------- hosts

HOSTS = (
    {"name": "sandbox-qc", "user": QC_USER, "role": "qc"},
    {"name": "sandbox-builder", "user": "root", "role": "builder"},
)
# Every container of a state dir is named crpbot-testbed-<ident>-<host>: `down` finds them all by this
# prefix, also those of a crashed `up --qc 8` whose state file was lost.
CONTAINER_PREFIX = "crpbot-testbed-"


def fleet_hosts(qc: int = 1, builders: int = 1) -> list[dict[str, str]]:
    """The hosts of a test bed with ``qc`` QC hosts and ``builders`` builder hosts.

    The first of each keeps the names of the two-host test bed (sandbox-qc, sandbox-builder), so
    everything written for it still holds; the others are numbered from 2 (sandbox-qc-2, ...,
    sandbox-builder-2, ...). A QC host is reached as the non-root user, a builder as root, each in
    its own container (a builder's home is /root in each)."""
    if qc < 1 or builders < 1:
        raise TestbedError(f"a test bed needs at least one QC host and one builder (asked: --qc {qc} "
                           f"--builders {builders}). Fix: pass --qc 1 or more and --builders 1 or more")
    hosts = []
    for role, count, user in (("qc", qc, QC_USER), ("builder", builders, "root")):
        for index in range(1, count + 1):
            name = f"sandbox-{role}" + (f"-{index}" if index > 1 else "")
            hosts.append({"name": name, "user": user, "role": role})
    return hosts


def container_prefix() -> str:
    """The name prefix of every container of this state dir."""
    ident = hashlib.sha256(str(state_dir()).encode()).hexdigest()[:8]
    return f"{CONTAINER_PREFIX}{ident}-"


def container_name(host: str) -> str:
    return f"{container_prefix()}{host}"


def leftover_containers() -> list[str]:
    """Names of the containers (running or not) of this state dir that podman knows."""
    if not shutil.which("podman"):
        return []
    listed = _podman("ps", "-a", "--format", "{{.Names}}", "--filter", f"name=^{container_prefix()}", check=False)
    return [name for name in listed.stdout.split() if name.startswith(container_prefix())]


def make_keys(state: dict[str, Any]) -> None:
    sd = state_dir()
    for name in ("id_ed25519", "ssh_host_ed25519_key"):
        key = sd / name
        for path in (key, key.with_name(name + ".pub")):
            path.unlink(missing_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"crpbot-testbed-{name}", "-f", str(key)])
    shutil.copy(sd / "id_ed25519.pub", sd / "authorized_keys")
    os.chmod(sd / "authorized_keys", 0o644)
    state["ssh"] = {"private_key": str(sd / "id_ed25519"), "known_hosts": str(sd / "known_hosts")}


def start_host(state: dict[str, Any], image: str, host: dict[str, str]) -> None:
    sd = state_dir()
    port = free_port()
    name = container_name(host["name"])
    _podman("rm", "-f", "--ignore", name, check=False)
    state.setdefault("hosts", {})[host["name"]] = {**host, "port": port, "container": name}
    save_state(state)
    mounts = [
        f"{sd / 'authorized_keys'}:/etc/ssh/testbed_authorized_keys:ro",
        f"{sd / 'ssh_host_ed25519_key'}:/etc/ssh/testbed_host_key:ro",
        # The machine reaches PyPI through an intercepting proxy whose CA only the
        # machine's bundle has (see shared/MACHINE.md).
        f"{CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro",
    ]
    args = ["run", "-d", "--name", name, "--hostname", host["name"],
            "--add-host", f"{host['name']}:127.0.0.1",
            "--network", "host", "--ulimit", "host"]
    for mount in mounts:
        args += ["-v", mount]
    args += [image, "/usr/sbin/sshd", "-D", "-e", "-p", str(port), "-h", "/etc/ssh/testbed_host_key",
             "-o", "ListenAddress=127.0.0.1"]
    _podman(*args)


def ssh_argv(state: dict[str, Any], host: str) -> list[str]:
    h = state["hosts"][host]
    return [
        "ssh", "-i", state["ssh"]["private_key"], "-p", str(h["port"]),
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={state['ssh']['known_hosts']}", "-o", "ConnectTimeout=3",
        f"{h['user']}@127.0.0.1",
    ]


def write_known_hosts(state: dict[str, Any]) -> None:
    pub = (state_dir() / "ssh_host_ed25519_key.pub").read_text().split()
    lines = [f"[127.0.0.1]:{h['port']} {pub[0]} {pub[1]}\n" for h in state["hosts"].values()]
    Path(state["ssh"]["known_hosts"]).write_text("".join(lines))


# --------------------------------------------------------------------------- inventory


def _yaml_scalar(value: Any) -> str:
    return json.dumps(value)  # JSON scalars are valid YAML scalars


def render_inventory(state: dict[str, Any]) -> str:
    """The sandbox inventory: a config file of the project's own inventory plugin."""
    lines = [
        "---",
        "# Written by `python -m tests.testbed up`: the sandbox hosts on 127.0.0.1. Do not edit.",
        "plugin: crpbot",
        f"bucket: {BUCKET}",
        f"region: {REGION}",
    ]
    if not state.get("hosts"):
        lines += ["hosts: []", ""]
        return "\n".join(lines)
    ssh_args = (
        f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={state['ssh']['known_hosts']}"
    )
    lines += [
        "rds:",
        "  host: 127.0.0.1",
        f"  port: {state['pg']['port']}",
        f"  database: {DB_NAME}",
        f"  user: {DB_USER}",
        "vars:",
        f"  ansible_ssh_private_key_file: {_yaml_scalar(state['ssh']['private_key'])}",
        f"  ansible_ssh_common_args: {_yaml_scalar(ssh_args)}",
        "  ansible_python_interpreter: /usr/bin/python3",
        "  crpbot_testbed: true",
        f"  crpbot_testbed_state_dir: {_yaml_scalar(str(state_dir()))}",
        f"  crpbot_repo_url: {_yaml_scalar(state['git']['url'])}",
        f"  crpbot_s3_endpoint_url: {_yaml_scalar(state['moto']['endpoint'])}",
        "  # The same moto server answers CloudWatch Logs (the crpbot_logs shipper and playbooks/logs.yml).",
        f"  crpbot_logs_endpoint_url: {_yaml_scalar(state['moto']['endpoint'])}",
        "  # No cron daemon runs in the sandbox: the shipper runs only when a converge or a test runs it.",
        "  crpbot_preflight_logs_max_age: 0",
        "  # The sandbox's PostgreSQL has no TLS; real RDS keeps the default sslmode=require.",
        '  crpbot_env_db_sslmode: ""',
        "  # uv checks TLS with its own roots; the machine's proxy CA is only in the system store.",
        "  crpbot_uv_native_tls: true",
        "hosts:",
    ]
    for name, host in state["hosts"].items():
        lines += [
            f"  - name: {name}",
            "    address: 127.0.0.1",
            f"    port: {host['port']}",
            f"    user: {host['user']}",
            f"    role: {host['role']}",
        ]
    lines.append("")
    return "\n".join(lines)


def write_inventory(state: dict[str, Any]) -> Path:
    path = inventory_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render_inventory(state))
    os.replace(tmp, path)
    return path


def assert_loopback_only(hosts: dict[str, Any]) -> None:
    """Fail when any connection target is outside 127.0.0.0/8 (see shared/MACHINE.md)."""
    for name, hostvars in hosts.items():
        if hostvars.get("ansible_connection", "ssh") == "local":
            continue
        target = hostvars.get("ansible_host", name)
        try:
            loopback = ipaddress.ip_address(target) in ipaddress.ip_network("127.0.0.0/8")
        except ValueError:
            loopback = False
        if not loopback:
            raise TestbedError(
                f"host {name!r} would connect to {target!r}, outside 127.0.0.0/8: tests, the demo and "
                "the benchmarks may only reach the sandbox hosts; pass the sandbox inventory (-i "
                f"{inventory_file()}) explicitly"
            )


# --------------------------------------------------------------------------- up / down


def init() -> Path:
    """Make sure the sandbox inventory exists (empty when the test bed is down).

    Every ansible command of the tests names the sandbox inventory with ``-i``; ansible.cfg
    fails on an inventory source it cannot parse, so a fresh clone needs this file before the
    first ``up``. A test bed that is up keeps its inventory.
    """
    path = inventory_file()
    if not path.exists():
        write_inventory({})
    return path


def up(log=print, qc: int = 1, builders: int = 1) -> dict[str, Any]:
    """Bring up the whole test bed with ``qc`` QC hosts and ``builders`` builder hosts (see
    fleet_hosts); on failure, tear down whatever was started and re-raise."""
    hosts = fleet_hosts(qc, builders)
    check_prerequisites()
    down(quiet=True)
    sd = state_dir()
    sd.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"state_dir": str(sd), "started": time.time()}
    save_state(state)
    try:
        image = ensure_image(log)
        state["image"] = image
        secrets = sandbox_secrets()
        db_password = secrets["vault_crpbot_db_password"]
        make_keys(state)
        for host in hosts:
            start_host(state, image, host)
        start_postgres(state, db_password)
        start_moto(state, secrets)
        build_fixture_repo(state)
        write_known_hosts(state)
        for host in state["hosts"]:
            argv = ssh_argv(state, host) + ["true"]
            wait_for(
                f"sshd of host {host} on 127.0.0.1:{state['hosts'][host]['port']}",
                lambda argv=argv: subprocess.run(argv, capture_output=True, check=False).returncode == 0,  # noqa: S603
            )
        state["ready"] = True
        save_state(state)
        # The sandbox's group_vars (vault included) sit next to its inventory, as in inventory/.
        shutil.copytree(SANDBOX_VARS / "group_vars", inventory_file().parent / "group_vars", dirs_exist_ok=True)
        write_inventory(state)
    except BaseException:
        down(quiet=True)
        raise
    log(f"test bed up: inventory {inventory_file()}")
    return state


def down(quiet: bool = False) -> None:
    """Remove everything ``up`` started (also after a failed ``up``); safe to call twice."""
    state = load_state()
    for host in state.get("hosts", {}).values():
        _podman("rm", "-f", "-t", "0", "--ignore", host["container"], check=False)
    # Containers of this state dir left behind by a crashed run that lost its state file (any host
    # count: found by their name prefix).
    for name in leftover_containers():
        _podman("rm", "-f", "-t", "0", "--ignore", name, check=False)
    if "pg" in state:
        stop_postgres(state["pg"])
    if "moto" in state:
        stop_moto(state["moto"]["pid"])
    if "git" in state:
        if "pid" in state["git"]:
            _kill(state["git"]["pid"], "git")
        shutil.rmtree(state["git"]["root"], ignore_errors=True)
    sd = state_dir()
    shutil.rmtree(sd / "inventory" / "group_vars", ignore_errors=True)
    # The sandbox's model approvals (promotions.json, its lock, live.crpbot.yml's and the like) belong to
    # the hosts just removed: a new test bed starts with none.
    for stale in (sd / "inventory").glob("*promotions*.json*") if (sd / "inventory").exists() else []:
        stale.unlink(missing_ok=True)
    for stale in (sd / "inventory").glob(".*promotions*") if (sd / "inventory").exists() else []:
        stale.unlink(missing_ok=True)
    for name in ("known_hosts", "authorized_keys", "id_ed25519", "id_ed25519.pub",
                 "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"):
        (sd / name).unlink(missing_ok=True)
    if sd.exists():
        state_file().unlink(missing_ok=True)
        write_inventory({})
    if not quiet:
        print("test bed down")
