package cloudsim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ostask/ostask/cloudsim"
)

// A test holds new servers in Nova's build-request phase and moves them
// on at the moments it chooses, e.g. between two page requests of a
// monitor.
func ExampleSim_ScheduleBuildRequest() {
	ctx := context.Background()
	timing := cloudsim.FastTiming()
	timing.BuildRequests, timing.BuildRequestPhase = true, time.Hour // until scheduled by hand
	clock := cloudsim.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Clock: clock, Timing: &timing})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()

	pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: sim.AuthURL(),
		Username: "demo", Password: cloudsim.DefaultPassword, DomainName: "Default", TenantName: "demo"})
	if err != nil {
		fmt.Println(err)
		return
	}
	compute, _ := openstack.NewComputeV2(pc, gophercloud.EndpointOpts{})
	var image string
	for _, im := range sim.Images() {
		if im.Name == cloudsim.CirrosImageName {
			image = im.ID
		}
	}
	srv, err := servers.Create(ctx, compute, servers.CreateOpts{Name: "web", ImageRef: image, FlavorRef: "1"}, nil).Extract()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("build requests:", len(sim.BuildRequests()))
	if err := sim.ScheduleBuildRequest(srv.ID); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("build requests:", len(sim.BuildRequests()))
	// Output:
	// build requests: 1
	// build requests: 0
}
