#!/usr/bin/env bash
# Rebuilds the demo pair shipped in models/demo from scratch (issue 16): the corpus from Debian's
# r-cran-janeaustenr, a SentencePiece BPE tokenizer, the amateur and the expert (PyTorch), their GGUF export
# and the test fixtures. Fixed seeds; about 50 minutes on 2 cores.
#
#   sudo apt-get install python3-torch python3-sentencepiece python3-numpy libopenblas0-pthread
#   npm ci                       # extracts the llama.cpp tree whose gguf writer the export uses
#   bash tools/demo-pair/build.sh [OUT]   # OUT defaults to models/demo
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/models/demo}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download r-cran-janeaustenr=1.0.0-1
sha256sum r-cran-janeaustenr_1.0.0-1_all.deb
dpkg -x r-cran-janeaustenr_1.0.0-1_all.deb pkg
/usr/bin/python3 "$here/austen.py" pkg/usr/lib/R/site-library/janeaustenr/data books
# OpenMP threads must not spin while the other core is busy (PyTorch only; llama.cpp never runs with this)
OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 "$here/train.py" --books books --out "$work/pair" --expert-steps 2400 --amateur-steps 1000
mkdir -p "$out"
cp "$work/pair/expert.gguf" "$work/pair/amateur.gguf" "$work/pair/fixture.json" "$work/pair/report.json" "$work/pair/train.log" \
   "$work/pair/tokenizer.model" books/prompts.json "$out/"
/usr/bin/python3 "$here/provenance.py" "$out" "$(sha256sum r-cran-janeaustenr_1.0.0-1_all.deb | cut -d' ' -f1)"
echo "wrote $out"
