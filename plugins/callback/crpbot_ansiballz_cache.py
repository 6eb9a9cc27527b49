# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback plugin: keep Ansible's module payloads between runs, under a key made from the code they come from.

For every Python module a run executes, Ansible builds an AnsiballZ payload on the controller: the module
and every module_utils file it imports, each found by parsing the one before. It keeps the payloads in
``ansiballz_cache`` inside the run's own temporary directory (``local_tmp``), so every run builds every
module again; in a no-op converge of this project that is about a third of the controller's CPU.

At the start of each playbook this plugin makes that directory a link to a persistent one,
``<local_tmp>/crpbot-ansiballz/<key>``. The key is a SHA-256 of everything a payload is built from (see
``source_key``): a module or module_utils file that changed gives another key, so a run never gets a
payload built from older code. Ansible's own locking and atomic writes in that directory keep runs that
share it (parallel tests, several terminals) safe.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import stat
import sys
import time

from ansible import constants as C
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import module_loader, module_utils_loader
from ansible.release import __version__ as ansible_version

DOCUMENTATION = r"""
name: crpbot_ansiballz_cache
type: aggregate
short_description: Keep the AnsiballZ module payloads between runs, keyed by the code they are built from
description:
  - Ansible builds an AnsiballZ payload for every Python module a run executes (the module plus every
    module_utils file it imports) and keeps it only for that run. This plugin keeps the payloads in
    C(<local_tmp>/crpbot-ansiballz/<key>), so a run builds only the modules whose code changed.
  - The key is a SHA-256 of the ansible-core and Python versions and of the path and content of every file
    in the directories Ansible searches for modules and module_utils (the configured C(library) and
    C(module_utils), Ansible's own, those beside each playbook), in the C(library) and C(module_utils)
    directories of every role under C(roles_path) and beside the playbook, and of the size and modification
    time of every file under the installed collections' C(plugins/modules) and C(plugins/module_utils).
    Any change there gives a new key and an empty cache; a run never gets a payload built from code that
    changed since.
  - Cache directories of other keys not used for 7 days are removed.
  - Persists nothing when C(<local_tmp>/crpbot-ansiballz) is not a directory owned by the user and closed to
    others; the run then builds its payloads as Ansible does without this plugin. So does an ad-hoc
    C(ansible) command (no playbook start).
requirements:
  - enabled in ansible.cfg (C(callbacks_enabled)); a run that sets C(ANSIBLE_CALLBACKS_ENABLED) names it there
"""

CACHE_DIR_NAME = "crpbot-ansiballz"
KEEP_UNUSED_SECONDS = 7 * 24 * 3600
# Ansible reads and writes its payloads here, inside the run's own temp dir (executor/module_common.py).
ANSIBLE_CACHE_NAME = "ansiballz_cache"


def _files(directory: str):
    """Every file under directory (sorted, __pycache__ left out), as absolute paths."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            yield os.path.join(root, name)


def source_key(search_dirs, role_dirs, collection_roots) -> str:
    """The SHA-256 of everything an AnsiballZ payload may be built from.

    search_dirs: the module and module_utils search paths (content of every file); role_dirs: the
    directories that hold roles (content of each role's library/ and module_utils/); collection_roots:
    the collection paths (size and mtime of every file under each collection's plugins/modules and
    plugins/module_utils; an install rewrites them, and they can be large).
    """
    digest = hashlib.sha256(f"ansible-core {ansible_version}\0python {sys.version}\0".encode())
    content_dirs = list(search_dirs)
    for roles in role_dirs:
        content_dirs += sorted(glob.glob(os.path.join(roles, "*", "library")))
        content_dirs += sorted(glob.glob(os.path.join(roles, "*", "module_utils")))
    for directory in dict.fromkeys(os.path.realpath(d) for d in content_dirs):
        digest.update(f"dir {directory}\0".encode())
        for path in _files(directory):
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            digest.update(f"{os.path.relpath(path, directory)}\0{len(data)}\0".encode())
            digest.update(data)
    for root in collection_roots:
        for directory in sorted(glob.glob(os.path.join(root, "ansible_collections", "*", "*", "plugins", "module*"))):
            digest.update(f"collection {directory}\0".encode())
            for path in _files(directory):
                try:
                    info = os.stat(path)
                except OSError:
                    continue
                digest.update(f"{os.path.relpath(path, directory)}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def private_dir(path: str) -> bool:
    """path is a directory (not a link) owned by this user that no one else can write to."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o022


def prepare(base: str, key: str, now: float | None = None) -> str | None:
    """The persistent cache dir for key under base (made, touched), or None when base is not private.

    Removes the cache dirs of other keys left unused for KEEP_UNUSED_SECONDS.
    """
    now = time.time() if now is None else now
    os.makedirs(base, mode=0o700, exist_ok=True)
    if not private_dir(base):
        return None
    cache = os.path.join(base, key)
    os.makedirs(cache, mode=0o700, exist_ok=True)
    if not private_dir(cache):
        return None
    os.utime(cache, (now, now))
    for entry in os.scandir(base):
        if entry.name == key or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            unused = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if unused > KEEP_UNUSED_SECONDS:
            shutil.rmtree(entry.path, ignore_errors=True)
    return cache


def point(run_tmp: str, cache: str) -> bool:
    """Make <run_tmp>/ansiballz_cache a link to cache; False when the run already has a cache of its own."""
    link = os.path.join(run_tmp, ANSIBLE_CACHE_NAME)
    if os.path.lexists(link) and not os.path.islink(link):
        return False  # Ansible already built payloads in this run: leave them
    if os.path.islink(link) and os.readlink(link) == cache:
        return True
    staged = f"{link}.{os.getpid()}.link"
    os.symlink(cache, staged)
    os.replace(staged, link)
    return True


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "crpbot_ansiballz_cache"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_start(self, playbook) -> None:
        # The playbook (and every role it imports) is loaded: the module loaders know every directory.
        try:
            from ansible.utils.collection_loader import AnsibleCollectionConfig

            collection_roots = AnsibleCollectionConfig.collection_paths
        except (ImportError, NotImplementedError):
            collection_roots = list(C.COLLECTIONS_PATHS)
        basedir = to_text(getattr(playbook, "_basedir", "") or os.getcwd())
        search_dirs = [d for loader in (module_loader, module_utils_loader)
                       for d in loader.print_paths().split(os.pathsep) if d]
        role_dirs = [*C.DEFAULT_ROLES_PATH, os.path.join(basedir, "roles"), basedir]
        try:
            key = source_key(search_dirs, role_dirs, collection_roots)
            run_tmp = C.DEFAULT_LOCAL_TMP
            cache = prepare(os.path.join(os.path.dirname(run_tmp), CACHE_DIR_NAME), key)
            if cache is None:
                self._display.warning(
                    f"crpbot_ansiballz_cache: {os.path.dirname(run_tmp)}/{CACHE_DIR_NAME} is not a directory of "
                    "yours closed to others; module payloads are built for this run only"
                )
                return
            if point(run_tmp, cache):
                self._display.vvv(f"crpbot_ansiballz_cache: module payloads kept in {cache}")
        except OSError as exc:
            self._display.warning(f"crpbot_ansiballz_cache: module payloads are built for this run only ({exc})")
