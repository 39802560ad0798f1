#!/usr/bin/env bash
# The readme_guide test: follows README.md's "Write a plugin for your modality" in an
# empty folder, as a new user would, so the guide cannot rot. Every fenced block right
# after `<!-- file: PATH -->` becomes that file; the block after `<!-- guide: commands -->`
# runs as written, against an installed latefuse; the records it prints must be the
# block after `<!-- guide: output -->`, and the manifest the build wrote must say what
# the guide says.
#
#   readme_guide.sh README.md LATEFUSE_PREFIX WORK_DIR CHECK_MANIFEST_CMAKE
set -euo pipefail
readme=$(realpath "$1")
prefix=$(realpath "$2")
work=$3
check_manifest=$(realpath "$4")

rm -rf "$work"
mkdir -p "$work"
cd "$work"

# The block following a marker line, fences removed: `block MARKER` prints it.
block() {
  awk -v marker="$1" '
    $0 == marker { armed = 1; next }
    armed && !inside && /^```/ { inside = 1; next }
    inside && /^```$/ { exit }
    inside { print }
  ' "$readme"
}

files=$(sed -n 's/^<!-- file: \(.*\) -->$/\1/p' "$readme")
[ -n "$files" ] || { echo "README.md: no <!-- file: ... --> blocks" >&2; exit 1; }
for file in $files; do
  mkdir -p "$(dirname "$file")"
  block "<!-- file: $file -->" > "$file"
  [ -s "$file" ] || { echo "README.md: empty block for $file" >&2; exit 1; }
  echo "readme_guide: wrote $file ($(wc -l < "$file") lines)"
done
block "<!-- guide: commands -->" > commands.sh
block "<!-- guide: output -->" > expected-output.jsonl
[ -s commands.sh ] && [ -s expected-output.jsonl ] ||
  { echo "README.md: missing the guide's commands or output block" >&2; exit 1; }

echo "readme_guide: running the guide's commands"
LATEFUSE_PREFIX="$prefix" bash -euo pipefail commands.sh > output.txt
cat output.txt

# The harness program's line, then latefuse's records, exactly as the README shows them.
grep -qx '\[0.5,0.5\]' output.txt ||
  { echo "readme_guide: the harness did not print [0.5,0.5]" >&2; exit 1; }
grep '^{"id"' output.txt > records.jsonl || true
if ! diff -u expected-output.jsonl records.jsonl; then
  echo "readme_guide: latefuse's records differ from the README's (above)" >&2
  exit 1
fi
cmake -DDIR=vitals_score/build -DNAME=vitals_score -DVERSION=1.0.0 -DKIND=model \
      '-DINPUT={"kind": "dense", "size": 3}' '-DCLASSES=["stable", "deteriorating"]' \
      -P "$check_manifest"
echo "readme_guide: the guide works as written"
