// Package ops turns OpenStack's background operations into futures.
//
// Each call (CreateServer, DeleteServer, ResizeServer, CreateVolume,
// AttachVolume, ...) makes its HTTP request at once — its error is returned
// at once, its answer is Initial() — and returns an Operation whose Future
// resolves when the cloud has really finished: the target status *and* no
// task_state. Failures are typed: FaultError (with the cloud's fault
// message), TimeoutError (with the last state seen), DeletedError,
// RolledBackError (a resize or migrate that Nova undid silently) and
// RetriesExhaustedError.
//
// One monitor per resource kind and Cloud watches every pending operation
// with one batched list request per round (changes-since for servers), so
// a thousand pending boots cost a few requests a round, not a thousand.
//
//	cloud, err := ops.Dial(ctx, auth, ops.Config{})
//	defer cloud.Close()
//	op, err := cloud.CreateServer(ctx, ops.ServerCreateOpts{Name: "web-1", FlavorRef: "1",
//		ImageRef: img, Networks: "none"}, ops.WithRetries(3), ops.WithTimeout(10*time.Minute))
//	srv, err := op.Result(ctx) // ACTIVE, or a typed error
package ops
