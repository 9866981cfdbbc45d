// Package conformance holds a differential test suite: the same
// gophercloud-driven checks run against an in-process cloudsim (the
// default, part of normal CI) and, opt-in, against a real OpenStack cloud
// named in a clouds.yaml:
//
//	OS_CLIENT_CONFIG_FILE=/path/clouds.yaml \
//	OSTASK_CONFORMANCE_CLOUD=realstack-demo \
//	OSTASK_CONFORMANCE_ADMIN_CLOUD=realstack-admin \
//	go test ./cloudsim/conformance/ -v -count=1 -timeout 20m
//
// Both backends are reached the same way, through gophercloud's clouds.yaml
// support. Every difference a client can observe, other than timing, is
// either fixed in cloudsim or listed with its reason in DIFFERENCES.md.
// The package exports nothing; it is all tests.
package conformance
