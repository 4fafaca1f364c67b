"""The docker runner's link to the Docker engine: clients, a clear message when the engine is
unreachable, and the labels by which a restarted app finds the containers its previous life
left behind (killed mid-run, it could not remove them).

The engine is found the way the docker CLI finds it: DOCKER_HOST, else the local socket.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import threading

import docker
import requests
from docker.errors import DockerException

from common.errors import TributaryError
from common.process import alive

SANDBOX_LABEL = "tributary.sandbox"  # on every container the docker runner creates
OWNER_LABEL = "tributary.owner"  # host:pid:start time of the process that created it
RUN_LABEL = "tributary.run"
CONTROL_TIMEOUT_S = 30
STREAM_POOL_SIZE = 64  # two long-lived connections (logs, wait) per concurrent run
SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address

_clients: dict[tuple[str, bool], docker.DockerClient] = {}
_clients_lock = threading.Lock()
_leftovers_checked: set[str] = set()


class DockerUnavailable(TributaryError):
    """The engine cannot be reached: feeds on the docker runner cannot run, others can."""


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _unreachable(exc: Exception) -> DockerUnavailable:
    reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return DockerUnavailable(
        f"Docker engine not reachable at {engine_address()}: {reason}. Start the engine (dockerd) "
        "or point DOCKER_HOST at it; feeds on the subprocess runner are not affected."
    )


def client(streaming: bool = False) -> docker.DockerClient:
    """A client for the engine. Control calls time out; the streaming client (logs, wait,
    image builds) must not, since a script may stay silent for longer than any timeout."""
    key = (engine_address(), streaming)
    with _clients_lock:
        cached = _clients.get(key)
    if cached is not None:
        return cached
    try:
        if streaming:
            created = docker.from_env(timeout=None, max_pool_size=STREAM_POOL_SIZE)
        else:
            created = docker.from_env(timeout=CONTROL_TIMEOUT_S)
    except (DockerException, requests.RequestException) as exc:
        raise _unreachable(exc) from exc
    with _clients_lock:
        return _clients.setdefault(key, created)


def ping() -> docker.DockerClient:
    """The control client, after checking that the engine answers now."""
    engine = client()
    try:
        engine.ping()
    except (DockerException, requests.RequestException) as exc:
        raise _unreachable(exc) from exc
    return engine


def remove_leftover_containers(engine: docker.DockerClient) -> list[str]:
    """Remove sandbox containers whose creating process on this host is gone. Containers of
    live processes (the CLI running a feed next to the app) are left alone."""
    removed = []
    for container in engine.containers.list(all=True, filters={"label": SANDBOX_LABEL}):
        if alive(container.labels.get(OWNER_LABEL, "")):
            continue
        try:
            container.remove(force=True)
            removed.append(container.labels.get(RUN_LABEL, container.short_id))
        except DockerException:
            continue  # removed meanwhile by another process's clean-up
    return removed


def remove_leftovers_once(engine: docker.DockerClient) -> list[str]:
    """Start-up clean-up, done by the first run of each process against each engine."""
    address = engine_address()
    with _clients_lock:
        if address in _leftovers_checked:
            return []
        _leftovers_checked.add(address)
    return remove_leftover_containers(engine)


def _interface_address(name: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
    return socket.inet_ntoa(packed[20:24])


def bridge_gateway() -> str | None:
    """The host's address on the engine's default bridge: where a service on the host must
    listen for scripts on the bridge network to reach it. None without a local engine."""
    try:
        bridge = client().networks.get("bridge").attrs
        gateways = [config["Gateway"] for config in bridge["IPAM"]["Config"] if config.get("Gateway")]
        if gateways:
            return gateways[0]
        # Engines that leave the gateway out of IPAM: ask the bridge's interface on this host.
        return _interface_address(bridge["Options"]["com.docker.network.bridge.name"])
    except Exception:  # noqa: BLE001 - no engine, a remote engine, not Linux: no such address here
        return None
