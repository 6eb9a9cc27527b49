# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory plugin for crpbot: marks every host QC (the safe default) or builder."""

from __future__ import annotations

DOCUMENTATION = r"""
name: crpbot
short_description: The crpbot hosts, each marked QC or builder, with the variables every role reads
description:
  - Reads a YAML file whose name ends in C(crpbot.yml) or C(crpbot.yaml) and builds the crpbot inventory
    from its O(hosts) list.
  - Every host lands in exactly one of the groups C(qc) and C(builder). Both groups always exist and are
    children of the group C(crpbot), which therefore holds every host.
  - A host is a builder only when its entry says O(hosts[].role=builder). Everything else is QC, which
    never trades (C(RUNTIME_MODE=dryrun)) and never deletes anything in S3.
  - A builder whose entry says O(hosts[].runtime_mode=live) is also put in the group C(live_approved), which
    always exists. These groups are the one authority on a host's role and on the live approval. No variable
    at any precedence (extra vars included) can change them, and the C(crpbot_policy) task every playbook
    starts with refuses a run whose variables contradict them.
  - "Each host gets the variables C(crpbot_role), C(crpbot_user), C(crpbot_home), C(crpbot_project_dir),
    C(crpbot_project_name), C(crpbot_runtime_mode), C(crpbot_db_backend), C(crpbot_bucket), C(crpbot_region),
    C(crpbot_rds_host), C(crpbot_rds_port), C(crpbot_rds_database), C(crpbot_rds_user), C(crpbot_promotions_file),
    C(crpbot_inventory_dir) (the absolute directory of this file: the C(crpbot_group_vars) vars plugin loads its
    C(group_vars/) and C(host_vars/) at run time even when the hosts arrive through an export of this
    inventory, such as an AWX inventory source), plus C(ansible_user),
    C(ansible_connection) and, for ssh hosts, C(ansible_host) and C(ansible_port)."
  - Then the top-level O(vars) and the host's own O(hosts[].vars) are applied, in that order. Neither may
    set a variable listed above; use the entry's own key instead (for example O(hosts[].role), not
    C(vars.crpbot_role)).
  - Then O(compose), O(groups) and O(keyed_groups) are applied, honouring O(strict). They may not
    overwrite a variable listed above nor put a host into C(crpbot), C(qc), C(builder) or C(live_approved);
    the role of a host and its live approval come from its entry alone.
  - The whole file is validated before any host is added. A mistake (an unknown key or role, C(live) on a
    QC host or for a user other than root, a builder without an RDS endpoint, a relative path, a wrong type, a duplicate host) fails the
    inventory with a message naming the file, the host, the key, what was found and how to fix it.
  - With O(ec2.regions) set, the running EC2 instances of those regions are added too (see O(ec2)). Each
    instance becomes an entry like one of O(hosts) (name, address, user, role, runtime mode, from its tags and the
    O(ec2) options) and goes through the very same checks; a mistake names the instance id, its region and the
    tag or option the value came from. Discovered and listed hosts may not share a name or an address and port.
  - With O(cache=true) the instances EC2 returned are kept in the inventory cache (O(cache_plugin), for example
    C(ansible.builtin.jsonfile) with O(cache_connection)), so the next run does not call EC2 until
    O(cache_timeout) passes or C(--flush-cache) is given. The checks run on every run, cached or not.
options:
  plugin:
    description: Marks this file as a source for this plugin.
    type: str
    required: true
    choices: [crpbot]
  project_name:
    description:
      - Name of the project directory under each host's home, used for the default O(hosts[].project_dir).
      - Must be a single directory name (no C(/)).
    type: str
    default: crpbot
  bucket:
    description: S3 bucket holding the models and market data; becomes C(crpbot_bucket) on every host.
    type: str
    default: crpbot-market-data-dev
  region:
    description: AWS region of the bucket and the RDS database; becomes C(crpbot_region) on every host.
    type: str
    default: us-east-1
  promotions_file:
    description:
      - The model approvals, a JSON file written only by C(playbooks/promote_model.yml) run against a QC host
        and committed to git; every converge places exactly the approved model versions.
      - Relative to the directory of this inventory file, or absolute; becomes C(crpbot_promotions_file)
        (absolute) on every host.
    type: str
    default: promotions.json
  rds:
    description:
      - The shared PostgreSQL database on RDS; becomes C(crpbot_rds_host), C(crpbot_rds_port),
        C(crpbot_rds_database) and C(crpbot_rds_user) on every host.
      - O(rds.host) is required as soon as one host is a builder or uses O(hosts[].db_backend=rds).
      - The password is a secret and does not belong here; keep it in a vault-encrypted C(group_vars) file.
    type: dict
    default: {}
    suboptions:
      host:
        description: DNS name of the RDS endpoint. Empty means "no RDS database".
        type: str
        default: ''
      port:
        description: TCP port of the RDS endpoint.
        type: int
        default: 5432
      database:
        description: Name of the database.
        type: str
        default: crpbot
      user:
        description: Database user name.
        type: str
        default: crpbot_admin
  vars:
    description:
      - Extra host variables applied to every host, for example C(ansible_ssh_private_key_file).
      - May not set a variable this plugin derives (the C(crpbot_*) variables, C(ansible_host), C(ansible_port),
        C(ansible_user), C(ansible_connection)).
    type: dict
    default: {}
  hosts:
    description: The hosts, one entry each. At least one entry is required.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The inventory host name. Must be unique in the file.
        type: str
        required: true
      address:
        description:
          - Address Ansible connects to; becomes C(ansible_host). Defaults to O(hosts[].name).
          - Ignored when O(hosts[].connection=local).
          - Two ssh hosts may not share the same address and port.
        type: str
      port:
        description: SSH port; becomes C(ansible_port). Ignored when O(hosts[].connection=local).
        type: int
        default: 22
      user:
        description: The account that owns the crpbot checkout; becomes C(ansible_user) and C(crpbot_user).
        type: str
        required: true
      connection:
        description: How Ansible reaches the host; becomes C(ansible_connection).
        type: str
        choices: [ssh, local]
        default: ssh
      role:
        description:
          - V(builder) trains models, uploads to S3, may run live after approval.
          - V(qc) reviews, downloads from S3, always runs dry. The default, because it is the safe one.
        type: str
        choices: [qc, builder]
        default: qc
      home:
        description:
          - Home directory of O(hosts[].user); becomes C(crpbot_home). Must be absolute.
          - Defaults to C(/root) for the user C(root) and C(/home/<user>) for anyone else.
        type: str
      project_dir:
        description:
          - Where the crpbot checkout lives; becomes C(crpbot_project_dir). Must be absolute.
          - Defaults to C(<home>/<project_name>).
        type: str
      runtime_mode:
        description:
          - The C(RUNTIME_MODE) this inventory approves; becomes C(crpbot_runtime_mode).
          - V(live) is allowed only on a builder host whose O(hosts[].user) is C(root) (the bot's own safeguard),
            puts the host in the group C(live_approved), and a playbook still asks for an explicit confirmation.
        type: str
        choices: [dryrun, live]
        default: dryrun
      db_backend:
        description:
          - Which database the bot uses; becomes C(crpbot_db_backend).
          - V(rds) is the shared PostgreSQL database and needs O(rds.host).
          - V(sqlite) is a local file for offline work, allowed only on a QC host.
        type: str
        choices: [rds, sqlite]
        default: rds
      vars:
        description:
          - Extra host variables for this host only; they override the top-level O(vars).
          - Same restriction as the top-level O(vars).
        type: dict
        default: {}
  ec2:
    description:
      - Discovery of hosts from EC2 (needs boto3). Off unless O(ec2.regions) lists at least one region.
      - Only instances in state C(running) are taken, in every listed region, narrowed by O(ec2.filters).
      - "The host name of an instance is its O(ec2.tags.name) tag (C(Name)), or its instance id when it has none;
        it must be a valid inventory name: letters, digits, C(.), C(_) and C(-)."
      - "Its role is its O(ec2.tags.role) tag: V(builder) or V(qc). A missing or unknown value makes it QC, the
        safe default (an unknown value is warned about)."
      - "Its user is its O(ec2.tags.user) tag, else O(ec2.default_user); one of them is required. Its runtime
        mode is its O(ec2.tags.runtime_mode) tag, else V(dryrun): V(live) only on a builder run as root, as for
        O(hosts)."
      - Its address is the first of O(ec2.hostnames) the instance has, unless its O(ec2.tags.address) tag names
        one of those kinds for this instance.
      - Each discovered host also gets the variables C(ec2_instance_id) and C(ec2_region).
      - Credentials come from boto3's usual chain (C(AWS_ACCESS_KEY_ID)/C(AWS_SECRET_ACCESS_KEY),
        C(AWS_PROFILE), C(~/.aws/credentials), an instance role) or the named O(ec2.profile). The identity needs
        the IAM permission C(ec2:DescribeInstances). An AWS error fails the inventory, naming the region and the
        fix; credentials are never shown.
    type: dict
    default: {}
    suboptions:
      enabled:
        description: Set to V(false) to switch discovery off without removing the O(ec2) settings.
        type: bool
        default: true
      regions:
        description: The AWS regions to look in, for example V(us-east-1). Empty means no discovery.
        type: list
        elements: str
        default: []
      profile:
        description: A named profile from C(~/.aws/config) / C(~/.aws/credentials). Empty means boto3's default chain.
        type: str
        default: ''
      endpoint_url:
        description:
          - The EC2 API endpoint, for an EC2-compatible server (a test server such as moto). Empty means AWS's own
            HTTPS endpoint of each region; endpoints set by C(AWS_ENDPOINT_URL*) variables or the AWS config file
            are then ignored, so a plain C(http://) endpoint is used only when written here.
        type: str
        default: ''
      filters:
        description:
          - "Extra EC2 filters, each a filter name and a value or a list of values, for example
            C(tag:Project: crpbot) or C(vpc-id). See the C(DescribeInstances) API for the names."
          - C(instance-state-name) cannot be set; only running instances are taken.
        type: dict
        default: {}
      tags:
        description: The names of the tags read on each instance.
        type: dict
        default: {}
        suboptions:
          role:
            description: Tag holding V(qc) or V(builder).
            type: str
            default: crpbot:role
          user:
            description: Tag holding the account that owns the checkout. Empty to always use O(ec2.default_user).
            type: str
            default: crpbot:user
          runtime_mode:
            description: Tag holding V(dryrun) or V(live).
            type: str
            default: crpbot:runtime_mode
          name:
            description: Tag holding the inventory host name. Empty to name every instance by its id.
            type: str
            default: Name
          address:
            description: Tag naming which of O(ec2.hostnames) to use for this instance. Empty to ignore.
            type: str
            default: crpbot:address
      hostnames:
        description: Which address Ansible connects to, in order of preference; the first the instance has wins.
        type: list
        elements: str
        choices: [private-ip-address, public-ip-address, private-dns-name, dns-name]
        default: [private-ip-address, public-ip-address, private-dns-name, dns-name]
      default_user:
        description: The user of an instance without an O(ec2.tags.user) tag. Empty means the tag is required.
        type: str
        default: ''
      port:
        description: SSH port of every discovered host.
        type: int
        default: 22
extends_documentation_fragment:
  - constructed
  - inventory_cache
"""

EXAMPLES = r"""
---
# Minimal: this workstation only, as a QC host on the shared RDS database.
# inventory/crpbot.yml
plugin: crpbot
rds:
  host: crpbot-rds-postgres-db.cyjcoys82evx.us-east-1.rds.amazonaws.com
hosts:
  - name: local
    user: numan
    connection: local

---
# Offline QC with no RDS database at all: the QC host uses sqlite.
plugin: crpbot
hosts:
  - name: laptop
    user: numan
    connection: local
    db_backend: sqlite

---
# Full: a QC workstation and a builder server, shared settings, extra vars,
# and constructed groups.
plugin: crpbot
project_name: crpbot
bucket: crpbot-market-data-dev
region: us-east-1
rds:
  host: crpbot-rds-postgres-db.cyjcoys82evx.us-east-1.rds.amazonaws.com
  port: 5432
  database: crpbot
  user: crpbot_admin
vars:
  ansible_python_interpreter: /usr/bin/python3
hosts:
  - name: local
    user: numan
    connection: local
    role: qc                      # the default; written out for the reader
  - name: cloud
    address: 178.156.136.185
    port: 22
    user: root
    role: builder                 # a host is a builder ONLY when it says so
    runtime_mode: dryrun          # 'live' = this inventory approves live trading
    project_dir: /root/crpbot
    vars:
      ansible_ssh_private_key_file: ~/.ssh/id_ed25519
strict: true
compose:
  crpbot_env_file: crpbot_project_dir ~ '/.env'
groups:
  remote: ansible_connection == 'ssh'
keyed_groups:
  # mode_dryrun, mode_live
  - key: crpbot_runtime_mode
    prefix: mode
  # db_rds, db_sqlite
  - key: crpbot_db_backend
    prefix: db

---
# EC2: the running instances tagged Project=crpbot in two regions, next to a
# listed workstation. An instance is a builder only when tagged crpbot:role=builder.
# Credentials: AWS_PROFILE / ~/.aws, or ec2.profile. Permission: ec2:DescribeInstances.
plugin: crpbot
rds:
  host: crpbot-rds-postgres-db.cyjcoys82evx.us-east-1.rds.amazonaws.com
hosts:
  - name: workstation
    user: numan
    connection: local
ec2:
  regions: [us-east-1, eu-west-1]
  # profile: crpbot
  filters:
    tag:Project: crpbot
  hostnames: [public-ip-address, private-ip-address]
  default_user: ubuntu             # instances without a crpbot:user tag
# Keep what EC2 returned for an hour: ansible-inventory --graph does not ask
# EC2 again until then, or until --flush-cache.
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/crpbot-inventory
cache_timeout: 3600
"""

import difflib
import hashlib
import json
import os
import posixpath
import re
import urllib.parse
from collections.abc import Mapping

import ansible.module_utils
from ansible.errors import AnsibleOptionsError, AnsibleParserError, AnsibleRequiredOptionError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable, to_safe_group_name

# The money-safety rules are written once, in plugins/module_utils/crpbot_policy.py, and shared with
# the action plugins and the modules (which Ansible ships with it to the hosts).
_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "module_utils")
if _UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_UTILS)

from ansible.module_utils.crpbot_policy import (  # noqa: E402
    ALL_GROUP, INVENTORY_FACTS, LIVE_GROUP, ROLE_GROUPS, RUNTIME_MODES, live_refusal,
)

NAME = "crpbot"
FILE_SUFFIXES = ("crpbot.yml", "crpbot.yaml")

ROLES = ROLE_GROUPS
CONNECTIONS = ("ssh", "local")
DB_BACKENDS = ("rds", "sqlite")
GROUP_ALL = ALL_GROUP
MANAGED_GROUPS = (GROUP_ALL, *ROLES, LIVE_GROUP)
RESERVED_NAMES = (*MANAGED_GROUPS, "all", "ungrouped")

HOST_KEYS = (
    "name", "address", "port", "user", "connection", "role",
    "home", "project_dir", "runtime_mode", "db_backend", "vars",
)
RDS_DEFAULTS = {"host": "", "port": 5432, "database": "crpbot", "user": "crpbot_admin"}

# EC2 discovery (the ec2: option). The kinds of address an instance may be reached at, and where each is
# in a DescribeInstances record.
EC2_HOSTNAMES = ("private-ip-address", "public-ip-address", "private-dns-name", "dns-name")
EC2_ADDRESS_FIELDS = {"private-ip-address": "PrivateIpAddress", "public-ip-address": "PublicIpAddress",
                      "private-dns-name": "PrivateDnsName", "dns-name": "PublicDnsName"}
EC2_TAG_DEFAULTS = {"role": "crpbot:role", "user": "crpbot:user", "runtime_mode": "crpbot:runtime_mode",
                    "name": "Name", "address": "crpbot:address"}
EC2_DEFAULTS = {"enabled": True, "regions": [], "profile": "", "endpoint_url": "", "filters": {},
                "tags": {}, "hostnames": list(EC2_HOSTNAMES), "default_user": "", "port": 22}
EC2_STATE_FILTER = "instance-state-name"
# The largest page DescribeInstances gives (MaxResults); the paginator follows NextToken for the rest.
EC2_PAGE_SIZE = 1000
# What a region name looks like (us-east-1, eu-central-2, us-gov-west-1, ap-southeast-4).
REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")
# A discovered host's name: it comes from a tag anyone with ec2:CreateTags can set, so only plain names.
EC2_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")

# Variables the plugin derives, and the key that sets each of them instead.
DERIVED_VARS = {
    **INVENTORY_FACTS,
    "ansible_host": "address:",
    "ansible_port": "port:",
    "ansible_user": "user:",
    "ansible_connection": "connection:",
    # Older spellings that would override the ones above.
    "ansible_ssh_host": "address:",
    "ansible_ssh_port": "port:",
    "ansible_ssh_user": "user:",
}


class ConfigProblem(ValueError):
    """One mistake in the config: where it is, which key, what was found, how to fix it."""

    def __init__(self, where: str, key: str, found: str, fix: str) -> None:
        self.where = where
        self.key = key
        self.found = found
        self.fix = fix
        super().__init__(f"{where}, key '{key}': {found}. Fix: {fix}")


# --- small pure helpers -------------------------------------------------------------------------


def plain(value: object) -> object:
    """Return value without Ansible's data tags (tagged str/int/... subclasses), recursively."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def type_name(value: object) -> str:
    """A YAML-ish name for the type of value, for messages."""
    for kind, label in ((bool, "boolean"), (str, "string"), (int, "integer"), (float, "float"),
                        (Mapping, "mapping"), (list, "list"), (type(None), "null")):
        if isinstance(value, kind):
            return label
    return type(value).__name__


def show(value: object) -> str:
    """Render a found value for a message: its value and its YAML type."""
    return f"{plain(value)!r} ({type_name(value)})"


def suggest(key: object, valid: tuple[str, ...] | list[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest valid name, or "" when none is close."""
    if not isinstance(key, str):
        return ""
    match = difflib.get_close_matches(str(key).lower(), list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def choices_text(valid: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in valid)


def derive_home(user: str) -> str:
    """The home directory of user: /root for root, /home/<user> for anyone else."""
    return "/root" if user == "root" else f"/home/{user}"


def host_label(entry: object, index: int) -> str:
    """How a message names a host: "host 'cloud' (hosts[1])", or "hosts[1]" when it has no usable name."""
    if isinstance(entry, Mapping):
        name = entry.get("name")
        if isinstance(name, str) and name:
            return f"host '{name}' (hosts[{index}])"
    return f"hosts[{index}]"


def check_unknown_keys(keys: object, valid: tuple[str, ...], where: str, prefix: str = "") -> None:
    """Refuse a key not in valid, with a hint at the closest valid one."""
    for key in keys:
        if key not in valid:
            raise ConfigProblem(
                where, f"{prefix}{key}",
                f"unknown key{suggest(key, valid)}; valid keys are {choices_text(valid)}",
                f"rename or remove '{prefix}{key}'",
            )


def check_literal(value: str, where: str, key: str) -> str:
    """No Jinja2 in a value the plugin validates: what is checked here is what the hosts get."""
    if "{{" in value or "{%" in value:
        raise ConfigProblem(where, key, f"found a template {show(value)}, but this key is checked and must be literal",
                            f"write the actual value in {key}: (templates are fine in vars:)")
    return value


def check_str(value: object, where: str, key: str, fix: str) -> str:
    """A non-empty literal string, else a problem."""
    if not isinstance(value, str) or not value:
        raise ConfigProblem(where, key, f"expected a non-empty string, found {show(value)}", fix)
    return check_literal(str(value), where, key)


def check_int(value: object, where: str, key: str, fix: str, low: int = 1, high: int = 65535) -> int:
    """An integer (not a boolean, not a string) between low and high, else a problem."""
    if isinstance(value, bool) or not isinstance(value, int):
        quoted = ""
        if isinstance(value, str) and value.strip().isdigit():
            quoted = " (numbers are written without quotes)"
        raise ConfigProblem(where, key, f"expected an integer, found {show(value)}{quoted}", fix)
    if not low <= value <= high:
        raise ConfigProblem(where, key, f"expected an integer from {low} to {high}, found {show(value)}", fix)
    return int(value)


def check_choice(value: object, valid: tuple[str, ...], where: str, key: str, fix: str) -> str:
    """One of valid, else a problem listing the choices (and the closest one)."""
    if isinstance(value, (list, tuple)):
        raise ConfigProblem(
            where, key,
            f"found a list {show(value)}: asking for more than one; expected exactly one of {choices_text(valid)}",
            f"choose one: {' or '.join(f'{key}: {v}' for v in valid)}",
        )
    if not isinstance(value, str) or value not in valid:
        raise ConfigProblem(
            where, key,
            f"found {show(value)}, expected one of {choices_text(valid)}{suggest(value, valid)}",
            fix,
        )
    return str(value)


def check_abs_path(value: object, where: str, key: str, example: str) -> str:
    """An absolute POSIX path, normalised (no trailing slash), else a problem."""
    path = check_str(value, where, key, f"set {key}: to an absolute path such as {example}, or remove it")
    if not posixpath.isabs(path):
        raise ConfigProblem(
            where, key, f"found relative path {show(path)}, expected an absolute path",
            f"write it from the root, e.g. {key}: {example}, or remove it to use the default",
        )
    return posixpath.normpath(path)


def check_vars(value: object, where: str, key: str) -> dict:
    """Extra host vars: a mapping of valid variable names, none of them derived by the plugin."""
    if not isinstance(value, Mapping):
        raise ConfigProblem(
            where, key, f"expected a mapping of variable names to values, found {show(value)}",
            f"write {key}: as 'name: value' lines, or remove it",
        )
    for name in value:
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigProblem(
                where, f"{key}.{name}", f"found {show(name)}, which is not a valid variable name",
                "use letters, digits and underscores, not starting with a digit",
            )
        if name in DERIVED_VARS:
            raise ConfigProblem(
                where, f"{key}.{name}",
                f"found {key}.{name}: {plain(value[name])!r}, but this variable is set by the crpbot inventory plugin",
                derived_fix(name, f"{key}.{name}"),
            )
    return dict(value)


def derived_fix(var: str, written: str) -> str:
    """The fix for a derived variable set through vars: "use 'role:' instead of vars.crpbot_role"."""
    if DERIVED_VARS[var].startswith("("):  # derived from the file itself, no key sets it
        return f"remove {written}; it is derived from {DERIVED_VARS[var][1:-1]}"
    key, _sep, scope = DERIVED_VARS[var].partition(" ")
    return f"use '{key}'{' at the top level' if scope else ''} instead of {written}"


def validate_settings(options: Mapping) -> dict:
    """Check the top-level settings shared by every host and fill the rds defaults.

    options holds the values as Ansible's get_option returns them (top-level types already checked).
    """
    where = "top level"
    project_name = check_str(options.get("project_name"), where, "project_name",
                             "set project_name: to a directory name such as crpbot")
    if "/" in project_name or project_name in (".", ".."):
        raise ConfigProblem(where, "project_name", f"found {show(project_name)}, expected a single directory name",
                            "set project_name: to a name without '/', such as crpbot")
    bucket = check_str(options.get("bucket"), where, "bucket", "set bucket: to the S3 bucket name, or remove it")
    region = check_str(options.get("region"), where, "region", "set region: to an AWS region such as us-east-1")
    promotions = check_str(options.get("promotions_file", "promotions.json"), where, "promotions_file",
                           "set promotions_file: to a file name such as promotions.json, or remove it")

    raw_rds = options.get("rds")
    raw_rds = {} if raw_rds is None else raw_rds
    if not isinstance(raw_rds, Mapping):
        raise ConfigProblem(where, "rds", f"expected a mapping, found {show(raw_rds)}",
                            "write rds: with host:, port:, database:, user: lines")
    check_unknown_keys(raw_rds, tuple(RDS_DEFAULTS), where, prefix="rds.")
    rds = {**RDS_DEFAULTS, **{k: v for k, v in raw_rds.items() if v is not None}}
    if not isinstance(rds["host"], str):
        raise ConfigProblem(where, "rds.host", f"expected a string, found {show(rds['host'])}",
                            "set rds.host to the RDS endpoint, a DNS name")
    rds["host"] = check_literal(str(rds["host"]), where, "rds.host")
    rds["port"] = check_int(rds["port"], where, "rds.port", "set rds.port: to the TCP port, such as 5432")
    rds["database"] = check_str(rds["database"], where, "rds.database", "set rds.database: such as crpbot")
    rds["user"] = check_str(rds["user"], where, "rds.user", "set rds.user: such as crpbot_admin")

    raw_vars = options.get("vars")
    extra_vars = check_vars({} if raw_vars is None else raw_vars, where, "vars")
    return {"project_name": project_name, "bucket": bucket, "region": region, "rds": rds, "vars": extra_vars,
            "promotions_file": promotions}


def validate_host(entry: object, index: int, settings: Mapping, where: str | None = None) -> dict:
    """Check one entry of hosts: and return {name, role, connection, address, port, hostvars}.

    settings is what validate_settings returned; where names the entry in messages (default: its place in
    hosts:). Raises ConfigProblem on the first mistake. Discovered EC2 instances come through here too.
    """
    where = where or host_label(entry, index)
    if not isinstance(entry, Mapping):
        raise ConfigProblem(where, "hosts", f"expected a mapping like {{name: ..., user: ...}}, found {show(entry)}",
                            "write each host as a '- name: ...' block with its keys indented under it")
    check_unknown_keys(entry, HOST_KEYS, where)
    if "name" not in entry:
        raise ConfigProblem(where, "name", "missing", "give every host a name:, e.g. name: cloud")
    name = check_str(entry["name"], where, "name", "give the host a name: such as cloud")
    if name in RESERVED_NAMES:
        raise ConfigProblem(where, "name", f"found {show(name)}, which is also a group name",
                            f"choose a host name other than {choices_text(RESERVED_NAMES)}")

    if "user" not in entry:
        raise ConfigProblem(where, "user", "missing",
                            "set user: to the account that owns the checkout, e.g. user: root")
    user = check_str(entry["user"], where, "user", "set user: to an account name, e.g. user: root")
    if any(c in user for c in "/: \t"):
        raise ConfigProblem(where, "user", f"found {show(user)}, which is not an account name",
                            "set user: to an account name without '/', ':' or spaces")

    connection = check_choice(entry.get("connection", "ssh"), CONNECTIONS, where, "connection",
                              "set connection: ssh for a remote host or connection: local for this machine")
    address = check_str(entry.get("address", name), where, "address",
                        "set address: to the host's IP or DNS name, or remove it to use the name")
    port = check_int(entry.get("port", 22), where, "port", "set port: to the SSH port number, e.g. port: 22")

    role = check_choice(entry.get("role", "qc"), ROLES, where, "role",
                        "set role: qc or role: builder (omit it for qc, the safe default)")
    runtime_mode = check_choice(entry.get("runtime_mode", "dryrun"), RUNTIME_MODES, where, "runtime_mode",
                                "set runtime_mode: dryrun (or live, only on a builder host)")
    if runtime_mode == "live":
        refusal = live_refusal(role, True, user == "root")
        if refusal:
            found = "found 'live' on a QC host" if role != "builder" else f"found 'live' for user '{user}'"
            raise ConfigProblem(where, "runtime_mode", f"{found}: {refusal}",
                                "only a builder host run as root may run live; set role: builder and user: root, "
                                "or runtime_mode: dryrun")

    db_backend = check_choice(entry.get("db_backend", "rds"), DB_BACKENDS, where, "db_backend",
                              "set db_backend: rds (or sqlite, only on a QC host)")
    if db_backend == "sqlite" and role == "builder":
        raise ConfigProblem(where, "db_backend", "found 'sqlite' on a builder host, which always uses the RDS database",
                            "set db_backend: rds or remove it")
    if not settings["rds"]["host"]:
        if role == "builder":
            raise ConfigProblem(where, "rds.host", "found it empty, but a builder host always uses the RDS database",
                                "set rds.host to the RDS endpoint at the top level of the file")
        if db_backend == "rds":
            raise ConfigProblem(where, "rds.host", "found it empty, but this host has db_backend: rds",
                                "set rds.host to the RDS endpoint at the top level of the file, "
                                "or db_backend: sqlite on this QC host")

    if "home" in entry:
        home = check_abs_path(entry["home"], where, "home", derive_home(user))
    else:
        home = derive_home(user)
    if "project_dir" in entry:
        project_dir = check_abs_path(entry["project_dir"], where, "project_dir",
                                     posixpath.join(home, settings["project_name"]))
    else:
        project_dir = posixpath.join(home, settings["project_name"])

    raw_vars = entry.get("vars")
    host_vars = check_vars({} if raw_vars is None else raw_vars, where, "vars")

    rds = settings["rds"]
    hostvars = {
        "crpbot_role": role,
        "crpbot_user": user,
        "crpbot_home": home,
        "crpbot_project_dir": project_dir,
        "crpbot_project_name": settings["project_name"],
        "crpbot_runtime_mode": runtime_mode,
        "crpbot_db_backend": db_backend,
        "crpbot_bucket": settings["bucket"],
        "crpbot_region": settings["region"],
        "crpbot_rds_host": rds["host"],
        "crpbot_rds_port": rds["port"],
        "crpbot_rds_database": rds["database"],
        "crpbot_rds_user": rds["user"],
        "crpbot_promotions_file": settings["promotions_file"],
        "ansible_user": user,
        "ansible_connection": connection,
    }
    if settings.get("inventory_dir"):  # set by validate_config, from the file's own path
        hostvars["crpbot_inventory_dir"] = settings["inventory_dir"]
    if connection == "ssh":
        hostvars["ansible_host"] = address
        hostvars["ansible_port"] = port
    hostvars.update(settings["vars"])
    hostvars.update(host_vars)
    return {"name": name, "role": role, "connection": connection, "address": address, "port": port,
            "hostvars": hostvars}


def source_label(source: int | str) -> str:
    """hosts[N] for a listed entry (its index), or the given label (a discovered EC2 instance)."""
    return f"hosts[{source}]" if isinstance(source, int) else source


def check_unique(hosts: list[tuple[int | str, dict]]) -> list[ConfigProblem]:
    """Problems for hosts sharing a name, or ssh hosts sharing address and port.

    hosts = [(source, {name, connection, address, port})], source being the index in hosts: or the label
    of a discovered instance; address and port are only read for ssh hosts.
    """
    problems = []
    by_name: dict[str, str] = {}
    by_target: dict[tuple[str, int], tuple[str, str]] = {}
    for source, host in hosts:
        label = source_label(source)
        name = host["name"]
        if name in by_name:
            problems.append(ConfigProblem(
                f"host '{name}' ({by_name[name]} and {label})", "name",
                f"found the name '{name}' twice", "give each host a unique name:"
                + (" (a discovered instance is named by its Name tag, see ec2.tags.name)"
                   if not isinstance(source, int) else "")))
        else:
            by_name[name] = label
        if host["connection"] != "ssh":
            continue
        target = (host["address"], host["port"])
        if target in by_target:
            first_label, first_name = by_target[target]
            problems.append(ConfigProblem(
                f"host '{name}' ({label})", "address",
                f"found {target[0]}:{target[1]}, already used by host '{first_name}' ({first_label})",
                "list each machine once, or give the entries different address: or port:"))
        else:
            by_target[target] = (label, name)
    return problems


def check_constructed(compose: object, groups: object) -> list[ConfigProblem]:
    """compose may not overwrite a derived variable, and groups may not put a host into crpbot, qc,
    builder or live_approved: the role comes from role: alone (a QC host in group builder would be
    treated as one) and the live approval from runtime_mode: alone."""
    problems = []
    for var in compose if isinstance(compose, Mapping) else ():
        if var in DERIVED_VARS:
            problems.append(ConfigProblem("top level", f"compose.{var}",
                                          f"found compose.{var}, but this variable is set by the crpbot "
                                          "inventory plugin",
                                          derived_fix(var, f"compose.{var}")))
    for group in groups if isinstance(groups, Mapping) else ():
        if to_safe_group_name(group) in MANAGED_GROUPS:
            problems.append(ConfigProblem("top level", f"groups.{group}",
                                          f"found groups.{group}, but group '{group}' is managed by the "
                                          "crpbot inventory plugin",
                                          _managed_group_fix(group) + "give the constructed group another name"))
    return problems


def _managed_group_fix(group: str) -> str:
    if group in ROLES:
        return f"set role: {group} on the host entries instead, "
    if group == LIVE_GROUP:
        return "set runtime_mode: live on a builder entry instead, "
    return "every host is already in crpbot; "


def _group_entry_key(group: str) -> str:
    return "runtime_mode: live" if group == LIVE_GROUP else f"role: {group}"


def check_role_groups(expected: Mapping, actual: Mapping) -> list[ConfigProblem]:
    """After compose/groups/keyed_groups: each role group (and live_approved) must still hold exactly
    the hosts whose entry says so. expected/actual map group name -> set of host names."""
    problems = []
    for group in (*ROLES, LIVE_GROUP):
        extra = sorted(set(actual.get(group, ())) - set(expected.get(group, ())))
        if extra:
            problems.append(ConfigProblem(
                f"group '{group}'", "keyed_groups",
                f"found host(s) {', '.join(extra)} added to '{group}' by keyed_groups (or another inventory source), "
                f"but their entries do not say {_group_entry_key(group)}",
                f"set {_group_entry_key(group)} on those entries, or change the keyed_groups prefix/parent_group "
                f"so that no group named '{group}' is produced or used as a parent"))
    return problems


def format_problems(path: str, problems: list[ConfigProblem], outcome: str = "no host was added") -> str:
    """The AnsibleParserError message: the file, then one line per problem."""
    count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
    lines = [f"crpbot inventory {path} is invalid ({count}); {outcome}:"]
    lines.extend(f"  - {problem}" for problem in problems)
    return "\n".join(lines)


def validate_config(path: str, config_keys: object, valid_keys: tuple[str, ...] | list[str],
                    options: Mapping, discovered: list[Discovered] | None = None) -> list[dict]:
    """Validate the whole file and return one plain dict per host, or raise AnsibleParserError listing
    every problem found (top level first, then each host, then duplicates).

    config_keys: the keys written in the file; valid_keys: the documented options;
    options: the option values as get_option returns them (project_name, bucket, region, rds, vars,
    compose, groups, ec2), except hosts, which is the raw list from the file;
    discovered: the EC2 instances as entries (discovered_entries), checked exactly like hosts: entries.
    """
    problems: list[ConfigProblem] = []
    try:
        check_unknown_keys(config_keys, tuple(valid_keys), "top level")
    except ConfigProblem as problem:
        problems.append(problem)
    try:
        validate_ec2(options.get("ec2"))
    except ConfigProblem as problem:
        problems.append(problem)
    try:
        settings = validate_settings(options)
    except ConfigProblem as problem:
        problems.append(problem)
        raise AnsibleParserError(format_problems(path, problems)) from None
    settings["inventory_dir"] = os.path.dirname(os.path.abspath(path))
    settings["promotions_file"] = os.path.join(settings["inventory_dir"],
                                               os.path.expanduser(settings["promotions_file"]))

    entries = options.get("hosts")
    # An empty list is a valid inventory with no hosts (the test bed writes one when it is down).
    if not isinstance(entries, list):
        problems.append(ConfigProblem(
            "top level", "hosts", f"expected a list of hosts, found {show(entries)}",
            "list the hosts under hosts:, each as '- name: ...' with user:"))
        raise AnsibleParserError(format_problems(path, problems))

    hosts: list[tuple[int | str, dict]] = []
    named: list[tuple[int | str, dict]] = []  # every entry with a usable name, for the duplicate check
    for index, entry in enumerate(entries):
        try:
            host = validate_host(entry, index, settings)
        except ConfigProblem as problem:
            problems.append(problem)
            name = entry.get("name") if isinstance(entry, Mapping) else None
            if isinstance(name, str) and name:
                named.append((index, {"name": str(name), "connection": None}))
        else:
            hosts.append((index, host))
            named.append((index, host))
    for item in discovered or ():
        if item.problem is not None:
            problems.append(item.problem)
            continue
        try:
            host = validate_host(item.entry, 0, settings, where=item.label)
        except ConfigProblem as problem:
            problems.append(item.explain(problem))
            named.append((item.label, {"name": item.entry["name"], "connection": None}))
        else:
            hosts.append((item.label, host))
            named.append((item.label, host))
    problems.extend(check_unique(named))
    problems.extend(check_constructed(options.get("compose"), options.get("groups")))
    if problems:
        raise AnsibleParserError(format_problems(path, problems))
    return [host for _source, host in hosts]


# --- EC2 discovery ------------------------------------------------------------------------------
# An instance becomes an entry shaped like one of hosts: and goes through validate_host like any other:
# every rule that refuses a bad listed host refuses a bad discovered one. Only the label differs.


def _ec2_str(value: object, key: str, fix: str, empty_ok: bool = True) -> str:
    if not isinstance(value, str) or (not value and not empty_ok):
        raise ConfigProblem("top level", key, f"expected a {'' if empty_ok else 'non-empty '}string, "
                            f"found {show(value)}", fix)
    return check_literal(str(value), "top level", key)


def validate_ec2(raw: object) -> dict | None:
    """Check the ec2: option and fill its defaults; None when discovery is off (no regions, or disabled).

    The filters come back as DescribeInstances wants them, the running-state filter first.
    """
    where = "top level"
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigProblem(where, "ec2", f"expected a mapping, found {show(raw)}",
                            "write ec2: with regions:, filters:, ... lines (see ansible-doc -t inventory crpbot)")
    check_unknown_keys(raw, tuple(EC2_DEFAULTS), where, prefix="ec2.")
    ec2 = {**EC2_DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}

    if not isinstance(ec2["enabled"], bool):
        raise ConfigProblem(where, "ec2.enabled", f"expected true or false, found {show(ec2['enabled'])}",
                            "set ec2.enabled: true or false")
    regions = ec2["regions"]
    if isinstance(regions, str):
        regions = [regions]
    if not isinstance(regions, list):
        raise ConfigProblem(where, "ec2.regions", f"expected a list of regions, found {show(regions)}",
                            "write ec2.regions: [us-east-1]")
    for region in regions:
        if not isinstance(region, str) or not REGION_PATTERN.match(region):
            raise ConfigProblem(where, "ec2.regions", f"found {show(region)}, which is not an AWS region name",
                                "list region names such as us-east-1 or eu-west-1")
    if len(set(regions)) != len(regions):
        raise ConfigProblem(where, "ec2.regions", f"found a region twice in {show(regions)}", "list each region once")

    profile = _ec2_str(ec2["profile"], "ec2.profile", "set ec2.profile: to a profile name from ~/.aws/config, "
                       "or remove it to use the default credentials")
    endpoint = _ec2_str(ec2["endpoint_url"], "ec2.endpoint_url",
                        "set ec2.endpoint_url: to a URL such as https://ec2.us-east-1.amazonaws.com, or remove it")
    if endpoint:
        parts = urllib.parse.urlsplit(endpoint)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigProblem(where, "ec2.endpoint_url", f"found {show(endpoint)}, which is not an http(s) URL",
                                "write the whole URL, e.g. https://ec2.us-east-1.amazonaws.com, or remove it "
                                "to use AWS's own endpoint")

    raw_filters = ec2["filters"]
    if not isinstance(raw_filters, Mapping):
        raise ConfigProblem(where, "ec2.filters", f"expected a mapping of filter names to values, "
                            f"found {show(raw_filters)}", "write ec2.filters: as 'tag:Project: crpbot' lines")
    filters = [{"Name": EC2_STATE_FILTER, "Values": ["running"]}]
    for name in sorted(raw_filters, key=str):
        value = raw_filters[name]
        key = f"ec2.filters.{name}"
        if not isinstance(name, str) or not name:
            raise ConfigProblem(where, key, f"found the filter name {show(name)}", "use EC2 filter names such as "
                                "tag:Project or vpc-id")
        if name == EC2_STATE_FILTER:
            raise ConfigProblem(where, key, "found a filter on the instance state, but only running instances "
                                "are ever taken", f"remove {key}")
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
            raise ConfigProblem(where, key, f"expected a value or a list of values, found {show(value)}",
                                f"write {key}: value, or a list of values")
        filters.append({"Name": str(name), "Values": [check_literal(str(v), where, key) for v in values]})

    raw_tags = ec2["tags"]
    if not isinstance(raw_tags, Mapping):
        raise ConfigProblem(where, "ec2.tags", f"expected a mapping, found {show(raw_tags)}",
                            "write ec2.tags: with role:, user:, runtime_mode:, name:, address: lines")
    check_unknown_keys(raw_tags, tuple(EC2_TAG_DEFAULTS), where, prefix="ec2.tags.")
    tags = {**EC2_TAG_DEFAULTS, **{k: v for k, v in raw_tags.items() if v is not None}}
    for key, value in tags.items():
        tags[key] = _ec2_str(value, f"ec2.tags.{key}", f"set ec2.tags.{key}: to a tag name such as "
                             f"{EC2_TAG_DEFAULTS[key]}", empty_ok=key in ("user", "name", "address"))

    hostnames = ec2["hostnames"]
    if isinstance(hostnames, str):
        hostnames = [hostnames]
    if not isinstance(hostnames, list) or not hostnames:
        raise ConfigProblem(where, "ec2.hostnames", f"expected a non-empty list, found {show(hostnames)}",
                            f"list one or more of {choices_text(EC2_HOSTNAMES)}")
    for kind in hostnames:
        check_choice(kind, EC2_HOSTNAMES, where, "ec2.hostnames",
                     f"list one or more of {choices_text(EC2_HOSTNAMES)}")

    default_user = _ec2_str(ec2["default_user"], "ec2.default_user",
                            "set ec2.default_user: to an account name, or remove it and tag each instance")
    port = check_int(ec2["port"], where, "ec2.port", "set ec2.port: to the SSH port number, e.g. 22")

    if not ec2["enabled"] or not regions:
        return None
    return {"regions": [str(r) for r in regions], "profile": profile, "endpoint_url": endpoint,
            "filters": filters, "tags": tags, "hostnames": [str(h) for h in hostnames],
            "default_user": default_user, "port": port}


def ec2_query_key(ec2: Mapping) -> str:
    """What decides which instances EC2 returns: a cached result is used only for the same query."""
    query = {k: ec2[k] for k in ("regions", "profile", "endpoint_url", "filters")}
    return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()


def instance_record(instance: Mapping, region: str) -> dict:
    """The part of a DescribeInstances instance the plugin uses (what the cache keeps): plain JSON."""
    record = {"id": str(instance["InstanceId"]), "region": region,
              "tags": {str(t["Key"]): str(t.get("Value", "")) for t in instance.get("Tags") or ()}}
    for kind, field_name in EC2_ADDRESS_FIELDS.items():
        if instance.get(field_name):
            record[kind] = str(instance[field_name])
    return record


class Discovered:
    """One EC2 instance as a hosts: entry, with where each value came from (for messages).

    (A plain class: a dataclass needs its module in sys.modules, which a plugin loaded from a file is not.)
    """

    def __init__(self, instance_id: str, region: str) -> None:
        self.instance_id = instance_id
        self.region = region
        self.entry: dict = {}
        self.sources: dict[str, str] = {}  # entry key -> "tag crpbot:role", "option ec2.default_user", ...
        self.problem: ConfigProblem | None = None  # a mistake found before validate_host (name, address)
        self.warning = ""

    @property
    def label(self) -> str:
        return f"EC2 instance {self.instance_id} (region {self.region})"

    def explain(self, problem: ConfigProblem) -> ConfigProblem:
        """A validate_host problem, named by the instance and the tag or option the value came from."""
        source = self.sources.get(problem.key)
        if source is None:
            return ConfigProblem(self.label, problem.key, problem.found, problem.fix)
        where = f"EC2 instance {self.instance_id} (region {self.region}, {source})"
        return ConfigProblem(where, problem.key, problem.found,
                             f"{problem.fix}; for this instance {problem.key} comes from {source}: change it there")


def discovered_entry(record: Mapping, ec2: Mapping) -> Discovered:
    """Turn one instance record into a hosts: entry (not yet checked: validate_host does that)."""
    tag_names = ec2["tags"]
    tags = record["tags"]
    item = Discovered(instance_id=record["id"], region=record["region"])

    def tag(key: str) -> str | None:
        return tags.get(tag_names[key]) if tag_names[key] else None

    name = tag("name")
    if name:
        item.sources["name"] = f"tag {tag_names['name']}"
        if not EC2_NAME_PATTERN.match(name):
            item.problem = ConfigProblem(
                f"EC2 instance {item.instance_id} (region {item.region}, tag {tag_names['name']})", "name",
                f"found {show(name)}, which is not a valid inventory host name",
                f"rename the instance (tag {tag_names['name']}) using letters, digits, '.', '_' and '-', "
                "or set ec2.tags.name: '' to name discovered hosts by instance id")
            return item
    else:
        name = item.instance_id
        item.sources["name"] = "instance id"
    item.entry["name"] = name

    user = tag("user")
    if user is not None:
        item.entry["user"] = user
        item.sources["user"] = f"tag {tag_names['user']}"
    elif ec2["default_user"]:
        item.entry["user"] = ec2["default_user"]
        item.sources["user"] = "option ec2.default_user"
    else:
        item.sources["user"] = (f"tag {tag_names['user']} or option ec2.default_user" if tag_names["user"]
                                else "option ec2.default_user")

    role = tag("role")
    item.sources["role"] = f"tag {tag_names['role']}"
    if role in ROLES:
        item.entry["role"] = role
    else:
        item.entry["role"] = "qc"
        if role is not None:
            item.warning = (f"{item.label}: tag {tag_names['role']} is {role!r}, not one of {choices_text(ROLES)}"
                            f"{suggest(role, ROLES)}; treating it as qc, the safe default")

    mode = tag("runtime_mode")
    if mode is not None:
        item.entry["runtime_mode"] = mode
    item.sources["runtime_mode"] = f"tag {tag_names['runtime_mode']}"

    preference = list(ec2["hostnames"])
    item.sources["address"] = "option ec2.hostnames"
    wanted = tag("address")
    if wanted is not None:
        item.sources["address"] = f"tag {tag_names['address']}"
        if wanted not in EC2_HOSTNAMES:
            item.problem = ConfigProblem(
                f"EC2 instance {item.instance_id} (region {item.region}, tag {tag_names['address']})", "address",
                f"found {show(wanted)}, expected one of {choices_text(EC2_HOSTNAMES)}{suggest(wanted, EC2_HOSTNAMES)}",
                f"set the tag {tag_names['address']} to one of those, or remove it to use ec2.hostnames")
            return item
        preference = [wanted]
    address = next((record[kind] for kind in preference if record.get(kind)), None)
    if address is None:
        item.problem = ConfigProblem(
            f"EC2 instance {item.instance_id} (region {item.region}, {item.sources['address']})", "address",
            f"found none of {choices_text(tuple(preference))} on the instance",
            "list an address kind the instance has in ec2.hostnames (or its address tag), "
            "e.g. private-ip-address")
        return item
    item.entry["address"] = address
    item.entry["port"] = ec2["port"]
    item.sources["port"] = "option ec2.port"
    item.entry["vars"] = {"ec2_instance_id": item.instance_id, "ec2_region": item.region}
    return item


def discovered_entries(records: list[Mapping], ec2: Mapping) -> list[Discovered]:
    return [discovered_entry(record, ec2) for record in records]


class Ec2Error(Exception):
    """EC2 could not be asked; the message names the region and the fix, never a credential."""


# Error codes AWS gives for a caller that may not call DescribeInstances, and for credentials it rejects.
EC2_DENIED = ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException")
EC2_BAD_CREDENTIALS = ("AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
                       "ExpiredToken", "RequestExpired", "InvalidAccessKeyId")


def ec2_error(error: Exception, region: str, ec2: Mapping) -> Ec2Error:
    """Turn a boto3/botocore exception into a message naming the region, what went wrong and the fix."""
    from botocore import exceptions as bx

    where = f"EC2 discovery in region {region}"
    profile = f" (profile '{ec2['profile']}')" if ec2["profile"] else ""
    endpoint = ec2["endpoint_url"] or f"AWS's endpoint for {region}"
    if isinstance(error, bx.ProfileNotFound):
        return Ec2Error(f"{where}: the AWS profile '{ec2['profile']}' does not exist. Fix: create it "
                        f"(aws configure --profile {ec2['profile']}) or correct ec2.profile")
    if isinstance(error, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return Ec2Error(f"{where}: no usable AWS credentials were found{profile}. Fix: give credentials with "
                        "AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, or "
                        "ec2.profile")
    if isinstance(error, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError,
                          bx.ConnectionClosedError, bx.SSLError, bx.ProxyConnectionError)):
        return Ec2Error(f"{where}: cannot reach {endpoint} ({type(error).__name__}). Fix: check the network "
                        "and the region name, or ec2.endpoint_url")
    if isinstance(error, bx.ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", "unknown"))
        message = str(info.get("Message", "")).strip()
        if code in EC2_DENIED:
            return Ec2Error(f"{where}: the AWS identity{profile} may not call ec2:DescribeInstances ({code}). "
                            "Fix: grant it the IAM permission ec2:DescribeInstances, or use another ec2.profile")
        if code in EC2_BAD_CREDENTIALS:
            return Ec2Error(f"{where}: AWS rejected the credentials{profile} ({code}). Fix: renew or correct "
                            "the access key (AWS_PROFILE, ~/.aws/credentials or ec2.profile)")
        return Ec2Error(f"{where}: EC2 refused the request ({code}: {message}). Fix: check ec2.filters and "
                        "ec2.regions")
    if isinstance(error, bx.BotoCoreError):
        return Ec2Error(f"{where}: {type(error).__name__}: {error}. Fix: check the ec2: settings")
    raise error


def describe_running(client, filters: list[dict]) -> list[dict]:
    """Every instance DescribeInstances returns for filters, page by page."""
    paginator = client.get_paginator("describe_instances")
    instances = []
    for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": EC2_PAGE_SIZE}):
        for reservation in page.get("Reservations", ()):
            instances.extend(reservation.get("Instances", ()))
    return instances


def query_ec2(ec2: Mapping) -> list[dict]:
    """Ask EC2 in every region of ec2 for its running instances; one record per instance, region by region."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise Ec2Error("EC2 discovery needs boto3 on the controller. Fix: install boto3 "
                       "(it is a dependency of this project: uv sync)") from None

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60,
                    # Without ec2.endpoint_url, only AWS's own endpoint: no AWS_ENDPOINT_URL* override.
                    ignore_configured_endpoint_urls=not ec2["endpoint_url"])
    records = []
    for region in ec2["regions"]:
        try:
            session = boto3.session.Session(profile_name=ec2["profile"] or None)
            client = session.client("ec2", region_name=region, endpoint_url=ec2["endpoint_url"] or None,
                                    config=config)
            instances = describe_running(client, ec2["filters"])
        except Exception as error:  # noqa: BLE001 - ec2_error re-raises what it does not know
            raise ec2_error(error, region, ec2) from None
        records.extend(instance_record(instance, region) for instance in instances)
    return records


def options_error_message(path: str, error: AnsibleOptionsError) -> str:
    """Ansible's own top-level option error, with the file and a fix added."""
    if isinstance(error, AnsibleRequiredOptionError):
        fix = "add a hosts: list with at least one entry ('- name: ...' with user:)"
    else:
        fix = "give the option the type 'ansible-doc -t inventory crpbot' shows for it"
    reason = str(error).rstrip(".")
    return f"crpbot inventory {path} is invalid; no host was added:\n  - top level: {reason}. Fix: {fix}"


# --- Ansible glue ------------------------------------------------------------------------------


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """Builds the crpbot inventory: groups crpbot, qc, builder and the crpbot_* host variables."""

    NAME = NAME
    # The only source is this YAML file, which Ansible itself loads as trusted (like the yaml and toml
    # inventory plugins): the values are plain data, shown as such by ansible-inventory --list.
    trusted_by_default = True

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(FILE_SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        try:
            config = self._read_config_data(path)  # checks the top-level types against DOCUMENTATION
        except AnsibleOptionsError as error:
            raise AnsibleParserError(options_error_message(path, error)) from None
        options = {key: self.get_option(key)
                   for key in ("project_name", "bucket", "region", "rds", "vars", "compose", "groups",
                               "promotions_file", "ec2")}
        # Raw, because for a list option Ansible turns a string into a one-item list.
        options["hosts"] = config.get("hosts")
        # The file alone first: a broken file fails before EC2 is asked anything.
        hosts = validate_config(path, list(config), list(self.option_definitions), options)
        ec2 = validate_ec2(options["ec2"])
        if ec2 is not None:
            discovered = discovered_entries(self._ec2_records(path, ec2, cache), ec2)
            for item in discovered:
                if item.warning:
                    self.display.warning(f"crpbot inventory {path}: {item.warning}")
            hosts = validate_config(path, list(config), list(self.option_definitions), options, discovered)

        self.inventory.add_group(GROUP_ALL)
        for group in ROLES:
            self.inventory.add_group(group)
            self.inventory.add_child(GROUP_ALL, group)
        # The live approval is a group, like the role: no variable at any precedence can change it.
        self.inventory.add_group(LIVE_GROUP)
        for host in hosts:
            self.inventory.add_host(host["name"], group=host["role"])
            if host["hostvars"]["crpbot_runtime_mode"] == "live":
                self.inventory.add_host(host["name"], group=LIVE_GROUP)
            for key, value in host["hostvars"].items():
                self.inventory.set_variable(host["name"], key, value)

        strict = self.get_option("strict")
        for host in hosts:
            name = host["name"]
            self._set_composite_vars(self.get_option("compose"), self.inventory.get_host(name).get_vars(), name,
                                     strict=strict)
            variables = self.inventory.get_host(name).get_vars()
            self._add_host_to_composed_groups(self.get_option("groups"), variables, name, strict=strict,
                                              fetch_hostvars=False)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, name, strict=strict,
                                           fetch_hostvars=False)

        # Only this file's hosts: with several inventory sources the groups may hold others too.
        ours = {host["name"] for host in hosts}
        expected = {group: {host["name"] for host in hosts if host["role"] == group} for group in ROLES}
        expected[LIVE_GROUP] = {host["name"] for host in hosts if host["hostvars"]["crpbot_runtime_mode"] == "live"}
        actual = {group: {host.name for host in self.inventory.groups[group].get_hosts()} & ours
                  for group in (*ROLES, LIVE_GROUP)}
        problems = check_role_groups(expected, actual)
        if problems:
            raise AnsibleParserError(format_problems(path, problems, outcome="the inventory is refused"))

    def _ec2_records(self, path: str, ec2: Mapping, cache: bool) -> list[dict]:
        """The running instances, from the inventory cache when it holds this very query, else from EC2.

        cache is False under --flush-cache (and refresh_inventory): then EC2 is asked and the cache rewritten.
        """
        use_cache = bool(self.get_option("cache"))
        key = self.get_cache_key(path)
        query = ec2_query_key(ec2)
        if use_cache and cache:
            try:
                cached = self._cache[key]
            except KeyError:
                cached = None
            if isinstance(cached, Mapping) and cached.get("query") == query:
                self.display.vvv(f"crpbot inventory {path}: EC2 instances from the inventory cache")
                return [plain(record) for record in cached.get("instances", [])]
        try:
            records = query_ec2(ec2)
        except Ec2Error as error:
            raise AnsibleParserError(f"crpbot inventory {path}: {error}; no host was added") from None
        if use_cache:
            self._cache[key] = {"query": query, "instances": records}
        return records
