#!/usr/bin/env bash
# Copy crds/ (the single source of truth) into the chart. tests/operator/test_crds.py
# fails when the copies differ.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rm -f "$root/helm/brook/files/crds/"*.yaml
cp "$root"/crds/*.yaml "$root/helm/brook/files/crds/"
echo "copied $(ls "$root"/crds/*.yaml | wc -l) CRDs into helm/brook/files/crds/"
