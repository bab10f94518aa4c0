"""The Ray cluster a study runs on: the one at driver.address, or a local one started here.

Given an address, the driver only ever connects: where nothing answers it stops with one line
naming driver.address, and it never starts a cluster of its own instead. Without one it starts
a local cluster with at least K * cpus_per_trial CPUs (--parallel K), so that K trials do run
at once, and stops it at the end. A cluster already initialized in this process (a notebook's,
a test session's) is used and left running.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from runner.errors import UserInputError


@contextlib.contextmanager
def ray_cluster(options: Mapping[str, Any], parallel: int) -> Iterator[None]:
    """Join the cluster at options['address'] or start a local one; leave it as it was found."""
    import ray

    if ray.is_initialized():  # the caller's (a notebook's, a test session's): leave it be
        _check_resources(options, ray.cluster_resources())
        yield
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    address = options["address"]
    if address:
        hint = "start one with `ray start --head` or leave address unset for a local one"
        if address != "auto" and not _answers(address):  # ray.init would wait for minutes
            raise UserInputError(f"driver.address {address}: nothing answers there; {hint}")
        try:  # with an address, ray.init only ever connects
            ray.init(address=address, **quiet)
        except ConnectionError as err:
            # Ray 2.60's `ray start` turns token authentication on where ~/.ray/auth_token
            # exists; a driver joining by address sends a token only with RAY_AUTH_MODE=token.
            if not os.environ.get("RAY_AUTH_MODE"):
                hint = f"if the cluster uses token authentication, set RAY_AUTH_MODE=token; {hint}"
            raise UserInputError(
                f"driver.address {address}: could not join a Ray cluster there ({err}); {hint}"
            ) from None
    else:  # its workers import what this process can, as spawned worker processes do
        paths = os.pathsep.join(p for p in sys.path if p)
        cpus = max(os.cpu_count() or 1, math.ceil(parallel * options["cpus_per_trial"]))
        ray.init(
            num_cpus=cpus,
            include_dashboard=False,
            runtime_env={"env_vars": {"PYTHONPATH": paths}},
            **quiet,
        )
    try:
        _check_resources(options, ray.cluster_resources())
        yield
    finally:
        ray.shutdown()


def _answers(address: str) -> bool:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError):
        return False
    return True


def _check_resources(options: Mapping[str, Any], cluster: Mapping[str, float]) -> None:
    for key, resource in (("cpus_per_trial", "CPU"), ("gpus_per_trial", "GPU")):
        if options[key] > cluster.get(resource, 0):
            raise UserInputError(
                f"driver.{key}: a trial asks for {options[key]:g} {resource}; "
                f"the Ray cluster has {cluster.get(resource, 0):g}"
            )
