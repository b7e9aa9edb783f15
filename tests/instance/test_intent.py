"""Start-up role and term: the newest of persisted state, pod annotation/label and environment wins."""

from __future__ import annotations

from pathlib import Path

from aurora_api import contract
from aurora_instance import files, main, settings
from aurora_instance.snapshot import Intent


def _settings(tmp_path: Path, role: str = "writer", term: str = "1", **extra: str) -> settings.Settings:
    env = {contract.EnvInstance.ROLE: role, contract.EnvInstance.TERM: term, contract.Env.CLUSTER_NAME: "c1",
           contract.Env.DATA_DIR: str(tmp_path), contract.Env.WRITER_ENDPOINT: "w:5432",
           **extra}  # fmt: skip
    tmp_path.mkdir(exist_ok=True)
    return settings.from_env(env)


def test_environment_on_first_start(tmp_path: Path) -> None:
    assert main.initial_intent(_settings(tmp_path)) == Intent("writer", 1, None)


def test_persisted_promotion_survives_a_restart_with_the_old_pod_template(tmp_path: Path) -> None:
    s = _settings(tmp_path, role="reader", term="1")
    files.save_state(s, files.State("writer", 4, None))
    assert main.initial_intent(s) == Intent("writer", 4, "w:5432")


def test_a_newer_term_from_the_control_plane_overrides_a_stale_writer_state(tmp_path: Path) -> None:
    s = _settings(tmp_path, role="reader", term="5")
    files.save_state(s, files.State("writer", 4, None))
    assert main.initial_intent(s) == Intent("reader", 5, "w:5432")


def test_podinfo_annotation_and_label_win_over_the_environment(tmp_path: Path) -> None:
    podinfo = tmp_path / "podinfo"
    podinfo.mkdir(parents=True)
    (podinfo / "annotations").write_text(f'{contract.ANNOTATION_TERM}="7"\n')
    (podinfo / "labels").write_text(f'{contract.LABEL_ROLE}="reader"\n')
    s = _settings(tmp_path / "d", **{contract.Env.PODINFO_DIR: str(podinfo)})
    assert main.initial_intent(s) == Intent("reader", 7, "w:5432")


def test_restore_command_serves_the_cache_then_the_quorum(tmp_path: Path) -> None:
    cmd = files.restore_command(_settings(tmp_path))
    cache = tmp_path / "walcache"
    assert cmd.startswith(f'if [ -f "{cache}/%f" ]; then cp "{cache}/%f" "%p"; ')
    assert f'[ -f "{cache}/.hold" ]; then exit 1;' in cmd
    assert cmd.endswith(f'-m aurora_instance.walfetch "%f" "%p" "{cache}/.hold"; fi')
