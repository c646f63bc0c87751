package deploy

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// typedObject returns an empty Kubernetes API object for apiVersion/kind,
// or nil for kinds without Go types here (custom resources).
func typedObject(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1/Ingress":
		return &networkingv1.Ingress{}
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	}
	return nil
}

// customResources are the kinds the build may contain without a Go type.
var customResources = map[string]bool{"cert-manager.io/v1/ClusterIssuer": true}

// TestK3SObjectsMatchAPISchemas decodes every object of both builds
// strictly into the Kubernetes API types: a misspelt or misplaced field
// (readinesProbe, containerport) fails here instead of being dropped by
// the API server.
func TestK3SObjectsMatchAPISchemas(t *testing.T) {
	for _, dir := range []string{k3sDir, "deploy/k3s/overlays/dev"} {
		docs := kustomizeDocs(t, dir)
		objs := kustomize(t, dir)
		if len(docs) != len(objs) {
			t.Fatalf("%s: %d documents, %d objects", dir, len(docs), len(objs))
		}
		for i, o := range objs {
			typed := typedObject(o.APIVersion, o.Kind)
			if typed == nil {
				if !customResources[o.APIVersion+"/"+o.Kind] {
					t.Errorf("%s: %s %s has no known API type", dir, o.APIVersion, o.Kind)
				}
				continue
			}
			if err := sigsyaml.UnmarshalStrict([]byte(docs[i]), typed); err != nil {
				t.Errorf("%s: %s/%s: %v", dir, o.Kind, o.Metadata.Name, err)
			}
		}
	}
}
