"""The public Python API of runs: executions and their history, worker claims and leases,
outcomes and their verification, and workers (methods of :class:`cueflow.engine.Engine`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cueflow.claims as claims
import cueflow.executions as executions
import cueflow.leases as leases
import cueflow.outcomes as outcomes
import cueflow.tracing as tracing
import cueflow.verification as verification
import cueflow.workers as workers
from cueflow.authentication import Principal
from cueflow.errors import CueflowError
from cueflow.longpoll import LongPolls
from cueflow.records import Execution, QueuedRun, WorkerStatus
from cueflow.schemas import ClaimRequest, OutcomeReport
from cueflow.store import ExecutionFilter, ExecutionPage

if TYPE_CHECKING:
    from cueflow.services import Services


class RunMethods:
    """Executions, claims, outcomes, verification and workers."""

    services: Services
    long_polls: LongPolls
    poll_sightings: workers.PollSightings

    async def list_executions(
        self,
        user: Principal,
        where: ExecutionFilter | None = None,
        *,
        limit: int = 20,
        offset: int = 0,
    ) -> ExecutionPage:
        """A page of the caller's executions, newest first."""
        return await executions.list_executions(
            self.services, user, where or ExecutionFilter(), limit, offset
        )

    async def get_execution(self, user: Principal, execution_id: str) -> Execution:
        """One execution, or 404."""
        return await executions.get_execution(self.services, user, execution_id)

    async def get_execution_with_payload(
        self, user: Principal, execution_id: str
    ) -> tuple[Execution, dict[str, Any]]:
        """One execution and the payload it carries (its fire's ``payload_override``, else its
        cue's payload), or 404."""
        return await executions.get_execution_with_payload(self.services, user, execution_id)

    async def cue_executions(
        self, user: Principal, cue_id: str, *, limit: int = 10, offset: int = 0
    ) -> tuple[list[Execution], int]:
        """A page of one cue's executions and their total."""
        return await executions.cue_executions(self.services, user, cue_id, limit, offset)

    async def claimable(
        self,
        user: Principal,
        task: str | None = None,
        *,
        limit: int = claims.CLAIMABLE_LIMIT,
        wait: float = 0,
        worker_id: str | None = None,
    ) -> list[QueuedRun]:
        """Executions ready to be claimed by the caller's workers, oldest first; with ``wait``
        seconds an empty answer waits for work to arrive (long-poll). A poll that names its
        ``worker_id`` counts as that worker's heartbeat (registered, its last heartbeat
        refreshed at most every few seconds; its leases are not extended)."""
        if worker_id is not None:
            ClaimRequest(worker_id=worker_id)
            await workers.polled(self.services, self.poll_sightings, user, worker_id)
        return await claims.claimable(self.services, self.long_polls, user, task, limit, wait)

    async def claim_batch(
        self,
        user: Principal,
        worker_id: str,
        *,
        limit: int = 10,
        execution_ids: Sequence[str] | None = None,
        task: str | None = None,
        wait: float = 0,
    ) -> claims.ClaimBatch:
        """Claim several executions at once (the given ids, or up to ``limit`` of the oldest
        due), each with its own lease, exactly as single claims would."""
        ClaimRequest(worker_id=worker_id)
        since = tracing.started()
        batch = await claims.claim_batch(
            self.services,
            self.long_polls,
            user,
            worker_id,
            limit=limit,
            execution_ids=execution_ids,
            task=task,
            wait=wait,
        )
        claimed = ((run.id, None) for run in batch.claimed)
        tracing.finished("cueflow.claim", since, claimed, worker_id=worker_id)
        return batch

    async def claim(
        self, user: Principal, worker_id: str, execution_id: str | None = None
    ) -> dict[str, Any]:
        """Claim one execution (or the oldest due one) with a lease."""
        ClaimRequest(worker_id=worker_id)
        since = tracing.started()
        claimed = await claims.claim(self.services, user, worker_id, execution_id)
        tracing.finished(
            "cueflow.claim", since, [(claimed["execution_id"], None)], worker_id=worker_id
        )
        return claimed

    async def heartbeat_execution(
        self, user: Principal, execution_id: str, worker_id: str | None = None
    ) -> dict[str, Any]:
        """Extend the lease of a claimed execution."""
        with tracing.execution_span("cueflow.heartbeat", execution_id, worker_id=worker_id):
            return await leases.heartbeat(self.services, user, execution_id, worker_id)

    async def report_outcome(
        self,
        user: Principal,
        execution_id: str,
        report: OutcomeReport | dict[str, Any],
        worker_id: str | None = None,
    ) -> dict[str, Any]:
        """Record an execution's outcome (once)."""
        if isinstance(report, dict):
            report = OutcomeReport.model_validate(report)
        with tracing.execution_span("cueflow.outcome", execution_id, success=report.success):
            return await outcomes.record_outcome(
                self.services, user, execution_id, report, worker_id
            )

    async def report_outcomes(
        self,
        user: Principal,
        reports: Sequence[tuple[str, OutcomeReport | dict[str, Any]]],
        worker_id: str | None = None,
    ) -> list[dict[str, Any] | CueflowError]:
        """Record several outcomes in one transaction, ``(execution_id, report)`` each; per item
        the single outcome's answer, or the error it would have raised (404, 409, 400)."""
        parsed = [
            (eid, OutcomeReport.model_validate(r) if isinstance(r, dict) else r)
            for eid, r in reports
        ]
        since = tracing.started()
        answers = await outcomes.record_outcomes(self.services, user, parsed, worker_id)
        traced = ((eid, answer) for (eid, _), answer in zip(parsed, answers, strict=True))
        tracing.finished("cueflow.outcome", since, traced)
        return answers

    async def release_execution(
        self,
        user: Principal,
        execution_id: str,
        worker_id: str,
        reason: str | None = None,
        *,
        retry_after_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Give a claimed execution back unfinished (cueflow extension): back to the queue
        with the claim counted, claimable again after ``retry_after_seconds`` (default: the
        cue's retry backoff), or failed once its attempts are used up."""
        return await leases.release(
            self.services, user, execution_id, worker_id, reason, retry_after_seconds
        )

    # verification
    async def verify_outcome(
        self, user: Principal, execution_id: str, *, valid: bool = True, reason: str | None = None
    ) -> dict[str, Any]:
        """Confirm (``valid``) or reject an execution's reported outcome."""
        return await verification.verify(self.services, user, execution_id, valid, reason)

    async def mark_verification_pending(self, user: Principal, execution_id: str) -> dict[str, Any]:
        """Put an execution's recorded outcome back to ``verification_pending``."""
        return await verification.mark_pending(self.services, user, execution_id)

    async def append_evidence(
        self, user: Principal, execution_id: str, evidence: dict[str, Any]
    ) -> dict[str, Any]:
        """Add evidence (``external_id``, ``result_url``, ``summary`` ...) to a recorded
        outcome."""
        return await verification.append_evidence(self.services, user, execution_id, evidence)

    # workers
    async def worker_heartbeat(
        self, user: Principal, worker_id: str, handlers: list[str] | None = None
    ) -> dict[str, Any]:
        """Register or refresh a worker."""
        return await workers.heartbeat(
            self.services, user, worker_id, handlers, self.poll_sightings
        )

    async def list_workers(self, user: Principal) -> list[WorkerStatus]:
        """The caller's workers and their liveness."""
        return await workers.list_workers(self.services, user)

    async def delete_worker(self, user: Principal, worker_id: str) -> None:
        """Forget a worker."""
        await workers.delete_worker(self.services, user, worker_id, self.poll_sightings)
