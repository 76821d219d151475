"""Kopf handlers: thin glue between Kubernetes events and the pure core.

Each handler parses the spec (cluster_spec / topic_spec), builds or plans what
should exist (cluster_manifests / topic_plan), makes it so (kube / kafka_admin),
and writes the status computed by the pure status functions. Reconciles are
level-triggered: create, update, resume and a periodic timer all run the same
function, so a missed event or a drifted object is corrected on the next tick.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import kopf

from brook.operator import kopf_settings, metrics
from brook.operator.annotations import deletion_policy, is_paused
from brook.operator.backoff import is_transient, retry_delay
from brook.operator.cluster_balance import (
    first_batch,
    plan_balance,
    plan_internal_replication,
    spread,
)
from brook.operator.cluster_manifests import (
    ClusterNames,
    build_cluster_objects,
    parse_properties,
    quorum_voters,
    selector_labels,
    voter_ids,
)
from brook.operator.cluster_rolling import BrokerPod, next_restart
from brook.operator.cluster_scaling import ScaleDecision, decide_scale, next_voter
from brook.operator.cluster_spec import SpecError, parse_cluster
from brook.operator.cluster_status import ClusterObservation, compute_cluster_status, topic_risks
from brook.operator.conditions import paused_status
from brook.operator.config import OperatorConfig
from brook.operator.constants import (
    CLUSTER_KIND,
    CLUSTER_LABEL,
    CLUSTER_PLURAL,
    CONFIG_FILE,
    CONTROLLER_PORT,
    FIELD_MANAGER,
    GROUP,
    INTERNAL_TOPICS,
    POD_INDEX_LABEL,
    TOPIC_KIND,
    TOPIC_PLURAL,
    VERSION,
)
from brook.operator.kafka_admin import AdminError, KafkaAdmin
from brook.operator.kafka_quorum import QuorumClient
from brook.operator.kafka_reassign import ReassignmentClient
from brook.operator.kube import Kube, KubeError, load_config
from brook.operator.reassign_throttle import brokers_to_unthrottle, topics_to_unthrottle
from brook.operator.topic_plan import Refusal, TopicOutcome, plan_topic, topic_status
from brook.operator.topic_spec import managing_topic, parse_topic

CONFIG = OperatorConfig.from_env()


class _Runtime:
    """Process-wide state: the API client and one lock per object (timer vs. change)."""

    def __init__(self) -> None:
        self._kube: Kube | None = None
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            load_config()
            self._kube = Kube()
        return self._kube

    def lock(self, uid: str) -> threading.Lock:
        with self._guard:
            return self._locks[uid]


RUNTIME = _Runtime()


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, logger, **_: Any) -> None:
    kopf_settings.configure(settings)
    RUNTIME.kube  # noqa: B018 - fail fast on a bad kubeconfig
    logger.info(
        f"brook-operator: field manager {FIELD_MANAGER}, resync {CONFIG.resync_seconds}s, "
        f"namespaces {', '.join(CONFIG.namespaces) or 'all'}"
    )


def _bootstrap(namespace: str, cluster: str) -> str:
    if CONFIG.bootstrap_override:
        return CONFIG.bootstrap_override.format(name=cluster, namespace=namespace)
    return ClusterNames(cluster, namespace).bootstrap_servers(CONFIG.cluster_domain)


# ---------------------------------------------------------------------------------
# KafkaCluster
# ---------------------------------------------------------------------------------


class _ClusterClients:
    """The brokers' clients one reconcile uses, each made on first use and then shared
    (every AdminClient sets up its own connections)."""

    def __init__(self, spec) -> None:
        names = ClusterNames(spec.name, spec.namespace)
        self.bootstrap = _bootstrap(spec.namespace, spec.name)
        # Controller listeners of the brokers the spec keeps (any relays to the leader).
        self.controllers = [f"{names.pod_host(i, CONFIG.cluster_domain)}:{CONTROLLER_PORT}"
                            for i in range(spec.replicas)]

    @functools.cached_property
    def admin(self) -> KafkaAdmin:
        return KafkaAdmin(self.bootstrap, timeout=CONFIG.admin_timeout_seconds)

    @functools.cached_property
    def reassigner(self) -> ReassignmentClient:
        return ReassignmentClient(self.bootstrap, timeout=CONFIG.admin_timeout_seconds)

    def quorum(self, timeout: float | None = None) -> QuorumClient:
        return QuorumClient(self.controllers, timeout=timeout or CONFIG.admin_timeout_seconds)


def _cluster_status(body: dict[str, Any], obs: ClusterObservation) -> None:
    meta = body["metadata"]
    status = compute_cluster_status(body, obs, CONFIG.cluster_domain)
    RUNTIME.kube.apply_status(CLUSTER_PLURAL, CLUSTER_KIND, meta["namespace"], meta["name"], status)


def reconcile_cluster(body: dict[str, Any], logger, *, ask_brokers: bool, retry: int = 0) -> None:
    with metrics.reconciling(CLUSTER_KIND):
        _reconcile_cluster(body, logger, ask_brokers=ask_brokers, retry=retry)


def _reconcile_cluster(body: dict[str, Any], logger, *, ask_brokers: bool, retry: int) -> None:
    meta = body["metadata"]
    kube = RUNTIME.kube
    with RUNTIME.lock(meta["uid"]):
        # The event's copy can be older than the object (a timer's, or one that waited
        # for the lock): acting on an old spec.replicas would undo a scale-up.
        fresh = kube.get_custom(CLUSTER_PLURAL, meta["namespace"], meta["name"])
        if fresh is None or fresh["metadata"].get("uid") != meta["uid"]:
            return
        body = fresh
        meta = body["metadata"]
        if is_paused(body):
            kube.apply_status(CLUSTER_PLURAL, CLUSTER_KIND, meta["namespace"], meta["name"],
                              paused_status(body))
            return
        try:
            parsed = parse_cluster(body)
        except SpecError as exc:
            logger.warning(f"invalid spec: {exc}")
            sts = kube.get_statefulset(meta["namespace"], ClusterNames(meta["name"], meta["namespace"]).statefulset)
            _cluster_status(body, ClusterObservation(statefulset=sts, spec_error=str(exc)))
            return
        names = ClusterNames(parsed.spec.name, parsed.spec.namespace)
        existing = kube.get_statefulset(names.namespace, names.statefulset)
        config_map = kube.get_config_map(names.namespace, names.config_map)
        current = parse_properties(((config_map or {}).get("data") or {}).get(CONFIG_FILE, "")) or None
        voters = voter_ids(quorum_voters(parsed.spec, CONFIG, current))
        clients = _ClusterClients(parsed.spec)
        decision = _scale_decision(body, parsed.spec, existing, voters, clients, logger)
        spec = dataclasses.replace(parsed.spec, replicas=decision.replicas)
        try:
            for obj in build_cluster_objects(spec, body, CONFIG, current):
                kube.apply(obj)
        except KubeError as exc:
            sts = kube.get_statefulset(names.namespace, names.statefulset)
            _cluster_status(body, ClusterObservation(statefulset=sts, apply_error=exc.message,
                                                     warnings=parsed.warnings))
            raise kopf.TemporaryError(f"apply failed: {exc.message}", delay=retry_delay(retry)) from exc
        sts = kube.get_statefulset(names.namespace, names.statefulset)
        roll = _roll(body, names, sts, logger, clients)
        controller = cluster_id = None
        ready = int(((sts or {}).get("status") or {}).get("readyReplicas") or 0)
        if ask_brokers and ready > 0:
            try:
                info = clients.admin.cluster_info()
                controller, cluster_id = info.controller, info.cluster_id
            except AdminError as exc:
                logger.info(f"brokers not answering metadata yet: {exc}")
        previous = body.get("status") or {}
        if controller is None and ready > 0:
            controller = previous.get("controller")
        risks = None
        if ask_brokers and ready > 0:
            try:
                states = clients.admin.partition_states()
                risks = topic_risks(states)
            except AdminError as exc:
                logger.info(f"cannot read the topics' replication settings: {exc}")
        had = int(((existing or {}).get("spec") or {}).get("replicas") or 0)
        # A scale-down reverted mid-drain leaves the drained brokers empty: balance too.
        grew = existing is not None and (had < spec.replicas or
                                         (had <= spec.replicas and _ready_reason(body) == "Draining"))
        busy = bool(decision.refusal or decision.progress or roll.note or roll.halted)
        quorum = _QuorumStep(voters=previous.get("voters"))
        if ask_brokers and ready > 0 and not busy:
            quorum = _grow_quorum(body, spec, ready, clients, logger) or quorum
        balance = _balance(body, spec, ready, grew, busy, ask_brokers, clients, logger)
        if ask_brokers and ready >= spec.replicas and not busy:
            try:
                _lift_idle_throttle(clients, list(range(spec.replicas)), logger)
            except AdminError as exc:
                logger.warning(f"cannot lift the reassignment throttle (retried): {exc}")
        _cluster_status(
            body,
            ClusterObservation(statefulset=sts, controller=controller,
                               cluster_id=cluster_id or previous.get("clusterId"),
                               warnings=parsed.warnings, scale_refusal=decision.refusal,
                               scale_progress=decision.progress,
                               roll_note=roll.note, roll_halted=roll.halted,
                               balance_pending=balance.pending, balance_progress=balance.progress,
                               balance_elected=balance.elected, topic_risks=risks,
                               voters=quorum.voters, quorum_progress=quorum.progress),
        )


@dataclasses.dataclass(frozen=True)
class _QuorumStep:
    voters: list[int] | None = None  # the metadata quorum's voters, when known
    progress: str | None = None  # a voter was just added (status: ScalingUp)


def _grow_quorum(body: dict[str, Any], spec, ready: int, clients: _ClusterClients, logger) -> _QuorumStep | None:
    """New brokers become metadata quorum voters while fewer than three exist, one per
    reconcile (DESIGN.md, issue #7). None when the quorum cannot be asked."""
    try:
        voters = clients.quorum().voters()
        if ready < spec.replicas:
            return _QuorumStep(voters)
        node = next_voter(voters, clients.admin.cluster_info().brokers, spec.replicas)
        if node is None:
            return _QuorumStep(voters)
        # Promotion waits for the broker to catch up with the metadata log as a learner.
        voters = clients.quorum(timeout=max(30.0, CONFIG.admin_timeout_seconds)).add_voter(node)
    except AdminError as exc:
        logger.warning(f"metadata quorum: {exc}")
        return None
    message = (f"broker {node} joined the metadata quorum's voters (now {', '.join(map(str, voters))})")
    logger.info(message)
    kopf.event(body, type="Normal", reason="VoterAdded", message=message)
    return _QuorumStep(voters, f"scaling up: {message}")


@dataclasses.dataclass(frozen=True)
class _BalanceStep:
    pending: bool = False
    progress: str | None = None
    elected: int | None = None


def _balance(body: dict[str, Any], spec, ready: int, grew: bool, busy: bool, ask_brokers: bool,
             clients: _ClusterClients, logger) -> _BalanceStep:
    """After a scale-up: move replicas and preferred leaders onto the new brokers, a small
    batch of partitions at a time, until balanced (status.balance says how far)."""
    # `body` was read under the object's lock, which every status writer holds: its
    # status is the one this operator wrote last.
    previous = (body.get("status") or {}).get("balance") or {}
    if not (grew or previous.get("pending")):
        if ask_brokers and not busy and ready >= spec.replicas:
            # An internal topic created after the last scale-up starts with the
            # bootstrap factor (1 for a cluster created with one broker): raise it too.
            try:
                assignments, ongoing = _settled_assignments(clients)
                if not ongoing:
                    _raise_internal_replication(body, spec, clients, assignments, logger)
            except AdminError as exc:
                logger.warning(f"internal topics' replication factor: {exc}")
        return _BalanceStep()
    if not ask_brokers or busy or ready < spec.replicas:
        return _BalanceStep(True, previous.get("message") or
                            f"balancing after the scale-up: waiting for {spec.replicas} ready brokers")
    try:
        admin = clients.admin
        if len(admin.cluster_info().brokers) < spec.replicas:
            return _BalanceStep(True, "balancing after the scale-up: waiting for every broker to register")
        assignments, ongoing = _settled_assignments(clients)
        if ongoing:
            return _BalanceStep(True, f"balancing: {ongoing} partition reassignment(s) in progress")
        raised = _raise_internal_replication(body, spec, clients, assignments, logger)
        if raised:
            return _BalanceStep(True, raised)
        brokers = list(range(spec.replicas))
        plan = plan_balance(assignments, brokers)
        if plan:
            batch = first_batch(plan, CONFIG.balance_batch_partitions)
            _throttle(admin, sorted(batch), brokers, logger)
            for topic_name, moves in sorted(batch.items()):
                clients.reassigner.reassign(topic_name, moves)
            total = sum(len(p) for p in plan.values())
            moved = sum(len(p) for p in batch.values())
            message = (f"balancing: moving {moved} of {total} partition(s) still to move onto brokers "
                       f"0-{spec.replicas - 1} ({', '.join(sorted(batch))})")
            logger.info(message)
            kopf.event(body, type="Normal", reason="Reassigning", message=message)
            return _BalanceStep(True, message)
        leaders = admin.leaders()
        elect = sorted((t, p) for t, parts in assignments.items() if t not in INTERNAL_TOPICS
                       for p, replicas in parts.items() if replicas and leaders.get(t, {}).get(p) != replicas[0])
        if elect and previous.get("elected") != len(elect):  # once per outcome: no endless retries
            admin.elect_preferred_leaders(elect)
            message = f"balancing: electing the preferred leaders of {len(elect)} partition(s)"
            kopf.event(body, type="Normal", reason="Reassigning", message=message)
            return _BalanceStep(True, message, len(elect))
        replicas_spread, leaders_spread = spread(assignments, brokers)
        message = (f"balanced over {spec.replicas} brokers (per topic, replicas differ by at most "
                   f"{replicas_spread} and preferred leaders by at most {leaders_spread})")
        logger.info(message)
        kopf.event(body, type="Normal", reason="Balanced", message=message)
        return _BalanceStep()
    except AdminError as exc:
        logger.warning(f"balancing: {exc}")
        return _BalanceStep(True, f"balancing: {exc.message} (retrying)")


def _settled_assignments(clients: _ClusterClients) -> tuple[dict, int]:
    """Every topic's replica lists, and the reassignments in progress (read before and
    after them: a move that starts or ends in between shows old and new replicas
    together, which must not be taken for the partition's replication factor)."""
    before = clients.reassigner.count_ongoing()
    assignments = clients.admin.assignments()
    return assignments, max(before, clients.reassigner.count_ongoing())


def _raise_internal_replication(body: dict[str, Any], spec, clients: _ClusterClients,
                                assignments: dict, logger) -> str | None:
    """Raise the internal topics' replication factor to the declared one, at most the
    brokers (cluster_balance.plan_internal_replication); `assignments` must be settled
    (nothing moving). What was started, or None."""
    brokers = list(range(spec.replicas))
    internal = plan_internal_replication(assignments, brokers, spec.config)
    if not internal:
        return None
    _throttle(clients.admin, sorted(internal), brokers, logger)
    for topic_name, moves in sorted(internal.items()):
        clients.reassigner.reassign(topic_name, moves)
    targets = ", ".join(f"{t} to {len(next(iter(m.values())))}" for t, m in sorted(internal.items()))
    message = f"balancing: raising the replication factor of {targets}"
    logger.info(message)
    kopf.event(body, type="Normal", reason="Reassigning", message=message)
    return message


def _age(meta: dict[str, Any]) -> float:
    stamp = meta.get("creationTimestamp")
    if not stamp:
        return 0.0
    created = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return max(0.0, (datetime.now(UTC) - created).total_seconds())


def _broker_pods(pods: list[dict[str, Any]]) -> list[BrokerPod]:
    out = []
    for pod in pods:
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        condition = next((c for c in (pod.get("status") or {}).get("conditions") or []
                          if c.get("type") == "Ready"), {})
        ready = condition.get("status") == "True"
        ready_for = _age({"creationTimestamp": condition.get("lastTransitionTime")}) \
            if ready and condition.get("lastTransitionTime") else 1e9
        out.append(BrokerPod(meta["name"], int(labels.get(POD_INDEX_LABEL, -1)),
                             labels.get("controller-revision-hash", ""), ready,
                             bool(meta.get("deletionTimestamp")), _age(meta), ready_for))
    return out


@dataclasses.dataclass(frozen=True)
class _RollStep:
    note: str | None = None
    halted: str | None = None


def _roll(body: dict[str, Any], names: ClusterNames, sts: dict[str, Any] | None, logger,
          clients: _ClusterClients) -> _RollStep:
    """One step of the ISR-aware rolling restart; a note for the status, if any."""
    update_revision = ((sts or {}).get("status") or {}).get("updateRevision")
    if not update_revision:
        return _RollStep()
    kube = RUNTIME.kube
    raw = kube.list_pods(names.namespace, selector_labels(names.cluster))
    pods = _broker_pods(raw)
    if all(p.revision == update_revision for p in pods):
        return _RollStep()
    partitions = controller = None
    if all(p.ready and not p.terminating for p in pods):
        try:
            controller = clients.admin.cluster_info().controller
            partitions = clients.admin.partition_states()
        except AdminError as exc:
            logger.warning(f"rolling restart: cannot read partition state: {exc}")
    decision = next_restart(pods, update_revision, controller, partitions,
                            halt_after=CONFIG.roll_halt_seconds, settle=CONFIG.roll_settle_seconds)
    if decision.halted:
        if _ready_reason(body) != "RollHalted":
            logger.warning(decision.waiting)
            kopf.warn(body, reason="RollHalted", message=decision.waiting)
        return _RollStep(decision.waiting, decision.halted)
    if decision.restart is None:
        return _RollStep(decision.waiting)
    pod = next(p for p in raw if p["metadata"]["name"] == decision.restart)
    message = (f"restarting {decision.restart} for the latest configuration "
               f"({decision.outdated} to go; active controller: {controller})")
    logger.info(message)
    kopf.event(body, type="Normal", reason="BrokerRestart", message=message)
    kube.delete_pod(names.namespace, decision.restart, pod["metadata"]["uid"])
    return _RollStep(f"restarting {decision.restart}")


def _ready_reason(body: dict[str, Any]) -> str | None:
    return next((c.get("reason") for c in (body.get("status") or {}).get("conditions") or []
                 if c.get("type") == "Ready"), None)


def _scale_decision(body: dict[str, Any], spec, existing: dict[str, Any] | None, voters: list[int],
                    clients: _ClusterClients, logger) -> ScaleDecision:
    """The next step of a scale-down (drain, remove voters, shrink), carried out here."""
    current = ((existing or {}).get("spec") or {}).get("replicas")
    if current is None or spec.replicas >= current:
        return decide_scale(current, spec.replicas, {})
    assignments = None
    reassigning = 0
    quorum = clients.quorum()
    if int(((existing or {}).get("status") or {}).get("readyReplicas") or 0) > 0:
        try:
            assignments, reassigning = _settled_assignments(clients)
            voters = quorum.voters()
        except AdminError as exc:
            logger.warning(f"cannot check the scale-down: {exc}")
            assignments = None
    decision = decide_scale(current, spec.replicas, assignments,
                            voters=voters, reassigning=reassigning)
    if decision.refusal:
        logger.warning(decision.refusal)
        if _ready_reason(body) != "ScaleDownRefused":
            kopf.warn(body, reason="ScaleDownRefused", message=decision.refusal)
    try:
        if decision.drain:
            _throttle(clients.admin, sorted(decision.drain), list(range(current)), logger)
            for topic_name, plan in sorted(decision.drain.items()):
                clients.reassigner.reassign(topic_name, plan)
            logger.info(decision.progress)
            kopf.event(body, type="Normal", reason="Draining", message=decision.progress)
        if assignments is not None and not decision.refusal and not decision.drain and not reassigning:
            # Drained: the departing brokers must not keep the throttle's rates (they
            # would come back with them), so lift it before they go.
            _lift_idle_throttle(clients, list(range(current)), logger)
        if decision.remove_voter is not None:
            quorum.remove_voter(decision.remove_voter)
            message = f"removed broker {decision.remove_voter} from the metadata quorum's voters"
            logger.info(message)
            kopf.event(body, type="Normal", reason="VoterRemoved", message=message)
    except AdminError as exc:
        logger.warning(f"scale-down step failed (retried): {exc}")
        # Never shrink after a failed step (the departing brokers could keep the throttle).
        return dataclasses.replace(decision, replicas=current,
                                   progress=f"{decision.progress or 'scaling down'}; last attempt failed: "
                                            f"{exc.message}")
    return decision


def _throttle(admin: KafkaAdmin, topics: list[str], brokers: list[int], logger) -> None:
    """Throttle the replicas of `topics` at BROOK_REASSIGN_THROTTLE_BYTES on `brokers`
    (lifted by `_lift_idle_throttle`). A failure is logged: moving unthrottled beats not
    moving at all."""
    if not CONFIG.reassign_throttle_bytes or not topics:
        return
    try:
        admin.throttle_reassignments(CONFIG.reassign_throttle_bytes, topics, brokers)
    except AdminError as exc:
        logger.warning(f"reassignment throttle: {exc}")


def _lift_idle_throttle(clients: _ClusterClients, brokers: list[int], logger) -> None:
    """Lift the operator's reassignment throttle from `brokers` (and the topics' replica
    lists) once no reassignment is in progress. Raises AdminError when it cannot."""
    if not CONFIG.reassign_throttle_bytes:
        return
    reassigning = clients.reassigner.count_ongoing()
    if reassigning:
        return
    admin = clients.admin
    # Broker configs are read and altered on the broker itself: skip those that are
    # down (a departing broker that crashed must not block the scale-down forever).
    live = set(admin.cluster_info().brokers)
    rates = admin.throttle_rates([b for b in brokers if b in live])
    lift = brokers_to_unthrottle(rates, CONFIG.reassign_throttle_bytes, reassigning)
    if not lift:
        return
    topics = topics_to_unthrottle(admin.throttled_replica_lists())
    admin.throttle_reassignments(None, topics, lift)
    logger.info(f"no reassignment in progress: lifted the reassignment throttle from brokers "
                f"{', '.join(map(str, lift))} and topics {', '.join(topics) or '(none)'}")


@kopf.on.resume(GROUP, VERSION, CLUSTER_PLURAL)
@kopf.on.create(GROUP, VERSION, CLUSTER_PLURAL)
@kopf.on.update(GROUP, VERSION, CLUSTER_PLURAL)
def cluster_changed(body, logger, retry: int, **_: Any) -> None:
    reconcile_cluster(dict(body), logger, ask_brokers=False, retry=retry)


@kopf.timer(GROUP, VERSION, CLUSTER_PLURAL, interval=CONFIG.resync_seconds, initial_delay=2)
def cluster_resync(body, logger, **_: Any) -> None:
    if body.get("metadata", {}).get("deletionTimestamp"):
        return
    try:
        reconcile_cluster(dict(body), logger, ask_brokers=True)
    except kopf.TemporaryError as exc:
        logger.warning(str(exc))


@kopf.on.event("apps", "v1", "statefulsets", labels={"app.kubernetes.io/managed-by": FIELD_MANAGER})
def statefulset_event(body, namespace, logger, **_: Any) -> None:
    """Brokers became ready (or not): refresh the owning cluster's status at once."""
    cluster = (body.get("metadata", {}).get("labels") or {}).get(CLUSTER_LABEL)
    if not cluster or not namespace:
        return
    kube = RUNTIME.kube
    owner = kube.get_custom(CLUSTER_PLURAL, namespace, cluster)
    if owner is None or is_paused(owner) or owner["metadata"].get("deletionTimestamp"):
        return
    with RUNTIME.lock(owner["metadata"]["uid"]):
        # Read again under the lock: a reconcile may have written the status (say, a
        # balance now pending) while this waited, and writing the older copy loses it.
        owner = kube.get_custom(CLUSTER_PLURAL, namespace, cluster)
        if owner is None or owner["metadata"].get("deletionTimestamp"):
            return
        try:
            parsed = parse_cluster(owner)
        except SpecError:
            return  # the cluster's own handler reports it
        previous = owner.get("status") or {}
        ready = next((c for c in previous.get("conditions") or [] if c.get("type") == "Ready"), {})
        if ready.get("reason") in ("ScaleDownRefused", "Draining"):
            return  # the cluster's own reconcile owns that verdict
        names = ClusterNames(owner["metadata"]["name"], namespace)
        roll = _roll(owner, names, dict(body), logger, _ClusterClients(parsed.spec))  # a broker came back: continue
        balance = previous.get("balance") or {}
        _cluster_status(
            owner,
            ClusterObservation(statefulset=dict(body), controller=previous.get("controller"),
                               cluster_id=previous.get("clusterId"), warnings=parsed.warnings,
                               roll_note=roll.note, roll_halted=roll.halted,
                               balance_pending=bool(balance.get("pending")),
                               balance_progress=balance.get("message"),
                               balance_elected=balance.get("elected"), voters=previous.get("voters")),
        )


# ---------------------------------------------------------------------------------
# Topic
# ---------------------------------------------------------------------------------


def _cluster_replicas(cluster: dict[str, Any]) -> int | None:
    replicas = (cluster.get("spec") or {}).get("replicas")
    return int(replicas) if replicas is not None else None


def _has_ready_brokers(cluster: dict[str, Any]) -> bool:
    """Whether asking the cluster anything can work (saves an Admin API timeout)."""
    return int((cluster.get("status") or {}).get("readyReplicas") or 0) > 0


def _topic_status(body: dict[str, Any], spec, outcome: TopicOutcome) -> None:
    meta = body["metadata"]
    RUNTIME.kube.apply_status(TOPIC_PLURAL, TOPIC_KIND, meta["namespace"], meta["name"],
                              topic_status(body, spec, outcome))


def _with_reassignments(observed, reassigner: ReassignmentClient, spec):
    """Reassignments in progress matter only to a declared replication factor."""
    if spec.replication_factor is None:
        return observed
    try:
        ongoing = reassigner.ongoing(spec.topic_name)
    except AdminError as exc:
        if exc.unreachable:
            raise
        ongoing = {}  # a cluster without the API has no reassignments either
    return dataclasses.replace(observed, reassigning=ongoing)


def _describe(admin: KafkaAdmin, reassigner: ReassignmentClient, spec, brokers: int | None = None):
    """The topic as Kafka has it; new replicas only ever go to brokers below `brokers`
    (the cluster's spec.replicas): the others are leaving."""
    observed = admin.describe_topic(spec.topic_name)
    if observed is None:
        return None
    if brokers is not None:
        observed = dataclasses.replace(observed, brokers=tuple(b for b in observed.brokers if b < brokers))
    return _with_reassignments(observed, reassigner, spec)


def _describe_after_change(admin: KafkaAdmin, name: str, created: bool):
    """Re-read the topic; right after CreateTopics its metadata may still be settling."""
    deadline = time.monotonic() + (10 if created else 0)
    while True:
        observed = admin.describe_topic(name)
        if observed is not None or time.monotonic() >= deadline:
            return observed
        time.sleep(0.5)


def reconcile_topic(body: dict[str, Any], logger, retry: int = 0) -> None:
    with metrics.reconciling(TOPIC_KIND):
        _reconcile_topic(body, logger, retry)


def _retry_later(outcome: TopicOutcome, retry: int) -> None:
    """After the status says why: a transient error is retried with backoff (Kopf
    calls the handler again after the delay), a refusal waits for a spec change."""
    if outcome.error is not None and is_transient(outcome.error.reason):
        raise kopf.TemporaryError(f"{outcome.error.reason}: {outcome.error.message}", delay=retry_delay(retry))


def _reconcile_topic(body: dict[str, Any], logger, retry: int) -> None:
    meta = body["metadata"]
    kube = RUNTIME.kube
    with RUNTIME.lock(meta["uid"]):
        # As for clusters: never act on an older spec than the object has now.
        fresh = kube.get_custom(TOPIC_PLURAL, meta["namespace"], meta["name"])
        if fresh is None or fresh["metadata"].get("uid") != meta["uid"] or fresh["metadata"].get("deletionTimestamp"):
            return
        body = fresh
        meta = body["metadata"]
        if is_paused(body):
            kube.apply_status(TOPIC_PLURAL, TOPIC_KIND, meta["namespace"], meta["name"], paused_status(body))
            return
        try:
            parsed = parse_topic(body)
        except SpecError as exc:
            _topic_status(body, None, TopicOutcome(error=Refusal("InvalidSpec", str(exc))))
            return
        spec = parsed.spec
        rival = managing_topic(body, kube.list_custom(TOPIC_PLURAL, spec.namespace))
        if rival is not None:
            _topic_status(body, spec, TopicOutcome(error=Refusal(
                "TopicAlreadyManaged",
                f"Topic {rival['metadata']['name']!r} already manages Kafka topic {spec.topic_name!r} "
                f"of cluster {spec.cluster!r}; this resource is ignored",
            ), warnings=parsed.warnings))
            return
        cluster = kube.get_custom(CLUSTER_PLURAL, spec.namespace, spec.cluster)
        if cluster is None:
            outcome = TopicOutcome(error=Refusal(
                "ClusterNotFound", f"KafkaCluster {spec.cluster!r} does not exist in namespace {spec.namespace!r}",
            ), warnings=parsed.warnings)
            _topic_status(body, spec, outcome)
            _retry_later(outcome, retry)  # GitOps tools may apply the cluster after its topics
            return
        if not _has_ready_brokers(cluster):
            outcome = TopicOutcome(error=Refusal(
                "ClusterNotReady", f"KafkaCluster {spec.cluster!r} has no ready brokers yet",
            ), warnings=parsed.warnings)
            _topic_status(body, spec, outcome)
            _retry_later(outcome, retry)
            return
        bootstrap = _bootstrap(spec.namespace, spec.cluster)
        admin = KafkaAdmin(bootstrap, timeout=CONFIG.admin_timeout_seconds)
        reassigner = ReassignmentClient(bootstrap, timeout=CONFIG.admin_timeout_seconds)
        observed = plan = None
        try:
            observed = _describe(admin, reassigner, spec, _cluster_replicas(cluster))
            plan = plan_topic(spec, observed)
            if plan.changes:
                logger.info(f"topic {spec.topic_name!r}: {'; '.join(plan.describe())}")
                admin.apply_plan(spec.topic_name, plan)
                if plan.reassign:
                    _throttle(admin, [spec.topic_name], list(admin.cluster_info().brokers), logger)
                    reassigner.reassign(spec.topic_name, plan.reassign)
                kopf.event(body, type="Normal", reason="TopicChanged", message="; ".join(plan.describe()))
                observed = _describe_after_change(admin, spec.topic_name, plan.create)
                if observed is not None:
                    observed = _with_reassignments(observed, reassigner, spec)
        except AdminError as exc:
            if not exc.unreachable:
                kopf.warn(body, reason=exc.reason, message=exc.message)
            logger.warning(f"topic {spec.topic_name!r}: {exc}")
            message = exc.message
            if exc.unreachable:
                message = f"cannot reach KafkaCluster {spec.cluster!r} at {bootstrap}: {message}"
            outcome = TopicOutcome(observed=observed, plan=plan, error=Refusal(exc.reason, message),
                                   warnings=parsed.warnings)
            _topic_status(body, spec, outcome)
            _retry_later(outcome, retry)
            return
        _topic_status(body, spec, TopicOutcome(observed=observed, plan=plan, warnings=parsed.warnings))


@kopf.on.resume(GROUP, VERSION, TOPIC_PLURAL)
@kopf.on.create(GROUP, VERSION, TOPIC_PLURAL)
@kopf.on.update(GROUP, VERSION, TOPIC_PLURAL)
def topic_changed(body, logger, retry: int, **_: Any) -> None:
    reconcile_topic(dict(body), logger, retry)


@kopf.timer(GROUP, VERSION, TOPIC_PLURAL, interval=CONFIG.resync_seconds, initial_delay=5)
def topic_resync(body, logger, **_: Any) -> None:
    if body.get("metadata", {}).get("deletionTimestamp"):
        return
    try:
        reconcile_topic(dict(body), logger)
    except kopf.TemporaryError as exc:
        # The resync keeps its own interval; the change handlers carry the backoff.
        logger.info(f"resync: {exc}")


def _deleting_for(body: dict[str, Any]) -> float:
    stamp = body["metadata"].get("deletionTimestamp")
    if not stamp:
        return 0.0
    started = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (datetime.now(UTC) - started).total_seconds()


@kopf.on.delete(GROUP, VERSION, TOPIC_PLURAL)
def topic_deleted(body, logger, retry: int, **_: Any) -> None:
    """Delete the Kafka topic, then release the finalizer.

    Never stuck forever: a missing or deleting cluster releases at once (the topic
    goes with it); an unreachable or refusing cluster is retried with backoff for
    BROOK_TOPIC_DELETE_TIMEOUT_SECONDS, then released with a warning event and the
    topic left in Kafka. Annotation brook.dev/deletion-policy=orphan releases at once.
    """
    body = dict(body)
    if is_paused(body):
        kopf.warn(body, reason="TopicOrphaned", message="reconciliation is paused: the Kafka topic is left as is")
        return
    if deletion_policy(body) == "orphan":
        kopf.event(body, type="Normal", reason="TopicOrphaned", message="deletion-policy is orphan: the Kafka topic is left as is")
        return
    try:
        spec = parse_topic(body).spec
    except SpecError:
        return  # never created anything
    kube = RUNTIME.kube
    if managing_topic(body, kube.list_custom(TOPIC_PLURAL, spec.namespace)) is not None:
        return  # another Topic resource owns the Kafka topic
    cluster = kube.get_custom(CLUSTER_PLURAL, spec.namespace, spec.cluster)
    if cluster is None or cluster["metadata"].get("deletionTimestamp"):
        logger.info(f"KafkaCluster {spec.cluster!r} is gone: nothing to delete")
        return
    try:
        if not _has_ready_brokers(cluster):
            raise AdminError("ClusterUnreachable", f"KafkaCluster {spec.cluster!r} has no ready brokers",
                             unreachable=True)
        admin = KafkaAdmin(_bootstrap(spec.namespace, spec.cluster), timeout=CONFIG.admin_timeout_seconds)
        existed = admin.delete_topic(spec.topic_name)
        logger.info(f"deleted topic {spec.topic_name!r}" if existed else f"topic {spec.topic_name!r} was already gone")
        return
    except AdminError as exc:
        waited = _deleting_for(body)
        if waited >= CONFIG.topic_delete_timeout_seconds:
            kopf.warn(body, reason="TopicDeletionAbandoned", message=(
                f"gave up deleting Kafka topic {spec.topic_name!r} after {int(waited)}s ({exc}); "
                "the topic is left in the cluster"))
            return
        _topic_status(body, spec, TopicOutcome(error=Refusal(
            "DeletionFailed" if not exc.unreachable else "ClusterUnreachable",
            f"deleting the Kafka topic: {exc.message} (retrying; the finalizer is released after "
            f"{int(CONFIG.topic_delete_timeout_seconds)}s, or at once with annotation "
            "brook.dev/deletion-policy=orphan)")))
        # Backoff, but never past the moment the finalizer is due for release.
        delay = min(retry_delay(retry, cap=30), max(1.0, CONFIG.topic_delete_timeout_seconds - waited))
        raise kopf.TemporaryError(str(exc), delay=delay) from exc
