#!/bin/sh
# Reloads nginx when the set of addresses that the replicas' name resolves to changes: after
# `docker-compose up --scale valuegraph=N`, a replica's restart or its death. nginx 1.22 (Debian
# bookworm's) resolves an upstream's name only when it loads its configuration, and re-resolving at
# request time (a resolver and a variable in proxy_pass) would lose the upstream's keep-alive.
# A reload is graceful: requests in flight finish on the old workers.
#   follow-replicas.sh NGINX_CONF [HOST] [SECONDS]
set -u
conf=$1
host=${2:-${VALUEGRAPH_UPSTREAM:-valuegraph:8000}}
host=${host%:*}
interval=${3:-${NGINX_FOLLOW_SECONDS:-2}}

addresses() {
    getent ahostsv4 "$host" | cut -d ' ' -f 1 | sort -u | tr '\n' ' '
}

known=$(addresses)
while sleep "$interval"; do
    now=$(addresses)
    if [ -n "$now" ] && [ "$now" != "$known" ]; then
        echo "follow-replicas: $host is now [ $now], was [ $known]: reloading nginx" >&2
        nginx -c "$conf" -e stderr -s reload && known=$now
    fi
done
