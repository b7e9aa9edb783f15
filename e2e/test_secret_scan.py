"""The secret scan's pure part: what counts as a secret; a leak is found and named without the value."""

from __future__ import annotations

import base64

from secret_scan import leaks, needles


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_passwords_tokens_and_private_key_lines_are_needles_names_and_certificates_are_not() -> None:
    key = "\n".join(
        [
            "-----BEGIN PRIVATE KEY-----",
            "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49",
            "AwEHBG0wawIBAQQg",
            "-----END PRIVATE KEY-----",
        ]
    )
    secrets = [
        {
            "metadata": {"name": "demo-app"},
            "data": {"username": b64("app"), "password": b64("s3cr3t-passw0rd-x")},
        },
        {
            "metadata": {"name": "demo-tls"},
            "data": {"tls.key": b64(key), "tls.crt": b64("-----BEGIN CERT...")},
        },
        {"metadata": {"name": "short"}, "data": {"token": b64("tiny")}},
    ]
    found = needles(secrets)  # type: ignore[arg-type]
    assert found == {
        "Secret demo-app key password": "s3cr3t-passw0rd-x",
        "Secret demo-tls key tls.key line 1": "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49",
        "Secret demo-tls key tls.key line 2": "AwEHBG0wawIBAQQg",
    }


def test_a_leak_is_reported_by_place_and_secret_never_by_value() -> None:
    secrets = {"Secret demo-app key password": "s3cr3t-passw0rd-x"}
    texts = {
        "log of demo-instance-0-0/postgres": "connecting with password=s3cr3t-passw0rd-x",
        "Events": "{}",
    }
    (found,) = leaks(secrets, texts)
    assert found == "Secret demo-app key password appears in log of demo-instance-0-0/postgres"
    assert "s3cr3t" not in found
    assert leaks(secrets, {"Events": "nothing here"}) == []
