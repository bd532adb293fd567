#!/bin/sh
# ensure-deps.sh makes sure the tools "make test" needs are installed: Go, and
# the redis-server that tests run against (they never mock Redis).
#
# Missing redis-server: as root it is installed with apt-get; otherwise this
# prints the command to run and fails, so tests never pass without Redis.
# With LOCKBOX_TEST_REDIS_URL set, tests use that server and none is needed.
set -eu

if ! command -v go >/dev/null 2>&1; then
	echo "lockbox: go is missing; install Go (see go.mod for the version) from https://go.dev/dl/" >&2
	exit 1
fi

if [ -n "${LOCKBOX_TEST_REDIS_URL:-}" ] || command -v redis-server >/dev/null 2>&1; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "lockbox: redis-server is missing; run: sudo apt-get install -y redis-server" >&2
	exit 1
fi

echo "lockbox: installing redis-server" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
command -v redis-server >/dev/null 2>&1 || {
	echo "lockbox: redis-server still missing after apt-get install" >&2
	exit 1
}
