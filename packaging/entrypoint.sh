#!/bin/sh
# relaybox's container entrypoint: `relaybox-entrypoint [relaybox arguments]` (default: serve).
#
# Started as root (the image's default), it applies the Unraid/linuxserver convention at run time:
#   PUID, PGID  the user and group relaybox runs as (default 99:100, Unraid's nobody:users);
#               the data folder and every file in it are given to them first, so a host folder
#               that Docker just created root-owned, or one written under other ids, works.
#   UMASK       for the files relaybox creates (default 077: data files 0600, folders 0700;
#               027 lets the group read them).
# Started with `--user UID:GID` there is no root to give anything away: relaybox runs as that
# user with UMASK applied, and the data folder must already be writable by it.
# The image holds no more than this script needs: sh, setpriv and chown.
set -eu

say() { printf 'relaybox-entrypoint: %s\n' "$*" >&2; }
die() { say "$*"; exit 64; }

umask_value=${UMASK:-077}
case $umask_value in
    [0-7][0-7][0-7] | [0-7][0-7][0-7][0-7]) umask "$umask_value" ;;
    *) die "UMASK=$umask_value is not an octal umask such as 077, 027 or 022" ;;
esac

[ "$#" -gt 0 ] || set -- serve
# `docker run IMAGE relaybox keygen` works as well as `docker run IMAGE keygen`.
[ "$1" != relaybox ] || shift

# The image has no `id`: the effective uid from the kernel.
uid=
while read -r key _ effective _; do
    if [ "$key" = Uid: ]; then uid=$effective; break; fi
done </proc/self/status

if [ "$uid" != 0 ]; then
    if [ -n "${PUID:-}" ] && [ "$PUID" != "$uid" ]; then
        say "running as uid $uid (--user), not PUID=$PUID: without root the user cannot change"
    fi
    exec relaybox "$@"
fi

puid=${PUID:-99}
pgid=${PGID:-100}
case $puid in '' | *[!0-9]*) die "PUID=$puid is not a numeric user id" ;; esac
case $pgid in '' | *[!0-9]*) die "PGID=$pgid is not a numeric group id" ;; esac

data=${RELAYBOX_DATA_DIR:-/data}
case $data in
    /*)
        # -R does not follow symlinks, and -h changes a symlink itself, never what it points
        # at. A share that refuses chown is relaybox's to report, naming the file.
        if [ -d "$data" ]; then
            chown -R -h "$puid:$pgid" "$data" ||
                say "could not give everything in $data to $puid:$pgid; relaybox may be refused access"
        fi
        ;;
    *) say "RELAYBOX_DATA_DIR=$data is relative: its ownership is left as it is" ;;
esac

exec setpriv --reuid="$puid" --regid="$pgid" --clear-groups --inh-caps=-all -- relaybox "$@"
