//go:build tools

// Package k8s pins the Kubernetes commands tools/cluster/build.sh compiles.
// The blank imports are never built (the "tools" tag is never set); they only
// tell `go mod tidy` to keep k8s.io/kubernetes and its dependencies.
package k8s

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
