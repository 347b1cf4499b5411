"""The vidrag service on Kubernetes (hub_config/k8s/): the manifests parse, and their names,
ports, labels, Secrets and paths agree with each other, with the Zero to JupyterHub values
and with what the service reads (``ServiceSettings.from_env`` on the Deployment's env).

No cluster here, so this checks what a typo would break: a Service selecting no pod, a
URL to the wrong port, a token read from a Secret key the chart never writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from vidrag_hub.settings import ServiceSettings

from vidrag_kernel.shared import api_base

K8S = Path(__file__).resolve().parent.parent / "hub_config" / "k8s"
VALUES = K8S.parent / "z2jh-values.yaml"


def documents(name: str) -> dict[tuple[str, str], dict]:
    docs = [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    out = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert len(out) == len(docs), f"{name}: two objects of one kind and name"
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


@pytest.fixture(scope="module")
def service():
    return documents("vidrag-service.yaml")


@pytest.fixture(scope="module")
def values():
    return yaml.safe_load((K8S / "vidrag-service-values.yaml").read_text())


def container(deployment: dict) -> dict:
    [one] = deployment["spec"]["template"]["spec"]["containers"]
    return one


def env_of(deployment: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container(deployment)["env"]}


def test_every_file_parses_with_a_kind_and_labels():
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and path.name != "vidrag-service-values.yaml":
                assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], path.name
                assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "vidrag"


def test_one_replica_that_is_never_two(service):
    deployment = service[("Deployment", "vidrag-service")]
    # the single writer of every shared index; a rolling update would run two for a while
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod.items()
    assert pod["hub.jupyter.org/network-access-hub"] == "true"  # may call the hub's API
    assert service[("Service", "vidrag-service")]["spec"]["selector"].items() <= pod.items()
    policy = service[("NetworkPolicy", "vidrag-service")]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod.items()


def test_the_service_reads_the_environment_it_is_given(service):
    deployment = service[("Deployment", "vidrag-service")]
    env = env_of(deployment)
    plain = {k: v["value"] for k, v in env.items() if "value" in v}
    secret = {k: v["valueFrom"]["secretKeyRef"] for k, v in env.items() if "valueFrom" in v}
    assert secret["JUPYTERHUB_API_TOKEN"] == {"name": "hub", "key": "hub.services.vidrag.apiToken"}
    assert secret["VIDRAG_SHARED_DATABASE_URL"]["name"] == "vidrag-service"
    # signing secrets that must outlive a restart of the pod come from the Secret
    for name in ("VIDRAG_COOKIE_SECRET", "VIDRAG_RUN_TOKEN_SECRET"):
        assert secret[name]["name"] == "vidrag-service", name
    settings = ServiceSettings.from_env(
        {
            **plain,
            "JUPYTERHUB_API_TOKEN": "from-the-secret",
            "VIDRAG_SHARED_DATABASE_URL": "postgresql+psycopg://vidrag:pw@vidrag-postgres:5432/vidrag",
        }
    )
    assert (settings.service_name, settings.prefix) == ("vidrag", "/services/vidrag/")
    assert settings.resolved_database_url.startswith("postgresql+psycopg://")
    assert settings.ingest_workers >= 1 and int(plain["VIDRAG_WHISPER_THREADS"]) >= 1
    # one torch thread per request unless the Deployment says otherwise
    assert settings.kernel_settings().embed_threads == 1
    assert (
        ServiceSettings.from_env({**plain, "VIDRAG_EMBED_THREADS": "2"}).kernel_settings().embed_threads == 2
    )
    # it listens on the port the container and the Service name
    [port] = container(deployment)["ports"]
    assert settings.port == port["containerPort"] and settings.host == "0.0.0.0"
    [svc_port] = service[("Service", "vidrag-service")]["spec"]["ports"]
    assert svc_port["targetPort"] == port["name"] and svc_port["port"] == settings.port
    # the shared root is the shared volume, mounted read-write
    [mount] = container(deployment)["volumeMounts"]
    assert mount["mountPath"] == str(settings.shared_root) and not mount.get("readOnly")
    [volume] = deployment["spec"]["template"]["spec"]["volumes"]
    claim = service[("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    # probes hit the about page, which needs no login
    assert container(deployment)["readinessProbe"]["httpGet"]["path"] == settings.prefix


def test_the_chart_values_register_the_service_where_it_listens(service, values):
    svc = service[("Service", "vidrag-service")]
    [port] = svc["spec"]["ports"]
    registered = values["hub"]["services"]["vidrag"]
    assert registered["url"] == f"http://{svc['metadata']['name']}:{port['port']}"
    assert "apiToken" not in registered  # the chart makes it, in the Secret the pod reads
    roles = values["hub"]["loadRoles"]
    assert roles["vidrag-service"]["services"] == ["vidrag"]
    assert {"read:users", "read:groups"} <= set(roles["vidrag-service"]["scopes"])
    for role in ("user", "server"):
        assert "access:services!service=vidrag" in roles[role]["scopes"]
    # users' servers find it (hubenv.detect) at the Service's address, under its prefix
    url = values["singleuser"]["extraEnv"]["VIDRAG_SERVICE_URL"]
    assert api_base(url) == f"{registered['url']}/services/vidrag/api/"
    pod = service[("Deployment", "vidrag-service")]["spec"]["template"]["metadata"]["labels"]
    for rules in (
        values["singleuser"]["networkPolicy"]["egress"],
        values["proxy"]["chp"]["networkPolicy"]["egress"],
        values["hub"]["networkPolicy"]["egress"],
    ):
        [rule] = rules
        assert rule["to"][0]["podSelector"]["matchLabels"].items() <= pod.items()
        assert rule["ports"] == [{"port": port["port"], "protocol": "TCP"}]
    # the base values keep their own keys: the second file only adds
    base = yaml.safe_load(VALUES.read_text())
    assert "VIDRAG_HOME" in base["singleuser"]["extraEnv"]
    assert base["singleuser"]["storage"]["extraVolumes"][0]["persistentVolumeClaim"]["claimName"] == (
        "vidrag-shared"
    )


def test_the_chart_values_preheat_the_landing_dashboard_as_make_run_does():
    from hub_config.options import VidragHubOptions
    from hub_config.spawning import landing_path, preheat_args

    base = yaml.safe_load(VALUES.read_text())
    opts = VidragHubOptions()
    assert opts.preheat_kernels == 1
    assert base["hub"]["config"]["KubeSpawner"]["args"] == preheat_args(opts)
    # the pool is for the page people land on
    assert base["singleuser"]["defaultUrl"] == landing_path(opts)


def test_postgres_is_reached_by_the_service_only(service):
    pg = documents("postgres.yaml")
    stateful = pg[("StatefulSet", "vidrag-postgres")]
    [pg_container] = stateful["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in pg_container["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "vidrag-postgres"
    headless = pg[("Service", "vidrag-postgres")]
    assert headless["spec"]["selector"].items() <= stateful["spec"]["template"]["metadata"]["labels"].items()
    [port] = headless["spec"]["ports"]
    assert port["port"] == 5432
    # the URL the README puts in the Secret names this Service and database
    readme = (K8S.parent / "README.md").read_text()
    assert "@vidrag-postgres:5432/vidrag" in readme
    policy = pg[("NetworkPolicy", "vidrag-postgres")]["spec"]
    [source] = policy["ingress"][0]["from"]
    pod = service[("Deployment", "vidrag-service")]["spec"]["template"]["metadata"]["labels"]
    assert source["podSelector"]["matchLabels"].items() <= pod.items()
