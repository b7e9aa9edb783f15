"""The plan: which instances exist, what gets (re)applied, Secrets created once, roles labelled."""

from __future__ import annotations

import base64
import datetime

import pytest
from aurora_api import contract
from aurora_api.v1alpha1.cluster import AuroraCluster
from aurora_operator.reconcile import plan
from aurora_operator.reconcile.observed import Observed
from aurora_operator.render import names
from aurora_operator.settings import Settings

from . import factories

SETTINGS = Settings()


def never() -> str:
    raise AssertionError("no password should be generated")


def applied(actions: tuple[plan.Action, ...]) -> Observed:
    """The world after ``actions`` ran on an empty namespace (secrets included)."""
    objects = {}
    secrets = set()
    for action in actions:
        if isinstance(action, plan.Apply):
            objects[action.manifest["kind"], action.manifest["metadata"]["name"]] = action.manifest
        if isinstance(action, plan.CreateSecret):
            secrets.add(action.manifest["metadata"]["name"])
    return Observed(objects=objects, secrets=frozenset(secrets))


@pytest.mark.parametrize(
    ("readers", "writer", "existing", "expected"),
    [
        (2, 0, [], (0, 1, 2)),
        (4, 0, [0, 1, 2], (0, 1, 2, 3, 4)),
        (1, 0, [0, 1, 2, 3, 4], (0, 1)),
        (0, 3, [0, 1, 2, 3], (3,)),  # the writer survives a scale-down, whatever its ordinal
        (1, 3, [1, 3, 5], (1, 3)),  # existing readers are kept lowest first
        (2, 0, [0, 2], (0, 1, 2)),  # holes are filled from the bottom
    ],
)
def test_choose_ordinals(readers: int, writer: int, existing: list[int], expected: tuple[int, ...]) -> None:
    assert plan.choose_ordinals(readers, writer, existing) == expected


def test_fresh_cluster_creates_secrets_then_everything() -> None:
    c = factories.cluster()
    p = plan.plan(c, SETTINGS, Observed(), lambda: "pw")
    kinds = [type(a).__name__ for a in p.actions]
    assert kinds[:4] == ["CreateSecret"] * 4  # three accounts and the control token
    assert all(isinstance(a, plan.Apply) and a.create for a in p.actions[4:])
    created = [a.manifest["metadata"]["name"] for a in p.actions if isinstance(a, plan.Apply)]
    assert created.index("demo-storage-0") < created.index("demo-instance-0")
    assert {"demo-instance-0", "demo-instance-1", "demo-instance-2", "demo", "demo-ro"} <= set(created)
    assert p.writer == 0 and p.ordinals == (0, 1, 2)


def test_nothing_to_do_when_the_world_matches() -> None:
    c = factories.cluster()
    first = plan.plan(c, SETTINGS, Observed(), lambda: "pw")
    again = plan.plan(c, SETTINGS, applied(first.actions), never)
    assert again.actions == ()


def test_spec_change_updates_only_what_changed() -> None:
    c = factories.cluster()
    world = applied(plan.plan(c, SETTINGS, Observed(), lambda: "pw").actions)
    changed = factories.cluster({"postgresql": {"parameters": {"work_mem": "16MB"}}})
    actions = plan.plan(changed, SETTINGS, world, never).actions
    assert [plan.describe(a) for a in actions] == ["updated ConfigMap demo-config"]


def test_scale_down_deletes_highest_readers_and_their_services() -> None:
    world = applied(
        plan.plan(factories.cluster({"instances": {"readers": 4}}), SETTINGS, Observed(), str).actions
    )
    actions = plan.plan(factories.cluster({"instances": {"readers": 1}}), SETTINGS, world, never).actions
    assert [plan.describe(a) for a in actions] == [
        "deleted StatefulSet demo-instance-4",
        "deleted Service demo-instance-4",
        "deleted StatefulSet demo-instance-3",
        "deleted Service demo-instance-3",
        "deleted StatefulSet demo-instance-2",
        "deleted Service demo-instance-2",
    ]


def test_writer_recorded_in_status_keeps_its_role_and_instance() -> None:
    c = factories.cluster({"instances": {"readers": 0}}, status={"writer": "demo-instance-2", "term": 3})
    known = frozenset([*(names.secret(c, a) for a in names.ACCOUNTS), names.control_secret(c)])
    p = plan.plan(c, SETTINGS, Observed(secrets=known), never)
    assert p.writer == 2 and p.ordinals == (2,)
    applies = {(a.manifest["kind"], a.manifest["metadata"]["name"]): a.manifest for a in p.actions
               if isinstance(a, plan.Apply)}  # fmt: skip
    sts = applies["StatefulSet", "demo-instance-2"]
    env = {e["name"]: e.get("value") for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[contract.EnvInstance.ROLE] == "writer" and env[contract.EnvInstance.TERM] == "3"


def test_pods_get_role_labels_and_term() -> None:
    c = factories.cluster()
    world = applied(plan.plan(c, SETTINGS, Observed(), lambda: "pw").actions)
    base = {contract.LABEL_CLUSTER: "demo", contract.LABEL_COMPONENT: "instance"}
    pods = (
        factories.pod("demo-instance-0-0", base | {contract.LABEL_ROLE: "reader"}),  # wrong: must be writer
        factories.pod("demo-instance-1-0", base | {contract.LABEL_ROLE: "reader"}),  # right, but no term yet
        factories.pod("demo-instance-9-0", base),  # not an instance that should exist: left alone
    )
    pods[1]["metadata"]["annotations"] = {contract.ANNOTATION_TERM: "1"}
    world = Observed(objects=world.objects, secrets=world.secrets, pods=pods)
    actions = plan.plan(c, SETTINGS, world, never).actions
    assert actions == (plan.SetRole("demo-instance-0-0", "writer", 1),)


def test_fingerprint_ignores_nothing_but_is_stable() -> None:
    c = factories.cluster()
    one = plan.plan(c, SETTINGS, Observed(), lambda: "pw").actions[5]
    two = plan.plan(c, SETTINGS, Observed(), lambda: "other").actions[5]
    assert isinstance(one, plan.Apply) and isinstance(two, plan.Apply)
    assert one.manifest == two.manifest
    assert plan.HASH_ANNOTATION in one.manifest["metadata"]["annotations"]


def test_the_data_api_key_is_created_once_and_the_service_removed_when_turned_off() -> None:
    c = factories.cluster({"dataApi": {}})
    fresh = plan.plan(c, SETTINGS, Observed(), lambda: "pw")
    secrets = [a.manifest["metadata"]["name"] for a in fresh.actions if isinstance(a, plan.CreateSecret)]
    assert "demo-data-api-keys" in secrets
    applied = {a.manifest["metadata"]["name"] for a in fresh.actions if isinstance(a, plan.Apply)}
    assert "demo-data-api" in applied
    known = Observed(secrets=frozenset({"demo-data-api-keys"}))
    again = plan.plan(c, SETTINGS, known, lambda: "pw")
    assert "demo-data-api-keys" not in [
        a.manifest["metadata"]["name"] for a in again.actions if isinstance(a, plan.CreateSecret)
    ]
    live: dict[tuple[str, str], dict[str, object]] = {
        ("Deployment", "demo-data-api"): {},
        ("Service", "demo-data-api"): {},
    }
    off = plan.plan(factories.cluster(), SETTINGS, Observed(objects=live), lambda: "pw")
    deleted = {(a.kind, a.name) for a in off.actions if isinstance(a, plan.Delete)}
    assert deleted == {("Deployment", "demo-data-api"), ("Service", "demo-data-api")}


def test_an_account_secret_without_its_password_gets_a_new_one_and_a_hand_written_one_is_followed() -> None:
    c = factories.cluster()
    created = {
        a.manifest["metadata"]["name"]: a.manifest["stringData"]
        for a in plan.plan(c, SETTINGS, Observed(), lambda: "first-password").actions
        if isinstance(a, plan.CreateSecret) and "stringData" in a.manifest
    }
    accounts = {name: data for name, data in created.items() if name != names.control_secret(c)}
    as_created = Observed(secrets=frozenset(created), accounts=accounts)
    assert not [
        a for a in plan.plan(c, SETTINGS, as_created, never).actions if isinstance(a, plan.RewriteSecret)
    ]

    def rewrites(observed: Observed, password: str) -> dict[str, dict[str, str]]:
        found = [a for a in plan.plan(c, SETTINGS, observed, lambda: password).actions]
        return {
            a.manifest["metadata"]["name"]: {
                k: base64.b64decode(v).decode() for k, v in a.manifest["data"].items()
            }
            for a in found
            if isinstance(a, plan.RewriteSecret)
        }

    # A rotation request: the password key removed from the app Secret (kubectl patch ... remove).
    app = names.secret(c, contract.SecretsLayout.APP)
    asked = {**accounts, app: {k: v for k, v in accounts[app].items() if k != "password"}}
    rotated = rewrites(Observed(secrets=frozenset(created), accounts=asked), "second-password")
    assert list(rotated) == [app]
    assert rotated[app]["password"] == "second-password"
    assert rotated[app]["uri"] == "postgresql://app:second-password@demo.db.svc:5432/app"
    # A password written by hand: kept, and the URI follows it; nothing generated.
    by_hand = {**accounts, app: {**accounts[app], "password": "chosen-by-hand\n"}}
    followed = rewrites(Observed(secrets=frozenset(created), accounts=by_hand), "unused")
    assert followed[app]["password"] == "chosen-by-hand"
    assert followed[app]["uri"] == "postgresql://app:chosen-by-hand@demo.db.svc:5432/app"
    # Other accounts: the password only (no URI); an empty one is a request too.
    repl = names.secret(c, contract.SecretsLayout.REPLICATION)
    emptied = {**accounts, repl: {**accounts[repl], "password": ""}}
    assert rewrites(Observed(secrets=frozenset(created), accounts=emptied), "third-password")[repl] == {
        "username": "replicator",
        "password": "third-password",
    }


def test_a_control_token_rotation_keeps_the_previous_token_for_a_grace_then_drops_it() -> None:
    now = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)
    c = factories.cluster()
    existing = frozenset({names.control_secret(c), *(names.secret(c, a) for a in names.ACCOUNTS)})
    current = {"token": "old-token-0123456789"}

    def rotations(
        cluster: AuroraCluster, observed: Observed, at: datetime.datetime
    ) -> list[plan.RewriteSecret]:
        found = plan.plan(cluster, SETTINGS, observed, lambda: "new-token-0123456789", now=at).actions
        return [a for a in found if isinstance(a, plan.RewriteSecret)]

    def data(action: plan.RewriteSecret) -> dict[str, str]:
        return {k: base64.b64decode(v).decode() for k, v in action.manifest["data"].items()}

    # Nothing without a request.
    assert rotations(c, Observed(secrets=existing, control=current), now) == []
    # A request: a new token, the old one as previous, and when the grace ends.
    asked = factories.cluster(annotations={contract.ANNOTATION_ROTATE_CONTROL_TOKEN: "yes"})
    (rotated,) = rotations(asked, Observed(secrets=existing, control=current), now)
    assert data(rotated) == {"token": "new-token-0123456789", "previous": "old-token-0123456789"}
    until = rotated.manifest["metadata"]["annotations"][contract.ANNOTATION_PREVIOUS_TOKEN_UNTIL]
    assert until == "2026-12-02T12:10:00Z"
    # During the grace nothing changes, even if asked again (some pods may hold only the old token).
    during = Observed(secrets=existing, control=data(rotated),
                      control_annotations={contract.ANNOTATION_PREVIOUS_TOKEN_UNTIL: until})  # fmt: skip
    assert rotations(asked, during, now + datetime.timedelta(minutes=9)) == []
    # After it, the previous token is dropped.
    (ended,) = rotations(c, during, now + datetime.timedelta(minutes=10))
    assert data(ended) == {"token": "new-token-0123456789"}
    assert contract.ANNOTATION_PREVIOUS_TOKEN_UNTIL not in ended.manifest["metadata"].get("annotations", {})
