#!/bin/sh
# Installs the peers and load generators `make bench` compares against, with apt, only when
# missing. A peer that cannot be installed is reported in bench/results.md, not fatal here.
set -u
missing=""
for pair in nginx:nginx haproxy:haproxy caddy:caddy wrk:wrk h2load:nghttp2-client; do
	cmd=${pair%%:*}
	pkg=${pair#*:}
	command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
	echo "bench: cannot install$missing: no apt-get; install them by hand" >&2
	exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "bench: installing$missing"
$SUDO apt-get update -qq || true
# The peers are run by the harness, not as services: keep their packages from starting them.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null || echo "bench: could not install all of$missing" >&2
for svc in nginx haproxy caddy; do
	$SUDO service "$svc" stop >/dev/null 2>&1 || true
done
command -v wrk >/dev/null 2>&1 || { echo "bench: wrk is required" >&2; exit 1; }
exit 0
