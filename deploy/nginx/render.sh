#!/bin/sh
# Prints nginx.conf.template (beside this script, or the file given) with its ${NAME} placeholders
# filled in from the environment; no envsubst needed, so any image with a POSIX sh and sed will do.
#   VALUEGRAPH_MAX_BODY_BYTES    client_max_body_size, as the service's own limit (default 268435456)
#   VALUEGRAPH_DEADLINE_SECONDS  the service's deadline (default 60, as the service's; decimals too):
#                                proxy_read_timeout is it plus NGINX_READ_MARGIN_SECONDS (default 30);
#                                no retry once it has passed
#   VALUEGRAPH_UPSTREAM          the replicas' name and port (default valuegraph:8000)
set -eu
template=${1:-$(dirname "$0")/nginx.conf.template}

whole_number() {
    case $2 in
        '' | *[!0-9]*) echo "render.sh: $1 must be a whole number, not '$2'" >&2; exit 2 ;;
    esac
}

# Seconds, whole or decimal, as whole milliseconds: nginx's timeouts take "ms", sh has no fractions.
milliseconds() {
    case $2 in
        '' | . | *[!0-9.]* | *.*.*) echo "render.sh: $1 must be a number of seconds, not '$2'" >&2; exit 2 ;;
    esac
    whole=${2%%.*}
    fraction=
    case $2 in *.*) fraction=${2#*.} ;; esac
    fraction=$(printf '%s000' "$fraction" | cut -c 1-3 | sed 's/^0*//')
    whole=$(printf '%s' "$whole" | sed 's/^0*//')
    echo $(( ${whole:-0} * 1000 + ${fraction:-0} ))
}

VALUEGRAPH_MAX_BODY_BYTES=${VALUEGRAPH_MAX_BODY_BYTES:-268435456}
VALUEGRAPH_DEADLINE_SECONDS=${VALUEGRAPH_DEADLINE_SECONDS:-60}
NGINX_READ_MARGIN_SECONDS=${NGINX_READ_MARGIN_SECONDS:-30}
VALUEGRAPH_UPSTREAM=${VALUEGRAPH_UPSTREAM:-valuegraph:8000}
whole_number VALUEGRAPH_MAX_BODY_BYTES "$VALUEGRAPH_MAX_BODY_BYTES"
DEADLINE_MS=$(milliseconds VALUEGRAPH_DEADLINE_SECONDS "$VALUEGRAPH_DEADLINE_SECONDS")
[ "$DEADLINE_MS" -gt 0 ] || { echo "render.sh: VALUEGRAPH_DEADLINE_SECONDS must be positive" >&2; exit 2; }
whole_number NGINX_READ_MARGIN_SECONDS "$NGINX_READ_MARGIN_SECONDS"
case $VALUEGRAPH_UPSTREAM in
    *[!A-Za-z0-9.:_-]* | '') echo "render.sh: VALUEGRAPH_UPSTREAM must be host:port, not '$VALUEGRAPH_UPSTREAM'" >&2; exit 2 ;;
esac
READ_TIMEOUT_MS=$((DEADLINE_MS + NGINX_READ_MARGIN_SECONDS * 1000))
if grep -q '^nogroup:' /etc/group 2>/dev/null; then NGINX_GROUP=nogroup; else NGINX_GROUP=nobody; fi

sed -e "s/\${VALUEGRAPH_MAX_BODY_BYTES}/$VALUEGRAPH_MAX_BODY_BYTES/g" \
    -e "s/\${DEADLINE_MS}/$DEADLINE_MS/g" \
    -e "s/\${READ_TIMEOUT_MS}/$READ_TIMEOUT_MS/g" \
    -e "s/\${VALUEGRAPH_UPSTREAM}/$VALUEGRAPH_UPSTREAM/g" \
    -e "s/\${NGINX_GROUP}/$NGINX_GROUP/g" \
    "$template"
