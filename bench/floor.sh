#!/bin/sh
# The floor: Docker's documented install steps as a plain script, against the same repository.
# Usage (as root): floor.sh REPOSITORY_URL CODENAME DAEMON_JSON
set -eu
repo=$1 codename=$2 daemon_json=$3
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq ca-certificates curl
install -m 0755 -d /etc/apt/keyrings /etc/docker
curl -fsSL "$repo/gpg" -o /etc/apt/keyrings/docker.asc
chmod a+r /etc/apt/keyrings/docker.asc
printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: stable\nSigned-By: /etc/apt/keyrings/docker.asc\n' \
  "$repo" "$codename" > /etc/apt/sources.list.d/docker.sources
# The registry mirror, as an air-gapped site configures it (the role writes the same keys).
printf '%s\n' "$daemon_json" > /etc/docker/daemon.json
apt-get update -qq
apt-get install -y -qq docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
systemctl enable --now docker
