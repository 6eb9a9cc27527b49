# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 pull survives a kill: the module's process on the QC host is killed (SIGKILL) during a
pull of larger models; no partial file remains under a final name, and the rerun removes the temp
files, fetches only what remains and converges (a third run changes nothing)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

import boto3
import pytest

from tests import testbed
from tests.conftest import REPO, run

pytestmark = pytest.mark.testbed

SYNC = "playbooks/sync_s3.yml"
BIG = {f"big/model_{index:02d}.pt": os.urandom(16 * 1024 * 1024) for index in range(8)}


def host_sh(state: dict, command: str, check: bool = True) -> str:
    return run(testbed.ssh_argv(state, "sandbox-qc") + [command], check=check).stdout


def playbook_args(sandbox: dict) -> list[str]:
    # One worker makes the pull long enough to be caught in the middle.
    return ["ansible-playbook", "-i", str(sandbox["inventory"]), SYNC, "--limit", "qc", "--tags", "models",
            "-e", '{"crpbot_s3_workers": 1}']


@pytest.fixture(scope="module")
def killed(sandbox):
    state = sandbox["state"]
    # The checkout, .venv (boto3) and ~/.aws on both hosts, and a few files on the builder.
    proc = run(["ansible-playbook", "-i", str(sandbox["inventory"]), "molecule/crpbot_s3/prepare.yml"],
               env=sandbox["env"])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    client = boto3.client("s3", endpoint_url=state["moto"]["endpoint"], region_name=testbed.REGION,
                          aws_access_key_id="testbed", aws_secret_access_key="testbed")  # noqa: S106
    for rel, data in BIG.items():
        client.put_object(Bucket=testbed.BUCKET, Key=f"models/{rel}", Body=data)

    env = {**os.environ, **sandbox["env"]}
    project = "/home/numan/crpbot"
    # A watcher on the host itself kills the module (the only process running the project's
    # venv python) within ~20 ms of the first finished file: polling over ssh from here was too
    # slow to catch a pull on an idle machine.
    watcher = subprocess.Popen(  # noqa: S603
        testbed.ssh_argv(state, "sandbox-qc") + [
            f"for i in $(seq 1 6000); do "
            f"if ls {project}/models/big 2>/dev/null | grep -q '^model_'; then "
            f"pgrep -u numan -f '^{project}/.venv/bin/python' | tee /dev/stderr | xargs -r kill -9; exit 0; fi; "
            f"sleep 0.02; done; exit 1"
        ],
        text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    proc = subprocess.Popen(playbook_args(sandbox), cwd=REPO, env=env, text=True,  # noqa: S603
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _, watched = watcher.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        watcher.kill()
        watched = ""
    killed_pids = watched.split()
    output = proc.communicate(timeout=300)[0]
    return {"sandbox": sandbox, "state": state, "killed": killed_pids, "first": output, "project": project}


def final_files(state: dict, project: str) -> dict[str, str]:
    out = host_sh(state, f"cd {project}/models && find big -type f ! -name '.crpbot-s3-*' -exec sha256sum {{}} +")
    return {line.split()[1]: line.split()[0] for line in out.splitlines()}


def test_kill_leaves_no_partial_file_and_rerun_converges(killed):
    state, project = killed["state"], killed["project"]
    assert killed["killed"], "the pull finished before it could be killed:\n" + killed["first"][-3000:]
    expected = {rel: hashlib.sha256(data).hexdigest() for rel, data in BIG.items()}
    after_kill = final_files(state, project)
    assert after_kill, "nothing was downloaded before the kill"
    assert len(after_kill) < len(BIG), "the pull had finished before the kill"
    for rel, digest in after_kill.items():
        assert digest == expected[rel], f"{rel} is partial or corrupt under its final name"

    sandbox = killed["sandbox"]
    second = run(playbook_args(sandbox), env=sandbox["env"])
    assert second.returncode == 0, (second.stdout + second.stderr)[-5000:]
    assert final_files(state, project) == expected
    assert host_sh(state, f"find {project}/models -name '.crpbot-s3-tmp-*'").strip() == ""
    third = run(playbook_args(sandbox), env=sandbox["env"])
    assert third.returncode == 0 and "changed=0" in third.stdout[third.stdout.index("PLAY RECAP"):]
