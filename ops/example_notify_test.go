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
