#!/usr/bin/env python3
"""Extracts the UT1-derived adult blocklists that FineWeb's URL filter uses, from the datatrove
0.10.1 wheel, into a folder that pipelines/llama3.toml names (`models/ut1-adult/` by default).

The lists ship inside the wheel as `datatrove/assets/url_filterblacklistsv0_3_0.tar.gz` (18 MB;
members `domains`, 4.56M adult domains, 124 MB, and `urls`, 19,586 URLs). curate never
downloads at run time: this script is run once, like scripts/train_models.sh.

Where the asset comes from, first found:
  1. --wheel FILE: a datatrove-0.10.1 wheel file, or an installed site-packages folder;
  2. an installed datatrove: the peer venv ($CURATE_PEERS/dt, ~/.cache/curate-peers/dt) or
     any Python on PATH that imports it;
  3. `pip download --no-deps datatrove==0.10.1` into a temporary folder (needs the network).
The asset's sha256 is checked, so every copy is the same list.

License: UT1 (Universite Toulouse Capitole) lists are CC-BY-SA 4.0; datatrove is Apache-2.0.

Usage: scripts/ut1_lists.py [OUT_DIR] [--wheel FILE]
"""

import argparse
import glob
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

ASSET = "datatrove/assets/url_filterblacklistsv0_3_0.tar.gz"
SHA256 = "b37eefe1f3103dfa46b21b3f407b8b23cec2958ea22028700e6cc44d80f55e9e"
MEMBERS = ("domains", "urls")


def from_wheel(path):
    with zipfile.ZipFile(path) as z:
        return z.read(ASSET)


def from_site(path):
    with open(os.path.join(path, ASSET), "rb") as f:
        return f.read()


def installed():
    """Site-packages folders holding an installed datatrove."""
    peers = os.environ.get("CURATE_PEERS", os.path.expanduser("~/.cache/curate-peers"))
    for site in sorted(glob.glob(os.path.join(peers, "dt/lib/python3*/site-packages"))):
        yield site
    for py in ("python3", "python"):
        try:
            out = subprocess.run(
                [py, "-c", "import datatrove, os; print(os.path.dirname(os.path.dirname(datatrove.__file__)))"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        yield out


def find_asset(wheel):
    if wheel:
        return from_wheel(wheel) if os.path.isfile(wheel) else from_site(wheel)
    for site in installed():
        if os.path.isfile(os.path.join(site, ASSET)):
            print(f"using the installed datatrove in {site}", file=sys.stderr)
            return from_site(site)
    with tempfile.TemporaryDirectory() as d:
        print("downloading the datatrove 0.10.1 wheel (pip download)", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "datatrove==0.10.1", "-d", d],
            check=True, stdout=sys.stderr,
        )
        (whl,) = glob.glob(os.path.join(d, "datatrove-0.10.1-*.whl"))
        return from_wheel(whl)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", default="models/ut1-adult")
    ap.add_argument("--wheel", help="a datatrove 0.10.1 wheel or site-packages folder")
    a = ap.parse_args()
    data = find_asset(a.wheel)
    got = hashlib.sha256(data).hexdigest()
    if got != SHA256:
        sys.exit(f"error: {ASSET} has sha256 {got}, expected {SHA256} (datatrove 0.10.1)")
    os.makedirs(a.out, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for name in MEMBERS:
            body = tar.extractfile(name).read()
            tmp = os.path.join(a.out, name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(body)
            os.replace(tmp, os.path.join(a.out, name))
            n = body.count(b"\n")
            print(f"{os.path.join(a.out, name)}: {n} entries, {len(body)} bytes")


if __name__ == "__main__":
    main()
