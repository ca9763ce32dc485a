"""docs/prometheus-alerts.yml: well formed, and about metrics the gateway really exports."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.tests.production.helpers import BASE_DIR
from shell import metrics

RULES = BASE_DIR / "docs" / "prometheus-alerts.yml"
RULE_TESTS = BASE_DIR / "docs" / "prometheus-alerts.test.yml"
OPERATIONS = BASE_DIR / "docs" / "operations.md"
SUFFIXES = ("", "_total", "_created", "_bucket", "_count", "_sum")


def rules() -> list[dict]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


@pytest.mark.django_db
def test_every_metric_an_alert_uses_is_exported():
    families = {family.name for family in text_string_to_metric_families(metrics.render().decode())}
    exported = {name + suffix for name in families for suffix in SUFFIXES}

    used = {name for rule in rules() for name in re.findall(r"\bmomo_[a-z_]+", rule["expr"])}

    assert used
    assert used <= exported, used - exported


def test_every_alert_has_a_severity_a_summary_and_a_section_in_the_guide():
    guide = OPERATIONS.read_text()

    for rule in rules():
        assert rule["labels"]["severity"] in {"page", "warning", "ticket", "info"}
        assert rule["annotations"]["summary"]
        assert f"`{rule['alert']}`" in guide, f"{rule['alert']} is not explained"


def test_promtool_checks_and_unit_tests_the_rules():
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")

    check = subprocess.run(
        ["promtool", "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    test = subprocess.run(
        ["promtool", "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=RULE_TESTS.parent,
    )

    assert check.returncode == 0, check.stdout + check.stderr
    assert test.returncode == 0, test.stdout + test.stderr


def test_the_operators_guide_covers_what_operators_need():
    headings = {
        line.lstrip("#").strip()
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("## ")
    }

    assert {
        "Configuration reference",
        "First deployment",
        "MTN credentials and the callback host",
        "Key rotation",
        "Running on several hosts",
        "PostgreSQL",
        "Redis",
        "Backups and restores",
        "Upgrades and migrations",
        "Alerts",
        "Logs",
        "Metrics",
    } <= headings


def test_every_setting_read_from_the_environment_is_in_the_guide():
    settings_source = (BASE_DIR / "gateway" / "settings.py").read_text()
    names = set(re.findall(r'env_(?:str|bool|int|float|list)\(\s*"([A-Z_]+)"', settings_source))
    guide = OPERATIONS.read_text()

    missing = {name for name in names - {"BENCH_ENDPOINTS"} if f"`{name}`" not in guide}

    assert not missing, missing
