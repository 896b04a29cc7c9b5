"""Building a Workflow Run RO-Crate from runs, with the ``rocrate`` library.

The crate follows the Workflow Run Crate profile 0.6 (and so Process Run Crate 0.6 and Workflow
RO-Crate 1.1, on RO-Crate 1.3):

* each distinct workflow version the runs executed is a ``ComputationalWorkflow`` — the copy of
  its source file kept when the run started (``workflow/<code hash>/<file>``), with its
  parameters as ``FormalParameter`` inputs and its artifact names as outputs; the newest run's
  workflow is the crate's ``mainEntity``;
* each run is a ``CreateAction``: ``instrument`` the workflow, ``object`` its parameter values
  (``PropertyValue``), its profile config (``config.json``) and the assets it read,
  ``result`` its artifacts, logs and latest checkpoints, ``agent`` who ran it, ``startTime``,
  ``endTime`` and ``actionStatus``;
* every file carries its size and, where it is one file, its ``sha256`` (the workflow-run
  context's term); the run's own record (``run.json``), its installed distributions and its
  uncommitted git diff are included as files ``about`` the action.

What it is not: no identifier is minted or registered anywhere, nothing is uploaded, and no
community metadata schema is enforced. It is molexp's internal record made portable. Inputs are
described by reference (name, id, size, hash) unless asked to be copied, since datasets are often
large and already published elsewhere.

Nothing secret is written: storage options are never read here, credentials are stripped from
every URL in the exported records (parameters, config, results, ``run.json``), and the command
lines were redacted when they were captured.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from molexp.cli._errors import CliError

if TYPE_CHECKING:
    from rocrate.model.entity import Entity
    from rocrate.rocrate import ROCrate

    from molexp.workspace import Asset, Provenance, ProvenanceFile, Run
    from molexp.workspace.storage import Storage

RO_CRATE_VERSION = "1.3"
WRROC_VERSION = "0.6"
"""Workflow Run Crate 0.6 goes with RO-Crate 1.3 and Workflow RO-Crate 1.1."""
PROFILES = {
    f"https://w3id.org/ro/wfrun/process/{WRROC_VERSION}": ("Process Run Crate", WRROC_VERSION),
    f"https://w3id.org/ro/wfrun/workflow/{WRROC_VERSION}": ("Workflow Run Crate", WRROC_VERSION),
    "https://w3id.org/workflowhub/workflow-ro-crate/1.1": ("Workflow RO-Crate", "1.1"),
}
WFRUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
ACTION_STATUS = {
    "succeeded": "http://schema.org/CompletedActionStatus",
    "failed": "http://schema.org/FailedActionStatus",
    "cancelled": "http://schema.org/FailedActionStatus",
    "running": "http://schema.org/ActiveActionStatus",
    "created": "http://schema.org/PotentialActionStatus",
}
MEDIA_TYPES = {
    "json": "application/json",
    "text": "text/plain",
    "bytes": "application/octet-stream",
}
CHUNK = 1 << 20


class ExportError(CliError):
    """The crate could not be built, or did not read back as written."""


def _require_rocrate() -> None:
    try:
        import rocrate  # noqa: F401
    except ImportError:
        raise CliError(
            "exporting an RO-Crate needs the 'rocrate' library: pip install 'molexp-cli[ro-crate]'"
        ) from None


@dataclass
class ExportOptions:
    """What to put in the crate besides the metadata."""

    include_inputs: bool = False
    """Copy the payloads of the assets the runs read (default: describe them by reference)."""
    include_outputs: bool = True
    """Copy the runs' artifacts, logs and latest checkpoints (else describe them by reference)."""
    agent_name: str | None = None
    agent_id: str | None = None
    """A URI for the agent (an ORCID, say); default: a local ``#agent-<user>`` identifier."""
    license: str | None = None
    """An SPDX id (``CC-BY-4.0``) or a license URL for the crate."""


@dataclass
class ExportSummary:
    """What was written."""

    directory: Path
    runs: int = 0
    workflows: int = 0
    files: int = 0
    bytes: int = 0
    referenced: int = 0
    warnings: list[str] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)
    """What reading the crate back found (see :func:`check_crate`)."""


def scrub(value: Any) -> Any:
    """``value`` with the credentials of every URL in every string removed (recursively)."""
    from molexp.workspace import strip_userinfo

    if isinstance(value, str):
        return strip_userinfo(value)
    if isinstance(value, Mapping):
        return {str(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def _sha256_hex(content_hash: str | None) -> str | None:
    if content_hash and content_hash.startswith("sha256:"):
        return content_hash.removeprefix("sha256:")
    return None


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _walk(storage: Storage, key: str) -> Iterator[tuple[str, str]]:
    """Every file under ``key`` in ``storage``: (its key, its path relative to ``key``)."""
    pending = [""]
    while pending:
        rel = pending.pop()
        current = f"{key}/{rel}" if rel else key
        for child in sorted(storage.list(current)):
            child_rel = f"{rel}/{child}" if rel else child
            if storage.is_dir(f"{key}/{child_rel}"):
                pending.append(child_rel)
            else:
                yield f"{key}/{child_rel}", child_rel


class CrateBuilder:
    """Adds runs to one RO-Crate being written into ``directory``."""

    def __init__(self, directory: Path, options: ExportOptions) -> None:
        from rocrate.model.computerlanguage import ComputerLanguage
        from rocrate.rocrate import ROCrate

        self.directory = directory
        self.options = options
        self.crate: ROCrate = ROCrate(version=RO_CRATE_VERSION)
        self.summary = ExportSummary(directory)
        self._workflows: dict[tuple[Any, ...], Entity] = {}
        self._inputs: dict[str, Entity] = {}
        self._agents: dict[str, Entity] = {}
        self._actions: list[Entity] = []
        self._main: Entity | None = None
        self.crate.metadata.extra_contexts.append(WFRUN_CONTEXT)
        self._python = self.crate.add(
            ComputerLanguage(
                self.crate,
                "#python",
                properties={
                    "name": "Python",
                    "alternateName": "molexp workflow",
                    "url": {"@id": "https://www.python.org/"},
                },
            )
        )

    # -- files ----------------------------------------------------------------------------------

    def _copy(self, storage: Storage, key: str, rel: str) -> tuple[int, str]:
        """Copy one stored file to ``rel`` in the crate; its size and sha256 hex."""
        target = self.directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        total = 0
        with storage.open(key, "rb") as source, open(target, "wb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                total += len(chunk)
        self.summary.files += 1
        self.summary.bytes += total
        return total, digest.hexdigest()

    def _write(self, rel: str, data: bytes) -> tuple[int, str]:
        target = self.directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.summary.files += 1
        self.summary.bytes += len(data)
        return len(data), hashlib.sha256(data).hexdigest()

    def _file(self, rel: str, size: int, sha: str, properties: dict[str, Any]) -> Entity:
        props = {"contentSize": str(size), "sha256": sha, **properties}
        return self.crate.add_file(source=self.directory / rel, dest_path=rel, properties=props)

    def _asset_entity(self, asset: Asset, rel: str, properties: dict[str, Any]) -> Entity:
        """Copy an asset's payload (a file or a directory) to ``rel`` and describe it."""
        storage = asset.workspace.storage
        key = asset.record.payload
        props = {
            "name": asset.name,
            "identifier": asset.id,
            "dateCreated": _iso(asset.created_at),
            **properties,
        }
        if asset.record.encoding in MEDIA_TYPES:
            props["encodingFormat"] = MEDIA_TYPES[asset.record.encoding]
        if storage.is_dir(key):
            parts = []
            total = 0
            for file_key, file_rel in _walk(storage, key):
                size, sha = self._copy(storage, file_key, f"{rel}/{file_rel}")
                total += size
                parts.append(self._file(f"{rel}/{file_rel}", size, sha, {"name": file_rel}))
            props["contentSize"] = str(total)
            if asset.content_hash:
                props["description"] = (
                    f"{props.get('description', '')} molexp tree hash {asset.content_hash}"
                ).strip()
            dataset = self.crate.add_dataset(source=None, dest_path=rel, properties=props)
            if parts:
                dataset["hasPart"] = parts
            return dataset
        size, sha = self._copy(storage, key, rel)
        expected = _sha256_hex(asset.content_hash)
        if expected is not None and expected != sha:
            self.summary.warnings.append(
                f"{asset.kind.value} {asset.name!r} (asset {asset.id}) no longer matches the hash "
                f"recorded for it ({asset.content_hash}); exported as it is now"
            )
        return self._file(rel, size, sha, props)

    def _reference(self, asset: Asset, why: str) -> Entity:
        """Describe an asset that is not copied into the crate (a ``#`` identifier)."""
        from rocrate.model.contextentity import ContextEntity

        from molexp.workspace import strip_userinfo

        props: dict[str, Any] = {
            "@type": "File",
            "name": asset.name,
            "identifier": asset.id,
            "description": (
                f"{asset.kind.value} asset {asset.name!r}, {why}; it is in the molexp workspace at "
                f"{strip_userinfo(asset.url)}"
            ),
            "dateCreated": _iso(asset.created_at),
        }
        if asset.size is not None:
            props["contentSize"] = str(asset.size)
        if (sha := _sha256_hex(asset.content_hash)) is not None:
            props["sha256"] = sha
        self.summary.referenced += 1
        return self.crate.add(ContextEntity(self.crate, f"#asset-{asset.id}", properties=props))

    # -- workflows ------------------------------------------------------------------------------

    def _formal(self, workflow: Entity, slot: str, name: str, value: Any) -> Entity:
        """The FormalParameter ``name`` of ``workflow`` (``slot`` is ``input`` or ``output``)."""
        sep = "-" if "#" in workflow.id else "#"
        identifier = f"{workflow.id}{sep}{slot}-{quote(name, safe='')}"
        found = self.crate.get(identifier)
        if found is not None:
            return found
        if slot == "output":
            kind = "File"
        elif isinstance(value, bool):
            kind = "Boolean"
        elif isinstance(value, int):
            kind = "Integer"
        elif isinstance(value, float):
            kind = "Float"
        elif isinstance(value, str):
            kind = "Text"
        else:
            kind = "PropertyValue"
        formal = self.crate.add_formal_parameter(
            name=name, additionalType=kind, identifier=identifier
        )
        workflow.append_to(slot, formal)
        return formal

    def _workflow(self, run: Run, provenance: Provenance | None) -> Entity:
        from rocrate.model.contextentity import ContextEntity

        snapshot = run.metadata.workflow_snapshot or {}
        source = provenance.source if provenance is not None else None
        key = (
            snapshot.get("workflow_id"),
            snapshot.get("code_hash"),
            source.content_hash if source else None,
        )
        if key in self._workflows:
            return self._workflows[key]
        name = str(snapshot.get("name") or run.experiment.name)
        tag = _tag(snapshot, source)
        props: dict[str, Any] = {"name": name, "runtimePlatform": _engine()}
        if snapshot.get("workflow_id"):
            props["identifier"] = snapshot["workflow_id"]
        if snapshot.get("code_hash"):
            props["version"] = snapshot["code_hash"]
        git = provenance.git if provenance is not None else None
        facts = [f"molexp workflow {name!r}"]
        if snapshot.get("workflow_id"):
            facts.append(f"declaration id {snapshot['workflow_id']}")
        if snapshot.get("code_hash"):
            facts.append(f"task code hash {snapshot['code_hash']}")
        if git is not None and git.commit:
            state = "with uncommitted changes" if git.dirty else "clean"
            facts.append(f"git commit {git.commit} ({git.branch or 'detached'}, {state})")
        if git is not None and git.remote:
            props["codeRepository"] = git.remote
        props["description"] = "; ".join(facts)
        if source is not None and provenance is not None and provenance.source_file:
            filename = Path(provenance.source_file).name
            rel = f"workflow/{tag}/{filename}"
            data = _read_kept(run, source)
            size, sha = self._write(rel, data)
            props.update({"contentSize": str(size), "sha256": sha})
            entity = self.crate.add_workflow(
                source=self.directory / rel,
                dest_path=rel,
                main=False,
                lang=self._python,
                properties=props,
            )
        else:
            props["@type"] = ["SoftwareSourceCode", "ComputationalWorkflow"]
            props["programmingLanguage"] = self._python
            props["description"] += "; its source file was not kept with the run"
            entity = self.crate.add(ContextEntity(self.crate, f"#workflow-{tag}", properties=props))
        self._workflows[key] = entity
        self.summary.workflows += 1
        return entity

    # -- agents ---------------------------------------------------------------------------------

    def _agent(self, provenance: Provenance | None) -> Entity | None:
        from rocrate.model.person import Person

        options = self.options
        if options.agent_name is not None or options.agent_id is not None:
            identifier = options.agent_id or "#agent"
            name = options.agent_name or options.agent_id or "unknown"
        elif provenance is not None and provenance.user:
            identifier = f"#agent-{provenance.user}"
            name = provenance.user
        else:
            return None
        if identifier not in self._agents:
            props = {"name": name}
            if provenance is not None and provenance.user and options.agent_name is None:
                props["description"] = "the operating-system account that executed the run"
            self._agents[identifier] = self.crate.add(Person(self.crate, identifier, props))
        return self._agents[identifier]

    # -- runs -----------------------------------------------------------------------------------

    def add_run(self, run: Run) -> Entity:
        """Add ``run`` as a CreateAction with its workflow, inputs and outputs."""
        from rocrate.model.contextentity import ContextEntity

        from molexp.workspace import latest_provenance

        meta = run.metadata
        latest = latest_provenance(run)
        provenance = latest[1] if latest is not None else None
        workflow = self._workflow(run, provenance)
        base = f"runs/{run.id}"
        action_id = f"#run-{run.experiment.project.id}-{run.experiment.id}-{run.id}"
        objects: list[Entity] = []
        for name, value in meta.parameters.items():
            formal = self._formal(workflow, "input", name, value)
            clean = scrub(value)
            shown = clean if isinstance(clean, str | int | float | bool) else json.dumps(clean)
            objects.append(
                self.crate.add(
                    ContextEntity(
                        self.crate,
                        f"{action_id}-param-{quote(name, safe='')}",
                        properties={
                            "@type": "PropertyValue",
                            "name": name,
                            "value": shown,
                            "exampleOfWork": formal,
                        },
                    )
                )
            )
        if meta.config:
            data = json.dumps(scrub(meta.config), indent=2, sort_keys=True).encode() + b"\n"
            size, sha = self._write(f"{base}/config.json", data)
            objects.append(
                self._file(
                    f"{base}/config.json",
                    size,
                    sha,
                    {
                        "name": f"profile {meta.profile_name or '(defaults)'}: merged config",
                        "identifier": meta.config_hash,
                        "encodingFormat": "application/json",
                    },
                )
            )
        objects.extend(self._input(asset) for asset in self._read_by(run))
        results = [self._output(run, workflow, asset, base) for asset in _outputs(run)]
        properties: dict[str, Any] = {
            "@type": "CreateAction",
            "name": f"molexp run {run.experiment.project.id}/{run.experiment.id}/{run.id}",
            "identifier": run.id,
            "description": _action_description(run, provenance),
            "actionStatus": {"@id": ACTION_STATUS.get(meta.status.value, ACTION_STATUS["created"])},
        }
        if meta.started_at is not None:
            properties["startTime"] = _iso(meta.started_at)
        if meta.finished_at is not None:
            properties["endTime"] = _iso(meta.finished_at)
        if meta.error is not None:
            properties["error"] = f"{meta.error.type}: {scrub(meta.error.message)}"
        agent = self._agent(provenance)
        if agent is not None:
            properties["agent"] = agent
        action = self.crate.add_action(
            workflow, identifier=action_id, object=objects, result=results, properties=properties
        )
        self._add_records(run, action, base)
        self._actions.append(action)
        self._main = workflow
        self.summary.runs += 1
        return action

    def _read_by(self, run: Run) -> list[Asset]:
        """The assets ``run`` read that it did not make itself (its inputs), first read first."""
        ids: dict[str, None] = {}
        for record in run.metadata.execution_history:
            ids.update(dict.fromkeys(record.inputs))
        for made in run.assets.list():
            if made.producer is not None:
                ids.update(dict.fromkeys(made.producer.inputs))
        catalog = run.experiment.project.workspace.catalog
        found: list[Asset] = []
        for asset_id in ids:
            asset = catalog.get(asset_id)
            if asset is None:
                continue
            producer = asset.producer
            if producer is not None and producer.run_key == _run_key(run):
                continue  # made and read within the run: an intermediate, listed as a result
            found.append(asset)
        return found

    def _input(self, asset: Asset) -> Entity:
        if asset.id in self._inputs:
            return self._inputs[asset.id]
        if self.options.include_inputs:
            filename = asset.record.payload.rsplit("/", 1)[-1]
            entity = self._asset_entity(
                asset, f"inputs/{asset.id}/{filename}", {"description": f"{asset.kind.value} input"}
            )
        else:
            entity = self._reference(asset, "read by the run, not included in this crate")
        self._inputs[asset.id] = entity
        return entity

    def _output(self, run: Run, workflow: Entity, asset: Asset, base: str) -> Entity:
        if not self.options.include_outputs:
            return self._reference(asset, "made by the run, not included in this crate")
        kind = asset.kind.value
        props: dict[str, Any] = {}
        if kind == "artifact":
            rel = f"{base}/artifacts/{asset.name}"
            props["exampleOfWork"] = self._formal(workflow, "output", asset.name, None)
        elif kind == "log":
            rel = f"{base}/logs/{asset.name}.log"
        else:
            step = asset.record.meta.get("step")
            rel = f"{base}/checkpoints/{asset.name}/{asset.record.payload.rsplit('/', 1)[-1]}"
            props["description"] = f"checkpoint {asset.name!r}, step {step} (the latest)"
        return self._asset_entity(asset, rel, props)

    def _add_records(self, run: Run, action: Entity, base: str) -> None:
        """The run's own record, environment, diff and tracebacks, as files about the action."""
        record = scrub(run.metadata.model_dump(mode="json"))
        data = json.dumps(record, indent=2).encode() + b"\n"
        size, sha = self._write(f"{base}/run.json", data)
        about = {"about": action}
        self._file(
            f"{base}/run.json",
            size,
            sha,
            {
                "name": "molexp run record (run.json)",
                "encodingFormat": "application/json",
                "description": "every attempt with its provenance, as molexp recorded it "
                "(URL credentials removed)",
                **about,
            },
        )
        kept: dict[str, tuple[ProvenanceFile, str]] = {}
        for attempt in run.metadata.execution_history:
            prov = attempt.provenance
            if prov is None:
                continue
            if prov.environment is not None:
                kept[prov.environment.path] = (prov.environment, "installed distributions")
            if prov.git.diff is not None:
                kept[prov.git.diff.path] = (prov.git.diff, "uncommitted git diff")
        storage = run.storage
        for path, (kept_file, what) in kept.items():
            # A file the workspace shares between runs goes beside this run's other records.
            rel = (
                f"environments/{path.rsplit('/', 1)[-1]}"
                if kept_file.scope == "workspace"
                else path
            )
            try:
                size, sha = self._copy(storage, kept_file.key(run), f"{base}/{rel}")
            except FileNotFoundError:
                self.summary.warnings.append(f"run {run.id}: {path} is missing; not exported")
                continue
            self._file(f"{base}/{rel}", size, sha, {"name": what, **about})
        for trace in run.assets.list("error_trace"):
            rel = f"{base}/{trace.record.payload.removeprefix(run.key + '/')}"
            self._asset_entity(
                trace, rel, {"description": "traceback of a failed attempt", **about}
            )

    # -- the crate ------------------------------------------------------------------------------

    def finish(self, *, name: str, description: str) -> ExportSummary:
        """Set the root dataset's metadata and write ``ro-crate-metadata.json``."""
        from rocrate.model.contextentity import ContextEntity

        crate = self.crate
        root = crate.root_dataset
        root["name"] = name
        root["description"] = description
        root["datePublished"] = datetime.now(UTC).isoformat()
        if self.options.license:
            license_id = self.options.license
            if "://" not in license_id:
                license_id = f"https://spdx.org/licenses/{license_id}"
            root["license"] = {"@id": license_id}
        profiles = []
        for identifier, (title, profile_version) in PROFILES.items():
            profiles.append(
                crate.add(
                    ContextEntity(
                        crate,
                        identifier,
                        properties={
                            "@type": ["CreativeWork", "Profile"],
                            "name": title,
                            "version": profile_version,
                        },
                    )
                )
            )
        root["conformsTo"] = profiles
        root["mentions"] = self._actions
        if self._main is not None:
            root["mainEntity"] = self._main
        crate.write(self.directory)
        return self.summary


def _tag(snapshot: Mapping[str, Any], source: ProvenanceFile | None) -> str:
    """A short name for a workflow version: the hash of its source file (which changes with any
    edit, module constants included), else its task-code hash, else its declaration id."""
    candidates = [
        _sha256_hex(source.content_hash) if source is not None else None,
        snapshot.get("code_hash"),
        snapshot.get("workflow_id"),
    ]
    for candidate in candidates:
        if candidate:
            return str(candidate)[:12]
    return uuid.uuid4().hex[:12]


def _engine() -> str:
    try:
        return f"molexp-workflow {version('molexp-workflow')}"
    except PackageNotFoundError:
        return "molexp-workflow"


def _run_key(run: Run) -> str:
    return f"{run.experiment.project.id}/{run.experiment.id}/{run.id}"


def _read_kept(run: Run, file: ProvenanceFile) -> bytes:
    from molexp.workspace import read_provenance_file

    return read_provenance_file(run, file)


def _outputs(run: Run) -> list[Asset]:
    """The run's results: every artifact and log (the newest of each name), and the latest
    checkpoint of each name."""
    newest: dict[tuple[str, str], Asset] = {}
    for asset in run.assets.list(["artifact", "log", "checkpoint"]):  # oldest first
        newest[(asset.kind.value, asset.name)] = asset
    return list(newest.values())


def _action_description(run: Run, provenance: Provenance | None) -> str:
    meta = run.metadata
    parts = [
        f"status {meta.status.value}",
        f"{len(meta.execution_history)} attempt(s)",
        f"profile {meta.profile_name or '(defaults)'}",
    ]
    if meta.config_hash:
        parts.append(f"config_hash {meta.config_hash}")
    if provenance is not None:
        parts.append(f"host {provenance.host}, Python {provenance.python}, {provenance.platform}")
        git = provenance.git
        if git.commit:
            dirty = f", dirty (diff {git.diff_hash})" if git.dirty else ", clean"
            parts.append(f"git {git.commit}{dirty}")
        else:
            parts.append(f"git: {git.status}")
    return "; ".join(parts)


def export_runs(
    runs: Sequence[Run], directory: Path, *, name: str, description: str, options: ExportOptions
) -> ExportSummary:
    """Write the runs as one Workflow Run RO-Crate into ``directory`` (which must not exist or be
    empty), then read it back with ``rocrate`` to check it. Written into a temporary sibling
    directory first, so a failure leaves nothing half-written."""
    _require_rocrate()
    if not runs:
        raise ExportError("there is no run to export")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ExportError(f"{directory} exists and is not an empty directory; choose a new one")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".{directory.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        builder = CrateBuilder(staging, options)
        for run in runs:
            builder.add_run(run)
        summary = builder.finish(name=name, description=description)
        summary.check = check_crate(staging, expected_runs=len(runs))
        if directory.exists():
            directory.rmdir()
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary.directory = directory
    return summary


def check_crate(directory: Path, *, expected_runs: int | None = None) -> dict[str, Any]:
    """Read the crate in ``directory`` back with ``rocrate`` and check what an export promises:
    the profiles, a ComputationalWorkflow main entity, one CreateAction per run with its
    instrument, and every file's sha256. Returns a short description; raises ExportError."""
    from rocrate.rocrate import ROCrate

    try:
        crate = ROCrate(directory)
    except Exception as exc:  # the library's own parse errors
        raise ExportError(f"the crate in {directory} does not read back: {exc}") from None
    conforms = {e.id for e in _as_list(crate.root_dataset.get("conformsTo"))}
    missing = [p for p in PROFILES if p not in conforms]
    if missing:
        raise ExportError(f"the crate does not declare the profiles {missing}")
    main = crate.mainEntity
    if main is None or "ComputationalWorkflow" not in _as_list(main.type):
        raise ExportError("the crate has no ComputationalWorkflow main entity")
    actions = crate.get_by_type("CreateAction")
    if expected_runs is not None and len(actions) != expected_runs:
        raise ExportError(f"the crate has {len(actions)} actions, expected {expected_runs}")
    for action in actions:
        if action.get("instrument") is None:
            raise ExportError(f"action {action.id} has no instrument")
    checked = 0
    for entity in crate.get_entities():
        sha = entity.get("sha256")
        if sha is None or entity.id.startswith("#"):
            continue
        path = directory / unquote(entity.id)
        try:
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            raise ExportError(f"{entity.id} is described in the crate but missing") from None
        if actual != sha:
            raise ExportError(f"{entity.id} does not match its sha256 in the crate")
        checked += 1
    return {"main_entity": main.id, "actions": len(actions), "files_checked": checked}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
