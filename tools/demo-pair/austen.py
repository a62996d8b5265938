"""Extracts Jane Austen's six novels from Debian's r-cran-janeaustenr (MIT package; the texts are public domain).

The package keeps them in data/Rdata.rdb, an R lazy-load database: Rdata.rdx (gzip) indexes it, and each object
in Rdata.rdb is a 4-byte big-endian length followed by zlib data holding one R-serialised (XDR) character
vector, one element per line. This reader understands just the serialisation R uses for such vectors and for
the index (pairlists, symbols, strings, integer/logical vectors, generic vectors), so R is not needed.

  python3 tools/demo-pair/austen.py DATA_DIR OUT_DIR   (DATA_DIR = .../janeaustenr/data)

writes OUT_DIR/<book>.txt (lines joined with "\\n") for the six books, and OUT_DIR/prompts.json: 20 prompts
from the held-out part of the books (their last 4%, cut at a line start as train.py does): paragraph
openings of at least 60 characters, cut after the last word within 120 characters, spread evenly.
"""
import gzip
import os
import struct
import sys
import zlib

BOOKS = ["sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion"]


class Reader:
    def __init__(self, data):
        self.d = data
        self.i = 0
        self.refs = []

    def int(self):
        (v,) = struct.unpack_from(">i", self.d, self.i)
        self.i += 4
        return v

    def bytes(self, n):
        b = self.d[self.i : self.i + n]
        self.i += n
        return b

    def header(self):
        fmt = self.bytes(2)
        if fmt != b"X\n":
            raise ValueError("not an XDR R serialisation: %r" % fmt)
        version = self.int()
        self.int()  # writer's R version
        self.int()  # minimal reader version
        if version == 3:
            self.bytes(self.int())  # native encoding
        return self.item()

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr = flags & (1 << 9)
        has_tag = flags & (1 << 10)
        if t == 254:  # NILVALUE_SXP
            return None
        if t in (242, 241, 253, 251, 252):  # empty/base/global env, missing arg, unbound value
            return None
        if t == 255:  # REFSXP
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t == 1:  # SYMSXP: a CHARSXP follows
            name = self.item()
            self.refs.append(("sym", name))
            return ("sym", name)
        if t in (2, 6):  # LISTSXP / LANGSXP: attributes?, tag?, car, cdr
            out = []
            while True:
                attr = self.item() if has_attr else None
                tag = self.item() if has_tag else None
                car = self.item()
                out.append((tag[1] if tag else None, car))
                nxt = self.int()
                t2 = nxt & 0xFF
                if t2 == 254:
                    return out
                if t2 not in (2, 6):
                    # a cdr that is not a pairlist: push back and read it as an item
                    self.i -= 4
                    out.append((None, self.item()))
                    return out
                has_attr = nxt & (1 << 9)
                has_tag = nxt & (1 << 10)
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            return self.bytes(n).decode("utf-8" if (flags >> 12) & 8 else "latin-1")
        if t in (10, 13):  # LGLSXP / INTSXP
            n = self.int()
            v = list(struct.unpack_from(">%di" % n, self.d, self.i))
            self.i += 4 * n
            val = v
        elif t == 14:  # REALSXP
            n = self.int()
            v = list(struct.unpack_from(">%dd" % n, self.d, self.i))
            self.i += 8 * n
            val = v
        elif t == 16:  # STRSXP
            n = self.int()
            val = [self.item() for _ in range(n)]
        elif t in (19, 20):  # VECSXP / EXPRSXP
            n = self.int()
            val = [self.item() for _ in range(n)]
        else:
            raise ValueError("unsupported R type %d" % t)
        if has_attr:
            attrs = dict(self.item())
            names = attrs.get("names")
            if names is not None and isinstance(val, list) and len(names) == len(val):
                return dict(zip(names, val))
        return val


def unserialize(data):
    return Reader(data).header()


def read_books(data_dir):
    with open(os.path.join(data_dir, "Rdata.rdx"), "rb") as f:
        index = unserialize(gzip.decompress(f.read()))
    with open(os.path.join(data_dir, "Rdata.rdb"), "rb") as f:
        db = f.read()
    books = {}
    for name in BOOKS:
        off, n = index["variables"][name]
        blob = db[off : off + n]
        (raw_len,) = struct.unpack(">I", blob[:4])
        raw = zlib.decompress(blob[4:])
        if len(raw) != raw_len:
            raise ValueError("%s: %d bytes, the header says %d" % (name, len(raw), raw_len))
        lines = unserialize(raw)
        books[name] = "\n".join("" if l is None else l for l in lines)
    return books


HOLD_OUT = 0.04


def held_out(text):
    cut = int(len(text) * (1 - HOLD_OUT))
    return text[text.rfind("\n", 0, cut) + 1 :]


def prompts(books, n=20):
    cands = []
    for name in BOOKS:
        for para in held_out(books[name]).split("\n\n"):
            p = " ".join(para.split())
            if len(p) >= 60 and not p.isupper():
                cut = p[:120]
                cands.append(cut[: cut.rfind(" ")] if len(p) > 120 else cut)
    step = len(cands) / n
    return [cands[int(i * step)] for i in range(n)]


if __name__ == "__main__":
    data_dir, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    books = read_books(data_dir)
    for name, text in books.items():
        with open(os.path.join(out, name + ".txt"), "w", encoding="utf-8") as f:
            f.write(text)
        print("%-18s %8d bytes %6d lines" % (name, len(text.encode("utf-8")), text.count("\n") + 1))
    import json

    with open(os.path.join(out, "prompts.json"), "w", encoding="utf-8") as f:
        json.dump(prompts(books), f, indent=1, ensure_ascii=False)
