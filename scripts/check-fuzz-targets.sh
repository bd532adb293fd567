#!/bin/sh
# Checks the fuzz targets "make test" runs (arguments: Name:./pkg:count, as
# FUZZ_TARGETS in the Makefile) against the fuzz tests in the tree: each
# named target must be in its package, or "go test -fuzz" there matches
# nothing and passes having fuzzed nothing; and every fuzz test must be
# named, or it is never fuzzed.
set -eu
cd "$(dirname "$0")/.."
status=0
listed=""
for t in "$@"; do
	name=${t%%:*}
	rest=${t#*:}
	pkg=${rest%%:*}
	listed="$listed $name:$pkg"
	if ! grep -qs "^func $name(f \*testing\.F)" "$pkg"/*_test.go; then
		echo "make test: $name is not a fuzz test of $pkg (FUZZ_TARGETS in the Makefile)" >&2
		status=1
	fi
done
for f in $(grep -rl --include='*_test.go' --exclude-dir=tools --exclude-dir=.git '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' .); do
	pkg=./$(dirname "${f#./}")
	for name in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(f \*testing\.F).*/\1/p' "$f"); do
		case " $listed " in
		*" $name:$pkg "*) ;;
		*)
			echo "make test: $name in $pkg is never fuzzed: add it to FUZZ_TARGETS in the Makefile" >&2
			status=1
			;;
		esac
	done
done
exit $status
