"""Metrics, the Grafana dashboard and scrape config in deploy/, JSON logs and secret redaction."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from studio import metrics
from studio.jsonlog import JsonFormatter, RedactSecrets, configure_logging, log_context

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "atelier.json"

# What Grafana needs to load a dashboard (its dashboard JSON model): a title, a uid and a schema
# version at the top; each panel a type and a place on the 24-column grid; each query panel
# targets with a refId and, for Prometheus, an expression.
GRID_POS = {
    "type": "object",
    "required": ["x", "y", "w", "h"],
    "properties": {
        "x": {"type": "integer", "minimum": 0, "maximum": 23},
        "y": {"type": "integer", "minimum": 0},
        "w": {"type": "integer", "minimum": 1, "maximum": 24},
        "h": {"type": "integer", "minimum": 1},
    },
}
TARGET = {
    "type": "object",
    "required": ["refId", "expr"],
    "properties": {"refId": {"type": "string", "minLength": 1}, "expr": {"type": "string", "minLength": 1}},
}
PANEL = {
    "type": "object",
    "required": ["id", "type", "title", "gridPos"],
    "properties": {
        "id": {"type": "integer"},
        "type": {"enum": ["row", "timeseries", "stat", "gauge", "bargauge", "table", "heatmap"]},
        "title": {"type": "string"},
        "gridPos": GRID_POS,
    },
    "if": {"properties": {"type": {"not": {"const": "row"}}}},
    "then": {
        "required": ["targets", "datasource"],
        "properties": {"targets": {"type": "array", "minItems": 1, "items": TARGET}},
    },
}
DASHBOARD_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["title", "uid", "schemaVersion", "panels"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "schemaVersion": {"type": "integer", "minimum": 30},
        "panels": {"type": "array", "minItems": 1, "items": PANEL},
        "time": {"type": "object", "required": ["from", "to"]},
    },
}
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "max", "le", "without", "on"}


def _defined_series() -> set[str]:
    """Every series name our registry can emit (labelled families have no samples until used)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    names = {"up", metrics.GPU_MEMORY_SERIES}
    for family in metrics.REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_the_dashboard_has_what_grafana_requires() -> None:
    dashboard = _dashboard()
    jsonschema.Draft202012Validator(DASHBOARD_SCHEMA).validate(dashboard)
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]


def test_a_broken_dashboard_is_refused_by_the_schema() -> None:
    dashboard = _dashboard()
    del dashboard["panels"][1]["gridPos"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dashboard, DASHBOARD_SCHEMA)


def test_every_dashboard_query_names_a_series_we_export() -> None:
    defined = _defined_series()
    used: set[str] = set()
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            without_labels = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\([^()]*\)\s*\(", " ", target["expr"])
            for word in re.findall(r"[a-z_][a-z0-9_]*", without_labels):
                if word.startswith(("atelier_", "process_")) or word == "up":
                    used.add(word)
    assert used, "the dashboard queries nothing"
    assert used <= defined, f"the dashboard queries series nobody exports: {sorted(used - defined)}"
    wanted = {
        "atelier_jobs_total",
        "atelier_job_queue_wait_seconds_bucket",
        "atelier_job_run_seconds_bucket",
        "atelier_images_generated_total",
        "atelier_job_failures_total",
        "atelier_lora_switches_total",
        "atelier_model_loads_total",
        "atelier_gpu_memory_bytes",
        "atelier_discord_rate_limited_total",
    }
    assert wanted <= used, f"the dashboard leaves out {sorted(wanted - used)}"


def test_prometheus_scrapes_every_process_on_the_ports_compose_gives_them() -> None:
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    health_port = int(services["bot"]["environment"]["ATELIER_HEALTH_PORT"])
    targets = []
    for job in scrape["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets += static["targets"]
        for dns in job.get("dns_sd_configs", []):
            targets += [f"{name}:{dns['port']}" for name in dns["names"]]
    for service in ("bot", "worker", "trainer", "post"):
        assert f"{service}:{health_port}" in targets
        assert int(services[service]["environment"]["ATELIER_HEALTH_PORT"]) == health_port
    assert "api:8080" in targets
    assert {"prometheus", "grafana"} <= set(services)
    mounted = " ".join(services["grafana"]["volumes"])
    assert "./deploy/grafana:" in mounted and "./deploy/grafana/provisioning:" in mounted


def test_failure_reasons_are_a_fixed_set() -> None:
    class UserFacingError(Exception):
        pass

    class OutOfMemoryError(RuntimeError):
        pass

    def raised_from(cause: BaseException) -> UserFacingError:
        try:
            raise UserFacingError("out of memory on this worker: try a smaller size") from cause
        except UserFacingError as error:
            return error

    assert metrics.failure_reason(UserFacingError("a user's own words")) == "rejected"
    assert metrics.failure_reason(raised_from(OutOfMemoryError())) == "out_of_memory"
    assert metrics.failure_reason(ValueError("anything")) == "error"
    assert metrics.failure_reason(TimeoutError()) == "timeout"


def _sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_a_job_meter_counts_outcome_run_time_wait_and_images() -> None:
    before = _sample("atelier_jobs_total", queue="unit", state="done", model="m")
    waits = _sample("atelier_job_queue_wait_seconds_count", queue="unit")
    images = _sample("atelier_images_generated_total", model="m")
    metrics.JobMeter("unit", "m", attempt=1, enqueued_at=0.0).ended("done", images=4)
    assert _sample("atelier_jobs_total", queue="unit", state="done", model="m") == before + 1
    assert _sample("atelier_job_queue_wait_seconds_count", queue="unit") == waits + 1
    assert _sample("atelier_images_generated_total", model="m") == images + 4
    assert _sample("atelier_jobs_running", queue="unit") == 0

    failures = _sample("atelier_job_failures_total", queue="unit", reason="adapter_missing")
    meter = metrics.JobMeter("unit", "", attempt=2, enqueued_at=None)

    class AdapterMissing(Exception):
        pass

    metrics.note_failure(AdapterMissing("the LoRA 'x' is gone"))
    meter.ended("failed")
    assert _sample("atelier_job_failures_total", queue="unit", reason="adapter_missing") == failures + 1
    text = metrics.exposition().decode()
    families = {family.name for family in text_string_to_metric_families(text)}
    assert {"atelier_jobs", "atelier_job_queue_wait_seconds", "atelier_job_failures"} <= families


def test_discord_429s_are_counted_from_the_http_clients_log() -> None:
    metrics.count_discord_429s()
    http_log = logging.getLogger("discord.http")
    retried = _sample("atelier_discord_rate_limited_total", outcome="retried")
    gave_up = _sample("atelier_discord_rate_limited_total", outcome="gave_up")
    global_hits = _sample("atelier_discord_global_rate_limited_total")
    # discord.py's own messages (discord/http.py, HTTPClient.request)
    fmt = "We are being rate limited. %s %s responded with 429. Retrying in %.2f seconds."
    http_log.warning(fmt, "POST", "https://discord.com/api/v10/channels/1/messages", 1.5)
    http_log.warning("Global rate limit has been hit. Retrying in %.2f seconds.", 2.0)
    http_log.warning(
        "We are being rate limited. %s %s responded with 429. "
        "Timeout of %.2f was too long, erroring instead.",
        "POST",
        "https://discord.com/api/v10/channels/1/threads",
        60.0,
    )
    assert _sample("atelier_discord_rate_limited_total", outcome="retried") == retried + 1
    assert _sample("atelier_discord_rate_limited_total", outcome="gave_up") == gave_up + 1
    assert _sample("atelier_discord_global_rate_limited_total") == global_hits + 1


TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GaBcDe.abcdefghijklmnopqrstuvwxyz012345"  # Discord's shape, not real
API_KEY = "atl_" + "x" * 43


def _json_logger(secrets: tuple[str, ...] = ()) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets(secrets))
    logger = logging.getLogger("tests.observability")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_json_lines_carry_the_ids_in_context_and_never_a_secret() -> None:
    logger, stream = _json_logger(secrets=("my-own-secret-value",))
    with log_context(job_id="g1", generation_id="g1"):
        logger.info("running with token %s and key %s", TOKEN, API_KEY)
        with log_context(guild_id=42):
            logger.warning(
                "via redis://:hunter2@redis:6379/0 with my-own-secret-value", extra={"user_id": "7"}
            )
    logger.info("outside")
    try:
        raise RuntimeError(f"Authorization: Bot {TOKEN}")
    except RuntimeError:
        logger.exception("failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    first, second, outside, failed = lines
    assert {"time", "level", "logger", "message"} <= set(first)
    assert (first["job_id"], first["generation_id"], first["level"]) == ("g1", "g1", "INFO")
    assert (second["guild_id"], second["user_id"], second["generation_id"]) == ("42", "7", "g1")
    assert "generation_id" not in outside and "guild_id" not in outside
    text = stream.getvalue()
    for secret in (TOKEN, API_KEY, "hunter2", "my-own-secret-value"):
        assert secret not in text
    assert "[redacted]" in first["message"] and "[redacted]" in failed["exception"]
    assert "redis://[redacted]@redis:6379/0" in second["message"]


def test_configure_logging_formats_and_redacts_every_root_handler() -> None:
    root = logging.getLogger()
    stream = io.StringIO()
    saved = root.handlers[:]
    root.handlers = [logging.StreamHandler(stream)]  # pytest's own handlers stay as they were
    try:
        configure_logging("json", secrets=[TOKEN])
        logging.getLogger("tests.jsonlog_root").warning("token is %s", TOKEN)
    finally:
        root.handlers = saved
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["message"] == "token is [redacted]" and entry["logger"] == "tests.jsonlog_root"
