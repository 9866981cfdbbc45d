package ops_test

import (
	"context"
	"fmt"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// A Cloud that completes operations from the cloud's notifications: here
// cloudsim's in-process bus; on a real cloud, the URL of the broker Nova
// notifies on (NotificationConfig{URL: "amqp://user:password@host:5672/"}).
func ExampleNotificationConfig() {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{})
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	cred := sim.DemoCredentials()
	cloud, err := ops.Dial(ctx, ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: cred.AuthURL,
		Username: cred.Username, Password: cred.Password, DomainName: cred.DomainName, TenantName: cred.ProjectName}},
		ops.Config{Notifications: &ops.NotificationConfig{Stream: sim.Notifications(), ReconcileInterval: time.Minute}})
	if err != nil {
		panic(err)
	}
	defer cloud.Close()
	op, err := cloud.CreateServer(ctx, ops.ServerCreateOpts{Name: "web-1", FlavorRef: "1",
		ImageRef: cloudsim.CirrosImageID, Networks: "none"})
	if err != nil {
		panic(err)
	}
	s, err := op.Result(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Name, s.Status)
	// Output: web-1 ACTIVE
}

// The Clouds of several projects sharing one notification source: one
// broker connection and one queue for the process (here cloudsim's bus;
// on a real cloud, NotificationConfig{URL: "amqp://user:password@host:5672/"}).
func ExampleNotificationHub() {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{})
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	hub, err := ops.NewNotificationHub(ops.NotificationConfig{Stream: sim.Notifications(), ReconcileInterval: time.Minute}, nil)
	if err != nil {
		panic(err)
	}
	defer hub.Close() // after the Clouds
	for _, cred := range []cloudsim.Credentials{sim.DemoCredentials(), sim.AltCredentials()} {
		cfg := hub.Config()
		cloud, err := ops.Dial(ctx, ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: cred.AuthURL,
			Username: cred.Username, Password: cred.Password, DomainName: cred.DomainName, TenantName: cred.ProjectName}},
			ops.Config{Notifications: &cfg})
		if err != nil {
			panic(err)
		}
		defer cloud.Close()
		op, err := cloud.CreateServer(ctx, ops.ServerCreateOpts{Name: "web-" + cred.ProjectName, FlavorRef: "1",
			ImageRef: cloudsim.CirrosImageID, Networks: "none"})
		if err != nil {
			panic(err)
		}
		s, err := op.Result(ctx)
		if err != nil {
			panic(err)
		}
		fmt.Println(s.Name, s.Status)
	}
	fmt.Println("connections:", hub.Connections())
	// Output:
	// web-demo ACTIVE
	// web-alt ACTIVE
	// connections: 1
}
