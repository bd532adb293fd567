// Package deploy holds what runs Lockbox outside a developer's shell: the
// container image (Dockerfile), Kubernetes manifests (kustomize and Helm),
// Prometheus alert rules and scrape configs, the Grafana dashboard, a
// systemd unit and Redis settings. The files are the product here; the Go
// code only keeps them honest.
//
// Its tests check what the files claim without a cluster: the image builds
// from the files it copies into a static binary, the copies of the policy
// and the alert rules match their sources, every setting named is one
// Lockbox reads, every alert has its runbook section. References lists the
// metrics the dashboard and the rules query, so that an end-to-end test can
// check a live Lockbox exports each of them. "make deploy-check" renders
// and validates the manifests with the tools module.
//
// It imports no Lockbox package (its tests import config and cli, whose
// variables the files name), and nothing imports it but tests.
package deploy
