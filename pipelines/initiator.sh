#!/bin/sh
# The initiator's side by hand, what build-coordinator(1) does from
# portflow.conf(5): update the tree, make the list, fetch every distfile once,
# hand the batch to each build host's spool, wait for all with a deadline,
# send one mail.
#
#	initiator.sh OPENBSD_7_8 amd64-host:/var/spool/portflow i386-host:/var/spool/portflow
set -eu
[ $# -ge 2 ] || { echo "usage: ${0##*/} branch host:spool..." >&2; exit 2; }
branch=$1; shift
PORTSDIR=${PORTSDIR:-/usr/ports}
export PORTSDIR
batch=$(date -u +%Y%m%d-%H%M%S)
work=/var/db/portflow/$batch
mkdir -p "$work"
cd "$PORTSDIR"
cvs -q up -Pd -A -r "$branch" >"$work/update.txt" 2>&1
# exit 3 from either: nothing changed; 1: a bad line, the rest is listed
ports-delta --cvs "${branch}_BASE:$branch" --exclude 'sysutils/firmware/*' |
	pkgpath-expand >"$work/list.jsonl" || true
grep -q '"kind":"port"' "$work/list.jsonl" || exit 0
build-list --target fetch --batch "fetch-$batch" <"$work/list.jsonl" >"$work/fetch.jsonl" || true
for t; do
	ssh -o BatchMode=yes "${t%%:*}" build-trigger submit --spool "${t#*:}" \
	    --batch "$batch" <"$work/list.jsonl" >/dev/null
done
for t; do
	# a host that does not answer in 12 hours is left out of the mail
	ssh -o BatchMode=yes "${t%%:*}" build-trigger wait --spool "${t#*:}" \
	    --timeout 12h "$batch" >"$work/target-${t%%:*}.jsonl" || true
done
cat "$work/list.jsonl" "$work/fetch.jsonl" "$work"/target-*.jsonl |
	summary-mail --changes "$work/update.txt" --to ports-stable@example.org
