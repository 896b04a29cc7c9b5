"""Run tracking, the same work in molexp, signac and MLflow: one adapter per system.

Every adapter does, per run, what a user of that system writes to record a run with 4
parameters, one small artifact and a final status:

* **molexp**: ``run = exp.Run(parameters=p)``, ``with run.start() as ctx:
  ctx.artifact.save("out.txt", TEXT)`` (created -> running -> succeeded, the artifact saved and
  registered in the catalog), with ``fsync`` on (the default) or off;
* **signac**: ``job = project.open_job(p).init()``, the artifact written to ``job.fn("out.txt")``,
  ``job.document["status"] = "succeeded"``;
* **MLflow** (fluent API, local file store or SQLite store): ``with mlflow.start_run():
  mlflow.log_params(p); mlflow.log_text(TEXT, "out.txt")`` (FINISHED when the block exits).

``open`` reads one run by id (its parameters and status), ``find`` lists the runs whose
parameter ``model`` has a given value (molexp: ``exp.find_runs``, answered from its run-parameter
index); both start from a fresh handle (``Workspace.load``,
``signac.get_project``, ``MlflowClient``), timed with the lookup, as a new session would.
The adapters run inside ``worker.py`` processes, one per system.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from bench_runs import params_for  # the same 4 parameters as benchmarks/bench_runs.py

TEXT = "epoch,loss\n1,0.50\n2,0.25\n3,0.12\n"  # the small artifact
FIND_KEY = "model"  # params_for gives model = f"m{i % 7}": N / 7 hits


class MolexpTracking:
    def __init__(self, root: str, fsync: bool = True) -> None:
        import molexp as me

        self.me = me
        self.root = root
        self.fsync = fsync
        self.exp = self._experiment(root)
        self.ids: list[str] = []

    def _experiment(self, root: str) -> Any:
        ws = self.me.Workspace(root, name="bench", storage_options={"fsync": self.fsync})
        return ws.Project("bench").Experiment("sweep")

    def _create(self, exp: Any, start: int, k: int, ids: list[str]) -> float:
        begin = time.perf_counter()
        for i in range(start, start + k):
            run = exp.Run(parameters=params_for(i))
            with run.start() as ctx:
                ctx.artifact.save("out.txt", TEXT)
            ids.append(run.id)
        return time.perf_counter() - begin

    def warm_up(self, k: int) -> float:
        root = f"{self.root}-warm"
        elapsed = self._create(self._experiment(root), 0, k, [])
        shutil.rmtree(root)
        return elapsed

    def create(self, start: int, k: int) -> float:
        return self._create(self.exp, start, k, self.ids)

    def count(self) -> int:
        return len(self.ids)

    def open(self, picks: list[int]) -> list[float]:
        times = []
        for index in picks:
            run_id = self.ids[index]
            begin = time.perf_counter()
            exp = self.me.Workspace.load(self.root).project("bench").experiment("sweep")
            run = exp.get_run(run_id)
            params, status = run.parameters, run.status
            times.append(time.perf_counter() - begin)
            assert params == params_for(index) and status == "succeeded", (params, status)
        return times

    def find(self, value: str, reps: int) -> tuple[list[float], int]:
        times, hits = [], 0
        for _ in range(reps):
            begin = time.perf_counter()
            exp = self.me.Workspace.load(self.root).project("bench").experiment("sweep")
            found = exp.find_runs({FIND_KEY: value})
            times.append(time.perf_counter() - begin)
            hits = len(found)
        return times, hits


class SignacTracking:
    def __init__(self, root: str) -> None:
        import signac

        self.signac = signac
        self.root = root
        Path(root).mkdir(parents=True)
        self.project = signac.init_project(root)
        self.ids: list[str] = []

    def _create(self, project: Any, start: int, k: int, ids: list[str]) -> float:
        begin = time.perf_counter()
        for i in range(start, start + k):
            job = project.open_job(params_for(i)).init()
            with open(job.fn("out.txt"), "w") as f:
                f.write(TEXT)
            job.document["status"] = "succeeded"
            ids.append(job.id)
        return time.perf_counter() - begin

    def warm_up(self, k: int) -> float:
        root = f"{self.root}-warm"
        Path(root).mkdir(parents=True)
        elapsed = self._create(self.signac.init_project(root), 0, k, [])
        shutil.rmtree(root)
        return elapsed

    def create(self, start: int, k: int) -> float:
        return self._create(self.project, start, k, self.ids)

    def count(self) -> int:
        return len(self.ids)

    def open(self, picks: list[int]) -> list[float]:
        times = []
        for index in picks:
            job_id = self.ids[index]
            begin = time.perf_counter()
            job = self.signac.get_project(self.root).open_job(id=job_id)
            params, status = job.statepoint(), job.document["status"]
            times.append(time.perf_counter() - begin)
            assert params == params_for(index) and status == "succeeded", (params, status)
        return times

    def find(self, value: str, reps: int) -> tuple[list[float], int]:
        times, hits = [], 0
        for _ in range(reps):
            begin = time.perf_counter()
            project = self.signac.get_project(self.root)
            found = list(project.find_jobs({FIND_KEY: value}))
            times.append(time.perf_counter() - begin)
            hits = len(found)
        return times, hits


class MlflowTracking:
    def __init__(self, root: str, store: str = "file") -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        self.mlflow, self.client_class = mlflow, MlflowClient
        self.root = root
        self.store = store
        Path(root).mkdir(parents=True)
        self.uri, self.experiment_id = self._store(root)
        self.ids: list[str] = []

    def _store(self, root: str) -> tuple[str, str]:
        """Point the fluent API at a new store under ``root``; returns its URI and experiment."""
        if self.store == "file":
            uri = Path(root, "mlruns").as_uri()
            artifacts = None  # the file store keeps artifacts beside the runs
        else:
            uri = f"sqlite:///{root}/mlflow.db"
            artifacts = Path(root, "artifacts").as_uri()
        self.mlflow.set_tracking_uri(uri)
        client = self.client_class(tracking_uri=uri)
        experiment_id = client.create_experiment("sweep", artifact_location=artifacts)
        self.mlflow.set_experiment(experiment_id=experiment_id)
        return uri, experiment_id

    def _create(self, start: int, k: int, ids: list[str]) -> float:
        mlflow = self.mlflow
        begin = time.perf_counter()
        for i in range(start, start + k):
            with mlflow.start_run() as run:
                mlflow.log_params(params_for(i))
                mlflow.log_text(TEXT, "out.txt")
            ids.append(run.info.run_id)
        return time.perf_counter() - begin

    def warm_up(self, k: int) -> float:
        root = f"{self.root}-warm"
        Path(root).mkdir(parents=True)
        self._store(root)
        elapsed = self._create(0, k, [])
        self.mlflow.set_tracking_uri(self.uri)  # back to the measured store
        self.mlflow.set_experiment(experiment_id=self.experiment_id)
        shutil.rmtree(root)
        return elapsed

    def create(self, start: int, k: int) -> float:
        return self._create(start, k, self.ids)

    def count(self) -> int:
        return len(self.ids)

    def open(self, picks: list[int]) -> list[float]:
        times = []
        for index in picks:
            run_id = self.ids[index]
            begin = time.perf_counter()
            run = self.client_class(tracking_uri=self.uri).get_run(run_id)
            params, status = run.data.params, run.info.status
            times.append(time.perf_counter() - begin)
            expected = {k: str(v) for k, v in params_for(index).items()}
            assert params == expected and status == "FINISHED", (params, status)
        return times

    def find(self, value: str, reps: int) -> tuple[list[float], int]:
        times, hits = [], 0
        for _ in range(reps):
            begin = time.perf_counter()
            client = self.client_class(tracking_uri=self.uri)
            found = client.search_runs(
                [self.experiment_id], f"params.{FIND_KEY} = '{value}'", max_results=50_000
            )
            times.append(time.perf_counter() - begin)
            hits = len(found)
        return times, hits
