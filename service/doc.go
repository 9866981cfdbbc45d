// Package service is ostask's REST API: tasks as resources. POST
// /v1/tasks validates a request and has the Backend (the task queue,
// *jobs.Queue) store it with its job in one transaction, answering 202
// and a link; GET shows a task's status, progress, result and error, its
// event log (also as Server-Sent Events that resume from Last-Event-ID),
// its flow's graph, and per-resource histories and faults. Callers are
// authenticated by Keystone tokens (X-Auth-Token, or the ostask_token
// cookie the session endpoint sets), validated by Keystone and cached
// until they expire; a token sees its project's tasks, the admin role
// every project's. Errors have one JSON shape (Error); /openapi.json
// documents every route, and a test holds it to the router.
//
//	keys, err := service.NewKeystone(ctx, service.KeystoneConfig{Auth: auth})
//	...
//	srv, err := service.New(service.Config{Backend: queue, Auth: keys})
//	...
//	err = service.Serve(ctx, ln, srv) // until ctx ends
//
// Client is the typed Go client of the same API; its FollowEvents and
// FollowTasks reconnect a cut stream from the last event received.
package service
