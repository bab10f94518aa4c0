"""Starting trials on several processes (torchrun) and giving concurrent trials their own GPUs.

- `hpo train --nproc N` (or train.nproc: N in the experiment) runs the same command again under
  `torchrun --standalone --nproc_per_node N` (train_command, run_torchrun): every rank builds
  the config from the same YAML and overrides, and runs run_trial, which trains them as one.
- A search trial whose config has train.nproc > 1 runs under torchrun from the trial's own
  process (run_distributed_trial): each rank runs `python -m hpo.launch`; rank 0 receives the
  trial's config over a local authenticated socket and run_trial broadcasts it to the other
  ranks; rank 0's report() and should_stop() travel back over the socket to the trial's
  reporter (hpo.relay, as a worker process's do), so tracking and pruning work as for a
  one-process trial. If the trial's process dies, rank 0's next report fails and torchrun
  stops every rank.
- `--parallel K` with G GPUs per trial: trial slot k sees only its own GPUs through
  CUDA_VISIBLE_DEVICES (devices_for_trials), so K concurrent trials never share a device.

Example:
    >>> train_command(2, "experiments/lm_tiny.yaml", ["train.nproc=2"])[-6:]
    ['hpo.cli', 'train', '--config', 'experiments/lm_tiny.yaml', '-o', 'train.nproc=2']
    >>> devices_for_trials(2, 2, ["0", "1", "2", "3"])
    ['0,1', '2,3']
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Client, Connection, answer_challenge, deliver_challenge
from typing import Any

from hpo.relay import RelayReporter, answer
from runner.config import TrialConfig, config_from_dict, config_to_dict
from runner.errors import UserInputError
from runner.result import TrialResult

_ADDRESS = "HPO_RANK0_ADDRESS"  # host:port the trial's process listens on for rank 0
_AUTHKEY = "HPO_RANK0_AUTHKEY"  # hex secret rank 0 proves it knows


# ----------------------------------------------------------------------------- torchrun


def under_torchrun() -> bool:
    """Whether this process is a rank started by torchrun."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_main_rank() -> bool:
    """True outside torchrun and on its rank 0: the process that prints and reports."""
    return int(os.environ.get("RANK", "0")) == 0


def torchrun_command(nproc: int, module: str, args: Sequence[str] = ()) -> list[str]:
    """`torchrun --standalone --nproc_per_node nproc -m module args...` with this interpreter.

    `python -m torch.distributed.run` is torchrun itself, and needs no bin folder on PATH.
    --standalone picks a free rendezvous port, so concurrent trials do not collide.
    """
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        module,
        *args,
    ]


def train_command(
    nproc: int,
    config: str,
    overrides: Sequence[str] = (),
    *,
    resume: bool = False,
    quiet: bool = False,
) -> list[str]:
    """The `hpo train` command line that torchrun runs on each of `nproc` ranks.

    `overrides` should set train.nproc=nproc (hpo train --nproc N adds it) so that every rank's
    config says how many processes it trains with.
    """
    args = ["train", "--config", str(config)]
    for override in overrides:
        args += ["-o", override]
    args += ["--resume"] * resume + ["--quiet"] * quiet
    return torchrun_command(nproc, "hpo.cli", args)


def run_torchrun(command: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Run a torchrun command to its end; its exit status (Ctrl-C reaches torchrun too)."""
    process = subprocess.Popen(list(command), env=dict(env) if env is not None else None)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue  # the terminal sent SIGINT to torchrun as well: it stops its ranks


def rank_env(nproc: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a trial's ranks: the cores this process may use, shared among them."""
    env = dict(os.environ if base is None else base)
    threads = int(env.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    env["OMP_NUM_THREADS"] = str(max(1, threads // nproc))
    return env


# ----------------------------------------------------------------------------- search trials


def run_distributed_trial(
    config: TrialConfig, reporter: Any, *, resume: bool = False
) -> TrialResult:
    """Run `config` on config.train.nproc processes under torchrun; rank 0 reports to `reporter`.

    Returns rank 0's TrialResult, or a failed one whose reason says what went wrong when a
    rank raised (a user error in the config too) or died.
    """
    authkey = secrets.token_bytes(32)
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.5)
        host, port = server.getsockname()[:2]
        env = rank_env(config.train.nproc)
        env.update({_ADDRESS: f"{host}:{port}", _AUTHKEY: authkey.hex()})
        args = ["--resume"] if resume else []
        process = subprocess.Popen(
            torchrun_command(config.train.nproc, "hpo.launch", args), env=env
        )
        try:
            conn = _accept_rank_0(server, process, authkey)
            outcome = _serve_rank_0(conn, config, reporter) if conn is not None else None
            code = process.wait()
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait()
    if isinstance(outcome, TrialResult):
        return outcome
    if outcome is None:
        outcome = f"torchrun exited with code {code} before rank 0 finished"
    return TrialResult(
        status="failed",
        objective=config.eval.metric_for_best_model,
        greater_is_better=config.objective_greater_is_better,
        reason=f"{outcome}; see the ranks' output (the trial's output.log under --parallel)",
    )


def _accept_rank_0(
    server: socket.socket, process: subprocess.Popen, authkey: bytes
) -> Connection | None:
    while True:
        try:
            sock, _ = server.accept()
        except TimeoutError:
            if process.poll() is not None:
                return None  # torchrun ended before rank 0 called back
            continue
        sock.setblocking(True)
        conn = Connection(sock.detach())
        try:  # the handshake of multiprocessing's Listener.accept
            deliver_challenge(conn, authkey)
            answer_challenge(conn, authkey)
        except Exception:  # not our rank 0: drop it and keep listening
            conn.close()
            continue
        return conn


def _serve_rank_0(conn: Connection, config: TrialConfig, reporter: Any) -> TrialResult | str | None:
    """Rank 0's messages until it ends: its TrialResult, an error text, or None if it died."""
    with conn:
        conn.send(config_to_dict(config))
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return None
            if answer(message, reporter, conn):
                continue
            if message[0] == "done":
                return TrialResult.from_dict(message[1])
            else:  # "error"
                return f"rank 0 raised {message[1]}"


def main(argv: Sequence[str] | None = None) -> int:
    """One rank of run_distributed_trial (`python -m hpo.launch [--resume]` under torchrun)."""
    from hpo.quiet import apply_inherited
    from runner import NullReporter, run_trial

    apply_inherited()  # --quiet: the study's process silenced third-party warnings and loggers
    resume = "--resume" in (sys.argv[1:] if argv is None else argv)
    if not is_main_rank():
        run_trial(None, NullReporter(), resume=resume)  # the config comes from rank 0
        return 0
    host, port = os.environ[_ADDRESS].rsplit(":", 1)
    with Client((host, int(port)), authkey=bytes.fromhex(os.environ[_AUTHKEY])) as conn:
        config = config_from_dict(conn.recv(), source="the trial's config")
        try:
            result = run_trial(config, RelayReporter(conn), resume=resume)
        except Exception as err:
            conn.send(("error", f"{type(err).__name__}: {err}"))
            raise
        conn.send(("done", dataclasses.asdict(result)))
    return 0


# ----------------------------------------------------------------------------- devices


def visible_gpus() -> list[str]:
    """The GPUs this process may use, named as CUDA_VISIBLE_DEVICES names them."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [name.strip() for name in listed.split(",") if name.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def default_gpus_per_trial(parallel: int, nproc: int, gpus: Sequence[str]) -> int:
    """GPUs per concurrent trial when the user names none: each trial's nproc when every one
    of the `parallel` trials can have its own, else 0 (they share every GPU, as one trial would).
    """
    if parallel == 1 or not gpus:
        return 0
    return nproc if parallel * nproc <= len(gpus) else 0


def devices_for_trials(parallel: int, gpus_per_trial: int, gpus: Sequence[str]) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES of each of `parallel` trial slots: disjoint groups of gpus_per_trial.

    gpus_per_trial 0 gives None for every slot: leave CUDA_VISIBLE_DEVICES as it is. Raises
    UserInputError when the machine has fewer than parallel * gpus_per_trial GPUs.
    """
    if gpus_per_trial < 0:
        raise UserInputError(f"--gpus-per-trial: must be >= 0, got {gpus_per_trial}")
    if gpus_per_trial == 0:
        return [None] * parallel
    needed = parallel * gpus_per_trial
    if needed > len(gpus):
        raise UserInputError(
            f"--parallel {parallel} with {gpus_per_trial} GPU(s) per trial needs {needed} GPUs, "
            f"but {len(gpus)} are visible ({','.join(gpus) or 'none'}); lower --parallel or "
            "--gpus-per-trial, or pass --gpus-per-trial 0 to let the trials share the GPUs"
        )
    return [
        ",".join(gpus[slot * gpus_per_trial : (slot + 1) * gpus_per_trial])
        for slot in range(parallel)
    ]


if __name__ == "__main__":
    sys.exit(main())
