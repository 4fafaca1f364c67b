"""Dependency images of the docker runner: built on a set's first run (the build streams into
the run's log), reused by later runs, built once when two runs need a new set at the same
time; and the host CA bundle reaches the container when configured."""

import io
import threading
from pathlib import Path

from docker.errors import NotFound

from core.preview import PreviewRequest, preview_script
from runners.docker_images import builds_started
from tests.runners.conftest import docker_engine

USES_TINYDB = "import tinydb\nfrom lib import outputStream\noutputStream.write({'version': tinydb.__version__})\n"


def builds() -> int:
    return sum(builds_started.values())


def test_a_dependency_set_is_built_once_then_reused(docker_runner):
    before = builds()
    first = preview_script(PreviewRequest(script=USES_TINYDB, dependencies=["tinydb==4.7.1"]))
    assert first.ok, "\n".join(first.logs)
    assert first.records == [{"version": "4.7.1"}]
    assert any("Successfully installed tinydb-4.7.1" in line for line in first.logs)  # pip's own output
    assert builds() == before + 1

    second = preview_script(PreviewRequest(script=USES_TINYDB, dependencies=[" tinydb==4.7.1 "]))
    assert second.ok and second.records == [{"version": "4.7.1"}]
    assert builds() == before + 1
    assert any("using cached environment image" in line for line in second.logs)


def test_two_runs_needing_the_same_new_set_build_it_once(docker_runner):
    before = builds()
    results = []

    def run() -> None:
        results.append(preview_script(PreviewRequest(script=USES_TINYDB, dependencies=["tinydb==4.7.0"])))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    assert [r.records for r in results] == [[{"version": "4.7.0"}]] * 2, [r.error for r in results]
    assert builds() == before + 1
    assert sorted(any("using cached environment image" in line for line in r.logs) for r in results) == [False, True]


READS_CA = '''
import os
from lib import outputStream
with open("/etc/ssl/certs/ca-certificates.crt") as handle:
    first_line = handle.readline().strip()
outputStream.write({"first_line": first_line, "requests_uses": os.environ.get("REQUESTS_CA_BUNDLE")})
'''


def test_the_configured_ca_bundle_is_what_the_container_trusts(docker_runner, monkeypatch, tmp_path):
    bundle = tmp_path / "corporate-ca.crt"
    system_bundle = Path("/etc/ssl/certs/ca-certificates.crt").read_text()
    bundle.write_text("# corporate proxy CA for tributary\n" + system_bundle)
    monkeypatch.setenv("TRIBUTARY_DOCKER_CA_BUNDLE", str(bundle))
    result = preview_script(PreviewRequest(script=READS_CA))
    assert result.ok, result.error
    assert result.records == [{"first_line": "# corporate proxy CA for tributary",
                               "requests_uses": "/etc/ssl/certs/ca-certificates.crt"}]

    monkeypatch.setenv("TRIBUTARY_DOCKER_CA_BUNDLE", "none")
    result = preview_script(PreviewRequest(script=READS_CA))
    assert result.ok, result.error
    assert result.records[0]["first_line"] != "# corporate proxy CA for tributary"
    assert result.records[0]["requests_uses"] is None


def _dependency_image(engine, repository: str, name: str, base_id: str, session_tag: str) -> str:
    """A small image labelled as a dependency image built on base_id (no pip: only the labels
    matter to the clean-up); its tag. The name is a label too, so that each is an image of its
    own, as real sets are (tags of one image come off without any check)."""
    tag = f"{repository}-deps:{name}"
    dockerfile = (f"FROM {session_tag}\nLABEL tributary.role=dependencies tributary.base-image={base_id} "
                  f"tributary.dependencies=tinydb tributary.test-name={name}\n")
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True)
    return tag


def _exists(get, key: str) -> bool:
    """Whether the engine has it: get is engine.images.get or engine.containers.get."""
    try:
        get(key)
        return True
    except NotFound:  # ImageNotFound included
        return False


def test_dependency_images_of_an_earlier_runner_image_are_removed_at_start_up(docker_runner, docker_session_image):
    from runners.docker_runner import remove_old_images

    engine = docker_engine()
    base = engine.images.get(docker_session_image)
    repository = docker_session_image.rpartition(":")[0]
    current = _dependency_image(engine, repository, "current", base.id, docker_session_image)
    stale = _dependency_image(engine, repository, "stale", "sha256:" + "0" * 64, docker_session_image)
    in_use = _dependency_image(engine, repository, "stale-in-use", "sha256:" + "1" * 64, docker_session_image)
    other_install = _dependency_image(engine, "another-runner", "stale", "sha256:" + "2" * 64, docker_session_image)
    container = engine.containers.create(in_use, command=["true"])
    try:
        assert remove_old_images() == [stale]
        assert [_exists(engine.images.get, t) for t in (current, stale, in_use, other_install)] == [True, False, True, True]

        container.remove()
        assert remove_old_images() == [in_use]  # once no container holds it
        assert _exists(engine.images.get, current)
    finally:
        if _exists(engine.containers.get, container.id):
            container.remove(force=True)
        for tag in (current, in_use, other_install):
            if _exists(engine.images.get, tag):
                engine.images.remove(tag, force=True)


def test_dependency_images_nothing_named_or_used_for_two_weeks_are_removed_at_start_up(docker_runner, monkeypatch,
                                                                                         docker_session_image):
    import fcntl
    import os
    import time
    import uuid

    from common.settings import get_settings
    from runners.docker_images import dependency_tag, remove_unused_images

    # A runner image of this test's own, so that the images other tests built stay.
    engine = docker_engine()
    # Its repository is unique too: the clean-up looks at one repository's images only, so a
    # shared name would let two test sessions on one engine remove each other's images.
    own_base = f"tributary-test-{uuid.uuid4().hex[:8]}-cleanup:base"
    engine.images.build(fileobj=io.BytesIO(f"FROM {docker_session_image}\nLABEL tributary.test={own_base}\n".encode()),
                        tag=own_base, rm=True, forcerm=True)
    monkeypatch.setenv("TRIBUTARY_DOCKER_IMAGE", own_base)
    settings = get_settings()
    base = engine.images.get(own_base)
    repository = own_base.rpartition(":")[0]

    def image_of(dependencies: list[str]) -> tuple[str, Path]:
        tag = dependency_tag(own_base, base.id, dependencies)
        _dependency_image(engine, repository, tag.rpartition(":")[2], base.id, own_base)
        return tag, settings.data_dir / "docker-builds" / f"{tag.rpartition(':')[2]}.lock"

    # The clock stands two hours on and "unused" means an hour: what decides is the name, the
    # set's lock file (its time, whether it is held, whether this data dir has one) and a container.
    now, unused_for_s = time.time() + 7200, 3600
    named, named_lock = image_of(["six==1.16.0"])
    unnamed, unnamed_lock = image_of(["tinydb==4.8.0"])
    used_lately, used_lock = image_of(["tinydb==4.7.0"])
    locked, held_lock = image_of(["tinydb==4.6.0"])
    in_use, in_use_lock = image_of(["tinydb==4.5.0"])
    of_another_data_dir, _ = image_of(["tinydb==4.4.0"])  # no lock file here
    for lock in (named_lock, unnamed_lock, used_lock, held_lock, in_use_lock):
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.touch()  # a run used the set now, two hours before the clock
    os.utime(used_lock, (now - 60, now - 60))  # a run opened it a minute before the clock
    container = engine.containers.create(in_use, command=["true"])
    tags = (named, unnamed, used_lately, locked, in_use, of_another_data_dir)
    try:
        with open(held_lock, "a") as holder:  # a run taking this image right now
            fcntl.flock(holder, fcntl.LOCK_EX)
            removed = remove_unused_images(engine, settings, [["six==1.16.0"], []], unused_for_s, now)
        assert removed == [unnamed]
        assert [_exists(engine.images.get, t) for t in tags] == [True, False, True, True, True, True]
    finally:
        container.remove(force=True)
        for tag in (*tags, own_base):
            if _exists(engine.images.get, tag):
                engine.images.remove(tag, force=True)
