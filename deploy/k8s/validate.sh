#!/usr/bin/env bash
# Render the kustomize base and the production overlay, then validate every rendered
# document, and every file in examples/, against the Kubernetes OpenAPI schemas with
# kubernetes-validate in strict mode (unknown or misspelled fields fail, as do
# kinds/apiVersions it has no schema for). Also checked: no Secret in the kustomizations,
# a default-deny NetworkPolicy, and no NetworkPolicy matchLabels selector that selects none
# of the rendered pods (commonLabels adds part-of to those: see base/networkpolicies.yaml).
#
#   PYTHON=.venv/bin/python bash deploy/k8s/validate.sh      # from the repository root
#
# Environment (all optional):
#   PYTHON       interpreter whose environment has (or gets) kubernetes-validate;
#                default: <repo>/.venv/bin/python
#   K8S_VERSION  Kubernetes version to validate against; default 1.30.0
#   KUBECTL      kubectl used for `kubectl kustomize`; default: kubectl on PATH
# Needs no cluster and no network, except PyPI once to install kubernetes-validate.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION=1.37.0

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/../.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
k8s_version=${K8S_VERSION:-1.30.0}
kubectl=${KUBECTL:-kubectl}

die() {
    echo "validate.sh: $*" >&2
    exit 1
}

command -v "$kubectl" >/dev/null 2>&1 \
    || die "$kubectl not found (Debian: apt-get install kubernetes-client)"
command -v "$python" >/dev/null 2>&1 || die "no Python at $python (set PYTHON)"

# The console script lives in the interpreter's scripts directory (a venv's bin/).
bindir=$("$python" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
validator=$bindir/kubernetes-validate
if [[ "$("$validator" --version 2>/dev/null || true)" != "$KUBERNETES_VALIDATE_VERSION" ]]; then
    echo "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION for $python" >&2
    "$python" -m pip install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
fi
[[ -x "$validator" ]] || die "$validator missing after install"

tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT

total=0
for target in base overlays/production examples; do
    out=$tmp/${target//\//-}.yaml
    if [[ $target == examples ]]; then
        # Plain manifests, applied with -f: one stream of documents.
        for f in "$here"/examples/*.yaml; do
            cat "$f"
            printf '\n---\n'
        done >"$out"
    # Current kustomize warns about bases:/commonLabels: (kept for kustomize v2.0.3);
    # show stderr only when rendering fails.
    elif ! "$kubectl" kustomize "$here/$target" >"$out" 2>"$tmp/stderr"; then
        cat "$tmp/stderr" >&2
        die "kubectl kustomize $target failed"
    fi

    # Count the documents (kubernetes-validate skips nothing silently only if this matches
    # its number of passes) and check what the overlay is for: image pinned, namespace set.
    docs=$("$python" - "$out" "$target" <<'PY'
import sys

import yaml

path, target = sys.argv[1], sys.argv[2]
with open(path) as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
problems = []
kustomized = target != "examples"
pods = []  # the label sets of every rendered pod template
for d in docs:
    labels = d.get("spec", {}).get("template", {}).get("metadata", {}).get("labels")
    if labels:
        pods.append(labels)
for d in docs:
    kind, name = d.get("kind"), d.get("metadata", {}).get("name")
    spec = d.get("spec", {}).get("template", {}).get("spec", {})
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        image = c.get("image", "")
        if target != "base" and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
            problems.append(f"{kind}/{name}: image {image!r} is not pinned to a tag")
    if target != "base" and kind != "Namespace" and d["metadata"].get("namespace") != "flipkart":
        problems.append(f"{kind}/{name}: namespace is not 'flipkart'")
    if kustomized and kind == "Secret":
        problems.append(f"Secret/{name}: `apply -k` would overwrite the real one (examples/)")
    if kind == "NetworkPolicy":
        np = d["spec"]
        peers = [
            peer
            for rule in np.get("ingress", []) + np.get("egress", [])
            for peer in rule.get("from", []) + rule.get("to", [])
        ]
        local = [np["podSelector"]] + [
            p["podSelector"] for p in peers if "podSelector" in p and "namespaceSelector" not in p
        ]
        for sel in local:
            wanted = sel.get("matchLabels")
            if wanted and not any(wanted.items() <= pod.items() for pod in pods):
                problems.append(
                    f"NetworkPolicy/{name}: matchLabels {wanted} selects no rendered pod"
                    " (use matchExpressions for pods these manifests do not create)"
                )
        for p in peers:  # pods in another namespace are never ours
            if "namespaceSelector" in p and p.get("podSelector", {}).get("matchLabels"):
                problems.append(
                    f"NetworkPolicy/{name}: matchLabels for pods in another namespace"
                    " (commonLabels would add part-of to it: use matchExpressions)"
                )
if kustomized and not any(
    d.get("kind") == "NetworkPolicy"
    and d["spec"].get("podSelector") == {}
    and sorted(d["spec"].get("policyTypes", [])) == ["Egress", "Ingress"]
    and not d["spec"].get("ingress")
    and not d["spec"].get("egress")
    for d in docs
):
    problems.append("no default-deny NetworkPolicy (podSelector {}, Ingress and Egress)")
for p in problems:
    print(f"ERROR {path}: {p}", file=sys.stderr)
print(len(docs))
sys.exit(1 if problems else 0)
PY
    ) || die "$target: rendered manifests failed the checks above"
    [[ "$docs" -gt 0 ]] || die "$target rendered no documents"

    rc=0
    "$validator" --strict --kubernetes-version "$k8s_version" "$out" >"$tmp/result" 2>&1 || rc=$?
    # kubernetes-validate exits 0 on a kind it has no schema for (WARN): count that as a
    # failure too, and require one pass per document.
    passed=$(grep -c '^INFO .* passed for resource' "$tmp/result" || true)
    if [[ $rc -ne 0 ]] || grep -qE '^(WARN|ERROR|FATAL)' "$tmp/result" || [[ "$passed" -ne "$docs" ]]; then
        grep -vE '^INFO ' "$tmp/result" >&2 || true
        die "$target: $passed of $docs documents valid against Kubernetes $k8s_version (exit $rc)"
    fi
    echo "$target: $docs documents valid against Kubernetes $k8s_version (strict)"
    total=$((total + docs))
done

echo "OK: $total documents validated with kubernetes-validate $KUBERNETES_VALIDATE_VERSION" \
    "against Kubernetes $k8s_version (strict)"
