#!/bin/sh
# The list step of the OpenBSD -stable package build scripts, the one portflow's
# `ports-delta | pkgpath-expand` replaces.  tests/bench/list_stage.rs runs its two
# halves apart to time them:
#
#   shell-list-step.sh dirs RDIFF     cvs rdiff -s output -> directories, one a line
#   shell-list-step.sh expand DB      directories on stdin -> FullPkgPaths on stdout
#   shell-list-step.sh RDIFF DB       both
#
# dirs: keep the lines for distinfo, Makefile and Makefile.inc, strip them to the
# directory, sort -u, and drop every directory that is the parent of another listed
# one.  expand: one sqlite3 process per directory with LIKE 'dir%' (where `_` is a
# wildcard and case is ignored).  The defects are the script's, kept on purpose.

set -eu

dirs() {
	grep -E '/(distinfo|Makefile|Makefile\.inc) ' "$1" |
	sed -e 's,^File ports/,,' -e 's,/[^/]* .*$,,' |
	LC_ALL=C sort -u |
	awk '{ dir[NR] = $0; p = $0; while (sub("/[^/]*$", "", p)) parent[p] = 1 }
	     END { for (i = 1; i <= NR; i++) if (!(dir[i] in parent)) print dir[i] }'
}

expand() {
	while read -r dir; do
		sqlite3 "$1" \
		    "SELECT DISTINCT FullPkgPath FROM Ports WHERE FullPkgPath LIKE '$dir%'"
	done
}

usage() {
	echo "usage: $0 dirs RDIFF | expand DB | RDIFF DB" >&2
	exit 2
}

[ $# -eq 2 ] || usage
case $1 in
dirs)	dirs "$2" ;;
expand)	expand "$2" ;;
*)	dirs "$1" | expand "$2" ;;
esac
