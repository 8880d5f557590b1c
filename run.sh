#!/usr/bin/env bash
# The one entry point:  bash run.sh demo   |   bash run.sh test [pytest args...]
# Installs what is missing (Debian packages, .venv, the package itself), then runs the command.
# Works from a clean clone on Debian 12 / Ubuntu; uses sudo for apt when not root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PACKAGES=(sip-tester sipvicious espeak-ng libespeak-ng1 sox tcpdump kamailio baresip graphviz chromium chromium-driver python3-venv)

usage() { echo "usage: bash run.sh demo | bash run.sh test [pytest args...]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

install_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    echo "run.sh: installing ${missing[*]}" >&2
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    # Tests start their own Kamailio on a free port with their own config: no system daemon.
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
        as_root systemctl disable --now kamailio >/dev/null 2>&1 || true
    fi
}

allow_sipp_raw_sockets() {
    # SIPp replays pcap audio/DTMF through a raw socket, which needs CAP_NET_RAW when not root.
    [[ $(id -u) -eq 0 ]] && return 0
    local sipp; sipp=$(command -v sipp) || return 0
    if command -v getcap >/dev/null && ! getcap "$sipp" | grep -q cap_net_raw; then
        as_root setcap cap_net_raw+ep "$sipp" || echo "run.sh: could not give sipp CAP_NET_RAW" >&2
    fi
}

setup_venv() {
    [[ -x .venv/bin/python ]] || python3 -m venv .venv
    # Reinstall only when what the install builds from changed: the dependencies, or the media
    # plane's modules that setup.py compiles (an edited source runs uncompiled until then).
    local stamp=.venv/.run-sh-installed sum
    sum=$(cat pyproject.toml setup.py ivr/media/*.py ivr/net/*.py ivr/call/rtp_leg.py | sha256sum | cut -d' ' -f1)
    if [[ ! -f $stamp || $(cat "$stamp") != "$sum" ]]; then
        .venv/bin/python -m pip install -q -e '.[test]'
        echo "$sum" > "$stamp"
    fi
}

command=$1; shift
case $command in
    demo|test) ;;
    *) usage ;;
esac

install_packages
allow_sipp_raw_sockets
setup_venv

case $command in
    demo) exec .venv/bin/ivr demo "$@" ;;
    test) exec .venv/bin/python -m pytest "$@" ;;
esac
