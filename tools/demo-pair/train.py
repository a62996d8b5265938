"""Trains llama-duet's demo pair from scratch: a SentencePiece BPE tokenizer and two llama models (expert,
amateur) on Jane Austen's six novels, then exports both to GGUF and writes the test fixtures.

  OMP_WAIT_POLICY=PASSIVE python3 tools/demo-pair/train.py --books DIR --out models/demo [--expert-steps N] [--amateur-steps N]

DIR holds the six <book>.txt files (tools/demo-pair/austen.py). Fixed seeds; tools/demo-pair/build.sh runs
the whole pipeline. Needs Debian's python3-torch, python3-sentencepiece, python3-numpy (and
libopenblas0-pthread) and the gguf writer of the llama.cpp tree that `npm ci` extracts (.cache/llama.cpp).

The models are llama.cpp's LLAMA architecture exactly: RMSNorm (eps 1e-5), rotary embeddings on adjacent
pairs (llama.cpp's NORM layout, so the weights export without permutation), SwiGLU, no biases, untied output.
Held-out: the last 4% of each novel (cut at a line start), never seen by the tokenizer or the models.
"""
import argparse
import glob
import json
import math
import os
import sys
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BOOKS = ["sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion"]
HOLD_OUT = 0.04
EXPERT = dict(d=192, n_layer=4, n_head=6, ff=512)
AMATEUR = dict(d=112, n_layer=2, n_head=4, ff=320)
CTX = 256
GAP = 0.1  # the amateur is kept at least this much worse than the expert (held-out bits per byte)
ROPE_BASE = 10000.0
EPS = 1e-5


def split_books(books_dir):
    train, held = [], []
    for b in BOOKS:
        text = open(os.path.join(books_dir, b + ".txt"), encoding="utf-8").read()
        cut = int(len(text) * (1 - HOLD_OUT))
        cut = text.rfind("\n", 0, cut) + 1  # at a line start
        train.append(text[:cut])
        held.append(text[cut:])
    return train, held


def train_tokenizer(train_texts, out_dir):
    path = os.path.join(out_dir, "tokenizer-train.txt")
    with open(path, "w", encoding="utf-8") as f:
        for t in train_texts:
            f.write(t)
            f.write("\n")
    prefix = os.path.join(out_dir, "tokenizer")
    spm.SentencePieceTrainer.train(
        input=path,
        model_prefix=prefix,
        model_type="bpe",
        vocab_size=2048,
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        character_coverage=1.0,
        split_digits=True,
        max_sentence_length=1 << 16,
        num_threads=2,
        seed_sentencepiece_size=100000,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    os.remove(path)
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


def rope(x, pos):
    # x [B, H, T, Dh]; adjacent pairs (x0, x1), (x2, x3), ... rotated by pos·θ_i, θ_i = base^(−2i/Dh)
    dh = x.shape[-1]
    inv = ROPE_BASE ** (-torch.arange(0, dh, 2, dtype=torch.float32) / dh)
    ang = pos[:, None].float() * inv[None, :]  # [T, Dh/2]
    cos, sin = ang.cos(), ang.sin()
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * self.weight


class Block(nn.Module):
    def __init__(self, d, n_head, ff):
        super().__init__()
        self.n_head = n_head
        self.attn_norm = RMSNorm(d)
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.ffn_norm = RMSNorm(d)
        self.w_gate = nn.Linear(d, ff, bias=False)
        self.w_up = nn.Linear(d, ff, bias=False)
        self.w_down = nn.Linear(ff, d, bias=False)

    def forward(self, x, pos):
        B, T, D = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, self.n_head, -1).transpose(1, 2)
        k = self.wk(h).view(B, T, self.n_head, -1).transpose(1, 2)
        v = self.wv(h).view(B, T, self.n_head, -1).transpose(1, 2)
        q, k = rope(q, pos), rope(k, pos)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # torch 1.13 (Debian 12) has no SDPA
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        a = att.softmax(-1) @ v
        x = x + self.wo(a.transpose(1, 2).reshape(B, T, D))
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class Llama(nn.Module):
    def __init__(self, vocab, d, n_layer, n_head, ff):
        super().__init__()
        self.cfg = dict(vocab=vocab, d=d, n_layer=n_layer, n_head=n_head, ff=ff)
        self.tok = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d, n_head, ff) for _ in range(n_layer))
        self.norm = RMSNorm(d)
        self.out = nn.Linear(d, vocab, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
        for b in self.blocks:  # GPT-2 style: residual projections scaled by depth
            nn.init.normal_(b.wo.weight, std=0.02 / math.sqrt(2 * n_layer))
            nn.init.normal_(b.w_down.weight, std=0.02 / math.sqrt(2 * n_layer))

    def forward(self, idx):
        pos = torch.arange(idx.shape[1])
        x = self.tok(idx)
        for b in self.blocks:
            x = b(x, pos)
        return self.out(self.norm(x))


def heldout_bits_per_byte(model, held_ids, held_bytes):
    """Total NLL of the held-out tokens (each book's part scored in windows of CTX, every token predicted
    once after its in-window prefix), in bits per byte of held-out text."""
    model.eval()
    nll = 0.0
    with torch.no_grad():
        for ids in held_ids:
            t = torch.tensor(ids)
            for s in range(0, len(ids) - 1, CTX):
                chunk = t[s : s + CTX + 1]
                if len(chunk) < 2:
                    break
                logits = model(chunk[None, :-1])
                nll += F.cross_entropy(logits[0], chunk[1:], reduction="sum").item()
    model.train()
    return nll / math.log(2) / held_bytes


def train(name, model, data, held_ids, held_bytes, steps, lr, batch, log, floor=None):
    """AdamW, a linear warm-up then a cosine decay to 10% over `steps`; the held-out score every 100 steps,
    the best weights kept, and an early stop after 5 evaluations without improvement. With `floor`, the kept
    weights are the best checkpoint whose held-out score is still >= floor (the amateur: at least 0.1 bits per
    byte worse than the expert, the issue's bar); training goes on to `steps` either way."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    n = len(data) - CTX - 1
    g = torch.Generator().manual_seed(1234)
    t0 = time.time()
    best, best_state, step, since_best, kept_step = float("inf"), None, 0, 0, None
    history = []
    warm = min(200, steps // 10)
    while step < steps:
        frac = step / steps
        cur = lr * min(1.0, (step + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for pg in opt.param_groups:
            pg["lr"] = cur
        starts = torch.randint(0, n, (batch,), generator=g)
        x = torch.stack([data[s : s + CTX] for s in starts])
        y = torch.stack([data[s + 1 : s + CTX + 1] for s in starts])
        loss = F.cross_entropy(model(x).reshape(-1, model.cfg["vocab"]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 100 == 0 or step == steps:
            bpb = heldout_bits_per_byte(model, held_ids, held_bytes)
            tps = step * batch * CTX / (time.time() - t0)
            history.append(dict(step=step, seconds=round(time.time() - t0), train_loss=round(loss.item(), 4), heldout_bpb=round(bpb, 4)))
            log("%s step %d  %.0fs  loss %.3f  held-out %.4f bits/byte  %.0f tokens/s  lr %.2e" % (name, step, time.time() - t0, loss.item(), bpb, tps, cur))
            if floor is not None:
                if bpb >= floor and bpb < best:
                    best, kept_step = bpb, step
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                continue
            if bpb < best - 1e-4:
                best, since_best, kept_step = bpb, 0, step
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since_best += 1
                if since_best >= 5:  # it stopped improving
                    log("%s: no improvement in 5 evaluations, stopping" % name)
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
        log("%s: keeping step %d (held-out %.4f bits/byte%s)" % (name, kept_step, best, "" if floor is None else ", the best at or above %.4f" % floor))
    else:
        kept_step, best = step, history[-1]["heldout_bpb"]
        log("%s: no checkpoint at or above %.4f bits/byte, keeping the last (step %d)" % (name, floor, step))
    return dict(steps=step, kept_step=kept_step, seconds=round(time.time() - t0), tokens_seen=kept_step * batch * CTX, heldout_bpb=best, history=history)


def round_f16(model):
    """Weights as the GGUF stores them: matrices in f16, norms in f32."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(p.half().float())


def export_gguf(model, sp, path, name, gguf):
    c = model.cfg
    w = gguf.GGUFWriter(path, "llama")
    w.add_name(name)
    w.add_context_length(2048)
    w.add_embedding_length(c["d"])
    w.add_block_count(c["n_layer"])
    w.add_feed_forward_length(c["ff"])
    w.add_head_count(c["n_head"])
    w.add_head_count_kv(c["n_head"])
    w.add_rope_dimension_count(c["d"] // c["n_head"])
    w.add_rope_freq_base(ROPE_BASE)
    w.add_layer_norm_rms_eps(EPS)
    w.add_vocab_size(c["vocab"])
    w.add_file_type(1)  # MOSTLY_F16
    # tokenizer: SentencePiece BPE pieces and scores; llama.cpp's llama (SPM) tokenizer merges by score
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i).encode("utf-8"))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_byte(i):
            types.append(6)
        elif sp.is_unused(i):
            types.append(5)
        else:
            types.append(1)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}

    def mat(a):
        return a.astype(np.float16)

    w.add_tensor("token_embd.weight", mat(sd["tok.weight"]))
    for i in range(c["n_layer"]):
        p = "blocks.%d." % i
        b = "blk.%d." % i
        w.add_tensor(b + "attn_norm.weight", sd[p + "attn_norm.weight"].astype(np.float32))
        w.add_tensor(b + "attn_q.weight", mat(sd[p + "wq.weight"]))
        w.add_tensor(b + "attn_k.weight", mat(sd[p + "wk.weight"]))
        w.add_tensor(b + "attn_v.weight", mat(sd[p + "wv.weight"]))
        w.add_tensor(b + "attn_output.weight", mat(sd[p + "wo.weight"]))
        w.add_tensor(b + "ffn_norm.weight", sd[p + "ffn_norm.weight"].astype(np.float32))
        w.add_tensor(b + "ffn_gate.weight", mat(sd[p + "w_gate.weight"]))
        w.add_tensor(b + "ffn_up.weight", mat(sd[p + "w_up.weight"]))
        w.add_tensor(b + "ffn_down.weight", mat(sd[p + "w_down.weight"]))
    w.add_tensor("output_norm.weight", sd["norm.weight"].astype(np.float32))
    w.add_tensor("output.weight", mat(sd["out.weight"]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def load_gguf(model, path, gguf):
    """The weights of a GGUF this script exported, back into `model` (the inverse of export_gguf)."""
    names = {"token_embd.weight": "tok.weight", "output_norm.weight": "norm.weight", "output.weight": "out.weight"}
    per = {"attn_norm": "attn_norm", "attn_q": "wq", "attn_k": "wk", "attn_v": "wv", "attn_output": "wo",
           "ffn_norm": "ffn_norm", "ffn_gate": "w_gate", "ffn_up": "w_up", "ffn_down": "w_down"}
    sd = model.state_dict()
    for t in gguf.GGUFReader(path).tensors:
        if t.name.startswith("blk."):
            _, i, kind, _w = t.name.split(".")
            key = "blocks.%s.%s.weight" % (i, per[kind])
        else:
            key = names[t.name]
        a = torch.from_numpy(np.array(t.data, dtype=np.float32)).reshape(sd[key].shape)
        sd[key].copy_(a)


def agreement(expert, amateur, held_ids, n=4000):
    """Greedy agreement: the share of held-out positions where both models' argmax agree."""
    agree = total = 0
    with torch.no_grad():
        for ids in held_ids:
            t = torch.tensor(ids[: n // len(held_ids) + 1])
            for s in range(0, len(t) - 1, CTX):
                chunk = t[s : s + CTX]
                a = expert(chunk[None]).argmax(-1)
                b = amateur(chunk[None]).argmax(-1)
                agree += (a == b).sum().item()
                total += a.numel()
    return agree / total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--books", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--expert-steps", type=int, default=2400)
    ap.add_argument("--amateur-steps", type=int, default=1000)
    ap.add_argument("--expert-from", help="reuse the expert of an earlier run of this script (its DIR with expert.gguf and report.json) instead of training it again")
    args = ap.parse_args()
    torch.manual_seed(20261202)
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    logf = open(os.path.join(args.out, "train.log"), "w")

    def log(s):
        print(s, flush=True)
        logf.write(s + "\n")
        logf.flush()

    sys.path.insert(0, glob.glob(os.path.join(ROOT, ".cache", "llama.cpp", "*", "gguf-py"))[0])
    import gguf

    train_texts, held_texts = split_books(args.books)
    sp = train_tokenizer(train_texts, args.out)
    # one dummy prefix per document (add_dummy_prefix), newlines through byte fallback
    data = torch.tensor([i for t in train_texts for i in [sp.bos_id()] + sp.encode(t)])
    held_ids = [[sp.bos_id()] + sp.encode(t) for t in held_texts]
    held_bytes = sum(len(t.encode("utf-8")) for t in held_texts)
    train_bytes = sum(len(t.encode("utf-8")) for t in train_texts)
    log("tokens: train %d (%d bytes, %.2f bytes/token), held-out %d (%d bytes)" % (len(data), train_bytes, train_bytes / len(data), sum(map(len, held_ids)), held_bytes))

    V = sp.get_piece_size()
    report = dict(vocab=V, train_tokens=len(data), train_bytes=train_bytes, heldout_tokens=sum(map(len, held_ids)), heldout_bytes=held_bytes)
    models = {}
    # the expert first: the amateur keeps its best checkpoint that is still >= GAP bits per byte worse
    for name, cfg, steps, lr, batch in (("expert", EXPERT, args.expert_steps, 2e-3, 16), ("amateur", AMATEUR, args.amateur_steps, 3e-3, 16)):
        torch.manual_seed({"amateur": 7, "expert": 11}[name])
        m = Llama(V, **cfg)
        nparams = sum(p.numel() for p in m.parameters())
        log("%s: %d parameters %s" % (name, nparams, cfg))
        if name == "expert" and args.expert_from:
            # the same seeds and steps reproduce it; this skips the ~25 minutes
            load_gguf(m, os.path.join(args.expert_from, "expert.gguf"), gguf)
            r = json.load(open(os.path.join(args.expert_from, "report.json")))["expert"]
            r["heldout_bpb_f16"] = heldout_bits_per_byte(m, held_ids, held_bytes)
            log("expert from %s: held-out %.4f bits/byte" % (args.expert_from, r["heldout_bpb_f16"]))
            export_gguf(m, sp, os.path.join(args.out, name + ".gguf"), "llama-duet demo " + name + " (Jane Austen)", gguf)
            models[name] = m
            report[name] = r
            continue
        # (+0.001: room for the f16 rounding of the stored weights)
        floor = report["expert"]["heldout_bpb_f16"] + GAP + 0.001 if name == "amateur" else None
        r = train(name, m, data, held_ids, held_bytes, steps, lr, batch, log, floor)
        round_f16(m)
        r["heldout_bpb_f16"] = heldout_bits_per_byte(m, held_ids, held_bytes)
        r["parameters"] = nparams
        r["config"] = cfg
        log("%s: held-out %.4f bits/byte (f16 weights)" % (name, r["heldout_bpb_f16"]))
        export_gguf(m, sp, os.path.join(args.out, name + ".gguf"), "llama-duet demo " + name + " (Jane Austen)", gguf)
        models[name] = m
        report[name] = r
    m_e, m_a = models["expert"], models["amateur"]
    m_e.eval()
    m_a.eval()
    report["greedy_agreement"] = agreement(m_e, m_a, held_ids)
    log("greedy agreement on held-out text: %.3f" % report["greedy_agreement"])

    # fixtures for the test suite: PyTorch's logits (the stored f16 weights) at a few prompts, and
    # SentencePiece's tokenization of held-out text (newlines, non-ASCII)
    prompts = ['"My dear Mr. Bennet," said his lady', "It is a truth universally acknowledged", "Emma Woodhouse, handsome, clever, and rich,\nwith"]
    fixture = dict(logits=[], tokenization=[])
    with torch.no_grad():
        for p in prompts:
            ids = [sp.bos_id()] + sp.encode(p)
            for which, m in (("expert", m_e), ("amateur", m_a)):
                row = m(torch.tensor([ids]))[0, -1]
                fixture["logits"].append(dict(model=which, prompt=p, tokens=ids, logits=[round(float(v), 5) for v in row]))
    samples = [t[:2000] for t in held_texts] + ["Caf\u00e9 \u2014 na\u00efve r\u00e9sum\u00e9, \u00a35 & \u2603 \u65e5\u672c\u8a9e\n\n\ttabs  and  double  spaces\n"]
    for s in samples:
        fixture["tokenization"].append(dict(text=s, tokens=sp.encode(s)))
    json.dump(fixture, open(os.path.join(args.out, "fixture.json"), "w"))
    report["expert_bytes"] = os.path.getsize(os.path.join(args.out, "expert.gguf"))
    report["amateur_bytes"] = os.path.getsize(os.path.join(args.out, "amateur.gguf"))
    json.dump(report, open(os.path.join(args.out, "report.json"), "w"), indent=1)
    log(json.dumps({k: v for k, v in report.items() if k not in ("expert", "amateur")}))


if __name__ == "__main__":
    main()
