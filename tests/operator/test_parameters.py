"""Which parameters are rendered: refused ones are named and keep their live value; reloadable ones go to
the ConfigMap, restart-only ones to the instance template (and so through a rolling update)."""

from __future__ import annotations

from aurora_api import contract
from aurora_operator.reconcile import parameters
from aurora_operator.reconcile.observed import Observed
from aurora_operator.render import config, instances
from aurora_operator.settings import Settings

from . import factories


def live_world(conf: str, static: str) -> Observed:
    env = [{"name": contract.EnvInstance.STATIC_PARAMETERS, "value": static}]
    sts = {"spec": {"template": {"spec": {"containers": [{"name": "postgres", "env": env}]}}}}
    cm = {"data": {contract.CONFIG_POSTGRESQL_CONF: conf}}
    return Observed(objects={("ConfigMap", "demo-config"): cm, ("StatefulSet", "demo-instance-0"): sts})


def test_valid_parameters_are_split_by_whether_they_need_a_restart() -> None:
    c = factories.cluster({"postgresql": {"parameters": {"work_mem": "8MB", "shared_buffers": "128MB"}}})
    accepted, refused = parameters.accept(c, Observed())
    assert refused == [] and accepted is c
    conf = config.postgresql_conf(c)
    assert "work_mem = '8MB'" in conf and "shared_buffers" not in conf
    sts = instances.stateful_set(c, Settings(), 0, contract.ROLE_WRITER, 1)
    env = {e["name"]: e.get("value") for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[contract.EnvInstance.STATIC_PARAMETERS] == "shared_buffers = '128MB'\n"


def test_refused_parameters_are_named_and_keep_the_value_the_pods_run_with() -> None:
    wanted = {"work_mem": "lots", "shared_buffers": "12 apples", "shard_buffers": "1GB", "geqo": "on"}
    c = factories.cluster({"postgresql": {"parameters": wanted}})
    observed = live_world("work_mem = '4MB'\n", "shared_buffers = '64MB'\n")
    accepted, refused = parameters.accept(c, observed)
    assert accepted.spec.postgresql.parameters == {"work_mem": "4MB", "shared_buffers": "64MB", "geqo": "on"}
    assert len(refused) == 3
    assert any("shard_buffers" in r and "shared_buffers" in r for r in refused)
    assert c.spec.postgresql.parameters == wanted  # the spec itself is untouched


def test_parse_reads_back_what_config_renders() -> None:
    wanted = {"log_line_prefix": "it's %m \\ ", "work_mem": "8MB"}
    c = factories.cluster({"postgresql": {"parameters": wanted}})
    assert parameters.parse(config.postgresql_conf(c)) == c.spec.postgresql.parameters
