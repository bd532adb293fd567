#!/bin/sh
# ensure-deps.sh makes sure the tools "make test" needs are installed: Go;
# the redis-server that tests run against (they never mock Redis); chromium,
# which the admin center's browser tests drive headless; promtool (from
# Debian's prometheus package), which checks and unit-tests the alert rules;
# curl, which README's examples use and a test runs as written; and setsid
# (util-linux), which gives the background fuzzing a process group to stop.
#
# Whatever is missing is installed with apt-get when running as root;
# otherwise this prints the one command to run and fails, so no test passes
# by skipping what it could not run. With LOCKBOX_TEST_REDIS_URL set, tests
# use that server and no redis-server is needed.
set -eu

if ! command -v go >/dev/null 2>&1; then
	echo "lockbox: go is missing; install Go (see go.mod for the version) from https://go.dev/dl/" >&2
	exit 1
fi

# command:package pairs.
need="chromium:chromium promtool:prometheus curl:curl setsid:util-linux"
if [ -z "${LOCKBOX_TEST_REDIS_URL:-}" ]; then
	need="redis-server:redis-server $need"
fi

missing=""
for pair in $need; do
	if ! command -v "${pair%%:*}" >/dev/null 2>&1; then
		missing="$missing ${pair#*:}"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "lockbox: missing packages; run: sudo apt-get install -y$missing" >&2
	exit 1
fi

echo "lockbox: installing$missing" >&2
apt-get update -qq
# The prometheus package would start a server where an init system runs;
# policy-rc.d keeps apt from starting any service during this install.
policy=/usr/sbin/policy-rc.d
created=""
# Removed however the script ends: left behind after a failed install, it
# would keep every package the machine installs later from starting.
trap '[ -n "$created" ] && rm -f "$policy"' EXIT
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
fi
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
[ -n "$created" ] && rm -f "$policy"
created=""

for pair in $need; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || {
		echo "lockbox: ${pair%%:*} still missing after apt-get install ${pair#*:}" >&2
		exit 1
	}
done
