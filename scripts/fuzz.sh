#!/bin/sh
# Runs "make test"'s short fuzzing pass: each target of FUZZ_TARGETS
# (Name:./pkg:count, as in the Makefile) in turn, beyond its seeds, and
# stops at the first that fails.
#
#   scripts/fuzz.sh FUZZTIME FUZZMINIMIZE TARGET...
#
# FUZZTIME, when not empty, replaces every target's own count (a count such
# as 1000000x, or a duration such as 5m). FUZZMINIMIZE is -fuzzminimizetime.
set -eu
cd "$(dirname "$0")/.."
fuzztime=$1
minimize=$2
shift 2
for t in "$@"; do
	name=${t%%:*}
	rest=${t#*:}
	pkg=${rest%%:*}
	n=${rest#*:}
	[ -z "$fuzztime" ] || n=$fuzztime
	echo "go test -run '^\$' -fuzz '^$name\$' -fuzztime $n -fuzzminimizetime $minimize $pkg"
	go test -run '^$' -fuzz "^$name\$" -fuzztime "$n" -fuzzminimizetime "$minimize" "$pkg"
done
