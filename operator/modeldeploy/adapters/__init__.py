"""The outside world: Kubernetes objects, Prometheus, routers, model metadata."""
