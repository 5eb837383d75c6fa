#!/bin/sh
# Prints nginx.conf.template (beside this script, or the file given) with its ${NAME} placeholders
# filled in from the environment; no envsubst needed, so any image with a POSIX sh and sed will do.
#   VALUEGRAPH_MAX_BODY_BYTES    client_max_body_size, as the service's own limit (default 268435456)
#   VALUEGRAPH_DEADLINE_SECONDS  the service's deadline (default 30): proxy_read_timeout is it plus
#                                NGINX_READ_MARGIN_SECONDS (default 30); no retry once it has passed
#   VALUEGRAPH_UPSTREAM          the replicas' name and port (default valuegraph:8000)
set -eu
template=${1:-$(dirname "$0")/nginx.conf.template}

whole_number() {
    case $2 in
        '' | *[!0-9]*) echo "render.sh: $1 must be a whole number, not '$2'" >&2; exit 2 ;;
    esac
}

VALUEGRAPH_MAX_BODY_BYTES=${VALUEGRAPH_MAX_BODY_BYTES:-268435456}
VALUEGRAPH_DEADLINE_SECONDS=${VALUEGRAPH_DEADLINE_SECONDS:-30}
NGINX_READ_MARGIN_SECONDS=${NGINX_READ_MARGIN_SECONDS:-30}
VALUEGRAPH_UPSTREAM=${VALUEGRAPH_UPSTREAM:-valuegraph:8000}
whole_number VALUEGRAPH_MAX_BODY_BYTES "$VALUEGRAPH_MAX_BODY_BYTES"
whole_number VALUEGRAPH_DEADLINE_SECONDS "$VALUEGRAPH_DEADLINE_SECONDS"
whole_number NGINX_READ_MARGIN_SECONDS "$NGINX_READ_MARGIN_SECONDS"
case $VALUEGRAPH_UPSTREAM in
    *[!A-Za-z0-9.:_-]* | '') echo "render.sh: VALUEGRAPH_UPSTREAM must be host:port, not '$VALUEGRAPH_UPSTREAM'" >&2; exit 2 ;;
esac
NGINX_READ_TIMEOUT_SECONDS=$((VALUEGRAPH_DEADLINE_SECONDS + NGINX_READ_MARGIN_SECONDS))
if grep -q '^nogroup:' /etc/group 2>/dev/null; then NGINX_GROUP=nogroup; else NGINX_GROUP=nobody; fi

sed -e "s/\${VALUEGRAPH_MAX_BODY_BYTES}/$VALUEGRAPH_MAX_BODY_BYTES/g" \
    -e "s/\${VALUEGRAPH_DEADLINE_SECONDS}/$VALUEGRAPH_DEADLINE_SECONDS/g" \
    -e "s/\${NGINX_READ_TIMEOUT_SECONDS}/$NGINX_READ_TIMEOUT_SECONDS/g" \
    -e "s/\${VALUEGRAPH_UPSTREAM}/$VALUEGRAPH_UPSTREAM/g" \
    -e "s/\${NGINX_GROUP}/$NGINX_GROUP/g" \
    "$template"
