"""Who is blamed for a Ray worker's death (intercept.distributed._Scheduler), over a scripted Ray:
the driver collects answers in whatever order Ray makes them ready, so the orders that a loaded
machine produces are played here deterministically. No Ray needed."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from intercept.distributed import DistributedSummary, RayOptions, _Item, _Scheduler


class Died(Exception):
    """The scripted Ray's death of a worker (a RayActorError)."""


class ScriptedRay:
    exceptions = SimpleNamespace(RayActorError=Died, WorkerCrashedError=Died, NodeDiedError=Died,
                                 OutOfMemoryError=Died, ObjectLostError=Died, RayTaskError=RuntimeError,
                                 ActorUnavailableError=Died, RayError=Exception)

    def __init__(self, outcomes: dict):
        self.outcomes = outcomes  # ref -> a list of analyses, or an exception to raise

    def get(self, ref):
        outcome = self.outcomes[ref]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Recorder:
    def __init__(self):
        self.summary = DistributedSummary()
        self.on_result = None
        self.recorded = []

    def record(self, analysis, token=None):
        self.recorded.append(token.path.name)
        return None, []


def _scheduler(calls: dict, max_attempts: int = 2):
    """One worker (0) with `calls` (ref -> (recording name, outcome)) sent to it in that order."""
    outcomes = {ref: outcome for ref, (_, outcome) in calls.items()}
    recorder = Recorder()
    scheduler = _Scheduler(ScriptedRay(outcomes), recorder, actors=[object(), object()],
                           ray_options=RayOptions(max_attempts=max_attempts), bar=None)
    scheduler.ready = {0, 1}
    items = {}
    for n, (ref, (name, _)) in enumerate(calls.items()):
        items[name] = _Item(n, Path(name), facts=SimpleNamespace(size_bytes=10))
        scheduler.in_flight[ref] = ([items[name]], 0)
        scheduler.per_worker[0].append(ref)
    return scheduler, items, recorder


def test_a_death_with_several_calls_on_the_worker_blames_none_and_each_goes_again_exclusively():
    """Ray may report a call that finished just before a death as failed too, so with two calls
    on the dying worker the one it died on is unknown, in either order of the answers."""
    for first, second in (("a", "b"), ("b", "a")):
        scheduler, items, _ = _scheduler({"a": ("killer.wav", Died("gone")), "b": ("behind.wav", Died("gone"))})
        scheduler._collect(first)
        scheduler._collect(second)
        assert items["killer.wav"].attempts == 0 and items["behind.wav"].attempts == 0
        assert items["killer.wav"].exclusive and items["behind.wav"].exclusive
        assert scheduler.summary.worker_deaths == 1 and 0 not in scheduler.ready
        assert sorted(item.path.name for item in scheduler.queue) == ["behind.wav", "killer.wav"]


def test_a_call_alone_on_its_worker_is_blamed_and_fails_after_max_attempts():
    scheduler, items, recorder = _scheduler({"a": ("killer.wav", Died("gone"))}, max_attempts=1)
    scheduler._collect("a")
    assert items["killer.wav"].attempts == 1 and recorder.recorded == ["killer.wav"]  # stored as failed


def test_a_finished_call_reported_failed_does_not_take_the_blame():
    """x finished, then the worker died on r, with y queued behind it; Ray reports all three
    failed (x "may or may not have been executed"). Nobody is blamed, whatever the order."""
    for order in (("x", "r", "y"), ("r", "x", "y"), ("y", "r", "x")):
        scheduler, items, recorder = _scheduler({"x": ("done.wav", Died("gone")), "r": ("killer.wav", Died("gone")),
                                                 "y": ("innocent.wav", Died("gone"))})
        for ref in order:
            scheduler._collect(ref)
        assert [item.attempts for item in items.values()] == [0, 0, 0] and recorder.recorded == []
        assert all(item.exclusive for item in items.values()) and scheduler.summary.worker_deaths == 1


def test_a_finished_call_collected_late_is_stored_and_the_call_behind_is_not_blamed():
    scheduler, items, recorder = _scheduler({"x": ("done.wav", ["analysis"]), "r": ("killer.wav", Died("gone")),
                                             "y": ("innocent.wav", Died("gone"))})
    scheduler._collect("r")
    scheduler._collect("x")
    scheduler._collect("y")
    assert recorder.recorded == ["done.wav"]
    assert items["innocent.wav"].attempts == 0 and items["killer.wav"].attempts == 0


def test_an_exclusive_recording_goes_only_to_an_idle_worker_and_nothing_is_sent_behind_it():
    sent = []

    class Actor:
        def __init__(self, n):
            self.analyze_group = SimpleNamespace(remote=lambda batch, n=n: sent.append((n, batch)) or f"ref{len(sent)}")

    scheduler, items, _ = _scheduler({"busy": ("running.wav", ["analysis"])})
    scheduler.actors = [Actor(0), Actor(1)]
    lone = _Item(5, Path("suspect.wav"), facts=SimpleNamespace(size_bytes=10), exclusive=True)
    other = _Item(6, Path("next.wav"), facts=SimpleNamespace(size_bytes=10))
    scheduler.queue.extend([lone, other])
    scheduler._fill()
    # worker 0 is busy: the suspect goes to idle worker 1, and next.wav must not queue behind it
    assert [(n, [Path(p).name for p, _ in batch]) for n, batch in sent] == [(1, ["suspect.wav"]), (0, ["next.wav"])]
