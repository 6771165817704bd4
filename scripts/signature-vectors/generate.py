#!/usr/bin/python3
"""Naver Commerce client_secret_sign test vectors, Python side.

Run with Debian's python3-bcrypt (/usr/bin/python3); see README.md.

  generate.py triples            print the input triples (fixed seed), one per line:
                                 client_id<TAB>timestamp<TAB>client_secret
  generate.py hash < triples     print client_id<TAB>timestamp<TAB>client_secret<TAB>bcrypt<TAB>sign
  generate.py version            print the bcrypt module version
  generate.py assemble HASHES PY_VERSION JS_VERSION
                                 print testdata/signature_vectors.json built from HASHES
"""

import base64
import json
import random
import sys

import bcrypt  # Debian python3-bcrypt

SEED = 20220204  # fixed: re-running must reproduce the identical file

# The known vector (bcrypt $2a$04$QKLnou1D2cSH19Pia30bcumkgWHhD5UNbHprCG2.USOiBzWBlJid2); always first.
KNOWN = ("aaaabbbb", "1643956077762", "$2a$04$QKLnou1D2cSH19Pia30bcu")

BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

TS_MIN = 1640995200000  # 2022-01-01T00:00:00Z in ms
TS_MAX = 1893455999999  # 2029-12-31T23:59:59.999Z in ms

# (cost, prefix, count), generated in this order after the known vector.
PLAN = [
    ("04", "$2a$", 50),
    ("04", "$2b$", 5),
    ("04", "$2y$", 5),
    ("10", "$2a$", 20),
    ("10", "$2b$", 2),
    ("10", "$2y$", 2),
]

NOTES = (
    "All vectors were computed independently by Python bcrypt and bcryptjs and matched byte for byte. "
    "Salts are 22 uniformly random bcrypt-alphabet chars, so most have a non-canonical last char "
    "(22 chars = 132 bits, bcrypt uses 128): both libraries silently replace it with the canonical char "
    "(one of '.', 'O', 'e', 'u', i.e. the low 4 bits cleared), so bcrypt[:29] can differ from client_secret "
    "in its last char, e.g. $2a$04$QKLnou1D2cSH19Pia30bcz -> $2a$04$QKLnou1D2cSH19Pia30bcu... . "
    "$2b$ and $2y$ are accepted by both, give the same hash as $2a$ with the same salt, and the output "
    "keeps the input prefix ($2y$ in -> $2y$ out); they are included."
)


def triples():
    rng = random.Random(SEED)
    out = [KNOWN]
    for cost, prefix, count in PLAN:
        for _ in range(count):
            # Naver client ids are 22 chars of [A-Za-z0-9]; sometimes use other lengths.
            n = 22 if rng.random() < 0.6 else rng.randint(8, 40)
            client_id = "".join(rng.choice(ID_ALPHABET) for _ in range(n))
            timestamp = str(rng.randint(TS_MIN, TS_MAX))
            salt = "".join(rng.choice(BCRYPT_ALPHABET) for _ in range(22))  # last char too
            out.append((client_id, timestamp, prefix + cost + "$" + salt))
    return out


def sign(client_id, timestamp, client_secret):
    password = client_id + "_" + timestamp
    hashed = bcrypt.hashpw(password.encode("utf-8"), client_secret.encode("utf-8"))
    return hashed.decode("ascii"), base64.standard_b64encode(hashed).decode("ascii")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "triples":
        for t in triples():
            print("\t".join(t))
    elif cmd == "hash":
        for line in sys.stdin.read().splitlines():
            client_id, timestamp, client_secret = line.split("\t")
            print("\t".join((client_id, timestamp, client_secret) + sign(client_id, timestamp, client_secret)))
    elif cmd == "version":
        print(bcrypt.__version__)
    elif cmd == "assemble":
        hashes_path, py_version, js_version = argv[2:5]
        vectors = []
        with open(hashes_path, encoding="ascii") as f:
            for line in f.read().splitlines():
                client_id, timestamp, client_secret, hashed, sig = line.split("\t")
                assert len(hashed) == 60 and len(sig) == 80, line
                assert base64.standard_b64decode(sig) == hashed.encode("ascii"), line
                vectors.append({
                    "client_id": client_id,
                    "timestamp": timestamp,
                    "client_secret": client_secret,
                    "bcrypt": hashed,
                    "client_secret_sign": sig,
                })
        doc = {
            "generated_by": "scripts/signature-vectors/generate.sh",
            "notes": NOTES,
            "python_bcrypt_version": py_version,
            "bcryptjs_version": js_version,
            "vectors": vectors,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
