"""An HTTPS emulation of the Kubernetes API, for the resources the collection uses."""
