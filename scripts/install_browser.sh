#!/bin/sh
# Install Debian's chromium and chromium-driver for the browser test of the web demo (tests/serve/test_browser.py).
#
# Runs apt-get only when both are needed, this is root, and apt-get exists; never fails the caller: every way out
# is exit 0 with a one-line message (the browser test then skips with a message of its own).
#
#   sh scripts/install_browser.sh
set -u

say() { echo "install_browser: $*"; }

have() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/bin/$1" ]
}

if have chromium && have chromedriver; then
    say "chromium and chromedriver are already installed"
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    say "not root: install them yourself (sudo apt-get install chromium chromium-driver); the browser test skips"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    say "no apt-get on this system: install chromium and chromedriver by hand; the browser test skips"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq >/dev/null 2>&1; then
    say "apt-get update failed (no network?); the browser test skips"
    exit 0
fi
if ! apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2>&1; then
    say "apt-get install chromium chromium-driver failed; the browser test skips"
    exit 0
fi
if have chromium && have chromedriver; then
    say "installed $(chromium --version 2>/dev/null | head -n 1)"
else
    say "apt-get finished but chromium or chromedriver is still missing; the browser test skips"
fi
exit 0
