"""Writes models/demo/PROVENANCE.md from the training report (tools/demo-pair/build.sh calls it).

  python3 tools/demo-pair/provenance.py OUT_DIR DEB_SHA256
"""
import json
import os
import sys

out, deb_sha = sys.argv[1], sys.argv[2]
r = json.load(open(os.path.join(out, "report.json")))
e, a = r["expert"], r["amateur"]
# reports written before train.py recorded train_bytes: the byte count is on the first line of train.log
train_bytes = r.get("train_bytes")
if train_bytes is None:
    first = open(os.path.join(out, "train.log")).readline()
    train_bytes = int(first.split("(")[1].split(" bytes")[0])


def cfg(m):
    c = m["config"]
    return "%d layers × %d, %d heads, feed-forward %d" % (c["n_layer"], c["d"], c["n_head"], c["ff"])


text = """# The demo pair: provenance

Two llama models with one SentencePiece BPE tokenizer, trained from scratch on Jane Austen's six novels, for
`llama-duet demo`, `generate` without `--expert`, and the test suite. Rebuilt by `bash tools/demo-pair/build.sh`.

## Corpus
- Debian package **r-cran-janeaustenr 1.0.0-1** (`apt-get download r-cran-janeaustenr=1.0.0-1`, sha256
  `{deb}`), package licence **MIT** (Julia Silge; Debian packaging Andreas Tille); the novels' texts are in the
  **public domain** (Project Gutenberg transcriptions).
- `data/Rdata.rdb` read by `tools/demo-pair/austen.py` (a small R-unserialiser; R is not needed): *Sense and
  Sensibility*, *Pride and Prejudice*, *Mansfield Park*, *Emma*, *Northanger Abbey*, *Persuasion*, lines joined
  with newlines.
- **Held out:** the last 4% of each novel (cut at a line start): {hb} bytes, {ht} tokens. Never seen by the
  tokenizer or the models; every held-out figure here is on it. `prompts.json`: 20 prompts taken from it.

## Tokenizer
SentencePiece BPE (python3-sentencepiece 0.1.97), vocabulary {v}: `byte_fallback`, identity normalisation, no
whitespace collapsing, one dummy prefix, digits split; `<unk>` 0, `<s>` 1, `</s>` 2. Exported to the GGUF as
llama.cpp's `llama` (SPM) tokenizer with SentencePiece's piece scores, so llama.cpp's greedy merges by score
reproduce SentencePiece exactly: `test/model/16-demo-pair.test.ts` checks the token ids of held-out text (with
newlines, tabs, runs of spaces and non-ASCII through byte fallback) and byte-exact detokenisation.
`tokenizer.model` is SentencePiece's own file. Training text: {tt} tokens ({bpt:.2f} bytes per token).

## Models
llama.cpp's LLAMA architecture: RMSNorm (ε 1e-5), rotary embeddings on adjacent pairs (llama.cpp's NORM
layout, base 10000), SwiGLU, no biases, untied output; trained with PyTorch (python3-torch 1.13.1, 2 threads,
`OMP_WAIT_POLICY=PASSIVE`), AdamW (β 0.9/0.95, weight decay 0.1), batch 16 × 256 tokens, warm-up then cosine
decay; the expert keeps its best held-out checkpoint, the amateur its best one that is still at least
0.1 bits per byte worse than the expert (the demo needs a visibly weaker amateur); fixed seeds. Matrices
stored in f16, norms in f32.

| | expert | amateur |
|---|---|---|
| shape | {ec} | {ac} |
| parameters | {ep:,} | {ap:,} |
| steps trained / checkpoint kept / tokens seen by it | {es} / {ek} / {et:,} | {as_} / {ak} / {at:,} |
| held-out gap to the expert (bits per byte) | | {gap:.4f} |
| training time (2 cores) | {esec} s | {asec} s |
| held-out bits per byte (stored f16 weights) | **{eb:.4f}** | **{ab:.4f}** |
| file | expert.gguf, {ebytes:,} bytes | amateur.gguf, {abytes:,} bytes |

Greedy agreement of the pair on held-out text (both argmaxes equal): **{ag:.3f}**. `fixture.json` holds
PyTorch's logits at three prompts (for the export test) and SentencePiece's token ids of held-out samples;
`report.json` the full training record, `train.log` the log.
""".format(
    deb=deb_sha,
    hb=r["heldout_bytes"],
    ht=r["heldout_tokens"],
    v=r["vocab"],
    tt=r["train_tokens"],
    bpt=train_bytes / r["train_tokens"],
    ec=cfg(e),
    ac=cfg(a),
    ep=e["parameters"],
    ap=a["parameters"],
    es=e["steps"],
    et=e["tokens_seen"],
    as_=a["steps"],
    ek=e.get("kept_step", e["steps"]),
    ak=a.get("kept_step", a["steps"]),
    gap=a["heldout_bpb_f16"] - e["heldout_bpb_f16"],
    at=a["tokens_seen"],
    esec=e["seconds"],
    asec=a["seconds"],
    eb=e["heldout_bpb_f16"],
    ab=a["heldout_bpb_f16"],
    ebytes=r["expert_bytes"],
    abytes=r["amateur_bytes"],
    ag=r["greedy_agreement"],
)
open(os.path.join(out, "PROVENANCE.md"), "w").write(text)
print("wrote", os.path.join(out, "PROVENANCE.md"))
