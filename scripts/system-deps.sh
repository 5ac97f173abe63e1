#!/usr/bin/env bash
# Install the Debian packages GridMap needs when they are missing (PostgreSQL + PostGIS, GDAL's
# command-line tools, wrk for the intake benchmark, Chromium for the browser tests). As root it installs them; otherwise it
# prints the one command to run. Set GRIDMAP_SKIP_SYSTEM_DEPS=1 to skip (e.g. with DATABASE_URL).
set -euo pipefail

[ "${GRIDMAP_SKIP_SYSTEM_DEPS:-0}" = "1" ] && exit 0

need=()
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  need+=(postgresql)
  pg_version=15
else
  pg_version=$(basename "$(dirname "$pg_bin")")
fi
if ! ls /usr/share/postgresql/"$pg_version"/extension/postgis.control >/dev/null 2>&1; then
  need+=("postgresql-$pg_version-postgis-3")
fi
command -v ogrinfo >/dev/null 2>&1 || need+=(gdal-bin)
command -v npm >/dev/null 2>&1 || need+=(npm)
# HTTP load for bench/intake.py (the Python load generator cannot reach a thousand requests/s)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ "${GRIDMAP_WITH_BROWSER:-0}" = "1" ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # CJK glyphs, so that the maps' Chinese labels render in headless screenshots
  ls /usr/share/fonts/truetype/wqy/wqy-microhei.ttc >/dev/null 2>&1 || need+=(fonts-wqy-microhei)
fi

[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "Installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "GridMap needs these Debian packages: ${need[*]}" >&2
  echo "Install them with: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
