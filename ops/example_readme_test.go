package ops_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// readmeCreateServer is the README's ops snippet, byte for byte between
// the markers (internal/cli's README test checks it).
func readmeCreateServer(ctx context.Context, auth ops.Auth, flavorID, imageID string) error {
	// readme:begin
	cloud, err := ops.Dial(ctx, auth, ops.Config{}) // auth: ops.AuthFromClouds("mycloud") or ops.AuthFromEnv()
	if err != nil {
		return err // bad credentials, Keystone unreachable, no compute endpoint...
	}
	defer cloud.Close()

	op, err := cloud.CreateServer(ctx, ops.ServerCreateOpts{
		Name: "web-1", FlavorRef: flavorID, ImageRef: imageID, Networks: "none",
	}, ops.WithRetries(3), ops.WithTimeout(10*time.Minute))
	if err != nil {
		return err // the POST itself failed: 400, 403 quota, 404 flavor... (no retry)
	}
	fmt.Println("accepted:", op.Initial().StatusCode) // the 202 answer, at once (ID, RequestID, Body)

	// ACTIVE with task_state null, or a typed error:
	srv, err := op.Result(ctx)
	var fault *ops.FaultError            // ERROR, with Nova's fault message and the request id
	var timeout *ops.TimeoutError        // hung, with the last status/task_state seen
	var rolled *ops.RolledBackError      // resize/migrate undone silently (seen in os-instance-actions)
	var gone *ops.DeletedError           // vanished while being built
	var spent *ops.RetriesExhaustedError // every attempt's error; errors.Is/As reach each
	switch {
	case err == nil:
		fmt.Println("server", srv.Name, srv.Status)
	case errors.As(err, &fault):
		return fmt.Errorf("build failed: %s [%s] (%d attempts)", fault.Message, fault.RequestID, op.Attempts())
	case errors.As(err, &timeout):
		return fmt.Errorf("still %s/%s after %s", timeout.LastStatus, timeout.LastTaskState, timeout.After)
	case errors.As(err, &rolled), errors.As(err, &gone), errors.As(err, &spent):
		return err
	default:
		return err // the context ended, or the Cloud was closed
	}
	// readme:end
	return nil
}

// The README's first snippet, run against cloudsim.
func Example_readme() {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{})
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	c := sim.DemoCredentials()
	auth := ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: c.AuthURL, Username: c.Username,
		Password: c.Password, DomainName: c.DomainName, TenantName: c.ProjectName}}
	if err := readmeCreateServer(ctx, auth, "1", cloudsim.CirrosImageID); err != nil {
		panic(err)
	}
	// Output:
	// accepted: 202
	// server web-1 ACTIVE
}
