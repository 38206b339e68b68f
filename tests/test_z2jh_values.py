"""deploy/z2jh: meshlab's Zero to JupyterHub values, checked offline against what is not ours.

No cluster, no network and no copy of the chart here, so the chart's schema is represented by the key
paths read from it (SCHEMA_PATHS, with the chart version), and everything those paths pass through
goes to the real thing that will consume it:

- hub.config's classes and traits to the installed JupyterHub, NativeAuthenticator and KubeSpawner
  (KubeSpawner and NativeAuthenticator at the hub image's versions; JupyterHub is 6.1.1 here and
  5.5.0 in the hub image, and every trait used exists in both);
- the user pod to KubeSpawner itself, which renders it from the values the way the chart hands them
  over, and the rendered Pod, the exchange's PVC and its Job to Kubernetes 1.35's schemas
  (kubernetes-validate);
- nbgrader's configuration to traitlets' own loader, and the account names to JupyterHub's
  username check;
- the values that must equal meshlab's one-host classroom to meshlab.classroom and meshlab.course, so
  the two cannot drift.

    CHART_VERSION, SCHEMA_PATHS, PASS_THROUGH   what was read from the chart's values.schema.yaml
    KUBERNETES_API                              the security-context values the Kubernetes API defines
    key_paths        a values tree's key paths, stopping at the chart's pass-through keys
    spawner_config   the KubeSpawner configuration the chart builds from the values it is given
    render_pod       the Pod KubeSpawner makes for one user, as the JSON the API server receives
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from pathlib import Path
from types import SimpleNamespace

import kubernetes_asyncio.config.kube_config
import kubernetes_validate
import kubespawner
import nativeauthenticator
import pytest
import yaml
from jupyterhub.app import JupyterHub
from jupyterhub.auth import Authenticator
from jupyterhub.traitlets import ByteSpecification
from traitlets.config import Config, PyFileConfigLoader

from meshlab import course
from meshlab.classroom import accounts, hub

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "z2jh"
KUBERNETES = "1.35"

#: The chart the values target: jupyterhub 4.4.0 (2026-06-10), JupyterHub 5.5.0 and KubeSpawner 7.0.0
#: in its hub image (zero-to-jupyterhub-k8s tag 4.4.0, images/hub/requirements.txt).
CHART_VERSION = "4.4.0"
HUB_IMAGE_KUBESPAWNER = "7.0.0"
HUB_IMAGE_NATIVEAUTHENTICATOR = "1.3.0"

#: Key paths checked in zero-to-jupyterhub-k8s 4.4.0 jupyterhub/values.schema.yaml, with the JSON types
#: the schema allows there. Objects with additionalProperties: false are listed so that a misspelt key
#: under them is caught; a path not listed here was not checked and is refused.
SCHEMA_PATHS: dict[str, tuple[str, ...]] = {
    "hub": ("object",),
    "hub.config": ("object",),
    "hub.extraConfig": ("object",),
    "singleuser": ("object",),
    "singleuser.image": ("object",),
    "singleuser.image.name": ("string",),
    "singleuser.image.tag": ("string",),
    "singleuser.cmd": ("array", "string", "null"),
    "singleuser.defaultUrl": ("string", "null"),
    "singleuser.memory": ("object",),
    "singleuser.memory.guarantee": ("number", "string", "null"),
    "singleuser.memory.limit": ("number", "string", "null"),
    "singleuser.extraPodConfig": ("object",),
    "singleuser.cloudMetadata": ("object",),
    "singleuser.cloudMetadata.blockWithIptables": ("boolean",),
    "singleuser.lifecycleHooks": ("object",),
    "singleuser.lifecycleHooks.postStart": ("object",),
    "singleuser.storage": ("object",),
    "singleuser.storage.extraVolumes": ("object", "array", "null"),
    "singleuser.storage.extraVolumeMounts": ("object", "array", "null"),
    "singleuser.extraFiles": ("object",),
    "cull": ("object",),
    "cull.enabled": ("boolean",),
    "cull.timeout": ("integer", "null"),
}
#: Where the 4.4.0 schema stops checking and passes the content on: hub.config's keys are Configurable
#: class names (patternProperties ^[A-Z]) holding traits; hub.extraConfig holds Python snippets;
#: extraPodConfig (additionalProperties: true) is merged into the PodSpec; extraVolumes/Mounts are
#: Kubernetes objects; lifecycleHooks.postStart is a Kubernetes LifecycleHandler; each extraFiles entry
#: is {mountPath, one of data|stringData|binaryData, mode}. What they hold is checked below by the
#: software that consumes it.
PASS_THROUGH = ("hub.config", "hub.extraConfig", "singleuser.extraPodConfig", "singleuser.storage.extraVolumes",
                "singleuser.storage.extraVolumeMounts", "singleuser.lifecycleHooks.postStart", "singleuser.extraFiles")
EXTRA_FILE_KEYS = {"mountPath", "data", "stringData", "binaryData", "mode"}

#: The Kubernetes API's own values (k8s.io/api v0.35.3 core/v1 types.go): UnmaskedProcMount,
#: SeccompProfileTypeUnconfined, AppArmorProfileTypeUnconfined. kubernetes-validate's schemas carry
#: no enums, so the values are compared with these.
KUBERNETES_API = {"procMount": "Unmasked", "seccompProfile": {"type": "Unconfined"}, "appArmorProfile": {"type": "Unconfined"}}

#: The hub.config classes, as the hub pod will load them.
CONFIGURABLES = {"JupyterHub": JupyterHub, "Authenticator": Authenticator,
                 "NativeAuthenticator": nativeauthenticator.NativeAuthenticator, "KubeSpawner": kubespawner.KubeSpawner}

#: The chart's singleuser.* keys this file uses and the KubeSpawner traits the chart sets from them
#: (zero-to-jupyterhub-k8s 4.4.0 jupyterhub/files/hub/jupyterhub_config.py), with the chart's defaults
#: for the user pod that the values leave alone (values.yaml at 4.4.0: uid 1000, fsGid 100,
#: allowPrivilegeEscalation false, a dynamic home volume at /home/jovyan).
CHART_DEFAULTS = {"uid": 1000, "fs_gid": 100, "allow_privilege_escalation": False}
#: What the chart adds to every user pod unless singleuser.cloudMetadata.blockWithIptables is false.
METADATA_BLOCKER = {"name": "block-cloud-metadata", "image": f"quay.io/jupyterhub/k8s-network-tools:{CHART_VERSION}",
                    "command": ["iptables", "--append", "OUTPUT", "--destination", "169.254.169.254", "--jump", "DROP"],
                    "securityContext": {"privileged": True, "runAsUser": 0, "capabilities": {"add": ["NET_ADMIN"]}}}
HOME_VOLUME = "volume-{user_server}"
HOME = "/home/jovyan"  # singleuser.storage.homeMountPath, the chart's default and the image's $HOME


def values() -> dict:
    return yaml.safe_load((DEPLOY / "values.yaml").read_text())


def exchange_objects() -> list[dict]:
    return list(yaml.safe_load_all((DEPLOY / "nbgrader-exchange.yaml").read_text()))


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}[type(value)]


def key_paths(tree: dict, prefix: str = "") -> dict[str, object]:
    """Every key path in ``tree`` with its value, not descending below the chart's pass-through keys."""
    found = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        found[path] = value
        if isinstance(value, dict) and path not in PASS_THROUGH:
            found.update(key_paths(value, path + "."))
    return found


def schema_violations(tree: dict) -> list[str]:
    wrong = []
    for path, value in key_paths(tree).items():
        allowed = SCHEMA_PATHS.get(path)
        if allowed is None:
            wrong.append(f"{path}: not a key path checked in chart {CHART_VERSION}'s schema")
        elif _json_type(value) not in allowed and not (_json_type(value) == "integer" and "number" in allowed):
            wrong.append(f"{path}: {_json_type(value)}, the schema allows {'|'.join(allowed)}")
    return wrong


def hub_config(tree: dict) -> Config:
    config = Config(tree["hub"]["config"])
    for snippet in tree["hub"].get("extraConfig", {}).values():
        exec(snippet, {"c": config})  # what the chart does with hub.extraConfig, after hub.config
    return config


def spawner_config(tree: dict) -> Config:
    """The configuration the hub's KubeSpawner gets from ``tree``, as chart 4.4.0 builds it. (Checked
    once against the chart's own jupyterhub_config.py run on helm's rendering of these values: the same
    pod, apart from the chart's scheduling and labels, which the values leave alone.)"""
    config = hub_config(tree)
    single = tree["singleuser"]
    spawner = config.KubeSpawner
    for trait, default in CHART_DEFAULTS.items():
        spawner.setdefault(trait, default)
    spawner.image = f"{single['image']['name']}:{single['image']['tag']}"
    spawner.cmd = single["cmd"]
    spawner.default_url = single["defaultUrl"]
    spawner.mem_guarantee = single["memory"]["guarantee"]
    spawner.mem_limit = single["memory"]["limit"]
    spawner.extra_pod_config = single["extraPodConfig"]
    spawner.lifecycle_hooks = single["lifecycleHooks"]
    if single.get("cloudMetadata", {}).get("blockWithIptables", True):  # the chart's default is true
        spawner.init_containers = [METADATA_BLOCKER]
    volumes = {HOME_VOLUME: {"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}}
    mounts = {HOME_VOLUME: {"name": HOME_VOLUME, "mountPath": HOME}}
    files = single["extraFiles"]
    volumes["files"] = {"name": "files", "secret": {"secretName": "singleuser", "items": [{"key": key, "path": key} for key in files]}}
    for index, (key, details) in enumerate(files.items()):
        mounts[f"{index}-files"] = {"name": "files", "mountPath": details["mountPath"], "subPath": key}
    volumes.update({volume["name"]: volume for volume in single["storage"]["extraVolumes"]})
    mounts.update({f"{index}-{mount['name']}": mount for index, mount in enumerate(single["storage"]["extraVolumeMounts"])})
    spawner.volumes, spawner.volume_mounts = volumes, mounts
    return config


def render_pod(tree: dict, user: str) -> dict:
    """KubeSpawner's Pod for ``user``, serialised by the Kubernetes client the hub uses. It needs a
    kube config to construct (never contacted): see the ``kubeconfig`` fixture."""
    async def render() -> dict:
        account = SimpleNamespace(name=user, id=1, url=f"/user/{user}/")
        spawner = kubespawner.KubeSpawner(config=spawner_config(tree), user=account, _mock=True)
        return spawner.api.api_client.sanitize_for_serialization(await spawner.get_pod_manifest())
    return asyncio.run(render())


@pytest.fixture(scope="module", autouse=True)
def kubeconfig(tmp_path_factory: pytest.TempPathFactory):
    """KubeSpawner loads a client configuration when constructed; one that names an address nothing
    listens on, so that rendering a pod stays offline."""
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "offline",
        "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "offline", "user": {}}],
        "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}]}))
    with pytest.MonkeyPatch.context() as patch:  # the client read $KUBECONFIG when it was imported
        patch.setattr(kubernetes_asyncio.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
        yield


@pytest.fixture(scope="module")
def student_pod() -> dict:
    return render_pod(values(), accounts.student_names(7)[-1])


# -- the chart's schema -----------------------------------------------------------------------------
def test_every_key_path_is_one_checked_in_the_charts_schema():
    assert schema_violations(values()) == []


def test_a_misspelt_or_mistyped_key_is_refused():
    tree = values()
    tree["singleuser"]["defaultURL"] = tree["singleuser"].pop("defaultUrl")
    tree["cull"]["timeout"] = "3600"
    assert schema_violations(tree) == [
        f"singleuser.defaultURL: not a key path checked in chart {CHART_VERSION}'s schema",
        "cull.timeout: string, the schema allows integer|null"]


def test_extra_files_use_only_the_keys_the_schema_allows():
    for key, details in values()["singleuser"]["extraFiles"].items():
        assert set(details) <= EXTRA_FILE_KEYS, key
        assert "mountPath" in details and len(set(details) & {"data", "stringData", "binaryData"}) == 1, key


# -- hub.config against the classes that read it ----------------------------------------------------
def test_the_installed_spawner_and_authenticator_are_the_hub_images():
    assert importlib.metadata.version("jupyterhub-kubespawner") == HUB_IMAGE_KUBESPAWNER
    assert importlib.metadata.version("jupyterhub-nativeauthenticator") == HUB_IMAGE_NATIVEAUTHENTICATOR


def test_every_hub_config_trait_exists_on_its_class():
    for section, traits in values()["hub"]["config"].items():
        configurable = CONFIGURABLES[section]
        assert set(traits) <= set(configurable.class_traits(config=True)), section


def test_the_authenticator_is_native_authenticator_with_its_settings():
    config = hub_config(values())
    assert JupyterHub(config=config).authenticator_class is nativeauthenticator.NativeAuthenticator
    authenticator = nativeauthenticator.NativeAuthenticator(add_new_table=False, config=config)
    assert authenticator.open_signup is False and authenticator.allow_all is True
    assert authenticator.admin_users == {accounts.INSTRUCTOR}
    assert authenticator.minimum_password_length >= 10  # meshlab's one-host passwords are 10 characters


def test_only_meshlabs_account_names_can_sign_up_or_log_in():
    authenticator = Authenticator(config=hub_config(values()))
    names = [*accounts.student_names(accounts.MAX_STUDENTS), accounts.INSTRUCTOR]
    assert all(authenticator.validate_username(name) for name in names)
    assert not any(authenticator.validate_username(name) for name in
                   ("mlstudent00", "mlstudent1", "mlstudent100", "alice", "mlinstructor2", f"x{accounts.INSTRUCTOR}"))


def test_every_account_gets_its_own_uid():
    uid = hub_config(values()).KubeSpawner.uid
    names = [*accounts.student_names(accounts.MAX_STUDENTS), accounts.INSTRUCTOR]
    uids = [uid(SimpleNamespace(user=SimpleNamespace(name=name))) for name in names]
    assert len(set(uids)) == len(names)
    assert all(1000 <= number < 65536 for number in uids)  # a user-namespaced pod maps 0-65535


# -- the user pod, as KubeSpawner makes it ------------------------------------------------------------
def test_the_student_pod_is_a_valid_kubernetes_pod(student_pod):
    assert kubernetes_validate.latest_version() >= KUBERNETES
    kubernetes_validate.validate(student_pod, KUBERNETES, strict=True)


def test_a_wrong_security_context_field_is_refused_by_kubernetes_schema(student_pod):
    broken = yaml.safe_load(yaml.safe_dump(student_pod))
    broken["spec"]["containers"][0]["securityContext"]["procMounts"] = "Unmasked"
    with pytest.raises(kubernetes_validate.ValidationError, match="'procMounts' was unexpected"):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_the_student_pod_runs_the_live_lab_in_a_user_namespace(student_pod):
    spec = student_pod["spec"]
    assert spec["hostUsers"] is False
    context = spec["containers"][0]["securityContext"]
    assert {key: context[key] for key in KUBERNETES_API} == KUBERNETES_API
    assert context["allowPrivilegeEscalation"] is False
    assert context["runAsUser"] == 1007 and context["runAsGroup"] == 100
    assert not any(container.get("securityContext", {}).get("privileged") for container in spec.get("initContainers") or [])


def test_the_student_pod_opens_the_chapter_map_and_has_a_students_memory(student_pod):
    container = student_pod["spec"]["containers"][0]
    env = {variable["name"]: variable.get("value") for variable in container["env"]}
    assert env["JUPYTERHUB_DEFAULT_URL"] == hub.DEFAULT_URL
    requests, limits = container["resources"]["requests"]["memory"], container["resources"]["limits"]["memory"]
    assert 500 * 10**6 <= requests <= limits <= ByteSpecification().validate(None, "1G")


def test_the_student_pod_mounts_the_exchange_its_nbgrader_config_names(student_pod):
    tree = values()
    text = tree["singleuser"]["extraFiles"]["nbgrader-config"]["stringData"]
    mounts = {mount["mountPath"]: mount for mount in student_pod["spec"]["containers"][0]["volumeMounts"]}
    assert "/etc/jupyter/nbgrader_config.py" in mounts
    claims = {volume["name"]: volume.get("persistentVolumeClaim", {}).get("claimName") for volume in student_pod["spec"]["volumes"]}
    exchange_root = next(path for path, mount in mounts.items() if claims.get(mount["name"]) == exchange_objects()[0]["metadata"]["name"])
    assert text.startswith(course.STUDENT_CONFIG.format(course_id=course.COURSE_ID, exchange=exchange_root))


def test_nbgrader_reads_the_course_and_exchange_from_the_config(tmp_path):
    tree = values()
    (tmp_path / "nbgrader_config.py").write_text(tree["singleuser"]["extraFiles"]["nbgrader-config"]["stringData"])
    loaded = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    assert loaded.CourseDirectory.course_id == course.COURSE_ID
    mount = tree["singleuser"]["storage"]["extraVolumeMounts"][0]["mountPath"]
    assert loaded.Exchange.root == mount
    assert loaded.Exchange.assignment_dir == f"{HOME}/labs"  # where meshlab-home puts the labs, as on one host


# -- meshlab's one-host classroom and the image --------------------------------------------------------
def test_the_values_agree_with_the_one_host_classroom():
    tree = values()
    assert tree["singleuser"]["defaultUrl"] == hub.DEFAULT_URL
    assert tree["cull"] == {"enabled": True, "timeout": hub.CULL_IDLE_SECONDS}
    assert tree["singleuser"]["image"]["tag"] == importlib.metadata.version("meshlab")


def test_the_exchange_volume_and_its_init_job_are_valid_kubernetes_objects():
    claim, job = exchange_objects()
    for obj in (claim, job):
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert values()["singleuser"]["storage"]["extraVolumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert job["spec"]["template"]["spec"]["hostUsers"] is False  # idmap-mounted like the servers that share it


def test_the_image_has_the_post_start_hook_and_no_solutions():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    hook = values()["singleuser"]["lifecycleHooks"]["postStart"]["exec"]["command"]
    assert f"COPY deploy/z2jh/meshlab-home.sh {hook[0]}" in dockerfile
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "COPY --chown=${NB_UID}:${NB_GID} labs " not in final_stage  # only nbgrader's release/ reaches students
    assert "/tmp/course/release /opt/meshlab/labs" in final_stage
    assert f"$(seq 1 {accounts.MAX_STUDENTS})" in final_stage  # a passwd entry for every student uid
