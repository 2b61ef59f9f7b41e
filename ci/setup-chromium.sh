#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver (the headless browser and its WebDriver server)
# for the browser test of the leaderboard page (tests/html_page.rs), unless both are already
# there. Needs root (apt-get); the package index is refreshed only when something is installed.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)

if [ ${#missing[@]} -eq 0 ]; then
  echo "chromium and chromedriver already installed: nothing to do"
  echo "  $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium (version unknown)')"
  echo "  $(/usr/bin/chromedriver --version 2>/dev/null || echo 'chromedriver (version unknown)')"
  exit 0
fi

# chromium-driver depends on chromium: install both so that their versions match.
echo "installing chromium and chromium-driver (missing: ${missing[*]})"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium chromium-driver
echo "installed:"
echo "  $(/usr/bin/chromium --version)"
echo "  $(/usr/bin/chromedriver --version)"
