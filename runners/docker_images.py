"""Images for the docker runner: the base runner image (built by docker/build-base-image.sh or
docker/Dockerfile) and, per dependency set, a derived image with the set pip-installed into
the base's virtual environment, tagged by a hash of the base image and the set.

The first run that needs a set builds its image, streaming the build's output into the run's
log; later runs reuse it. A lock file per set makes two runs that need the same new set at
once (threads or processes of this data dir) build it once: the second waits, then reuses.
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import io
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import docker
import requests
from docker.errors import DockerException, ImageNotFound
from docker.utils import parse_repository_tag

from core.errors import TributaryError
from core.settings import Settings
from runners.envs import DependencyInstallError

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
    base = base_image(engine, settings)
    deps = normalised(dependencies)
    if not deps:
        return base.id
    tag = dependency_tag(settings.docker_image, base.id, deps)
    locks = settings.data_dir / "docker-builds"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{tag.rpartition(':')[2]}.lock", "w") as lock:
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
