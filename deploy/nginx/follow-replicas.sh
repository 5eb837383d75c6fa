#!/bin/sh
# Reloads nginx when the replicas' name resolves to an address that nginx does not know yet: after
# `docker-compose up --scale valuegraph=N`, or a replica that came back on a new address. nginx 1.22
# (Debian bookworm's) resolves an upstream's name only when it loads its configuration, and
# re-resolving at request time (a resolver and a variable in proxy_pass) would lose the upstream's
# keep-alive connections.
# A replica that merely disappears (killed, scaled in) causes no reload: nginx already steps around
# it (max_fails, proxy_next_upstream), and a reload closes the clients' idle keep-alive connections,
# which races with a client sending a request on one. Its address goes at the next reload.
#   follow-replicas.sh NGINX_CONF [HOST[:PORT]] [SECONDS]
set -u
conf=$1
host=${2:-${VALUEGRAPH_UPSTREAM:-valuegraph:8000}}
host=${host%:*}
interval=${3:-${NGINX_FOLLOW_SECONDS:-2}}

addresses() {
    getent ahostsv4 "$host" | cut -d ' ' -f 1 | sort -u
}

known=$(addresses)
while sleep "$interval"; do
    now=$(addresses)
    added=$(printf '%s\n' "$now" | grep -vxF -e "$known" || true)
    if [ -n "$now" ] && [ -n "$added" ]; then
        echo "follow-replicas: new replica address $(echo $added) for $host: reloading nginx" >&2
        nginx -c "$conf" -e stderr -s reload && known=$now
    fi
done
