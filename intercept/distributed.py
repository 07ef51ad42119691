"""A batch spread over the workers of a Ray cluster, into the same store as a local run.

Workers are Ray actors: each loads the model, lexicon and normaliser once and processes
the recordings it is handed with the very same `Pipeline` a local run uses. Small files are
handed out in groups (RayOptions.files_per_task), so that a worker can pack the short ones
into shared recognition windows as a local run does (Pipeline.analyze_many). A worker never
opens the store: it hands back its `Analysis`, and the driver (this process)
alone writes SQLite, one transaction per recording as soon as each result arrives. So the
store stays as consistent and resumable as after a local run: a stopped batch leaves whole
recordings only, and a re-run skips what is stored.

A worker that dies (killed, out of memory, its machine gone) is restarted by Ray; the
recording it was working on goes to another worker (the recordings of a group go one by one,
so that the one that killed it fails alone), up to `RayOptions.max_attempts` times,
after which it is stored as failed with the reason, like any bad recording. A try counts only
against a call that was alone on its worker: with several calls on a dying worker none is
blamed, and their recordings go again exclusively (_Item.exclusive).

Recordings are read by path on the workers: on several machines they must sit at the same
absolute path on every machine (a shared or replicated filesystem). See docs/scaling.md.
"""
from __future__ import annotations

import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from .config import RunOptions
from .pipeline import Analysis, Pipeline, Recorder, RecordingResult, Summary, iter_recordings, safe_text
from .store import CREATE, RecordingFacts, Store


class DistributedError(RuntimeError):
    pass


@dataclass
class RayOptions:
    """Where and how wide a batch runs on Ray."""

    # None: start a private Ray instance on this machine for this batch. Otherwise the
    # address of a running cluster: "auto" (the cluster this machine belongs to),
    # "HEAD:6379", or "ray://HEAD:10001" (Ray Client).
    address: Optional[str] = None
    # Number of worker actors; None: as many as the cluster's free CPUs (or GPUs, when
    # gpus_per_worker > 0) allow.
    workers: Optional[int] = None
    cpus_per_worker: float = 1.0
    # > 0 puts each worker on a GPU; pair it with RunOptions.transcribe.device = "cuda".
    gpus_per_worker: float = 0.0
    # CPUs of a private local instance (address None); None: all of this machine's.
    num_cpus: Optional[int] = None
    # Tries per recording when workers die on it; then it is stored as failed.
    max_attempts: int = 3
    # How many times Ray restarts one dead worker (reloading its model) before giving up on it.
    max_worker_restarts: int = 3
    # Recordings queued on each worker beyond the one it is processing, so a worker never
    # waits for the driver between recordings.
    queue_per_worker: int = 1
    # Recordings handed to a worker at once, so that it can pack short ones together.
    # None: about two tasks per worker (ceil(files / 2 / workers)), at most
    # RunOptions.pool.max_recordings. Only files under group_max_bytes are grouped: a long
    # recording fills windows alone, and in a group it would hold back the others' results.
    files_per_task: Optional[int] = None
    group_max_bytes: int = 4_000_000  # 25 s of CD-quality WAV


@dataclass
class DistributedSummary(Summary):
    """A local run's summary plus what only a distributed run has."""

    workers: int = 0
    ray_address: str = ""
    retries: int = 0  # recordings sent again after a worker died with them on it (running or queued)
    worker_deaths: int = 0
    # OMP_NUM_THREADS in a worker: Ray sets it to the worker's CPUs, and CTranslate2 (with
    # cpu_threads 0) uses that many threads, so workers sharing a machine do not oversubscribe it.
    worker_threads: Optional[str] = None


class RecordingWorker:
    """The body of one Ray actor: one loaded pipeline without a store, analysing recordings
    one by one; the driver saves what it returns.

    Subclass it to change what a worker does (the tests make one that dies on a chosen
    recording); `run_batch_ray(worker_class=...)` takes the subclass."""

    def __init__(self, options: RunOptions):
        self.pipeline = Pipeline(options)

    def describe(self) -> WorkerFacts:
        """What a run records about the model and lexicon this worker loaded."""
        lexicon = self.pipeline.lexicon
        return WorkerFacts(self.pipeline.model_name, lexicon.version, list(lexicon.terms), os.getpid(),
                           os.environ.get("OMP_NUM_THREADS"), self.pipeline.load_s,
                           self.pipeline.model_card_sha256)

    def analyze(self, path: str, facts: RecordingFacts) -> Analysis:
        return self.pipeline.analyze(path, facts)

    def analyze_group(self, items: list[tuple[str, RecordingFacts]]) -> list[Analysis]:
        """One Analysis per (path, facts), in the order given; short recordings are packed
        together."""
        if len(items) == 1:
            return [self.analyze(*items[0])]
        position = {id(facts): index for index, (_, facts) in enumerate(items)}
        found: list[Optional[Analysis]] = [None] * len(items)
        for analysis in self.pipeline.analyze_many(items):
            found[position[id(analysis.facts)]] = analysis
        return found


@dataclass
class WorkerFacts:
    model_name: str
    lexicon_version: str
    lexicon_terms: list
    pid: int
    omp_num_threads: Optional[str]
    load_s: float = 0.0
    model_card_sha256: Optional[str] = None  # an adapted model's card (intercept adapt), recorded in runs


@dataclass
class _Item:
    index: int  # position in the batch
    path: Path  # as given
    facts: Optional[RecordingFacts] = None  # from the driver's examine()
    attempts: int = 0
    avoid: Optional[int] = None  # the worker that last died on it
    deaths: list[str] = field(default_factory=list)
    alone: bool = False  # sent in no group again: a worker died on a group holding it
    # Sent only to an idle worker, with nothing queued behind it: a worker died while it was one
    # of several calls on that worker. Ray may report a call that finished just before the death
    # as failed too, so only a call alone on its worker can be blamed for a death.
    exclusive: bool = False


def _ray():
    try:
        import ray
    except ImportError:
        raise DistributedError("Ray is not installed: pip install 'ray==2.*'") from None
    return ray


def _connect(ray, options: RayOptions) -> bool:
    """Connect to or start Ray; True when this call started it (and must stop it)."""
    # Ray reports usage to its makers unless told not to; a monitoring site must not call out.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if options.address is None:
        kwargs["num_cpus"] = options.num_cpus
    else:
        kwargs["address"] = options.address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = options.address or "a local instance"
        raise DistributedError(f"cannot start or reach Ray at {where}: {' '.join(str(exc).split())}") from None
    return True


def _worker_count(ray, options: RayOptions) -> int:
    if options.workers is not None:
        if options.workers < 1:
            raise DistributedError("workers must be at least 1")
        return options.workers
    free = ray.available_resources()
    if options.gpus_per_worker > 0:
        count = int(free.get("GPU", 0) // options.gpus_per_worker)
        resource = "GPUs"
    else:
        count = int(free.get("CPU", 0) // options.cpus_per_worker)
        resource = "CPUs"
    if count < 1:
        raise DistributedError(f"the Ray cluster has no free {resource} for a worker")
    return count


def run_batch_ray(
    paths: Iterable[str | Path],
    db_path: str | Path,
    options: Optional[RunOptions] = None,
    ray_options: Optional[RayOptions] = None,
    progress: bool = True,
    warn: Optional[Callable[[str], None]] = None,
    worker_class: type = RecordingWorker,
) -> DistributedSummary:
    """Process every recording under ``paths`` into the store at ``db_path`` on Ray workers.

    The same store rows and summary as `pipeline.run_batch`, except that recordings are
    written in the order they finish, so row ids may differ from a local run's."""
    from tqdm import tqdm

    options = options or RunOptions()
    ray_options = ray_options or RayOptions()
    if ray_options.max_attempts < 1:
        raise DistributedError("max_attempts must be at least 1")
    files = list(iter_recordings(paths))
    ray = _ray()
    started_ray = _connect(ray, ray_options)
    actors: list = []
    free_before: dict = {}
    try:
        with Store(db_path, CREATE, warn=warn) as store:
            free_before = ray.available_resources()
            count = _worker_count(ray, ray_options)
            actor_class = ray.remote(worker_class).options(
                num_cpus=ray_options.cpus_per_worker,
                num_gpus=ray_options.gpus_per_worker,
                max_restarts=ray_options.max_worker_restarts,
                max_task_retries=0,  # the driver re-sends work itself, to another worker
            )
            actors = [actor_class.remote(options) for _ in range(count)]
            # Workers start in the background (model loads); the run opens with the first
            # one ready, and each of the others takes work once it is ready. A worker that
            # cannot start is left out.
            starting = {actor.describe.remote(): w for w, actor in enumerate(actors)}
            facts, first, broken = None, None, {}
            while facts is None and starting:
                ready, _ = ray.wait(list(starting), num_returns=1)
                first = starting.pop(ready[0])
                try:
                    facts = ray.get(ready[0])
                except ray.exceptions.RayError as exc:
                    broken[first] = _reason(exc)
            if facts is None:
                raise DistributedError(f"Ray workers could not start: {list(broken.values())[-1]}")
            summary = DistributedSummary(workers=count, ray_address=ray_options.address or "local",
                                         worker_threads=facts.omp_num_threads, load_s=facts.load_s)
            # The store side is a local run's (Recorder); the workers only analyse.
            recorder = Recorder(store, options, summary)
            recorder.start(facts.model_name, facts.lexicon_version, facts.lexicon_terms, facts.model_card_sha256)
            with tqdm(total=len(files), desc="recordings", unit="file", disable=not progress) as bar:
                group = ray_options.files_per_task or max(1, min(
                    options.pool.max_recordings, math.ceil(len(files) / (2 * count))))
                scheduler = _Scheduler(ray, recorder, actors, ray_options, bar, group)
                scheduler.ready.add(first)
                scheduler.starting = starting
                for worker, reason in broken.items():
                    scheduler.retire_broken(worker, reason)
                scheduler.run(files)
            return recorder.finish(files)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started_ray:
            ray.shutdown()
        elif actors:
            _wait_for_release(ray, free_before)


def _wait_for_release(ray, free_before: dict, timeout_s: float = 15.0) -> None:
    """ray.kill returns before the actors' CPUs and GPUs are free again; wait (bounded) until
    they are, so that a next batch from the same driver sees the cluster as this one found it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        free = ray.available_resources()
        if all(free.get(key, 0) >= free_before.get(key, 0) for key in ("CPU", "GPU")):
            return
        time.sleep(0.1)


def _reason(exc: BaseException) -> str:
    """One line: Ray's errors carry the remote traceback, whose last line names the error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


class _Scheduler:
    """Feeds recordings to workers, re-sends them when a worker dies, saves results as they come."""

    PING_S = 0.5  # how often a restarting worker is asked whether it is back

    def __init__(self, ray, recorder: Recorder, actors, ray_options: RayOptions, bar, group: int = 1):
        self.ray, self.recorder, self.actors = ray, recorder, actors
        self.ray_options, self.summary, self.bar = ray_options, recorder.summary, bar
        recorder.on_result = self._settled
        self.group = group  # recordings per task
        self.more_coming = False  # files still being examined: wait to fill a group
        self.queue: deque[_Item] = deque()
        self.in_flight: dict[Any, tuple[list[_Item], int]] = {}  # ref -> (items, worker)
        self.per_worker: list[deque] = [deque() for _ in actors]  # refs in submission order
        self.ready: set[int] = set()  # workers that have loaded their model
        self.recovering: dict[int, float] = {}  # worker restarting -> when to ask again
        self.starting: dict[Any, int] = {}  # describe() call -> worker still loading
        self.retired: set[int] = set()
        self.collateral: set = set()  # calls lost with a worker death already counted
        self.broken: list[str] = []  # why workers could not start
        self.deaths_of: list[int] = [0] * len(actors)
        # A worker dying mid-call shows as ActorUnavailableError (a RayActorError) on the call
        # it was running and on those queued behind it.
        self.deaths = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                       ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError,
                       ray.exceptions.ObjectLostError)

    def run(self, files: list[Path]) -> None:
        self.more_coming = True
        for index, path in enumerate(files):
            self._examine(_Item(index, path))
            self._fill()
        self.more_coming = False
        self._fill()
        while self.in_flight or self.queue:
            self._ping_recovering()
            waiting_on = list(self.in_flight) + (list(self.starting) if self.queue else [])
            timeout = None
            if self.recovering:
                timeout = max(0.0, min(self.recovering.values()) - time.monotonic())
            elif not waiting_on:
                why = f" (last could not start: {self.broken[-1]})" if self.broken else ""
                self._give_up(f"no Ray worker is left{why}")
            if not waiting_on:
                time.sleep(timeout)
                continue
            ready, _ = self.ray.wait(waiting_on, num_returns=1, timeout=timeout)
            if not ready:
                continue
            if ready[0] in self.starting:
                self._started(ready[0])
            else:
                self._collect(ready[0])
            self._fill()

    def _examine(self, item: _Item) -> None:
        """Everything a local run does before analysing, on the driver (Recorder.admit): a
        recording that cannot be read fails, stored content is skipped, a second copy of
        content being analysed waits for it; the rest is queued for a worker."""
        admitted = self.recorder.admit(item.path, token=item)
        if isinstance(admitted, RecordingFacts):
            item.facts = admitted
            self.queue.append(item)

    def _started(self, ref) -> None:
        worker = self.starting.pop(ref)
        try:
            self.ray.get(ref)
        except self.ray.exceptions.ActorUnavailableError:
            self.recovering[worker] = time.monotonic() + self.PING_S  # still restarting
        except self.ray.exceptions.RayError as exc:
            self.retire_broken(worker, _reason(exc))
        else:
            self.ready.add(worker)

    def _ping_recovering(self) -> None:
        """Ask restarting workers whether they are back. Calls sent to a worker while Ray
        restarts it fail at once, so work goes to it again only after it answers."""
        now = time.monotonic()
        for worker, due in list(self.recovering.items()):
            if due <= now:
                del self.recovering[worker]
                self.starting[self.actors[worker].describe.remote()] = worker

    def retire_broken(self, worker: int, reason: str) -> None:
        self.retired.add(worker)
        self.broken.append(reason)

    def _live(self) -> list[int]:
        return sorted(self.ready - self.retired)

    def _fill(self) -> None:
        depth = 1 + self.ray_options.queue_per_worker
        while self.queue:
            live = self._live()
            choices = [w for w in live if len(self.per_worker[w]) < depth and not self._holds_exclusive(w)]
            item = self.queue[0]
            if item.exclusive:
                choices = [w for w in choices if not self.per_worker[w]]
            if not choices:
                return
            if self.more_coming and self._groupable(item) and len(self.queue) < self.group:
                return  # a fuller group is being examined
            others = [w for w in choices if w != item.avoid]
            if not others and len(live) > 1:
                return  # wait for another worker rather than go back to the one that died on it
            worker = min(others or choices, key=lambda w: len(self.per_worker[w]))
            items = [self.queue.popleft()]
            while (len(items) < self.group and self.queue and self._groupable(items[0])
                   and self._groupable(self.queue[0])):
                items.append(self.queue.popleft())
            ref = self.actors[worker].analyze_group.remote(
                [(str(item.path.absolute()), item.facts) for item in items])
            self.in_flight[ref] = (items, worker)
            self.per_worker[worker].append(ref)

    def _groupable(self, item: _Item) -> bool:
        return (not item.alone and not item.exclusive
                and (item.facts.size_bytes or 0) < self.ray_options.group_max_bytes)

    def _holds_exclusive(self, worker: int) -> bool:
        return any(item.exclusive for ref in self.per_worker[worker] for item in self.in_flight[ref][0])

    def _collect(self, ref) -> None:
        items, worker = self.in_flight.pop(ref)
        # Every call on a worker that dies fails with the same death; only the first answer of
        # it is unaccounted (_worker_lost makes the others collateral).
        queue = self.per_worker[worker]
        unaccounted = ref not in self.collateral  # no death of this worker explains it yet
        # Blamed only when it was the worker's one call: with others on the worker, Ray may
        # report a call that had just finished as failed (its docs: "this exception may be
        # thrown even though the task did indeed execute successfully"), so the one running
        # when it died is not known, whatever order the answers come in.
        sole = unaccounted and len(queue) == 1
        shared = [r for r in queue if r != ref]
        self.collateral.discard(ref)
        queue.remove(ref)
        try:
            analyses = self.ray.get(ref)
        except self.deaths as exc:
            if unaccounted and shared and not getattr(exc, "actor_init_failed", False):
                # The first answer of a death with several calls on the worker: nobody is
                # blamed, the death is counted, the other calls are collateral, and every
                # recording involved goes again exclusively, where a death can be placed.
                for other in shared:
                    for item in self.in_flight[other][0]:
                        item.exclusive = True
                for item in items:
                    item.exclusive, item.avoid = True, worker
                self._worker_lost(worker)
                self.summary.retries += len(items)
                self.queue.extendleft(reversed(items))
                return
            was_running = sole
            if getattr(exc, "actor_init_failed", False):
                # The worker cannot even load (e.g. no model on that machine): not the
                # recordings' fault; that worker is done for, the recordings go elsewhere.
                for item in reversed(items):
                    self._worker_broken(item, worker, _reason(exc))
            elif len(items) > 1:
                self._group_died(items, worker, was_running)
            else:
                self._worker_died(items[0], worker, was_running, _reason(exc))
            return
        except self.ray.exceptions.RayTaskError as exc:
            # analyze() turns every bad recording into a failed Analysis; an exception here
            # is a bug, so the batch stops loudly (what is saved so far stays saved).
            raise DistributedError(f"{items[0].path}: worker error: {_reason(exc)}") from None
        for item, analysis in zip(items, analyses):
            self._record(item, analysis)

    def _worker_lost(self, worker: int) -> None:
        """Bookkeeping of a worker that died on the call it was running."""
        self.collateral.update(self.per_worker[worker])
        self.ready.discard(worker)
        self.recovering[worker] = time.monotonic() + self.PING_S
        self.deaths_of[worker] += 1
        self.summary.worker_deaths += 1
        if self.deaths_of[worker] > self.ray_options.max_worker_restarts:
            self.retired.add(worker)  # Ray will not restart it again
            self.recovering.pop(worker, None)

    def _group_died(self, items: list[_Item], worker: int, was_running: bool) -> None:
        """Which recording of the group killed the worker is unknown: each goes again alone,
        to another worker, and no try is counted against any of them yet."""
        if was_running:
            self._worker_lost(worker)
            for item in items:
                item.alone = True
        for item in items:
            item.avoid = worker
        self.summary.retries += len(items)
        self.queue.extendleft(reversed(items))

    def _worker_died(self, item: _Item, worker: int, was_running: bool, reason: str) -> None:
        if was_running:
            # Only the recording the worker was busy with counts against it; the ones queued
            # behind it simply go to another worker.
            self._worker_lost(worker)
            item.attempts += 1
            item.deaths.append(reason)
        item.avoid = worker
        if item.attempts >= self.ray_options.max_attempts:
            error = (f"{safe_text(str(item.path))}: a worker died {item.attempts} times while "
                     f"processing it (last: {item.deaths[-1]})")
            self._record(item, Analysis(item.facts, "failed", error=error))
            return
        self.summary.retries += 1
        self.queue.appendleft(item)

    def _worker_broken(self, item: _Item, worker: int, reason: str) -> None:
        if worker not in self.retired:
            self.retire_broken(worker, reason)
            self.collateral.update(self.per_worker[worker])
        self.queue.appendleft(item)

    def _record(self, item: _Item, analysis: Analysis) -> None:
        """Store a result; same-content copies that waited for it are examined again: now
        stored, they are skipped as in a local run; if this one failed, the next gets its try."""
        _, waiting = self.recorder.record(analysis, token=item)
        for other in waiting:
            self._examine(other)

    def _settled(self, item: _Item, result: RecordingResult) -> None:
        self.bar.set_postfix_str(safe_text(item.path.name)[-40:])
        self.bar.update(1)

    def _give_up(self, reason: str) -> None:
        # Left unstored rather than failed: the recordings are fine, the cluster is not, and a
        # re-run picks them up.
        left = len(self.queue) + self.recorder.waiting()
        raise DistributedError(f"{reason}: {left} recordings not processed (re-run to resume)")
