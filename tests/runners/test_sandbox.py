"""The `subprocess` runner's sandbox (runners/sandbox.py): its command line, its status, its
cgroups, and the dependency rules that go with it (runners/envs.py)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import missing_service

from common.settings import get_settings
from runners.envs import DependencyInstallError, check_requirements, ensure_environment
from runners.sandbox import (
    SANDBOX_WORK_DIR,
    RunCgroup,
    bwrap_command,
    isolation_status,
    remove_leftover_cgroups,
)


@pytest.mark.parametrize("requirement", [
    "tinydb @ file:///etc/passwd",
    "tinydb @ https://example.com/tinydb-4.8.0.tar.gz",
    "https://example.com/tinydb-4.8.0-py3-none-any.whl",
    "./local/package",
    "/srv/wheels/tinydb-4.8.0-py3-none-any.whl",
    "-e .",
    "--index-url=https://example.com/simple",
    "git+https://github.com/msiemens/tinydb",
    "tinydb-4.8.0.tar.gz",
])
def test_requirements_from_urls_files_or_options_are_refused_naming_them(tmp_path, requirement):
    with pytest.raises(DependencyInstallError) as refused:
        ensure_environment(tmp_path / "envs", ["requests", requirement], lambda line: None)
    assert repr(requirement) in str(refused.value)
    assert "TRIBUTARY_ALLOW_DIRECT_REQUIREMENTS=1" in str(refused.value) or "pip option" in str(refused.value)
    assert not (tmp_path / "envs").exists()  # refused before anything was built


def test_index_requirements_pass_and_direct_ones_when_allowed():
    assert check_requirements(["tinydb==4.8.0", " requests[socks]>=2; python_version >= '3.8' "]) == [
        "tinydb==4.8.0", "requests[socks]>=2; python_version >= '3.8'"]
    direct = "tinydb @ file:///srv/tinydb.whl"
    assert check_requirements([direct], allow_direct=True) == [direct]


def test_dependencies_given_as_one_text_are_refused_instead_of_installing_each_letter():
    with pytest.raises(DependencyInstallError, match="must be a list of requirements"):
        check_requirements("tinydb==4.8.0")


def _argv(network: bool) -> list[str]:
    return bwrap_command("bwrap", True, ["python", "-u", "boot.py"], rw=[("/data/work/run-1", SANDBOX_WORK_DIR)],
                         ro=[], env={"HOME": SANDBOX_WORK_DIR}, network=network, chdir=SANDBOX_WORK_DIR)


def test_the_network_is_shared_only_with_feeds_that_have_it():
    assert "--share-net" not in _argv(network=False)
    assert "--share-net" in _argv(network=True)
    argv = _argv(network=False)
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in argv
    assert argv[argv.index("--uid") + 1] == "65534"
    assert "/data" not in argv[:argv.index("--bind")]  # the data dir: only the run's own work dir
    assert argv[-4:] == ["--", "python", "-u", "boot.py"]


def test_status_says_how_scripts_are_isolated_here(tributary):
    status = isolation_status(get_settings())
    if not status.isolated:
        missing_service(f"bubblewrap does not isolate scripts on this machine: {status.problem}")
    assert status.how.startswith("bubblewrap")
    from core.housekeeping import health

    assert health()["sandbox"] == status.as_dict()

    from app_pages.view_models.settings_view import runner_status

    shown = runner_status()
    assert shown.ok and shown.message.startswith("Scripts run isolated: bubblewrap")


def test_leftover_empty_cgroups_are_removed_and_live_ones_kept():
    cgroup = RunCgroup.create("leftover-test", memory_mb=64, pids=8, cpus=0.5)
    if cgroup is None:
        missing_service("no cgroup can be created on this machine (cgroup v1 or delegated v2)")
    assert "leftover-test" in remove_leftover_cgroups()
    assert not any(path.exists() for path in cgroup.dirs.values())


def test_an_install_sees_the_environment_it_builds_and_nothing_else_of_the_data_dir(tmp_path):
    from runners.subprocess_runner import install_command

    env_dir = tmp_path / "data" / "envs" / "0123456789abcdef"
    with install_command("bwrap", True, None, ["uv", "pip", "install", "tinydb"], env_dir,
                         {"HOME": str(env_dir)}) as argv:
        pass
    assert "--share-net" in argv  # installs fetch from the package index
    mounted = [argv[i + 2] for i, arg in enumerate(argv) if arg in ("--bind", "--ro-bind", "--ro-bind-try")]
    assert [path for path in mounted if path.startswith(str(tmp_path))] == [str(env_dir)]
    assert argv[argv.index("--bind") + 1:argv.index("--bind") + 3] == [str(env_dir), str(env_dir)]


def test_without_cgroups_rlimits_stand_in_and_the_log_says_so(tributary, monkeypatch):
    import runners.sandbox as sandbox
    from core.preview import PreviewRequest, preview_script

    if not isolation_status(get_settings()).isolated:
        missing_service("bubblewrap cannot isolate scripts on this machine")
    monkeypatch.setenv("TRIBUTARY_RUNNER", "subprocess")
    monkeypatch.setattr(sandbox, "_group_dirs", lambda: ({}, "cgroup"))
    script = "blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 1024 * 1024))\n"
    result = preview_script(PreviewRequest(script=script, memory_limit_mb=256, timeout_s=60))
    assert not result.ok and "memory limit of 256 MB exceeded" in result.error, result.error
    first = result.logs[0]
    assert "memory 256 MB per process (rlimit" in first, first
    assert ("processes not limited" in first) if os.geteuid() == 0 else ("processes 256 more" in first)
    assert "CPU time" in first


def test_auto_network_is_private_behind_a_login_and_the_hosts_otherwise(tributary, monkeypatch, tmp_path):
    from runners.sandbox import network_mode

    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml of the project's
    monkeypatch.delenv("TRIBUTARY_SANDBOX_NETWORK", raising=False)
    monkeypatch.delenv("TRIBUTARY_PASSWORD_HASH", raising=False)
    assert network_mode(get_settings()) == "host"
    monkeypatch.setenv("TRIBUTARY_PASSWORD_HASH", "pbkdf2:anything")
    assert network_mode(get_settings()) == "private"
    monkeypatch.setenv("TRIBUTARY_SANDBOX_NETWORK", "host")  # an explicit choice stands
    assert network_mode(get_settings()) == "host"
