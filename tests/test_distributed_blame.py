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


def test_the_call_a_worker_was_running_is_blamed_whatever_order_the_deaths_come_in():
    scheduler, items, _ = _scheduler({"a": ("killer.wav", Died("gone")), "b": ("behind.wav", Died("gone"))})
    scheduler._collect("b")  # the call queued behind answers first
    scheduler._collect("a")
    assert items["killer.wav"].attempts == 1 and items["behind.wav"].attempts == 0
    assert scheduler.summary.worker_deaths == 1


def test_a_call_behind_a_death_is_not_blamed_when_the_call_ahead_had_finished():
    """x finished, then the worker died on r, with y queued behind it. Ray makes r's death
    ready before x's answer is collected: which call the worker died on is unknown then, so
    nobody is blamed; y must not be blamed either once x is collected and y reaches the head."""
    scheduler, items, recorder = _scheduler({"x": ("done.wav", ["analysis"]), "r": ("killer.wav", Died("gone")),
                                             "y": ("innocent.wav", Died("gone"))})
    scheduler._collect("r")
    assert 0 not in scheduler.ready and 0 in scheduler.recovering  # no work to it until it answers
    scheduler._collect("x")
    scheduler._collect("y")
    assert recorder.recorded == ["done.wav"]
    assert items["innocent.wav"].attempts == 0 and items["killer.wav"].attempts == 0
    assert [item.path.name for item in scheduler.queue] == ["innocent.wav", "killer.wav"]  # both go again
