"""Many workers on one search through an Optuna study: proposals that know the pending trials, the sampler
in a plain Optuna study, worker processes on a journal file, and on real PostgreSQL and MariaDB (MySQL) servers
with one worker killed mid-trial (.ci/run starts the servers)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from nas_predictor.errors import ConfigError
from strategies import FunctionSurrogate
from strategies.oracle import FunctionOracle
from strategies.proposals import ProposalContext, propose
from strategies.runner import make_strategy
from strategies.study import (
    ARCH, StrategySampler, open_storage, open_study, run_worker, study_records,
)
from tests.conftest import _in_ci
from tests.python_spaces import contract_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def width_score(archs):
    space = contract_space()
    return [space.config(a)["width"] * space.config(a)["depth"] + (space.config(a)["kernel"] == 5) for a in archs]


def value_of(arch: str) -> float:
    c = contract_space().config(arch)
    return float(c["width"] + 10 * c["depth"] + (c["act"] == "relu") + (c["pool"] == "avg") + c["kernel"] / 10)


def strategy_of(name: str):
    if name == "predictor":
        return make_strategy("predictor", num_init=4, top_k=1, num_local=0, num_parents=2, num_mutants=6, num_random=6)
    if name == "evolution":
        return make_strategy("evolution", population=4, sample_size=2)
    return make_strategy(name)


@pytest.mark.parametrize("name", ["predictor", "evolution", "random"])
def test_a_proposal_is_never_known_nor_pending_and_a_batch_stays_apart(name):
    space = contract_space()
    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(space.canonical(space.sample(rng)) for _ in range(30)))
    finished = [{"arch": a, "value": value_of(a), "status": "ok", "report": {}, "latency_ms": None} for a in archs[:8]]
    pending: list[str] = []
    surrogate = FunctionSurrogate(width_score)
    for k in range(6):  # six workers ask one after another while the others' trials still run
        ctx = ProposalContext.of(space, finished, pending, 100, np.random.default_rng([1, k]), surrogate=surrogate)
        proposal = propose(strategy_of(name), ctx)
        assert proposal is not None
        assert proposal.arch not in archs[:8] and proposal.arch not in pending
        pending.append(proposal.arch)
    assert len(set(pending)) == 6
    # the budget counts pending evaluations: with it taken, nothing more is proposed
    full = ProposalContext.of(space, finished, pending, len(finished) + len(pending), np.random.default_rng(9),
                              surrogate=surrogate)
    assert propose(strategy_of(name), full) is None


def test_the_predictor_guided_proposal_follows_the_surrogate_and_skips_pending_ones():
    space = contract_space()
    rng = np.random.default_rng(1)
    archs = list(dict.fromkeys(space.canonical(space.sample(rng)) for _ in range(12)))
    finished = [{"arch": a, "value": value_of(a), "status": "ok", "report": {}, "latency_ms": None} for a in archs[:6]]
    surrogate = FunctionSurrogate(width_score)
    first = propose(strategy_of("predictor"), ProposalContext.of(space, finished, [], 100, np.random.default_rng(0),
                                                                 surrogate=surrogate))
    again = propose(strategy_of("predictor"), ProposalContext.of(space, finished, [first.arch], 100,
                                                                 np.random.default_rng(0), surrogate=surrogate))
    assert first.predicted is not None and again.arch != first.arch and again.predicted <= first.predicted


def test_the_sampler_in_a_plain_optuna_study():
    space = contract_space()
    sampler = StrategySampler(space, strategy_of("predictor"), FunctionSurrogate(width_score), seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def objective(trial):  # what any Optuna user writes for a space's categorical view
        values = {name: trial.suggest_categorical(name, list(options)) for name, options in space.choices()}
        return value_of(space.from_choices(values))

    study.optimize(objective, n_trials=16)
    archs = [space.from_choices(t.params) for t in study.trials]
    assert len(set(archs)) == 16  # nothing proposed twice
    assert sampler.last_proposal is not None  # the later trials were the strategy's, not random fill-ins
    records, pending = study_records(study, space)
    assert len(records) == 16 and pending == []
    assert study.best_value == max(value_of(a) for a in archs)


def _worker(storage: str, budget: int, seed: int, delay: float, out: str | None = None, study: str = "shared") -> None:
    space = contract_space()

    def slow(arch):
        if out is not None:
            Path(out).write_text(arch)  # what this worker is evaluating now
        time.sleep(delay)  # training
        return value_of(arch)

    run_worker(space, strategy_of("predictor"), FunctionOracle(slow, "slow"), budget, storage, study,
               constraint=None, surrogate=FunctionSurrogate(width_score), worker_seed=seed, heartbeat=(1, 3))


def _trials(storage_url: str, name: str = "shared"):
    study = optuna.load_study(study_name=name, storage=open_storage(storage_url, (1, 3)))
    return study.get_trials()


def test_three_worker_processes_share_one_journal_file(tmp_path):
    url = str(tmp_path / "study.log")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(url, 12, seed, 0.1)) for seed in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    trials = _trials(url)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 12  # the budget is the study's total
    assert len({t.user_attrs[ARCH] for t in done}) == 12  # no architecture evaluated twice
    assert len({t.user_attrs["worker"] for t in done}) == 3  # every worker took part
    assert all(t.value == value_of(t.user_attrs[ARCH]) for t in done)


def test_on_a_journal_file_a_killed_workers_trial_is_failed_by_its_silent_heartbeat_and_retried(tmp_path):
    url = str(tmp_path / "study.log")
    now = tmp_path / "evaluating"
    victim = multiprocessing.get_context("spawn").Process(target=_worker, args=(url, 5, 0, 60.0, str(now)))
    victim.start()
    deadline = time.monotonic() + 120
    while not now.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    victim.kill()
    victim.join(10)
    lost = now.read_text()
    _worker(url, 5, 1, 0.05)  # finishes the search, failing and retrying the silent trial on the way
    trials = _trials(url)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 5 and len({t.user_attrs[ARCH] for t in done}) == 5
    assert [t.user_attrs[ARCH] for t in trials if t.state == optuna.trial.TrialState.FAIL] == [lost]
    assert lost in {t.user_attrs[ARCH] for t in done}


def test_a_worker_on_sqlite_and_a_second_one_after_the_budget_is_met(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    _worker(url, 5, 0, 0.0)
    _worker(url, 5, 1, 0.0)  # joins a finished search: evaluates nothing
    done = [t for t in _trials(url) if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 5 and len({t.user_attrs[ARCH] for t in done}) == 5
    assert len({t.user_attrs["worker"] for t in done}) == 1


def test_clear_errors_for_a_bad_storage_a_missing_study_and_a_study_of_another_space(tmp_path):
    with pytest.raises(ConfigError, match="expected sqlite"):
        open_storage("redis://localhost")
    with pytest.raises(ConfigError, match="cannot open the database|driver is missing"):
        open_storage("postgresql://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(ConfigError, match="cannot open the database|driver is missing"):
        open_storage("mysql+pymysql://nobody:secret@127.0.0.1:1/none")
    storage = open_storage(str(tmp_path / "s.log"))
    with pytest.raises(ConfigError, match="no study 'absent'"):
        open_study(storage, "absent", contract_space(), None, create=False)
    open_study(storage, "taken", contract_space(), None)

    class Other:
        name = "another_space"

    with pytest.raises(ConfigError, match="is a search of space 'contract_python_cnn', not 'another_space'"):
        open_study(storage, "taken", Other(), None)


#: the real database servers of the shared-search tests: the variable .ci/run exports each one's URL in, and the
#: script that starts a throwaway one
SERVERS = {"postgresql": ("NAS_PREDICTOR_TEST_POSTGRES", ".ci/postgres"),
           "mysql": ("NAS_PREDICTOR_TEST_MYSQL", ".ci/mysql")}


def _server_url(kind: str) -> str:
    variable, script = SERVERS[kind]
    url = os.environ.get(variable)
    if not url:
        if _in_ci():
            pytest.fail(f"CI runs the shared-search tests on a real {kind} server: .ci/run starts one ({script}) and "
                        f"exports {variable}", pytrace=False)
        pytest.skip(f"no {kind} server: eval \"$({script} start)\" starts a throwaway one")
    return url


def _open(url: str) -> None:
    open_storage(url)


@pytest.mark.parametrize("kind", SERVERS)
def test_workers_started_together_on_an_empty_database_all_open_it(kind):
    """Four processes opening a new database at once all create Optuna's tables; the losers of that race (a
    duplicate type or table) look again instead of exiting."""
    from sqlalchemy import create_engine, text

    url = _server_url(kind)
    name = f"fresh_{os.getpid()}_{int(time.time() * 1000)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_open, args=(f"{url.rsplit('/', 1)[0]}/{name}",)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if kind == "postgresql" else "")))
        admin.dispose()


@pytest.mark.parametrize("kind", SERVERS)
def test_three_workers_on_a_database_server_one_killed_mid_trial(tmp_path, kind):
    """A real database server: three worker processes, one SIGKILLed while it trains; the others retry its
    architecture once its heartbeat is stale, nothing is evaluated twice and the budget is met exactly. The
    claims are a PostgreSQL advisory lock or a MySQL named lock, which the server drops with the killed
    worker's connection."""
    url = _server_url(kind)
    study = f"killed_{os.getpid()}_{int(time.time())}"
    ctx = multiprocessing.get_context("spawn")
    now = tmp_path / "evaluating"
    victim = ctx.Process(target=_worker, args=(url, 10, 0, 60.0, str(now), study))
    others = [ctx.Process(target=_worker, args=(url, 10, seed, 0.3, None, study)) for seed in (1, 2)]
    victim.start()
    deadline = time.monotonic() + 120
    while not now.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in others:
        p.start()
    time.sleep(1.0)
    victim.kill()
    victim.join(10)
    assert victim.exitcode == -signal.SIGKILL
    for p in others:
        p.join(180)
        assert p.exitcode == 0
    lost = now.read_text()
    trials = _trials(url, study)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 10 and len({t.user_attrs[ARCH] for t in done}) == 10
    assert [t.user_attrs[ARCH] for t in trials if t.state == optuna.trial.TrialState.FAIL] == [lost]
    assert lost in {t.user_attrs[ARCH] for t in done}
    assert len({t.user_attrs["worker"] for t in done}) == 2


def test_the_study_opens_in_optuna_dashboard_with_each_trials_architecture_latency_and_value(tmp_path):
    """optuna-dashboard, started on localhost against a worker's study, serves every trial's arch, latency
    and value through its API (what its pages show)."""
    import json
    import socket
    import subprocess
    import sys
    import urllib.request

    try:
        import optuna_dashboard  # noqa: F401
    except ImportError as exc:
        if _in_ci():
            pytest.fail(f"optuna-dashboard is in the [dev] extra: {exc}", pytrace=False)
        pytest.skip(f"optuna-dashboard not installed: {exc}")
    from strategies.constraints import FunctionLatency, LatencyConstraint

    url = f"sqlite:///{tmp_path / 'study.db'}"
    space = contract_space()
    bound = LatencyConstraint(FunctionLatency(lambda archs: [space.config(a)["width"] / 16.0 for a in archs]), 3.5)
    run_worker(space, strategy_of("random"), FunctionOracle(value_of, "value_of"), 4, url, "watched",
               constraint=bound, worker_seed=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", "import sys, optuna_dashboard; optuna_dashboard.run_server("
                               "sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]))", url, str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, studies = time.monotonic() + 60, None
        while studies is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as reply:
                    studies = json.loads(reply.read())["study_summaries"]
            except OSError:
                time.sleep(0.3)
        assert studies is not None, "optuna-dashboard did not answer"
        (summary,) = [s for s in studies if s["study_name"] == "watched"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}", timeout=10) as reply:
            detail = json.loads(reply.read())
    finally:
        server.terminate()
        server.wait(10)
    complete = [t for t in detail["trials"] if t["state"] == "Complete"]
    assert len(complete) == 4
    assert detail["objective_names"] == ["value of value_of"]  # the oracle's label, not "Objective 0"
    for t in complete:
        attrs = {a["key"]: a["value"] for a in t["user_attrs"]}
        arch = attrs[ARCH]
        assert float(attrs["latency_ms"]) <= 3.5 and t["values"] == [value_of(arch)]
