#!/usr/bin/env bash
# Browser sign-in tests: headless Chromium (Debian's package) driven by playwright-core, a relying
# party built on openid-client, and a real `sesamed serve --dev` (see signin.test.mjs).
# Installs what it needs on a fresh machine: the chromium package, and tests/browser/node_modules
# from package-lock.json (npm ci, again whenever the lock changes).
#
#   SESAMED_BIN    the sesamed binary (default: <repo>/target/debug/sesamed)
#   SESAME_BIN     the sesame CLI, for cli-login.test.mjs (default: <repo>/target/debug/sesame)
#   CHROMIUM_BIN   the browser (default: /usr/bin/chromium, installed when missing)
#   SAML_IDP_PYTHON  a Python with tests/interop/python/requirements.txt, for sso-saml.test.mjs
#                  (default: <repo>/target/py-venv, made here as scripts/test makes it)
#
# Extra arguments go to `node --test` (e.g. --test-name-pattern=first-party).
# A failing step leaves a screenshot and the page's HTML in tests/browser/artifacts/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ -z "${CHROMIUM_BIN:-}" ] && [ ! -x /usr/bin/chromium ]; then
  echo "tests/browser: installing Debian's chromium" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if ! command -v node >/dev/null 2>&1; then
  echo "tests/browser: node (20 or newer) and npm are needed" >&2
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "tests/browser: node $(node --version) is too old; openid-client 6 needs 20 or newer" >&2
  exit 1
fi

# npm ci when node_modules is missing or was installed from another lock.
lock_sum="$(sha256sum "$here/package-lock.json" | cut -c1-16)"
stamp="$here/node_modules/.installed-$lock_sum"
if [ ! -f "$stamp" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi

# sso-saml.test.mjs: pysaml2 plays the SAML IdP (lib/saml_idp.py) and signs with xmlsec1; the
# same virtual environment as the Python interop tests (scripts/test), made when missing.
if ! command -v xmlsec1 >/dev/null 2>&1; then
  echo "tests/browser: installing xmlsec1" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xmlsec1 >/dev/null
fi
if [ -z "${SAML_IDP_PYTHON:-}" ]; then
  venv="$repo/target/py-venv"
  req="$repo/tests/interop/python/requirements.txt"
  py_stamp="$venv/.installed-$(sha256sum "$req" | cut -c1-16)"
  if [ ! -f "$py_stamp" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
    touch "$py_stamp"
  fi
  export SAML_IDP_PYTHON="$venv/bin/python"
fi

export SESAMED_BIN="${SESAMED_BIN:-$repo/target/debug/sesamed}"
cd "$here"
exec node --test --test-concurrency=1 "$@" signin.test.mjs cli-login.test.mjs device-login.test.mjs \
  sso-oidc-provider.test.mjs workload-jose.test.mjs sso-saml.test.mjs
