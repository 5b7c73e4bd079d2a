#!/usr/bin/env bash
# Builds Examples/MergeAdapter the way a user of the library would: against a tagged version of
# tlora (a temporary clone of this repository's HEAD, tagged with the CLI's version), in release.
# Then merges a fixture adapter through it and checks the result equals `tlora merge`'s byte for byte.
#   scripts/check-example.sh [TLORA_BINARY]   (default .build/debug/tlora; built when missing)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tlora="${1:-$root/.build/debug/tlora}"
version="$(sed -n 's/^ *version: "\([0-9.]*\)",$/\1/p' "$root/Sources/TLoRACLI/TLoRACommand.swift")"
[ -n "$version" ] || { echo "check-example: no version in TLoRACommand.swift" >&2; exit 1; }
if [ -n "$(git -C "$root" status --porcelain -- Package.swift Sources)" ]; then
  echo "check-example: note: uncommitted changes under Sources/ are not in the tagged clone" >&2
fi

work="$(mktemp -d /tmp/tlora-example-XXXXXX)"
trap 'rm -rf "$work"' EXIT
git clone -q "$root" "$work/tlora"
git -C "$work/tlora" -c user.name=check -c user.email=check@localhost tag -a "$version" -m "$version"
cp -R "$root/Examples/MergeAdapter" "$work/example"
scratch="$work/build"

export TLORA_PACKAGE_URL="file://$work/tlora"
swift build -c release --package-path "$work/example" --scratch-path "$scratch" >&2
bin="$(swift build -c release --package-path "$work/example" --scratch-path "$scratch" --show-bin-path)/merge-adapter"

[ -x "$tlora" ] || (cd "$root" && swift build --product tlora >&2)
adapter="$root/Fixtures/gguf/tiny-llama-lora.llamacpp.f32.gguf"  # needs head counts: the base's config gives them
base="$root/Fixtures/models/tiny-llama"
"$bin" "$adapter" "$base" "$work/by-example"
"$tlora" merge "$adapter" --base "$base" -o "$work/by-cli" >/dev/null
for f in $(cd "$work/by-cli" && ls); do
  cmp "$work/by-cli/$f" "$work/by-example/$f" || { echo "check-example: $f differs from tlora merge's" >&2; exit 1; }
done
if "$bin" "$adapter" "$base" "$work/by-example" >/dev/null 2>&1; then
  echo "check-example: merging onto an existing output should fail" >&2; exit 1
fi
echo "check-example: Examples/MergeAdapter builds against tlora $version (release) and merges like tlora merge"
