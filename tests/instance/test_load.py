"""The instance's load read from a cgroup directory, in both layouts (v1 on the kind test bed's host)."""

from __future__ import annotations

from pathlib import Path

from aurora_instance import load


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_cgroup_v2(tmp_path: Path) -> None:
    write(tmp_path, {
        "cgroup.controllers": "cpu memory",
        "cpu.stat": "usage_usec 2500000\nuser_usec 1\nnr_throttled 3\nthrottled_usec 400000\n",
        "cpu.max": "50000 100000",
        "memory.current": str(600 << 20),
        "memory.stat": f"anon 1\ninactive_file {100 << 20}\n",
        "memory.max": str(2 << 30),
    })  # fmt: skip
    r = load.read(tmp_path, connections=4)
    assert (r.cpu_seconds, r.cpu_throttled_seconds, r.cpu_limit_cores) == (2.5, 0.4, 0.5)
    assert (r.memory_working_set_bytes, r.memory_limit_bytes, r.connections) == (500 << 20, 2 << 30, 4)


def test_cgroup_v1_and_no_limits(tmp_path: Path) -> None:
    write(tmp_path, {
        "cpuacct/cpuacct.usage": "3000000000",
        "cpu/cpu.stat": "nr_periods 10\nnr_throttled 2\nthrottled_time 250000000\n",
        "cpu/cpu.cfs_quota_us": "-1",
        "cpu/cpu.cfs_period_us": "100000",
        "memory/memory.usage_in_bytes": str(300 << 20),
        "memory/memory.stat": f"cache 5\ntotal_inactive_file {50 << 20}\n",
        "memory/memory.limit_in_bytes": "9223372036854771712",
    })  # fmt: skip
    r = load.read(tmp_path)
    assert (r.cpu_seconds, r.cpu_throttled_seconds, r.cpu_limit_cores) == (3.0, 0.25, None)
    assert (r.memory_working_set_bytes, r.memory_limit_bytes) == (250 << 20, None)


def test_cgroup_v1_limits(tmp_path: Path) -> None:
    write(tmp_path, {
        "cpu/cpu.cfs_quota_us": "25000",
        "cpu/cpu.cfs_period_us": "100000",
        "cpu/cpuacct.usage": "1000",
        "memory/memory.limit_in_bytes": str(1 << 30),
    })  # fmt: skip
    r = load.read(tmp_path)
    assert (r.cpu_limit_cores, r.memory_limit_bytes, r.cpu_seconds) == (0.25, 1 << 30, 1e-6)


def test_nothing_readable_is_all_unknown(tmp_path: Path) -> None:
    r = load.read(tmp_path / "absent")
    assert (r.cpu_seconds, r.memory_limit_bytes, r.memory_working_set_bytes) == (None, None, None)


def test_serverless_settings_follow_the_memory_limit_and_the_users_win(tmp_path: Path) -> None:
    import dataclasses

    from aurora_api import contract
    from aurora_instance import files, settings

    env = {contract.EnvInstance.ROLE: "writer", contract.Env.CLUSTER_NAME: "c1",
           contract.Env.DATA_DIR: str(tmp_path / "data"), contract.EnvInstance.SERVERLESS: "true",
           contract.EnvInstance.STATIC_PARAMETERS: "work_mem = '64MB'\n"}  # fmt: skip
    s = dataclasses.replace(settings.from_env(env), cgroup_root=tmp_path / "cg")
    write(s.cgroup_root, {"memory/memory.limit_in_bytes": str(2 << 30)})
    params = files.user_parameters(s)
    assert params["effective_cache_size"] == "'1536MB'" and params["work_mem"] == "'64MB'"
    write(s.cgroup_root, {"memory/memory.limit_in_bytes": str(4 << 30)})  # resized in place
    assert files.user_parameters(s)["effective_cache_size"] == "'3072MB'"
    assert "effective_cache_size" not in files.user_parameters(dataclasses.replace(s, serverless=False))
