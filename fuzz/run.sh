#!/usr/bin/env bash
# Builds one libFuzzer harness with address sanitizer and runs it.
#   fuzz/run.sh TARGET [SECONDS] [extra libFuzzer flags…]
# TARGET is a product of fuzz/Package.swift (FuzzContainer, …). The corpus lives in
# fuzz/corpus/<name>/ (committed seeds); new inputs found go to fuzz/work/<name>/ (ignored by git);
# crashes go to fuzz/artifacts/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="${1:?usage: fuzz/run.sh TARGET [SECONDS]}"
seconds="${2:-60}"
shift $(( $# >= 2 ? 2 : 1 ))
"$here/../scripts/ensure-deps.sh"
name="$(echo "${target#Fuzz}" | tr '[:upper:]' '[:lower:]')"
cd "$here"
swift build -c release --product "$target" \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
  -Xcc -fsanitize=fuzzer-no-link,address >&2
bin="$(swift build -c release --show-bin-path)/$target"
mkdir -p "work/$name" artifacts
"$bin" "work/$name" "corpus/$name" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix="artifacts/$name-" -print_final_stats=1 "$@"
