#!/usr/bin/env bash
# Idempotent setup for a fresh machine: both virtual environments, the business DB with the
# catalog of the business CLOSER_BUSINESS names (unset: the default one), and its trained Rasa model. A second run reuses everything that is unchanged;
# `rasa train` retrains only when its fingerprint of the training data changed.
#   scripts/setup.sh          what `make run` needs
#   scripts/setup.sh --prod   also Debian's postgresql, redis-server and haproxy (make run-prod)
#   scripts/setup.sh --dev    also test tools (pytest, selenium, Debian's chromium + chromedriver) and the --prod ones
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0; [ "${1:-}" = "--dev" ] && DEV=1
PROD=$DEV; [ "${1:-}" = "--prod" ] && PROD=1

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

find_python() {  # find_python 3.10 → path of an interpreter of that version, or nothing
  local want=$1 candidate root
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for candidate in "python$want" "$root"/versions/"$want".*/bin/python /usr/bin/python"$want" /usr/local/bin/python"$want"; do
    if command -v "$candidate" >/dev/null 2>&1 && [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ]; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

make_venv() {  # make_venv DIR VERSION REQUIREMENTS...: create or update when requirements changed
  local dir=$1 version=$2; shift 2
  local python stamp want
  want=$(cat "$@" | sha256sum | cut -d' ' -f1)
  stamp="$dir/.requirements.sha256"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    say "$dir is up to date"; return 0
  fi
  python=$(find_python "$version") || die "Python $version is required for $dir but was not found on PATH or under pyenv.
Install it, e.g. 'pyenv install $version' or 'apt-get install python$version python$version-venv', then run this again."
  [ -x "$dir/bin/python" ] || { say "creating $dir with $python"; "$python" -m venv "$dir"; }
  say "installing $* into $dir"
  "$dir/bin/python" -m pip install --quiet --upgrade pip wheel
  # torch first, exactly as pinned (the CPU build): installed later by the resolver it could be a CUDA build.
  local torch; torch=$(grep -h '^torch==' "$@" || true)
  [ -z "$torch" ] || "$dir/bin/python" -m pip install --quiet "$torch"
  local args=(); for r in "$@"; do args+=(-r "$r"); done
  "$dir/bin/python" -m pip install --quiet "${args[@]}"
  echo "$want" > "$stamp"
}

# Rasa 3.6 needs Python 3.10; the action server and console Python 3.11.
if [ $DEV = 1 ]; then
  make_venv .venv-rasa 3.10 requirements-rasa.txt requirements-rasa-dev.txt
  make_venv .venv 3.11 requirements.txt requirements-dev.txt
else
  make_venv .venv-rasa 3.10 requirements-rasa.txt
  make_venv .venv 3.11 requirements.txt
fi

debian_packages() {  # debian_packages WHAT PACKAGE...: install the Debian packages that are missing
  local what=$1 missing=(); shift
  for package in "$@"; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
  [ ${#missing[@]} = 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "$what needs Debian's ${missing[*]}: sudo apt-get install ${missing[*]}"
  say "installing Debian's ${missing[*]} for $what"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}
[ $DEV = 0 ] || debian_packages "the browser test" chromium chromium-driver
[ $PROD = 0 ] || debian_packages "make run-prod" postgresql redis-server haproxy

# The business CLOSER_BUSINESS names (unset: the default one): its folder, model and var folder.
. scripts/business.sh
mkdir -p var "$CLOSER_VAR"
say "business $CLOSER_BUSINESS_NAME: DB migrations and the catalog in $CLOSER_BUSINESS_DIR/knowledge/"
.venv/bin/python -m bot load-knowledge
.venv/bin/python -m bot sqlite-wal "$CLOSER_TRACKER_DB"  # Rasa's tracker store (endpoints.yml)
say "translations: bot/texts/locale/*/LC_MESSAGES/closer.po → .mo"
.venv/bin/pybabel compile -d bot/texts/locale -D closer --statistics

say "knowledge index in Chroma (embeds only what changed)"
.venv/bin/python -m bot index

say "Rasa model (retrains only if domain, config or data changed)"
.venv-rasa/bin/rasa train --quiet --domain "$CLOSER_BUSINESS_DIR/domain.yml" --config "$CLOSER_BUSINESS_DIR/config.yml" \
  --data "$CLOSER_BUSINESS_DIR/data" --out models --fixed-model-name "$CLOSER_BUSINESS_NAME"
