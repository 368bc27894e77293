#!/usr/bin/env bash
# Build the coop-demo test images, the host agent (and optionally kamal-proxy),
# push them to a registry and record their digests.
#
# usage: scripts/build-images.sh REGISTRY OUTFILE
#   e.g. scripts/build-images.sh 127.0.0.1:5001 .local/images.json
#
# Images (all FROM scratch, nothing is pulled):
#   REGISTRY/coop-demo:v1               version v1, schema 1
#   REGISTRY/coop-demo:v2               version v2, schema 2
#   REGISTRY/coop-demo:v3-broken        version v3, schema 2, /health always 503
#   REGISTRY/coop-demo:v4-badmigration  version v4, schema 3, migrate exits 3
#   REGISTRY/coop-agent:current         the host agent (host/, Go), /coop-agent;
#                                       hosts install it with its `install` subcommand
#   REGISTRY/coop-django:v1             a real threaded WSGI app: Django 3.2 under gunicorn
#                                       (gthread), FROM scratch around a Debian bookworm
#                                       root filesystem debootstrapped here (app/django)
#   REGISTRY/coop-django:v2             the same with a migration that goes wrong
#                                       (app/django/v2: a new table, the visits deleted)
#   REGISTRY/coop-pgtools:current       pg_dump, pg_restore, psql and a shell, FROM scratch:
#                                       this machine's PostgreSQL client programs and the
#                                       libraries they load (ldd); the agent's database backups
#   REGISTRY/coop-hydra:v2.2.0          a real third-party app: Ory Hydra (OAuth2 server, Go,
#   REGISTRY/coop-hydra:v2.3.0          PostgreSQL, SQL migrations) as a static binary built
#                                       from the Go module proxy (cached by version in
#                                       COOP_TOOLCHAIN_CACHE), FROM scratch; keys hydra, hydra:v2
#   REGISTRY/kamal-proxy:$KAMAL_PROXY_VERSION
#                                       only when KAMAL_PROXY_BIN names a
#                                       prebuilt static kamal-proxy binary
#
# OUTFILE gets {"inputsHash": ..., "agentInputsHash": ..., "proxyInputsHash": ...,
#   "images": {"demo:v1": "REGISTRY/coop-demo@sha256:...", ..., "coop-agent": ...}}.
# When OUTFILE's inputsHash matches the current inputs and every recorded
# digest is still in the registry, nothing is built ("images: up to date").
# The agent's digest is its version on the hosts, so it is rebuilt only when
# its own inputs (agentInputsHash) change, not when the demo app's do; the
# kamal-proxy image too (proxyInputsHash: a new digest recreates the proxy). The
# Django image likewise (djangoInputsHash); its root filesystem is cached in
# COOP_ROOTFS_CACHE (default: OUTFILE's directory/cache) by its own inputs. The Hydra images
# likewise (hydraInputsHash); their binaries are kept in COOP_TOOLCHAIN_CACHE by version.
# After pushing, the local tags and images are removed so that deploys have
# to pull from the registry.
#
# Environment:
#   KAMAL_PROXY_BIN      path to a static kamal-proxy binary (optional)
#   KAMAL_PROXY_VERSION  its version, used as the image tag (required with _BIN)
#   GOARCH               target architecture (default: the Docker engine's)
#   COOP_DEBIAN_MIRROR   where debootstrap gets the Django image's packages
#                        (default http://deb.debian.org/debian)
#   COOP_ROOTFS_CACHE    where the debootstrapped root filesystem is kept
#   COOP_TOOLCHAIN_CACHE where the Hydra binaries are kept
#                        (default ~/.cache/coop-toolchain, as scripts/toolchain.sh)
set -euo pipefail

PROG=build-images
# shellcheck source=scripts/host-images.sh
source "$(dirname "${BASH_SOURCE[0]}")/host-images.sh"

die() {
	printf '%s: %s\n' "$PROG" "$*" >&2
	exit 1
}

note() {
	printf '%s: %s\n' "$PROG" "$*" >&2
}

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

if [[ $# -ne 2 ]]; then
	usage
	exit 2
fi
REGISTRY=$1
OUTFILE=$2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APP_DIR=$ROOT/app/demo
DEMO_DOCKERFILE=$APP_DIR/Dockerfile
KP_DOCKERFILE=$ROOT/host/kamal-proxy.Dockerfile
AGENT_DIR=$ROOT/host
AGENT_DOCKERFILE=$ROOT/host/coop-agent.Dockerfile
DJANGO_DIR=$ROOT/app/django
# The Django image's root filesystem: debootstrap's minbase of this suite with these packages.
DJANGO_SUITE=bookworm
DJANGO_PACKAGES=python3-django,gunicorn,python3-psycopg2
DEBIAN_MIRROR=${COOP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Ory Hydra, one image per version: key in OUTFILE|module version|how its CLI's API client is had
# (see hydra_wrapper).
HYDRA_VERSIONS=(
	"hydra|v2.2.0|patched"
	"hydra:v2|v2.3.0|required"
)
HYDRA_CACHE=${COOP_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coop-toolchain}

# name|version|schema|DEMO_HEALTH image env|failMigration ldflag
VARIANTS=(
	"v1|v1|1||"
	"v2|v2|2||"
	"v3-broken|v3|2|fail|"
	"v4-badmigration|v4|3||1"
)

MANIFEST_ACCEPT='application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json'

# --- checks -----------------------------------------------------------------

if [[ $REGISTRY == *://* || $REGISTRY == */* ]]; then
	die "REGISTRY must be host:port without scheme or path (got '$REGISTRY'), e.g. 127.0.0.1:5001"
fi
if [[ -z $OUTFILE || $OUTFILE == */ ]]; then
	die "OUTFILE must be a file path (got '$OUTFILE'), e.g. .local/images.json"
fi

for tool in docker go jq curl sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed or not on PATH; install it and retry"
done

[[ -f $DEMO_DOCKERFILE ]] || die "missing $DEMO_DOCKERFILE; run this script from a full checkout"
[[ -f $AGENT_DOCKERFILE && -f $AGENT_DIR/go.mod ]] || die "missing $AGENT_DOCKERFILE or $AGENT_DIR/go.mod; run this script from a full checkout"

KP_BIN=${KAMAL_PROXY_BIN:-}
KP_VERSION=${KAMAL_PROXY_VERSION:-}
if [[ -n $KP_BIN ]]; then
	[[ -f $KP_BIN && -x $KP_BIN ]] || die "KAMAL_PROXY_BIN=$KP_BIN is not an executable file; point it at a static kamal-proxy binary"
	[[ -n $KP_VERSION ]] || die "KAMAL_PROXY_BIN is set but KAMAL_PROXY_VERSION is not; set it to the binary's version, e.g. KAMAL_PROXY_VERSION=v0.9.2"
	[[ $KP_VERSION =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "KAMAL_PROXY_VERSION='$KP_VERSION' is not a valid image tag; use something like v0.9.2"
	[[ -f $KP_DOCKERFILE ]] || die "missing $KP_DOCKERFILE; run this script from a full checkout"
	if command -v file >/dev/null 2>&1 && file -L "$KP_BIN" | grep -q 'dynamically linked'; then
		die "KAMAL_PROXY_BIN=$KP_BIN is dynamically linked and cannot run in a scratch image; build it with CGO_ENABLED=0"
	fi
fi

docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
	die "the Docker engine is not reachable ('docker version' failed); start dockerd and retry"

if ! curl -fsS --max-time 5 -o /dev/null "http://$REGISTRY/v2/" 2>/dev/null; then
	die "registry $REGISTRY is not answering on http://$REGISTRY/v2/; run scripts/local-hosts.sh up first"
fi

ARCH=${GOARCH:-$(docker version --format '{{.Server.Arch}}')}

# --- serialise concurrent runs for the same OUTFILE --------------------------

mkdir -p "$(dirname "$OUTFILE")" || die "cannot create the directory for $OUTFILE"
if command -v flock >/dev/null 2>&1; then
	exec 9>"$OUTFILE.lock"
	flock -w 900 9 || die "another build-images run holds $OUTFILE.lock for over 15 minutes; wait for it or remove the lock"
fi

# --- inputs hash ------------------------------------------------------------

inputs_hash() {
	{
		printf 'registry %s\narch %s\ngo %s\n' "$REGISTRY" "$ARCH" "$(go env GOVERSION)"
		printf 'variants %s\n' "${VARIANTS[*]}"
		if [[ -n $KP_BIN ]]; then
			printf 'kamal-proxy %s %s\n' "$KP_VERSION" "$(sha256sum <"$KP_BIN" | cut -d' ' -f1)"
		else
			printf 'kamal-proxy none\n'
		fi
		cd "$ROOT"
		# Tests do not end up in the images, so editing them forces no rebuild.
		find app/demo -type f \( \( -name '*.go' ! -name '*_test.go' \) -o -name go.mod -o -name go.sum \
			-o -name Dockerfile -o -name .dockerignore \) -print0 |
			LC_ALL=C sort -z | xargs -0 -r sha256sum
		sha256sum scripts/build-images.sh host/kamal-proxy.Dockerfile
		printf 'coop-agent %s\n' "$AGENT_HASH"
		printf 'coop-django %s\n' "$DJANGO_HASH"
		printf 'coop-pgtools %s\n' "$PGTOOLS_HASH"
		printf 'coop-hydra %s\n' "$HYDRA_HASH"
	} | sha256sum | cut -d' ' -f1
}

# The PostgreSQL client programs of the newest version installed here (Debian's postgresql-client).
pg_bindir() {
	local d
	d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
	[[ -n $d && -x $d/pg_dump && -x $d/pg_restore && -x $d/psql ]] || return 1
	printf '%s\n' "$d"
}

# The pgtools image's inputs: the programs and every library they load, and this section.
pgtools_inputs_hash() {
	{
		printf 'registry %s\narch %s\n' "$REGISTRY" "$ARCH"
		pgtools_files | LC_ALL=C sort -u | xargs -r sha256sum
		sed -n '/^# --- the pgtools image/,/^# --- end of the pgtools image/p' "$ROOT/scripts/build-images.sh"
	} | sha256sum | cut -d' ' -f1
}

# pgtools_files: the programs, /bin/sh (dash) and the shared libraries all of them load.
pgtools_files() {
	local bindir p
	bindir=$(pg_bindir) || return 0
	for p in "$bindir/pg_dump" "$bindir/pg_restore" "$bindir/psql" /bin/dash; do
		readlink -f "$p"
		ldd "$p" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | xargs -r readlink -f
		ldd "$p" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}'
	done
}

# The Django image's root filesystem's inputs: the suite, the packages, debootstrap's version and
# how the tree is trimmed (rootfs_build below).
rootfs_key() {
	{
		printf 'suite %s\npackages %s\narch %s\ndebootstrap %s\n' "$DJANGO_SUITE" "$DJANGO_PACKAGES" "$ARCH" \
			"$(dpkg-query -W -f '${Version}' debootstrap 2>/dev/null || echo unknown)"
		declare -f rootfs_build
	} | sha256sum | cut -c1-16
}

# The Django image's inputs: the app (no tests), its Dockerfile, the root filesystem and this section.
django_inputs_hash() {
	{
		printf 'registry %s\narch %s\nrootfs %s\n' "$REGISTRY" "$ARCH" "$ROOTFS_KEY"
		cd "$ROOT"
		find app/django -type f ! -name '*_test.py' ! -name '*.pyc' ! -path '*/tests/*' -print0 |
			LC_ALL=C sort -z | xargs -0 -r sha256sum
		sed -n '/^# --- the Django stand-in/,/^# --- end of the Django stand-in/p' scripts/build-images.sh
	} | sha256sum | cut -d' ' -f1
}

# The host agent's own inputs: its source, its Dockerfile, the Go toolchain and the target.
agent_inputs_hash() {
	{
		printf 'registry %s\narch %s\ngo %s\n' "$REGISTRY" "$ARCH" "$(go env GOVERSION)"
		cd "$ROOT"
		find host -type f \( \( -name '*.go' ! -name '*_test.go' \) -o -name go.mod -o -name go.sum \) -print0 |
			LC_ALL=C sort -z | xargs -0 -r sha256sum
		sha256sum host/coop-agent.Dockerfile scripts/host-images.sh
		sed -n '/^# --- the host agent/,/^# --- end of the host agent/p' scripts/build-images.sh
	} | sha256sum | cut -d' ' -f1
}

# The kamal-proxy image's own inputs: like the agent's, it is rebuilt only when they change, since
# a rebuild gives a new digest, and a new digest makes host-up recreate the proxy.
proxy_inputs_hash() {
	{
		printf 'registry %s\narch %s\ngo %s\n' "$REGISTRY" "$ARCH" "$(go env GOVERSION)"
		if [[ -n $KP_BIN ]]; then
			printf 'kamal-proxy %s %s\n' "$KP_VERSION" "$(sha256sum <"$KP_BIN" | cut -d' ' -f1)"
		fi
		cd "$ROOT"
		sha256sum host/kamal-proxy.Dockerfile host/go.mod host/cmd/coop-proxy-start/*.go /etc/ssl/certs/ca-certificates.crt scripts/host-images.sh
		sed -n '/^# --- the kamal-proxy image/,/^# --- end of the kamal-proxy image/p' scripts/build-images.sh
	} | sha256sum | cut -d' ' -f1
}

# rootfs_build DIR OUT: debootstraps the Django image's root filesystem into DIR, trims what an
# image never uses (apt's lists and caches, documentation, man pages, logs) and tars it as OUT.
rootfs_build() {
	local dir=$1 out=$2
	debootstrap --variant=minbase --include="$DJANGO_PACKAGES" "$DJANGO_SUITE" "$dir" "$DEBIAN_MIRROR" ||
		return 1
	rm -rf "$dir"/var/cache/apt/* "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/* \
		"$dir"/usr/share/info/* "$dir"/var/log/* "$dir"/var/cache/debconf/*-old "$dir"/var/lib/dpkg/*-old
	tar --numeric-owner --sort=name -C "$dir" -cf "$out" .
}

# hydra_wrapper DIR VERSION CLIENT: a throwaway module in DIR that requires Hydra at VERSION, to
# build Hydra's own main package (its command line) with. A dependency's replace directives do not apply in a module that requires it,
# so Hydra's own (pop's fork, pgconn) are repeated here, all but one: its go.mod points its API
# client (github.com/ory/hydra-client-go/v2, which only its CLI subcommands use) at a directory
# of its repository that the module proxy's zip leaves out. CLIENT says what stands in for it:
# `required` the published version Hydra requires (v2.3.0 compiles with it), `patched` that
# version with the one field v2.2.0's CLI sets and v2.1.1 lacks (skip_logout_consent, as in the
# later published client). The server's code is Hydra's as published.
hydra_wrapper() {
	local dir=$1 version=$2 client=$3 mod cdir cver model
	mkdir -p "$dir"
	mod=$(go mod download -json "github.com/ory/hydra/v2@$version") || return 1
	(
		cd "$dir" || exit 1
		go mod init coop-hydra >/dev/null 2>&1 || exit 1
		go mod edit -require "github.com/ory/hydra/v2@$version" || exit 1
		# Hydra's go.sum verifies what it resolves to; the rest is checked against the checksum database.
		install -m 0644 "$(jq -r .Dir <<<"$mod")/go.sum" go.sum || exit 1
		go mod edit -json "$(jq -r .GoMod <<<"$mod")" |
			jq -r '.Replace[]? | select(.New.Version != null) |
				"\(.Old.Path)\(if .Old.Version then "@" + .Old.Version else "" end)=\(.New.Path)@\(.New.Version)"' |
			while IFS= read -r r; do go mod edit -replace "$r" || exit 1; done || exit 1
		if [[ $client == patched ]]; then
			cver=$(go mod edit -json "$(jq -r .GoMod <<<"$mod")" |
				jq -r '.Require[] | select(.Path == "github.com/ory/hydra-client-go/v2") | .Version')
			cdir=$(go mod download -json "github.com/ory/hydra-client-go/v2@$cver" | jq -r .Dir) || exit 1
			cp -r "$cdir" client && chmod -R u+w client || exit 1
			model=client/model_o_auth2_client.go
			grep -q 'SkipLogoutConsent' "$model" && exit 1
			# The field after SkipConsent's, and its JSON after SkipConsent's.
			awk '{ print }
				/^\tSkipConsent \*bool `json:"skip_consent,omitempty"`$/ {
					print "\t// SkipLogoutConsent skips the logout consent screen for this client (admin API only)."
					print "\tSkipLogoutConsent *bool `json:\"skip_logout_consent,omitempty\"`"; n++ }
				/^\t\ttoSerialize\["skip_consent"\] = o.SkipConsent$/ { s = 1 }
				s && /^\t}$/ { print "\tif o.SkipLogoutConsent != nil {"
					print "\t\ttoSerialize[\"skip_logout_consent\"] = o.SkipLogoutConsent"; print "\t}"; s = 0; n++ }
				END { exit n == 2 ? 0 : 1 }' "$model" >"$model.new" || exit 1
			mv "$model.new" "$model"
			go mod edit -replace github.com/ory/hydra-client-go/v2=./client || exit 1
		fi
	)
}

# hydra_binary VERSION CLIENT: the static Hydra binary of VERSION (no cgo, so no SQLite: it serves
# PostgreSQL, MySQL and CockroachDB), built once and kept in HYDRA_CACHE by version and by how it
# is built; prints its path. A cold build fetches some 300 modules and compiles for minutes.
hydra_binary() {
	local version=$1 client=$2 key dir log started
	key=$({
		printf '%s %s %s %s\n' "$version" "$client" "$ARCH" "$(go env GOVERSION)"
		declare -f hydra_wrapper hydra_binary
	} | sha256sum | cut -c1-12)
	dir=$HYDRA_CACHE/hydra-$version-$key
	if [[ ! -x $dir/hydra ]]; then
		note "building Ory Hydra $version from the Go module proxy (once; cached in $dir)"
		mkdir -p "$dir"
		log=$dir/build.log
		started=$SECONDS
		if ! {
			rm -rf "$dir/module" &&
				hydra_wrapper "$dir/module" "$version" "$client" &&
				(cd "$dir/module" && CGO_ENABLED=0 GOOS=linux GOARCH=$ARCH GOFLAGS=-mod=mod GOTOOLCHAIN=local \
					go build -trimpath -buildvcs=false \
					-ldflags "-s -w -X github.com/ory/hydra/v2/driver/config.Version=$version" \
					-o "$dir/hydra.tmp" github.com/ory/hydra/v2)
		} >"$log" 2>&1; then
			show_log "$log"
			return 1
		fi
		mv "$dir/hydra.tmp" "$dir/hydra"
		rm -rf "$dir/module"
		note "built Ory Hydra $version in $((SECONDS - started)) s"
	fi
	printf '%s\n' "$dir/hydra"
}

# The Hydra images' inputs: the versions, how their binaries are built and this section.
hydra_inputs_hash() {
	{
		printf 'registry %s\narch %s\ngo %s\nversions %s\n' "$REGISTRY" "$ARCH" "$(go env GOVERSION)" "${HYDRA_VERSIONS[*]}"
		declare -f hydra_wrapper hydra_binary
		sed -n '/^# --- the Ory Hydra images/,/^# --- end of the Ory Hydra images/p' "$ROOT/scripts/build-images.sh"
	} | sha256sum | cut -d' ' -f1
}

AGENT_HASH=$(agent_inputs_hash)
PROXY_HASH=$(proxy_inputs_hash)
ROOTFS_KEY=$(rootfs_key)
DJANGO_HASH=$(django_inputs_hash)
pg_bindir >/dev/null || die "no PostgreSQL client programs in /usr/lib/postgresql/*/bin (apt-get install postgresql-client); the coop-pgtools image is made of them"
PGTOOLS_HASH=$(pgtools_inputs_hash)
HYDRA_HASH=$(hydra_inputs_hash)
HASH=$(inputs_hash)

expected_keys() {
	local v
	for v in "${VARIANTS[@]}"; do
		printf 'demo:%s\n' "${v%%|*}"
	done
	printf 'coop-agent\n'
	printf 'django\n'
	printf 'django:v2\n'
	printf 'coop-pgtools\n'
	for v in "${HYDRA_VERSIONS[@]}"; do
		printf '%s\n' "${v%%|*}"
	done
	if [[ -n $KP_BIN ]]; then
		printf 'kamal-proxy\n'
	fi
}

# in_registry REF: is REGISTRY/repo@sha256:... present in the registry?
in_registry() {
	local ref=$1 repo digest
	[[ $ref == "$REGISTRY/"*@sha256:* ]] || return 1
	repo=${ref#"$REGISTRY/"}
	repo=${repo%@*}
	digest=${ref##*@}
	curl -fsS --max-time 10 -o /dev/null -H "Accept: $MANIFEST_ACCEPT" \
		"http://$REGISTRY/v2/$repo/manifests/$digest" 2>/dev/null
}

# recorded_ref FIELD HASH IMAGE: the reference OUTFILE records for IMAGE when OUTFILE's FIELD is
# HASH (the image's own inputs are unchanged) and the registry still has it; nothing otherwise.
recorded_ref() {
	local ref
	[[ -f $OUTFILE && $(jq -r --arg f "$1" '.[$f] // empty' "$OUTFILE" 2>/dev/null) == "$2" ]] || return 0
	ref=$(jq -r --arg i "$3" '.images[$i] // empty' "$OUTFILE")
	if [[ -n $ref ]] && in_registry "$ref"; then
		printf '%s\n' "$ref"
	fi
}

up_to_date() {
	local recorded key ref
	[[ -f $OUTFILE ]] || return 1
	recorded=$(jq -r '.inputsHash // empty' "$OUTFILE" 2>/dev/null) || {
		note "$OUTFILE is not valid JSON; rebuilding"
		return 1
	}
	if [[ $recorded != "$HASH" ]]; then
		note "inputs changed since $OUTFILE was written; rebuilding"
		return 1
	fi
	while IFS= read -r key; do
		ref=$(jq -r --arg k "$key" '.images[$k] // empty' "$OUTFILE")
		if [[ -z $ref ]]; then
			note "$OUTFILE has no entry for $key; rebuilding"
			return 1
		fi
		if ! in_registry "$ref"; then
			note "$ref is no longer in the registry; rebuilding"
			return 1
		fi
	done < <(expected_keys)
	return 0
}

if up_to_date; then
	echo "images: up to date"
	exit 0
fi

# --- build ------------------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/build-images.XXXXXX")
LOCAL_REFS=()

cleanup() {
	local ref
	# ${arr[@]+...} keeps `set -u` quiet on bash < 4.4 when the array is empty.
	for ref in ${LOCAL_REFS[@]+"${LOCAL_REFS[@]}"}; do
		docker rmi "$ref" >/dev/null 2>&1 || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

# show_log FILE: last lines of a failed step's output, to stderr.
show_log() {
	tail -n 25 "$1" | sed 's/^/  | /' >&2
}

# Fixed mtime for files copied into images, so identical binaries give
# identical layers (the registry then already has them on the next push).
FIXED_MTIME='2000-01-01T00:00:00Z'

build_binary() { # out version schema failMigration
	local out=$1 version=$2 schema=$3 fail=$4 log=$WORK/go-build.log
	if ! (cd "$APP_DIR" && CGO_ENABLED=0 GOOS=linux GOARCH=$ARCH GOFLAGS=-mod=mod GOTOOLCHAIN=local \
		go build -trimpath -buildvcs=false \
		-ldflags "-s -w -X main.version=$version -X main.schema=$schema -X main.failMigration=$fail" \
		-o "$out" .) >"$log" 2>&1; then
		show_log "$log"
		die "go build of coop-demo $version failed (output above); fix app/demo and retry ('cd app/demo && go vet ./...')"
	fi
	touch -d "$FIXED_MTIME" "$out"
}

# build_push REF CONTEXT DOCKERFILE [--build-arg ...]: prints REPO@DIGEST.
# It runs in a command substitution: callers add REF to LOCAL_REFS first.
build_push() {
	local ref=$1 ctx=$2 dockerfile=$3 log digest repo
	shift 3
	log=$WORK/docker.log
	if ! DOCKER_BUILDKIT=0 docker build --force-rm --pull=false --platform "linux/$ARCH" -t "$ref" -f "$dockerfile" "$@" "$ctx" >"$log" 2>&1; then
		show_log "$log"
		die "docker build of $ref failed (output above)"
	fi
	if ! docker push "$ref" >"$log" 2>&1; then
		show_log "$log"
		die "docker push of $ref failed (output above); check that $REGISTRY accepts pushes (a plain-HTTP registry outside 127.0.0.0/8 must be in the engine's insecure-registries)"
	fi
	digest=$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' "$log" | tail -n 1)
	repo=${ref%:*}
	if [[ -z $digest ]]; then
		digest=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" |
			sed -n "s|^${repo//./\\.}@\\(sha256:[0-9a-f]\\{64\\}\\)\$|\\1|p" | head -n 1)
	fi
	[[ -n $digest ]] || die "could not find the registry digest of $ref after pushing; see 'docker push $ref'"
	in_registry "$repo@$digest" ||
		die "$repo@$digest was pushed but the registry does not serve it; check the registry's storage and logs"
	printf '%s@%s\n' "$repo" "$digest"
}

# remove_local REF: drop the tag and, if nothing else uses it, the image.
remove_local() {
	local ref=$1 id
	id=$(docker image inspect --format '{{.Id}}' "$ref" 2>/dev/null) || return 0
	docker rmi "$ref" >/dev/null 2>&1 || note "warning: could not remove local tag $ref"
	if docker image inspect "$id" >/dev/null 2>&1; then
		docker rmi "$id" >/dev/null 2>&1 || note "warning: local image $id ($ref) is still in use and was kept"
	fi
}

IMAGES='{}'
record() { # key ref
	IMAGES=$(jq -c --arg k "$1" --arg v "$2" '. + {($k): $v}' <<<"$IMAGES")
	printf '  %-22s %s\n' "$1" "$2"
}

echo "images: building for linux/$ARCH, pushing to $REGISTRY"

for v in "${VARIANTS[@]}"; do
	IFS='|' read -r name version schema health fail <<<"$v"
	ctx=$WORK/demo-$name
	mkdir -p "$ctx"
	build_binary "$ctx/coop-demo" "$version" "$schema" "$fail"
	ref="$REGISTRY/coop-demo:$name"
	LOCAL_REFS+=("$ref")
	pinned=$(build_push "$ref" "$ctx" "$DEMO_DOCKERFILE" \
		--build-arg "VERSION=$version" --build-arg "DEMO_HEALTH=$health")
	remove_local "$ref"
	record "demo:$name" "$pinned"
done

# --- the host agent ----------------------------------------------------------
# A static binary, built reproducibly (-trimpath, no VCS stamp, fixed mtime). The
# image is rebuilt only when the agent's own inputs change: its digest is the
# version hosts run, and a rebuild gives a new digest even for the same binary.
agent_ref=$(recorded_ref agentInputsHash "$AGENT_HASH" coop-agent)
if [[ -n $agent_ref ]]; then
	record coop-agent "$agent_ref"
else
	ctx=$WORK/coop-agent
	agent_context "$ctx" "$ARCH" || die "go build of the host agent failed (output above); fix host/ and retry ('cd host && go vet ./...')"
	ref="$REGISTRY/coop-agent:current"
	LOCAL_REFS+=("$ref")
	pinned=$(build_push "$ref" "$ctx" "$AGENT_DOCKERFILE" --build-arg "VERSION=$(sha256sum <"$ctx/coop-agent" | cut -c1-12)")
	remove_local "$ref"
	record coop-agent "$pinned"
fi
# --- end of the host agent ---------------------------------------------------

# --- the Django stand-in -----------------------------------------------------
# Rebuilt only when its own inputs change (djangoInputsHash); the root filesystem, the slow part
# (debootstrap fetches some 40 MB of packages), is kept in the cache by its own key.
django_ref=$(recorded_ref djangoInputsHash "$DJANGO_HASH" django)
django_v2_ref=$(jq -r '.images["django:v2"] // empty' "$OUTFILE" 2>/dev/null || true)
if [[ -n $django_ref && -n $django_v2_ref ]] && in_registry "$django_v2_ref"; then
	record django "$django_ref"
	record django:v2 "$django_v2_ref"
else
	cache=${COOP_ROOTFS_CACHE:-$(dirname "$OUTFILE")/cache}
	rootfs=$cache/django-rootfs-$ROOTFS_KEY.tar
	if [[ ! -f $rootfs ]]; then
		command -v debootstrap >/dev/null 2>&1 ||
			die "debootstrap is not installed (apt-get install debootstrap); it makes the Django image's root filesystem"
		[[ $(id -u) == 0 ]] || die "debootstrap must run as root to make the Django image's root filesystem"
		mkdir -p "$cache"
		note "debootstrapping $DJANGO_SUITE with $DJANGO_PACKAGES (once; cached as $rootfs)"
		if ! rootfs_build "$WORK/rootfs" "$WORK/rootfs.tar" >"$WORK/debootstrap.log" 2>&1; then
			show_log "$WORK/debootstrap.log"
			die "debootstrap of the Django image's root filesystem failed (output above); check that $DEBIAN_MIRROR answers"
		fi
		rm -rf "$WORK/rootfs"
		mv "$WORK/rootfs.tar" "$rootfs"
		find "$cache" -name 'django-rootfs-*.tar' ! -name "$(basename "$rootfs")" -delete
	fi
	ctx=$WORK/django
	mkdir -p "$ctx/app"
	cp "$rootfs" "$ctx/rootfs.tar"
	cp -r "$DJANGO_DIR/coopsite" "$DJANGO_DIR/gunicorn.conf.py" "$DJANGO_DIR/run" "$ctx/app/"
	find "$ctx/app" -exec touch -h -d "$FIXED_MTIME" {} +
	ref="$REGISTRY/coop-django:v1"
	LOCAL_REFS+=("$ref")
	pinned=$(build_push "$ref" "$ctx" "$DJANGO_DIR/Dockerfile" --build-arg "VERSION=v1")
	remove_local "$ref"
	record django "$pinned"
	# v2: the same app with one more migration, one that goes wrong (app/django/v2).
	cp "$DJANGO_DIR"/v2/0*.py "$ctx/app/coopsite/site/migrations/"
	find "$ctx/app" -exec touch -h -d "$FIXED_MTIME" {} +
	ref="$REGISTRY/coop-django:v2"
	LOCAL_REFS+=("$ref")
	pinned=$(build_push "$ref" "$ctx" "$DJANGO_DIR/Dockerfile" --build-arg "VERSION=v2")
	remove_local "$ref"
	record django:v2 "$pinned"
fi
# --- end of the Django stand-in ----------------------------------------------

# --- the pgtools image ---------------------------------------------------------
# pg_dump, pg_restore, psql and /bin/sh with the libraries they load, at their own paths, FROM
# scratch; rebuilt only when those files change (pgtoolsInputsHash). The agent runs it for a
# co-op's database backup and restore; libpq reads the connection from PG* variables.
pgtools_ref=$(recorded_ref pgtoolsInputsHash "$PGTOOLS_HASH" coop-pgtools)
if [[ -n $pgtools_ref ]]; then
	record coop-pgtools "$pgtools_ref"
else
	ctx=$WORK/pgtools
	mkdir -p "$ctx/root/usr/bin" "$ctx/root/bin" "$ctx/root/etc" "$ctx/root/tmp"
	chmod 1777 "$ctx/root/tmp"
	while IFS= read -r f; do
		mkdir -p "$ctx/root$(dirname "$f")"
		cp -L "$f" "$ctx/root$f"
	done < <(pgtools_files | LC_ALL=C sort -u)
	bindir=$(pg_bindir)
	for p in pg_dump pg_restore psql; do
		ln -sf "$bindir/$p" "$ctx/root/usr/bin/$p"
	done
	ln -sf /usr/bin/dash "$ctx/root/bin/sh"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ctx/root/etc/passwd"
	printf 'root:x:0:\n' >"$ctx/root/etc/group"
	find "$ctx/root" -exec touch -h -d "$FIXED_MTIME" {} +
	tar --numeric-owner --sort=name -C "$ctx/root" -cf "$ctx/rootfs.tar" .
	rm -rf "$ctx/root"
	printf 'FROM scratch\nADD rootfs.tar /\nENV PATH=/usr/bin:/bin LANG=C.UTF-8 LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib:/usr/lib\nLABEL org.opencontainers.image.title="coop-pgtools"\n' >"$ctx/Dockerfile"
	ref="$REGISTRY/coop-pgtools:current"
	LOCAL_REFS+=("$ref")
	pinned=$(build_push "$ref" "$ctx" "$ctx/Dockerfile")
	remove_local "$ref"
	record coop-pgtools "$pinned"
fi
# --- end of the pgtools image --------------------------------------------------

# --- the Ory Hydra images -------------------------------------------------------
# Each version's binary alone, FROM scratch, with an empty /tmp; Hydra's command line is the
# entrypoint, so a co-op's `migrate: [migrate, sql, -e, --yes]` runs its migrations. The
# default command serves the public API (4444) and the admin API (4445) over plain HTTP (the
# proxy in front terminates TLS), with no telemetry (no network to send it to); outside --dev
# Hydra wants its issuer URL (URLS_SELF_ISSUER) set and https. Rebuilt only when
# hydraInputsHash changes: a rebuild gives new digests for the same binaries.
hydra_refs=()
hydra_recorded=true
for v in "${HYDRA_VERSIONS[@]}"; do
	ref=$(recorded_ref hydraInputsHash "$HYDRA_HASH" "${v%%|*}")
	[[ -n $ref ]] || hydra_recorded=false
	hydra_refs+=("$ref")
done
if $hydra_recorded; then
	i=0
	for v in "${HYDRA_VERSIONS[@]}"; do
		record "${v%%|*}" "${hydra_refs[$i]}"
		i=$((i + 1))
	done
else
	for v in "${HYDRA_VERSIONS[@]}"; do
		IFS='|' read -r key version client <<<"$v"
		bin=$(hydra_binary "$version" "$client") ||
			die "building Ory Hydra $version failed (log above); check that the Go module proxy answers (go env GOPROXY)"
		ctx=$WORK/hydra-$version
		mkdir -p "$ctx/root/tmp"
		chmod 1777 "$ctx/root/tmp"
		install -m 0755 "$bin" "$ctx/root/hydra"
		find "$ctx/root" -exec touch -h -d "$FIXED_MTIME" {} +
		tar --numeric-owner --owner=0 --group=0 --sort=name -C "$ctx/root" -cf "$ctx/rootfs.tar" .
		rm -rf "$ctx/root"
		cat >"$ctx/Dockerfile" <<EOF
FROM scratch
ADD rootfs.tar /
LABEL org.opencontainers.image.title="coop-hydra" org.opencontainers.image.version="$version"
EXPOSE 4444 4445
ENTRYPOINT ["/hydra"]
CMD ["serve", "all", "--sqa-opt-out"]
EOF
		ref="$REGISTRY/coop-hydra:$version"
		LOCAL_REFS+=("$ref")
		pinned=$(build_push "$ref" "$ctx" "$ctx/Dockerfile")
		remove_local "$ref"
		record "$key" "$pinned"
	done
fi
# --- end of the Ory Hydra images -------------------------------------------------

# --- the kamal-proxy image ------------------------------------------------------
proxy_ref=""
if [[ -n $KP_BIN ]]; then
	proxy_ref=$(recorded_ref proxyInputsHash "$PROXY_HASH" kamal-proxy)
fi
if [[ -n $proxy_ref ]]; then
	record kamal-proxy "$proxy_ref"
elif [[ -n $KP_BIN ]]; then
	ctx=$WORK/kamal-proxy
	proxy_context "$ctx" "$ARCH" "$KP_BIN" || die "the proxy image's context could not be made (output above); fix host/cmd/coop-proxy-start and retry"
	ref="$REGISTRY/kamal-proxy:$KP_VERSION"
	LOCAL_REFS+=("$ref")
	pinned=$(build_push "$ref" "$ctx" "$KP_DOCKERFILE" --build-arg "VERSION=$KP_VERSION")
	remove_local "$ref"
	record kamal-proxy "$pinned"
else
	note "KAMAL_PROXY_BIN is not set; no kamal-proxy image built (set KAMAL_PROXY_BIN and KAMAL_PROXY_VERSION to include it)"
fi
# --- end of the kamal-proxy image ----------------------------------------------

tmp_out=$(mktemp "$(dirname "$OUTFILE")/.images.XXXXXX")
if ! jq -n --arg h "$HASH" --arg a "$AGENT_HASH" --arg d "$DJANGO_HASH" --arg p "$PGTOOLS_HASH" --arg y "$HYDRA_HASH" --arg k "$PROXY_HASH" \
	--argjson images "$IMAGES" \
	'{inputsHash: $h, agentInputsHash: $a, djangoInputsHash: $d, pgtoolsInputsHash: $p, hydraInputsHash: $y, proxyInputsHash: $k, images: $images}' >"$tmp_out"; then
	rm -f "$tmp_out"
	die "could not write $OUTFILE"
fi
chmod 0644 "$tmp_out"
mv -f "$tmp_out" "$OUTFILE"
echo "images: wrote $OUTFILE"
