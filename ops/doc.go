// Package ops turns OpenStack's background operations into futures.
//
// Each call (CreateServer, DeleteServer, ResizeServer, CreateVolume,
// AttachVolume, ...) makes its HTTP request at once — its error is returned
// at once, its answer is Initial() — and returns an Operation whose Future
// resolves when the cloud has really finished: the target status *and* no
// task_state. Failures are typed: FaultError (with the cloud's fault
// message), TimeoutError (with the last state seen), DeletedError,
// RolledBackError (a resize or migrate that Nova undid silently),
// RetriesExhaustedError, CleanupError, UnresponsiveError and
// UnknownOutcomeError.
//
// One monitor per resource kind and Cloud watches every pending operation
// with one batched list request per round (changes-since for servers), so
// a thousand pending boots cost a few requests a round, not a thousand.
// With Config.Notifications, server operations complete from Nova's
// versioned notifications within milliseconds, and the rounds only
// reconcile (see NotificationConfig).
//
// A lost answer (a dropped connection, a 5xx that may have committed) is
// never answered by doing the work twice: every create carries an
// idempotency key and looks under it before it sends again, and every
// action looks for its evidence (the instance action, the attachment, the
// volume's state) — and then watches the outcome. A failed create is
// deleted before the next attempt and after the last (WithCleanup). Each
// synchronous call retries throttling and server errors within one budget
// (Config.RetryBudget), and no request waits longer than
// Config.ResponseTimeout for its answer.
//
//	cloud, err := ops.Dial(ctx, auth, ops.Config{}) // auth: AuthFromClouds or AuthFromEnv
//	if err != nil {
//		return err
//	}
//	defer cloud.Close()
//	op, err := cloud.CreateServer(ctx, ops.ServerCreateOpts{Name: "web-1", FlavorRef: "1",
//		ImageRef: img, Networks: "none"}, ops.WithRetries(3), ops.WithTimeout(10*time.Minute))
//	if err != nil {
//		return err
//	}
//	srv, err := op.Result(ctx) // ACTIVE, or a typed error
//
// Example_readme (example_readme_test.go) runs the whole walk against cloudsim.
package ops
