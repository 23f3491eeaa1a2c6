#!/usr/bin/env bash
# The release works on its own: build the sdist and the wheel, install the wheel (not editable)
# into a fresh virtual environment and run an import and CLI smoke test there, from an empty
# temporary directory, so that nothing of the source tree can be imported by accident.
#
# Usage: .ci/wheel_check.sh [python]   (default .venv/bin/python, which has `build` installed)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${1:-$root/.venv/bin/python}
expected=$("$python" -c 'import ast, sys
tree = ast.parse(open("cnnzoo/_version.py").read())
print(next(n.value.value for n in tree.body if isinstance(n, ast.Assign)))')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "wheel check: building the sdist and the wheel of cnnzoo $expected"
# build makes the sdist, then the wheel from the unpacked sdist, so a file missing from the
# sdist fails here too.
"$python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/cnnzoo-"$expected"-*.whl)
echo "wheel check: built in $SECONDS s"
ls "$work"/dist/cnnzoo-"$expected".tar.gz >/dev/null

# The wheel holds the package and nothing else of the repository.
"$python" - "$wheel" <<'EOF'
import sys
import zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
tops = {name.split("/")[0] for name in names}
assert all(top == "cnnzoo" or top.endswith(".dist-info") for top in tops), sorted(tops)
for required in ("cnnzoo/py.typed", "cnnzoo/_version.py", "cnnzoo/models/base.py"):
    assert required in names, f"{required} is missing from the wheel"
EOF

# A fresh environment. Torch and the other dependencies are ~5 GB, so instead of installing
# them again the fresh environment sees .venv's site-packages through a .pth file, appended
# after its own site-packages. Only the paths named in a .pth file join sys.path (the .pth
# files inside .venv's site-packages, among them the editable install of cnnzoo, are not run),
# so cnnzoo itself can come from the wheel alone: installed with --no-deps, and checked below to
# be imported from inside the fresh environment.
"$python" -m venv "$work/venv"
deps=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
fresh=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$deps" >"$fresh/cnnzoo_ci_dependencies.pth"
"$work/venv/bin/python" -m pip install -q --no-deps --no-index "$wheel"
echo "wheel check: fresh environment with the wheel at $SECONDS s"

mkdir "$work/smoke"
cd "$work/smoke"
unset PYTHONPATH
export CNNZOO_EXPECTED_VERSION=$expected CNNZOO_FRESH_SITE=$fresh CNNZOO_SOURCE_TREE=$root

shown=$("$work/venv/bin/cnnzoo" --version)
[ "$shown" = "cnnzoo $expected" ] || { echo "cnnzoo --version printed '$shown'" >&2; exit 1; }
"$work/venv/bin/cnnzoo" list >list.txt
grep -q "lenet5" list.txt || { cat list.txt; echo "cnnzoo list does not show lenet5" >&2; exit 1; }

"$work/venv/bin/python" - <<'EOF'
import os
from importlib.metadata import version
from pathlib import Path

import torch

import cnnzoo

package = Path(cnnzoo.__file__).resolve()
fresh = Path(os.environ["CNNZOO_FRESH_SITE"]).resolve()
source = Path(os.environ["CNNZOO_SOURCE_TREE"]).resolve()
assert package.is_relative_to(fresh), f"cnnzoo imported from {package}, not from the wheel"
assert not package.is_relative_to(source), f"cnnzoo imported from the source tree: {package}"
expected = os.environ["CNNZOO_EXPECTED_VERSION"]
assert cnnzoo.__version__ == version("cnnzoo") == expected, (cnnzoo.__version__, expected)
assert (package.parent / "py.typed").is_file()

model = cnnzoo.get_model("lenet5", num_classes=10).eval()
cnnzoo.save(model, "lenet5.safetensors")
loaded = cnnzoo.load("lenet5.safetensors").eval()
x = torch.rand(2, 1, 28, 28)
with torch.no_grad():
    assert torch.equal(model(x), loaded(x)), "the loaded model gives other logits"
print(f"wheel check: cnnzoo {expected} from {package.parent}: list, save, load, forward ok")
EOF
echo "wheel check: done in $SECONDS s"
