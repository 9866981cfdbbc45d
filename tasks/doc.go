// Package tasks holds ready-made OpenStack tasks and flows for package
// engine, built on the futures of package ops: create and delete servers
// and volumes, attach and detach, snapshot, resize, confirm and migrate,
// and the flows boot-from-volume, server-with-volumes,
// snapshot-and-replace and resize (see Flows).
//
// Every create derives its idempotency key from the flow run and the task,
// "<flow_run_id>/<task name>", so running a flow again with the same
// flow_run_id adopts what an earlier run made. Every revert is idempotent
// and waits until the cloud has finished: a create's revert deletes the
// resource — also the wreck a failed create left behind — and waits until
// it is gone; an attach's revert detaches; a resize's revert reverts it
// while the server waits in VERIFY_RESIZE. Deletes and confirms cannot be
// undone: their reverts do nothing, so the ready-made flows put them last.
//
//	f, store, err := def.Prepare(cloud, map[string]any{tasks.RunID: "run-1",
//		tasks.Name: "web", tasks.Flavor: "1", tasks.Image: img})
//	e, err := engine.New(f, engine.Parallel(0), engine.WithStore(store))
//	err = e.Run(ctx) // nil, or a *engine.FlowError (REVERTED) with the original error
package tasks
