"""routes.yaml validation: every mistake names the file, the line, the key and the nearest valid key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config
from gateway.errors import ConfigError
from tests.conftest import REPO, write_config


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config.load(path)
    return info.value.problems


def test_the_repository_routes_yaml_is_valid() -> None:
    cfg = config.load(REPO / "routes.yaml")
    assert cfg.routes["conpas-prenotice"].on == "container.announced"  # `on:` stays a key, not YAML 1.1 True
    assert cfg.channels["carrier-drops"].path == REPO / "var" / "inbox"  # relative to routes.yaml
    assert cfg.routes["conpas-prenotice"].retry.max_delay == 600.0  # "10m"


def test_unknown_key_names_file_line_key_and_nearest(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite:///x.db")
    path.write_text(path.read_text().replace("    poll: 100ms", "    pol: 100ms"))
    [problem] = _problems(path)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "pol:" in text)
    assert problem.startswith(f"{path}:{line}: channels.drops.pol: unknown key; did you mean 'poll'?")


def test_wrong_type_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite:///x.db")
    path.write_text(path.read_text().replace("max_attempts: 3", "max_attempts: many"))
    [problem] = _problems(path)
    assert "routes.conpas-prenotice.retry.max_attempts" in problem and "'many'" in problem
    assert f"{path}:" in problem


def test_bad_duration_and_unknown_business_type(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite:///x.db")
    text = path.read_text().replace("poll: 100ms", "poll: soon").replace("ocean_carrier", "ocean_carier")
    path.write_text(text)
    problems = _problems(path)
    assert any("channels.drops.poll" in p and "duration" in p for p in problems)
    assert any("partners.ONE.business_type" in p for p in problems)


def test_reference_to_a_missing_mapping_file(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, "sqlite:///x.db", mappings=[{"match": {"format": "edifact"}, "use": "mappings/nope.yaml"}]
    )
    [problem] = _problems(path)
    assert "mappings[0].use" in problem and "does not exist" in problem


def test_reference_to_an_unknown_partner_and_event(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite:///x.db")
    text = (
        path.read_text()
        .replace("settle: 0", "settle: 0\n    partner: ONEE")
        .replace("'on': container.announced", "'on': container.anounced")
    )
    path.write_text(text)
    problems = _problems(path)
    assert any("channels.drops.partner" in p and "did you mean 'ONE'" in p for p in problems)
    assert any("routes.conpas-prenotice.on" in p and "did you mean 'container.announced'" in p for p in problems)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("http:\n  port: 1\n  port: 2\n")
    [problem] = _problems(path)
    assert problem == f"{path}:3: http.port: key given twice"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("http:\n  port: [1\n")
    [problem] = _problems(path)
    assert problem.startswith(f"{path}:") and "not valid YAML" in problem


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("5s", 5), ("2m", 120), ("1h", 3600), (3, 3.0)])
def test_durations(text: str | int, seconds: float) -> None:
    assert config.parse_duration(text) == seconds


def test_database_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://u@127.0.0.1/db")
    assert config.load(REPO / "routes.yaml").database_url == "postgresql://u@127.0.0.1/db"


def test_missing_mapping_file_suggests_the_nearest(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "coparn.yaml").write_text("x: 1\n")
    path = write_config(
        tmp_path, "sqlite:///x.db", mappings=[{"match": {"format": "edifact"}, "use": "maps/coparm.yaml"}]
    )
    [problem] = _problems(path)
    assert f"did you mean '{tmp_path / 'maps' / 'coparn.yaml'}'" in problem


def _with_channels(tmp_path: Path, **channels: dict[str, object]) -> Path:
    return write_config(tmp_path, "sqlite:///x.db", channels=channels)


def test_sftp_channel_needs_a_pinned_key_and_a_login(tmp_path: Path) -> None:
    """An SFTP channel without a pinned server key would trust any server: refused, naming the key."""
    path = _with_channels(tmp_path, carrier={"type": "sftp", "host": "127.0.0.1", "username": "gw"})
    problems = _problems(path)
    assert any("channels.carrier.host_key_sha256: the server's key must be pinned" in p for p in problems)
    assert any("channels.carrier.username: give password_env or key_file" in p for p in problems)
    fingerprint = "SHA256:" + "A" * 43
    ok = _with_channels(
        tmp_path,
        carrier={
            "type": "sftp",
            "host": "127.0.0.1",
            "username": "gw",
            "password_env": "PW",
            "host_key_sha256": [fingerprint],
        },
    )
    assert config.load(ok).channels["carrier"].port == 22  # type: ignore[union-attr]


def test_sftp_fingerprint_and_move_to_are_checked(tmp_path: Path) -> None:
    path = _with_channels(
        tmp_path,
        carrier={
            "type": "sftp",
            "host": "127.0.0.1",
            "username": "gw",
            "key_file": "id",
            "host_key_sha256": ["md5:aa:bb"],
            "after": "move",
        },
    )
    problems = _problems(path)
    assert any("host_key_sha256[0]: expected 'SHA256:'" in p for p in problems)
    assert any("channels.carrier.move_to: after: move needs move_to" in p for p in problems)


def test_sftp_server_users_must_be_partners_with_keys(tmp_path: Path) -> None:
    path = _with_channels(
        tmp_path, push={"type": "sftp_server", "host_key": "hk", "root": "sftp", "users": {"ONF": {}}}
    )
    problems = _problems(path)
    assert any("channels.push.users.ONF: no partner named 'ONF'; did you mean 'ONE'?" in p for p in problems)
    assert any("give authorized_keys or authorized_keys_file" in p for p in problems)


def test_one_http_channel_and_a_readable_rate_limit(tmp_path: Path) -> None:
    two = _with_channels(tmp_path, a={"type": "http"}, b={"type": "http"})
    assert any("channels.b.type: only one http channel (already 'a')" in p for p in _problems(two))
    unreadable = _with_channels(tmp_path, a={"type": "http", "rate_limit": "lots"})
    assert any("channels.a.rate_limit" in p and "20/second" in p for p in _problems(unreadable))


def test_amqp_password_stays_out_of_routes_yaml(tmp_path: Path) -> None:
    for scheme in ("amqp", "amqps"):
        url = f"{scheme}://gw:secret@127.0.0.1/%2F"
        path = _with_channels(tmp_path, q={"type": "amqp", "queue": "in", "url": url})
        [problem] = _problems(path)
        assert "channels.q.url: keep the password out of routes.yaml: use url_env" in problem, scheme
