#!/bin/sh
# peer-harness-serve.sh runs Lockbox in the peer harness's slot "ours"
# (the harness's ours/lockbox.sh serve), after onboarding the tenant the
# harness's calls name. The slot files a request for tenant-0044 through
# the real lifecycle, and Lockbox grants requests only for onboarded
# tenants (404 tenant_not_found otherwise), so the slot alone no longer
# starts. This onboards tenant-0044 through the real API, as a provider
# Lockbox administrator, then hands over to the slot unchanged.
#
# From the harness's directory, after its "ours/lockbox.sh prepare" (run it
# under umask 077: lockbox dev refuses a dev directory others can read):
#
#   . /tmp/lbbench/env
#   LOCKBOX_PROXY_CMD="/path/to/lockbox/scripts/peer-harness-serve.sh $PWD" \
#     SYSTEMS="direct go-bare nginx-opa nginx-njs-opa ours" ./run.sh
#
# The harness sets REDIS_ADDR, LISTEN_ADDR and UPSTREAM_URL; LBB is where
# prepare put the build, the dev keys and the tokens (/tmp/lbbench).
set -eu
harness=${1:?usage: peer-harness-serve.sh HARNESS_DIR}
LBB=${LBB:-/tmp/lbbench}
: "${REDIS_ADDR:?set by the harness}"

env_of() { sed -n "s/^export $1=//p" "$LBB/dev/env"; }
api=127.0.0.1:18095
LOCKBOX_DEV_DIR="$LBB/dev" "$LBB/bin/lockbox" dev token --ttl 1h \
	--sub bench-admin@provider.example --roles lockbox-admin >"$LBB/lockbox-admin.jwt"

LOCKBOX_SERVE=api LOCKBOX_REDIS_URL="redis://$REDIS_ADDR" LOCKBOX_POLICY_DIR="$LBB/policy" \
	LOCKBOX_JWT_JWKS_FILE="$LBB/dev/jwks.json" LOCKBOX_JWT_ISSUER="$(env_of LOCKBOX_JWT_ISSUER)" \
	LOCKBOX_JWT_AUDIENCE="$(env_of LOCKBOX_JWT_AUDIENCE)" LOCKBOX_SIEM_SINK=off LOCKBOX_LOG_LEVEL=warn \
	LOCKBOX_API_ADDR=$api LOCKBOX_METRICS_ADDR=127.0.0.1:18096 \
	"$LBB/bin/lockbox" serve >"$LBB/onboard.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
i=0
until curl -sf -o /dev/null http://127.0.0.1:18096/readyz; do
	i=$((i + 1))
	if [ "$i" -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "peer-harness-serve: the API did not start; see $LBB/onboard.log" >&2
		exit 1
	fi
	sleep 0.1
done
# An onboarded tenant (a run before this one, on the same Redis) is fine.
out=$(LOCKBOX_ADDR=http://$api LOCKBOX_TOKEN=$(cat "$LBB/lockbox-admin.jwt") "$LBB/bin/lockboxctl" tenant onboard \
	tenant-0044 --name "Bench tenant" --domain tenant-0044.example --global-admin ga@tenant-0044.example 2>&1) ||
	case $out in
	*tenant_exists*) ;;
	*) echo "peer-harness-serve: onboarding tenant-0044: $out" >&2; exit 1 ;;
	esac
kill "$pid"
wait "$pid" 2>/dev/null || true
trap - EXIT
exec "$harness/ours/lockbox.sh" serve
