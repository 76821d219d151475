#!/usr/bin/env bash
# End to end on kind (level 5 of DESIGN.md's testing ladder), for machines with Docker:
# create a kind cluster, build and load the image, `helm install` the chart, then run
# e2e/test_e2e.py (apply the examples, wait for Ready, produce/consume, change and
# delete topics). Deletes the kind cluster afterwards unless BROOK_E2E_KEEP=1.
#
#   e2e/run.sh                    # everything
#   BROOK_E2E_KEEP=1 e2e/run.sh   # keep the cluster for poking at it
#   e2e/run.sh -k topic           # extra arguments go to pytest
#
# Needs: docker, kind, kubectl, helm (v3), and the repo's .venv (make setup).
set -euo pipefail
cd "$(dirname "$0")/.."

cluster="${BROOK_E2E_CLUSTER:-brook-e2e}"
image="${BROOK_E2E_IMAGE:-brook:e2e}"
keep="${BROOK_E2E_KEEP:-0}"
python="${PYTHON:-.venv/bin/python}"

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "e2e: '$tool' is required on PATH" >&2; exit 2; }
done

if ! kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --config e2e/kind-config.yaml --wait 180s
fi
cleanup() {
  if [[ "$keep" != "1" ]]; then kind delete cluster --name "$cluster"; fi
}
trap cleanup EXIT
export KUBECONFIG="${KUBECONFIG:-$HOME/.kube/config}"
kubectl config use-context "kind-$cluster"

docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"

helm upgrade --install brook helm/brook --namespace brook-system --create-namespace \
  --set image.repository="${image%%:*}" --set image.tag="${image##*:}" --set image.pullPolicy=Never \
  --wait --timeout 3m

BROOK_E2E=1 BROOK_E2E_IMAGE="$image" "$python" -m pytest e2e -v -p no:cacheprovider "$@"
