"""Options of `--engine ray` (light: no Ray import, so `hiddenemo --help` stays fast and the local
engine never loads Ray)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hiddenemo.errors import UserError

Engine = Literal["local", "ray"]


@dataclass
class RayOptions:
    """The Ray engine: a pool of actors, each loading its models once."""

    actors: int = 0
    """Actors in the pool (0 = as many as the cluster's CPUs allow at cpus_per_actor each)."""
    cpus_per_actor: float = 1.0
    """CPUs Ray reserves per actor; extraction also runs this many model threads per actor
    (unless --extract.threads says otherwise)."""
    gpus_per_actor: float = 0.0
    """GPUs Ray reserves per actor (e.g. 1, or 0.5 to share one GPU between two actors)."""
    retries: int = 2
    """Times a video is tried again after its actor process died (crash, out of memory, node lost);
    a video that fails in the ordinary way (an unreadable file) is recorded at once."""
    requests_per_minute: float = 0.0
    """teach: a global rate limit across all actors, in teacher requests per minute (0 = none)."""
    burst: int = 1
    """teach: requests that may start at once before the rate limit spaces them out."""

    def check(self) -> "RayOptions":
        if self.actors < 0 or self.cpus_per_actor <= 0 or self.gpus_per_actor < 0 or self.retries < 0:
            raise UserError("--ray.actors, --ray.retries and --ray.gpus_per_actor must be >= 0 and "
                            f"--ray.cpus_per_actor > 0 (got {self})")
        if self.requests_per_minute < 0 or self.burst < 1:
            raise UserError(f"--ray.requests_per_minute must be >= 0 and --ray.burst >= 1 (got {self})")
        return self


def check_engine(engine: str, address: str | None) -> None:
    """`--address` only means something for the Ray engine."""
    if engine not in ("local", "ray"):
        raise UserError(f"--engine must be local or ray, got {engine!r}")
    if address and engine != "ray":
        raise UserError(f"--address {address} needs --engine ray (the local engine runs on this machine only)")

