"""A local stand-in cluster for developing and testing progressive.delivery.

The lab emulates the parts of a Kubernetes API server, its deployment
controller and an Istio mesh that the collection relies on, and runs a real
Prometheus against the emulated mesh. It is not shipped in the collection.
"""
