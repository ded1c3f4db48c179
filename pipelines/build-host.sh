#!/bin/sh
# The per-architecture chain by hand, as build-trigger runs it from a spool:
# wipe the host, build the list, collect what was built, copy it to the
# signing host.  The records of the whole batch end up in done.jsonl.
#
#	build-host.sh list.jsonl signhost:/var/stable/amd64
#
# list.jsonl is the output of pkgpath-expand (or a plain list of pkgpaths).
# Settings come from the environment: PORTSDIR, MACHINE_ARCH,
# PACKAGE_REPOSITORY, KEEP (packages clean-env keeps), REINSTALL (packages
# reinstalled from ${PACKAGE_REPOSITORY}/${MACHINE_ARCH}/all after the delete,
# as the -stable scripts do when all/ holds the release packages; none by
# default), RSH (ssh options).
set -eu
[ $# -eq 2 ] || { echo "usage: ${0##*/} list dest" >&2; exit 2; }
list=$1 dest=$2
keep=
for p in ${KEEP:-intel-firmware vmm-firmware rsync}; do
	keep="$keep --keep $p"
done
reinstall=
for p in ${REINSTALL:-}; do
	reinstall="$reinstall --reinstall $p"
done
# Exit statuses: clean-env and collect-built 0 or 1, build-list 1 when a port
# failed (the rest is built; the summary tells): go on, look at the records.
clean-env $keep $reinstall <"$list" |
	build-list --also databases/sqlports --also devel/quirks \
	    --also databases/updatedb \
	    --make-var PKG_PATH=/var/empty --make-var FETCH_PACKAGES= |
	collect-built |
	rsync-list ${RSH:+--rsh "$RSH"} "$dest" >done.jsonl || true
summary-mail --print <done.jsonl
