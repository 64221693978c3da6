#!/usr/bin/env bash
# Bootstrap a Kubernetes cluster for lcrec: Kubeflow Pipelines (standalone), KServe (+ cert-manager), the Kubeflow
# Training Operator, MinIO (object storage for DVC and MLflow artifacts), an MLflow server, then lcrec's own
# manifests. Idempotent (kubectl apply). Needs kubectl pointing at the cluster and network access from it.
#   infra/bootstrap.sh            # everything
#   DRY_RUN=1 infra/bootstrap.sh  # print the commands only
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=versions.env
. "$HERE/infra/versions.env"  # cluster component versions, paired with the SDKs of requirements/lock.txt
NAMESPACE="${NAMESPACE:-kubeflow-user}"
MINIO_USER="${MINIO_USER:-lcrec}"
MINIO_PASSWORD="${MINIO_PASSWORD:?set MINIO_PASSWORD (the MinIO root password to create)}"

run() { echo "+ $*"; if [[ -z "${DRY_RUN:-}" ]]; then "$@"; fi; }
wait_for() { run kubectl wait --for=condition=available --timeout=600s "$@"; }

echo "== Kubeflow Pipelines ${KFP_VERSION} (standalone, namespace kubeflow)"
run kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=${KFP_VERSION}"
run kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
run kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=${KFP_VERSION}"
wait_for -n kubeflow deployment/ml-pipeline

echo "== cert-manager ${CERT_MANAGER_VERSION} and KServe ${KSERVE_VERSION} (RawDeployment mode: no Knative/Istio needed)"
run kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
wait_for -n cert-manager deployment/cert-manager-webhook
run kubectl apply --server-side -f "https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve.yaml"
wait_for -n kserve deployment/kserve-controller-manager
run kubectl apply --server-side -f "https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve-cluster-resources.yaml"
run kubectl patch configmap/inferenceservice-config -n kserve --type=strategic \
    -p '{"data": {"deploy": "{\"defaultDeploymentMode\": \"RawDeployment\"}"}}'

echo "== Kubeflow Training Operator ${TRAINING_OPERATOR_VERSION} (PyTorchJob)"
run kubectl apply --server-side -k "github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=${TRAINING_OPERATOR_VERSION}"
wait_for -n kubeflow deployment/training-operator

echo "== namespace ${NAMESPACE}, MinIO and MLflow"
run kubectl create namespace "${NAMESPACE}" --dry-run=client -o yaml | { [[ -z "${DRY_RUN:-}" ]] && kubectl apply -f - || cat; }
run kubectl -n "${NAMESPACE}" create secret generic lcrec-minio --from-literal=MINIO_ROOT_USER="${MINIO_USER}" \
    --from-literal=MINIO_ROOT_PASSWORD="${MINIO_PASSWORD}" --from-literal=AWS_ACCESS_KEY_ID="${MINIO_USER}" \
    --from-literal=AWS_SECRET_ACCESS_KEY="${MINIO_PASSWORD}" --dry-run=client -o yaml \
    | { [[ -z "${DRY_RUN:-}" ]] && kubectl apply -f - || cat; }
# lcrec-credentials: the object store's keys and endpoint as env, for every pipeline step (params.yaml
# pipeline.secret) and for the predictor, which downloads the champion's artifacts with them
MINIO_ENDPOINT="minio.${NAMESPACE}.svc.cluster.local:9000"
run kubectl -n "${NAMESPACE}" create secret generic lcrec-credentials --from-literal=AWS_ACCESS_KEY_ID="${MINIO_USER}" \
    --from-literal=AWS_SECRET_ACCESS_KEY="${MINIO_PASSWORD}" --from-literal=MLFLOW_S3_ENDPOINT_URL="http://${MINIO_ENDPOINT}" \
    --from-literal=AWS_ENDPOINT_URL="http://${MINIO_ENDPOINT}" --dry-run=client -o yaml \
    | { [[ -z "${DRY_RUN:-}" ]] && kubectl apply -f - || cat; }
run kubectl -n "${NAMESPACE}" apply -f "${HERE}/infra/k8s/minio.yaml"
run kubectl -n "${NAMESPACE}" apply -f "${HERE}/infra/k8s/mlflow.yaml"
wait_for -n "${NAMESPACE}" deployment/minio deployment/mlflow

echo "== lcrec: service accounts + RBAC, shared work volume, the predictor's ConfigMap and InferenceService"
run kubectl apply -k "${HERE}/manifests"

cat <<MSG
Done. Next:
  kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80 &
  lcrec pipeline compile && lcrec pipeline upload --host http://127.0.0.1:8080
  # DVC remote on MinIO:  dvc remote add -d minio s3://lcrec-dvc && dvc remote modify minio endpointurl http://<minio>:9000
MSG
