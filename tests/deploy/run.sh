#!/usr/bin/env bash
# The packaging checks: the Dockerfile (hadolint; built and started where a container builder
# works), the Helm chart (Helm's lint and render, manifests against Kubernetes' schemas), the
# systemd unit (systemd-analyze verify, and sesamed started with the unit's command line and
# environment), and the Prometheus rules and Grafana dashboard.
#
#   SESAMED_BIN   the sesamed to start (default target/debug/sesamed)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="target/deploy-venv"
req="tests/deploy/requirements.txt"
stamp="$venv/.installed-$(sha256sum "$req" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  touch "$stamp"
fi
export SESAMED_BIN="${SESAMED_BIN:-$PWD/target/debug/sesamed}"
export PATH="$PWD/$venv/bin:$PATH"
exec "$venv/bin/pytest" -q -rs tests/deploy "$@"
