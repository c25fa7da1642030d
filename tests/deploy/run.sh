#!/usr/bin/env bash
# The packaging checks: the Dockerfile (hadolint; built and started where a container builder
# works), the Helm chart (Helm's lint and render, manifests against Kubernetes' schemas), the
# systemd unit (systemd-analyze verify, and sesamed started with the unit's command line and
# environment), and the Prometheus rules and Grafana dashboard.
#
#   SESAMED_BIN          the sesamed to start (default target/debug/sesamed)
#   SESAME_RELEASE_DIR   release sesamed and sesame for the image (default
#                        target/readme-release/release, scripts/readme-check's build, else
#                        target/release; built on a glibc no newer than bookworm's 2.36)
set -euo pipefail
cd "$(dirname "$0")/../.."

# The image test's prerequisites: podman (from apt) and the Dockerfile's base image (pulled, or
# made with debootstrap where Docker Hub cannot be reached). If that fails, the failing command
# and its error are the test's skip reason.
mkdir -p target
if ! tests/deploy/image-setup.sh 2>target/image-setup.log; then
  SESAME_IMAGE_SETUP_ERROR="$(grep -v '^ *$' target/image-setup.log | tail -n 3 | tr '\n' ' ')"
  export SESAME_IMAGE_SETUP_ERROR
fi
cat target/image-setup.log >&2
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
