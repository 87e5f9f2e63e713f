#!/bin/sh
# Seeds every target's corpus with the fixtures; the hostile files are
# written by the stable fuzz test (`RESUME_FUZZ_WRITE_SEEDS=dir`).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fixtures="$here/../crates/resume/tests/fixtures"
for t in pdf docx text parse_file; do
  mkdir -p "$here/corpus/$t"
  find "$fixtures/labelled" "$fixtures/bad" -type f ! -name '*.json' -exec cp {} "$here/corpus/$t/" \;
  (cd "$here/.." && RESUME_FUZZ_ITERS=0 RESUME_FUZZ_WRITE_SEEDS="$here/corpus/$t" \
     cargo test -q -p resume-agent-resume --test fuzz >/dev/null)
done
echo "corpus ready in $here/corpus"
