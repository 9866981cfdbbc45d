package cloudsim_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/ostask/ostask/cloudsim"
)

func TestKeystonePasswordAuthAndCatalog(t *testing.T) {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	for _, tc := range []struct {
		name string
		opts gophercloud.AuthOptions
	}{
		{"project by name", gophercloud.AuthOptions{IdentityEndpoint: sim.AuthURL(), Username: "demo", Password: "secret",
			DomainName: "Default", TenantName: "demo"}},
		{"project by id", gophercloud.AuthOptions{IdentityEndpoint: sim.URL() + "/identity", Username: "admin", Password: "secret",
			DomainID: "default", TenantID: cloudsim.AdminProjectID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := openstack.AuthenticatedClient(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, ep := range []func(*gophercloud.ProviderClient, gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error){
				openstack.NewComputeV2, openstack.NewBlockStorageV3, openstack.NewImageV2, openstack.NewIdentityV3,
			} {
				if _, err := ep(pc, gophercloud.EndpointOpts{Region: "RegionOne"}); err != nil {
					t.Errorf("endpoint: %v", err)
				}
			}
			id, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
			if err != nil {
				t.Fatal(err)
			}
			res := tokens.Get(ctx, id, pc.Token())
			if res.Err != nil {
				t.Fatalf("validate: %v", res.Err)
			}
			roles, err := res.ExtractRoles()
			if err != nil || len(roles) == 0 {
				t.Fatalf("roles %v %v", roles, err)
			}
		})
	}

	_, err = openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: sim.AuthURL(), Username: "demo",
		Password: "wrong", DomainName: "Default", TenantName: "demo"})
	if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Fatalf("bad password: want 401, got %v", err)
	}
	var e gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &e) {
		t.Fatalf("want ErrUnexpectedResponseCode, got %T", err)
	}
}

// Cancelling Start's context stops the simulator; a Close after that
// returns (it used to wait for the goroutine that was closing it).
func TestStopOnContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sim, err := cloudsim.Start(ctx, cloudsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan error, 1)
	go func() { done <- sim.Close() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close after the context ended did not return")
	}
	if _, err := http.Get(sim.URL() + "/identity/v3"); err == nil {
		t.Fatal("the simulator still answers after its context ended")
	}
}
