"""Many workers on one search: an Optuna study is the engine, each worker a plain process.

A worker (``run_worker``, or ``nas-predictor search --storage URL --study NAME``) loops: ask the study for a
trial, whose choices our :class:`StrategySampler` fills with the architecture one of our strategies proposes
given every finished trial and the running ones (strategies/proposals.py); claim it; evaluate it; tell the
value. Any number of workers, on any machines that reach the storage, share one search; nothing schedules
them but the storage.

Each trial records, as user attributes, ``arch`` (the arch string), ``worker`` (host:pid), ``key`` (what two
trials of one network share: the equivalence key on a space of whole networks, else the arch), the latency
(``latency_ms``, where a bound is checked) and the oracle's ``report``; its value is the search's value and the
study's best trial is the search's best.

Claims. Proposals do not lock anything: two workers asking at once may be proposed the same architecture.
Before evaluating, a worker claims its trial under a lock shared by all workers of the study (a file lock
beside a journal or SQLite file, a PostgreSQL advisory lock, a MySQL / MariaDB named lock): the claim fails
when a finished or claimed running trial holds the same key (the trial is then pruned, user attribute
``duplicate_of``), or when the finished and claimed running trials already fill the budget (pruned too; the
worker stops). So no architecture is evaluated twice to completion and the completed trials never exceed the
budget.

Faults. With an RDB storage (SQLite, PostgreSQL, MySQL) each running trial beats a heartbeat; a worker killed
mid-evaluation stops beating, the next worker to ask marks its trial failed (Optuna's ``fail_stale_trials``)
and ``RetryHeartbeatStaleTrialCallback`` queues the same choices again, which the next free worker evaluates.
A journal file has no heartbeat in Optuna: there each running trial's worker writes the time into its ``beat``
attribute (every 10 s), and a worker waiting for the last trials fails those whose beat is older than 30 s
and queues their choices again (:func:`fail_silent_trials`), the same rule.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import socket
import sys
import time
import warnings
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from nas_predictor.errors import ArchError, ConfigError
from nas_predictor.online import whole_network_space
from nas_predictor.periodic import periodically
from strategies.base import Strategy
from strategies.constraints import LatencyConstraint
from strategies.oracle import Oracle
from strategies.proposals import ProposalContext, Proposal, propose
from strategies.surrogates import Surrogate

ARCH = "arch"
KEY = "key"
WORKER = "worker"
CLAIMED = "claimed"
LATENCY = "latency_ms"
REPORT = "report"
ERROR = "error"
BEAT = "beat"  # a running trial's last heartbeat (time.time()) on storages without Optuna's
SPACE = "space"  # a study attribute: the space its trials belong to
#: seconds between a running trial's heartbeats, and without one before it counts as dead (RDB storages)
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 30
#: how often a trial whose worker died is queued again
MAX_RETRY = 3
#: seconds a worker waits before looking again when running trials hold the rest of the budget
POLL_SECONDS = 1.0
UNLIMITED = 10**9
#: workers take the claim lock in turn all the time: a wait is news only when it lasts this long
CLAIM_QUIET_SECONDS = 10.0
#: tries to open an RDB storage while other workers create its tables
SCHEMA_ATTEMPTS = 5


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# -- storage -------------------------------------------------------------------------------------------
def open_storage(url: str, heartbeat: tuple[int, int] = (HEARTBEAT_SECONDS, GRACE_SECONDS)):
    """An Optuna storage for ``url``: a path ending in ``.log`` is a journal file (several processes on one
    machine), anything else an RDB URL (``sqlite:///path.db``, ``postgresql://user@host/db``), with a
    heartbeat (seconds between beats, seconds without one before a trial counts as dead) so that the trials of
    a killed worker are retried (``mysql+pymysql://user@host/db`` for MySQL / MariaDB). A bad or unreachable
    URL is a ConfigError naming it."""
    import optuna

    if not url:
        raise ConfigError("--storage needs an Optuna storage URL or a journal file path ending in .log")
    if url.endswith(".log") and "://" not in url:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(url))
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not scheme.startswith(("sqlite", "postgresql", "mysql")):
        raise ConfigError(f"--storage {url!r}: expected sqlite:///FILE.db, postgresql://..., mysql://... or a journal "
                          "file path ending in .log")
    try:
        from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna: said once, here
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return optuna.storages.RDBStorage(
                        url, heartbeat_interval=heartbeat[0], grace_period=heartbeat[1],
                        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                            max_retry=MAX_RETRY))
            except (IntegrityError, ProgrammingError, OperationalError) as exc:
                # workers started together on an empty database all create Optuna's tables; all but one lose
                # that race (a duplicate type or table; MySQL says so, or a deadlock, as an OperationalError):
                # the tables exist now, so look again. Any other OperationalError: the server is not there.
                race = not isinstance(exc, OperationalError) or any(
                    word in str(exc).lower() for word in ("already exists", "deadlock"))
                if attempt == SCHEMA_ATTEMPTS - 1 or not race:
                    raise
                time.sleep(0.2 + random.random())
    except ImportError as exc:
        raise ConfigError(f"--storage {_safe(url)}: the database driver is missing ({exc}); for PostgreSQL: pip install "
                          "'nas-predictor[postgres]' (psycopg); for MySQL / MariaDB: pip install 'nas-predictor[mysql]' "
                          "(PyMySQL) and a mysql+pymysql:// URL") from None
    except Exception as exc:  # SQLAlchemy's OperationalError and friends: the server is not there
        raise ConfigError(f"--storage {_safe(url)}: cannot open the database: {str(exc).splitlines()[0]}") from None


def _safe(url: str) -> str:
    """``url`` without its password."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return repr(url)


@contextlib.contextmanager
def claim_lock(storage: Any, url: str, study_name: str) -> Iterator[None]:
    """The lock every worker of one study takes to claim a trial (see the module docstring)."""
    from nas_predictor.io import file_lock

    if url.endswith(".log") and "://" not in url:
        with file_lock(f"{url}.{study_name}.claim.lock", f"claims of study {study_name!r}", wait=True,
                       quiet_seconds=CLAIM_QUIET_SECONDS):
            yield
        return
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        with file_lock(f"{path}.{study_name}.claim.lock", f"claims of study {study_name!r}", wait=True,
                       quiet_seconds=CLAIM_QUIET_SECONDS):
            yield
        return
    if url.startswith("postgresql"):
        from sqlalchemy import text

        # one lock per study (advisory locks are numbered): the first 8 bytes of a hash of its name
        key = int.from_bytes(hashlib.blake2b(study_name.encode(), digest_size=8).digest(), "big", signed=True)
        with storage.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    if url.startswith("mysql"):
        from sqlalchemy import text

        # a named lock (GET_LOCK), held by this connection until released; names are at most 64 characters
        name = "nas_predictor_claim_" + hashlib.blake2b(study_name.encode(), digest_size=16).hexdigest()
        with storage.engine.connect() as conn:
            # GET_LOCK waits at most its timeout (1 on success, 0 on timeout): wait as long as it takes
            told = False
            while conn.execute(text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": CLAIM_QUIET_SECONDS}).scalar() != 1:
                if not told:
                    told = True
                    print(f"waiting for the claims of study {study_name!r} (lock {name}) ...", file=sys.stderr,
                          flush=True)
            try:
                yield
            finally:
                conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})
                conn.commit()
        return
    raise ConfigError(f"--storage {_safe(url)}: claims need a journal file, SQLite, PostgreSQL or MySQL")


# -- the sampler ---------------------------------------------------------------------------------------
def _sampler_base():
    import optuna

    return optuna.samplers.BaseSampler


class StrategySampler(_sampler_base()):
    """An Optuna sampler whose trials are the architectures one of our strategies proposes.

    Pass it to ``optuna.create_study(sampler=...)``; in the objective, suggest each of ``space.choices()``
    with ``trial.suggest_categorical(name, list(values))`` and read the architecture with
    ``space.from_choices``. Every trial is proposed from all finished trials (their ``value`` and ``arch``
    user attribute, or their choices) and with the running and waiting ones excluded, by ``strategy`` with
    its own random stream per worker seed and trial number. Choices outside ``space.choices()`` are
    sampled at random. When the strategy has nothing left to propose the trial's choices are random too.
    """

    def __init__(self, space: Any, strategy: Strategy, surrogate: Surrogate | None = None,
                 constraint: LatencyConstraint | None = None, budget: int | None = None, seed: int = 0) -> None:
        import optuna

        if strategy.needs_surrogate and surrogate is None:
            raise ConfigError(f"strategy {strategy.name!r} needs a surrogate (a predictor)")
        self.space = space
        self.strategy = strategy
        self.surrogate = surrogate
        self.constraint = constraint
        self.budget = budget
        self.seed = int(seed)
        self._choices = {name: list(values) for name, values in space.choices()}
        self._random = optuna.samplers.RandomSampler(seed=self.seed)
        self.last_proposal: Proposal | None = None

    def infer_relative_search_space(self, study, trial) -> dict:
        from optuna.distributions import CategoricalDistribution

        return {name: CategoricalDistribution(values) for name, values in self._choices.items()}

    def sample_relative(self, study, trial, search_space: dict) -> dict:
        if not search_space:
            return {}
        proposal = self.propose(study, trial.number)
        self.last_proposal = proposal
        if proposal is None:
            return {}
        values = self.space.to_choices(proposal.arch)
        return {name: values[name] for name in search_space if name in values}

    def sample_independent(self, study, trial, param_name: str, param_distribution) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def propose(self, study, number: int) -> Proposal | None:
        """What ``strategy`` evaluates next, given the study's trials (trial ``number`` is the one asking)."""
        finished, pending = study_records(study, self.space, exclude=number)
        rng = np.random.default_rng([self.seed, number])
        ctx = ProposalContext.of(self.space, finished, pending, self.budget or UNLIMITED, rng,
                                 self.constraint, self.surrogate)
        return propose(self.strategy, ctx)


def trial_arch(trial, space: Any) -> str | None:
    """The architecture of a (frozen) trial: its ``arch`` attribute, else its choices; None when neither
    names one (a trial still being set up)."""
    arch = trial.user_attrs.get(ARCH)
    if arch:
        return arch
    names = [name for name, _ in space.choices()]
    if all(name in trial.params for name in names):
        try:
            return space.from_choices({name: trial.params[name] for name in names})
        except ArchError:
            return None
    return None


def study_records(study, space: Any, exclude: int | None = None) -> tuple[list[dict], list[str]]:
    """(the finished trials as search records, in the order they finished; the architectures of the running
    and waiting trials other than trial ``exclude``)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE and t.value is not None),
                  key=lambda t: (t.datetime_complete, t.number))
    records = []
    for t in done:
        arch = trial_arch(t, space)
        if arch is not None:
            records.append({"arch": arch, "value": float(t.value), "status": "ok", "report": t.user_attrs.get(REPORT, {}),
                            "latency_ms": t.user_attrs.get(LATENCY), "trial": t.number})
    for t in trials:  # what the oracle could not evaluate is known too: a sequential search never retries it
        if t.state == TrialState.FAIL and t.user_attrs.get(ERROR):
            arch = trial_arch(t, space)
            if arch is not None:
                records.append({"arch": arch, "value": None, "status": "failed", "report": {}, "latency_ms": None,
                                "error": t.user_attrs[ERROR], "trial": t.number})
    pending = [a for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING) and t.number != exclude
               for a in [trial_arch(t, space)] if a is not None]
    return records, pending


# -- the worker ----------------------------------------------------------------------------------------
class _Stop(Exception):
    """The study's budget is filled by finished and claimed trials: this worker is done."""


def _key(space: Any, arch: str) -> str:
    return space.equivalence_key(arch) if whole_network_space(space) else arch


def claim(study, trial, space: Any, arch: str, budget: int) -> str | None:
    """Mark ``trial`` claimed for ``arch`` unless a finished or claimed running trial has its key (returns
    that trial's number as the reason) or the budget is filled (raises _Stop). Run under claim_lock."""
    from optuna.trial import TrialState

    key = _key(space, arch)
    busy = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
        if t.number == trial.number:
            continue
        live = t.state == TrialState.COMPLETE or t.user_attrs.get(CLAIMED)
        if not live:
            continue
        busy += 1
        if t.user_attrs.get(KEY) == key:
            return f"trial {t.number}"
    if busy >= budget:
        raise _Stop
    trial.set_user_attr(KEY, key)
    trial.set_user_attr(CLAIMED, True)
    return None


def objective_for(space: Any, oracle: Oracle, constraint: LatencyConstraint | None, budget: int,
                  lock, beat_seconds: float | None = None) -> Any:
    """The function each worker optimizes: the trial's choices -> its architecture -> claim -> the bound ->
    the oracle. A duplicate or over-bound architecture is pruned (it costs nothing and counts for nothing)."""
    import optuna

    def objective(trial) -> float:
        values = {name: trial.suggest_categorical(name, list(options)) for name, options in space.choices()}
        try:
            arch = space.from_choices(values)
        except ArchError as exc:
            trial.set_user_attr("rejected", str(exc))
            raise optuna.TrialPruned() from None
        trial.set_user_attr(ARCH, arch)
        trial.set_user_attr(WORKER, worker_name())
        if constraint is not None:
            latency = float(constraint.latency([arch])[0])
            trial.set_user_attr(LATENCY, latency)
            if not latency <= constraint.max_ms:
                trial.set_user_attr("over_bound", True)
                raise optuna.TrialPruned()
        with lock():
            duplicate = claim(trial.study, trial, space, arch, budget)
        if duplicate is not None:
            trial.set_user_attr("duplicate_of", duplicate)
            raise optuna.TrialPruned()
        with _beating(trial, beat_seconds):
            ev = oracle.evaluate(arch)
        trial.set_user_attr(REPORT, ev.report)
        if not ev.ok:
            # failed here, by the oracle: known to the proposals (never tried again), unlike a dead worker's
            trial.set_user_attr(ERROR, ev.error or "not a finite value")
            raise RuntimeError(f"evaluation of {arch} failed: {ev.error}")
        return float(ev.value)

    return objective


@contextlib.contextmanager
def _beating(trial, seconds: float | None) -> Iterator[None]:
    """While the block runs, write the time into the trial's ``beat`` attribute every ``seconds`` (None:
    nothing; RDB storages have Optuna's own heartbeat)."""
    if seconds is None:
        yield
        return
    with periodically(lambda: trial.set_user_attr(BEAT, time.time()), seconds, "trial-heartbeat", first=True):
        yield


def fail_silent_trials(study, storage: Any, grace: float) -> list[int]:
    """On a storage without Optuna's heartbeat (a journal file): mark failed each claimed running trial whose
    ``beat`` is older than ``grace`` seconds (its worker died) and queue its choices again as a waiting
    trial, as Optuna's ``RetryHeartbeatStaleTrialCallback`` does on RDB storages. Run under claim_lock, so
    two workers never retry one trial twice. Returns the numbers of the trials failed."""
    import optuna
    from optuna.trial import TrialState

    now = time.time()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not t.user_attrs.get(CLAIMED):
            continue
        last = t.user_attrs.get(BEAT) or (t.datetime_start.timestamp() if t.datetime_start else now)
        if now - float(last) <= grace:
            continue
        try:  # Optuna's own stale-trial handling reaches the trial by its storage id the same way
            if not storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                continue
        except RuntimeError:  # it finished meanwhile: not dead after all
            continue
        failed.append(t.number)
        history = [*t.system_attrs.get("retry_history", []), t.number]
        if len(history) > MAX_RETRY:
            continue
        attrs = {k: v for k, v in t.user_attrs.items() if k in (ARCH, WORKER, LATENCY)}
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params=t.params, distributions=t.distributions, user_attrs=attrs,
            system_attrs={"failed_trial": history[0], "retry_history": history}))
    return failed


def open_study(storage: Any, study_name: str, space: Any, sampler: Any, create: bool = True):
    """The study ``study_name`` (created when ``create`` and missing), checked to be a search of ``space``."""
    import optuna

    try:
        if create:
            study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize",
                                        sampler=sampler, load_if_exists=True)
        else:
            study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    except KeyError:
        raise ConfigError(f"no study {study_name!r} in that storage") from None
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ConfigError(f"study {study_name!r} minimizes; a search maximizes its value")
    held = study.user_attrs.get(SPACE)
    if held is None:
        study.set_user_attr(SPACE, space.name)
    elif held != space.name:
        raise ConfigError(f"study {study_name!r} is a search of space {held!r}, not {space.name!r}")
    return study


def name_the_value(study, label: str) -> None:
    """Name the study's objective after what the oracle returns (optuna-dashboard shows it instead of
    "Objective 0"), unless the study already has a name for it."""
    import optuna

    if study.metric_names is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([label])


def run_worker(space: Any, strategy: Strategy, oracle: Oracle, budget: int, storage_url: str, study_name: str,
               seed: int = 0, constraint: LatencyConstraint | None = None, surrogate: Surrogate | None = None,
               worker_seed: int | None = None,
               heartbeat: tuple[int, int] = (HEARTBEAT_SECONDS, GRACE_SECONDS)) -> dict:
    """Take part in the shared search ``study_name`` until it holds ``budget`` completed trials; returns this
    worker's count of evaluations and the study's best. ``worker_seed`` (default: from the host and the
    process id) keeps the proposals of workers started with one ``seed`` apart."""
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    storage = open_storage(storage_url, heartbeat)
    stream = worker_seed if worker_seed is not None else zlib.crc32(worker_name().encode())
    if strategy.name == "tpe":
        # Optuna's own TPE with the constant liar: what its users run with many workers
        sampler = optuna.samplers.TPESampler(seed=(seed * 7919 + stream) % 2**31, multivariate=True,
                                             constant_liar=True)
    else:
        sampler = StrategySampler(space, strategy, surrogate, constraint, budget, seed=seed * 7919 + stream)
    study = open_study(storage, study_name, space, sampler)
    name_the_value(study, oracle.value_label)
    rdb = isinstance(storage, optuna.storages.RDBStorage)
    lock = lambda: claim_lock(storage, storage_url, study_name)  # noqa: E731
    objective = objective_for(space, oracle, constraint, budget, lock, None if rdb else heartbeat[0])
    mine = 0

    def counted(trial) -> float:
        nonlocal mine
        try:
            value = objective(trial)
        except _Stop:
            raise optuna.TrialPruned() from None
        mine += 1
        return value

    while True:
        done, claimed, waiting = _counts(study)
        if done >= budget:
            break
        if done + claimed < budget or waiting:
            study.optimize(counted, n_trials=1, catch=(RuntimeError,), gc_after_trial=False)
            continue
        # the budget is taken by running trials: wait for them; a dead worker's trial is failed here once its
        # heartbeat is stale, and queued again (WAITING) for the next ask
        if rdb:
            optuna.storages.fail_stale_trials(study)
        else:
            with lock():
                fail_silent_trials(study, storage, heartbeat[1])
        time.sleep(POLL_SECONDS)
    best = study.best_trial if done else None
    return {"study": study_name, "worker": worker_name(), "evaluated_here": mine, "completed": done,
            "best": None if best is None else {"arch": best.user_attrs.get(ARCH), "value": best.value,
                                               "trial": best.number}}


def _counts(study) -> tuple[int, int, int]:
    """(completed trials, claimed running trials, waiting trials) of ``study``."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    return (sum(t.state == TrialState.COMPLETE for t in trials),
            sum(t.state == TrialState.RUNNING and bool(t.user_attrs.get(CLAIMED)) for t in trials),
            sum(t.state == TrialState.WAITING for t in trials))
