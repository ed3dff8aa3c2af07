#!/bin/sh
# System libraries `make setup` needs: libOSMesa for offscreen MuJoCo rendering on machines without a GPU.
# As root with apt, it installs them; otherwise it says in one line what to install. State-only runs work without them.
set -eu
if ldconfig -p 2>/dev/null | grep -q 'libOSMesa\.so'; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing libosmesa6 (offscreen MuJoCo rendering) with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6 >/dev/null
else
  echo "warning: libOSMesa is missing and cannot be installed from here (needs root with apt): run" \
       "'sudo apt-get install -y libosmesa6' (Debian/Ubuntu) for rendering; state-only runs work without it" >&2
fi
