"""Images for the docker runner: the base runner image (built by docker/build-base-image.sh or
docker/Dockerfile) and, per dependency set, a derived image with the set pip-installed into
the base's virtual environment, tagged by a hash of the base image and the set.

The first run that needs a set builds its image, streaming the build's output into the run's
log; later runs reuse it. A lock file per set makes two runs that need the same new set at
once (threads or processes of this data dir) build it once: the second waits, then reuses.
Each run opens (and so touches) its set's lock file in this data dir: its time is the set's
last use, which remove_unused_images() reads.
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import io
import os
import re
import tarfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import docker
import requests
from docker.errors import DockerException, ImageNotFound
from docker.utils import parse_repository_tag

from common.errors import TributaryError
from common.settings import Settings
from runners.envs import UNUSED_FOR_S, DependencyInstallError, check_requirements

CA_IN_IMAGE_BUILD = "build-ca.crt"
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
# The classic builder's bookkeeping between steps: nothing a user acts on.
BUILDER_NOISE = re.compile(r"^( ---> |Removing intermediate container )")
BUILD_TAIL_LINES = 15

# Dependency images this process started building, by tag: how tests and bench/ see that a
# set was built once and then reused.
builds_started: collections.Counter[str] = collections.Counter()

DEPENDENCY_DOCKERFILE = """\
FROM {base}
USER root
COPY requirements.txt {ca_pattern} /opt/tributary/build/dependencies/
RUN if [ -f /opt/tributary/build/dependencies/{ca} ]; then \\
        export PIP_CERT=/opt/tributary/build/dependencies/{ca}; fi \\
 && pip install --no-cache-dir --disable-pip-version-check \\
        -r /opt/tributary/build/dependencies/requirements.txt
USER {user}
"""


class RunnerImageMissing(TributaryError):
    pass


def normalised(dependencies: list[str]) -> list[str]:
    return sorted({dep.strip() for dep in dependencies if dep.strip()})


def base_image(engine: docker.DockerClient, settings: Settings):
    try:
        return engine.images.get(settings.docker_image)
    except ImageNotFound:
        raise RunnerImageMissing(
            f"the runner image {settings.docker_image} is not on the Docker engine: build it with "
            "docker/build-base-image.sh (no registry needed) or "
            f"`docker build -f docker/Dockerfile -t {settings.docker_image} .`"
        ) from None


def dependency_tag(base_name: str, base_id: str, dependencies: list[str]) -> str:
    """<base repository>-deps:<hash>. The base image's id is in the hash, so rebuilding the
    base (a new Python, a new lib) gives every set a fresh image."""
    repository, _ = parse_repository_tag(base_name)
    key = "\n".join([base_id, *normalised(dependencies)])
    return f"{repository}-deps:{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _context(base_id: str, user: str, dependencies: list[str], ca_bundle: Path | None) -> io.BytesIO:
    """The build context, in memory: a Dockerfile, the requirements file (no shell quoting
    of `pkg>=1` anywhere) and the CA bundle pip must trust, if any."""
    files = {
        "Dockerfile": DEPENDENCY_DOCKERFILE.format(
            base=base_id, user=user or "root", ca=CA_IN_IMAGE_BUILD,
            ca_pattern=CA_IN_IMAGE_BUILD[:-1] + "[t]",  # a pattern: COPY accepts no match
        ).encode(),
        "requirements.txt": ("\n".join(dependencies) + "\n").encode(),
    }
    if ca_bundle is not None:
        files[CA_IN_IMAGE_BUILD] = ca_bundle.read_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _build(streaming: docker.DockerClient, tag: str, context: io.BytesIO, labels: dict, network: str,
           build_args: dict, on_log: Callable[[str], None]) -> None:
    tail: collections.deque[str] = collections.deque(maxlen=BUILD_TAIL_LINES)
    try:
        chunks = streaming.api.build(
            fileobj=context, custom_context=True, tag=tag, labels=labels, network_mode=network,
            buildargs=build_args, rm=True, forcerm=True, pull=False, decode=True,
        )
        for chunk in chunks:
            text = ANSI_COLOUR.sub("", chunk.get("stream") or chunk.get("error") or "")
            for line in text.splitlines():
                if line.strip() and not BUILDER_NOISE.match(line):
                    on_log(line)
                    tail.append(line)
            if "error" in chunk:
                raise DependencyInstallError("installing the dependencies failed:\n" + "\n".join(tail))
    except (DockerException, requests.RequestException) as exc:
        raise DependencyInstallError(f"building the dependency image failed: {exc}") from exc


def ensure_image(engine: docker.DockerClient, streaming: docker.DockerClient, settings: Settings,
                 dependencies: list[str], ca_bundle: Path | None, build_args: dict,
                 on_log: Callable[[str], None]) -> str:
    """The id of the image a job runs in: the base, or its set's image (built if missing)."""
    check_requirements(dependencies, settings.allow_direct_requirements)  # URLs and files: as on the host
    base = base_image(engine, settings)
    deps = normalised(dependencies)
    if not deps:
        return base.id
    tag = dependency_tag(settings.docker_image, base.id, deps)
    lock_path = _lock_path(settings, tag)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:  # opening it for writing marks the set's last use
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second run with the same set waits, then reuses
        try:
            image = engine.images.get(tag)
            on_log(f"using cached environment image {tag} for {', '.join(deps)}")
            return image.id
        except ImageNotFound:
            pass
        on_log(f"building environment image {tag} for {', '.join(deps)}")
        builds_started[tag] += 1
        labels = {"tributary.role": "dependencies", "tributary.base-image": base.id,
                  "tributary.dependencies": ", ".join(deps)}
        # The build's pip needs the package index, even for feeds whose runs have no network.
        network = "bridge" if settings.docker_network == "none" else settings.docker_network
        context = _context(base.id, base.attrs["Config"].get("User", ""), deps, ca_bundle)
        _build(streaming, tag, context, labels, network, build_args, on_log)
        return engine.images.get(tag).id


def _lock_path(settings: Settings, tag: str) -> Path:
    return settings.data_dir / "docker-builds" / f"{tag.rpartition(':')[2]}.lock"


def remove_stale_images(engine: docker.DockerClient, settings: Settings) -> list[str]:
    """Remove the dependency images built on an earlier build of the base image: their tag's
    hash holds the base's id, so once the base is rebuilt no run can use them again, and each
    may hold hundreds of megabytes. Only this base's repository is looked at (another
    TRIBUTARY_DOCKER_IMAGE on the same engine keeps its own), and an image a container still
    uses is left for a later start-up. Without the base image nothing is judged. Returns the
    tags removed."""
    try:
        base = base_image(engine, settings)
    except RunnerImageMissing:
        return []
    prefix = parse_repository_tag(settings.docker_image)[0] + "-deps:"
    removed = []
    for image in engine.images.list(filters={"label": "tributary.role=dependencies"}):
        tags = [t for t in image.tags if t.startswith(prefix)]
        if not tags or image.labels.get("tributary.base-image") == base.id:
            continue
        for tag in tags:  # the last tag's removal removes the image
            try:
                engine.images.remove(tag)
            except (DockerException, requests.RequestException):
                continue  # in use by a container, or removed meanwhile by another process
            removed.append(tag)
    return removed


def remove_unused_images(engine: docker.DockerClient, settings: Settings, named: Iterable[list[str]],
                         unused_for_s: float = UNUSED_FOR_S, now: float | None = None) -> list[str]:
    """Remove the dependency images of the current base whose set no feed or draft names
    (`named`: their dependencies) and that no run of this data dir has used for unused_for_s,
    by the set's lock file: as with the subprocess runner's environments (runners/envs.py),
    each may hold hundreds of megabytes, and a draft makes a new set with every change to its
    dependencies. An image without a lock file here was built for another data dir on the same
    engine and is its business; one being built or starting a run holds its lock, and one a
    container uses cannot go: both stay. Returns the tags removed."""
    try:
        base = base_image(engine, settings)
    except RunnerImageMissing:
        return []
    prefix = parse_repository_tag(settings.docker_image)[0] + "-deps:"
    keep = {dependency_tag(settings.docker_image, base.id, deps) for deps in named if normalised(deps)}
    cutoff = (time.time() if now is None else now) - unused_for_s
    removed = []
    for image in engine.images.list(filters={"label": f"tributary.base-image={base.id}"}):
        for tag in image.tags:
            if tag.startswith(prefix) and tag not in keep and _unused_here(_lock_path(settings, tag), cutoff, engine, tag):
                removed.append(tag)
    return removed


def _unused_here(lock_path: Path, cutoff: float, engine: docker.DockerClient, tag: str) -> bool:
    """Remove the image if this data dir's runs last used it before the cutoff; whether it went."""
    if not _used_before(lock_path, cutoff):
        return False
    with open(lock_path, "a") as lock:  # "a": opening it must not mark a use
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a run is taking the image right now
        if not _used_before(lock_path, cutoff):
            return False  # used while the lock was being taken
        try:
            engine.images.remove(tag)
            return True
        except (DockerException, requests.RequestException):
            return False  # a container uses it, or another process removed it meanwhile


def _used_before(lock_path: Path, cutoff: float) -> bool:
    try:
        return os.stat(lock_path).st_mtime < cutoff
    except FileNotFoundError:
        return False  # never used from this data dir
